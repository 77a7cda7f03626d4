-- Add column "filters" to table: "dashboards"
ALTER TABLE `dashboards` ADD COLUMN `filters` json NOT NULL DEFAULT '[]';
-- Add column "cache_ttl_seconds" to table: "dashboards"
ALTER TABLE `dashboards` ADD COLUMN `cache_ttl_seconds` integer NULL;
-- Add column "cache_ttl_seconds" to table: "data_sources"
ALTER TABLE `data_sources` ADD COLUMN `cache_ttl_seconds` integer NULL;
-- Add column "cache_ttl_seconds" to table: "queries"
ALTER TABLE `queries` ADD COLUMN `cache_ttl_seconds` integer NULL;
