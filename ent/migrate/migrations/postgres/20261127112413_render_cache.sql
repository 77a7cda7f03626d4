-- Modify "dashboards" table
ALTER TABLE "dashboards" ADD COLUMN "filters" jsonb NOT NULL DEFAULT '[]', ADD COLUMN "cache_ttl_seconds" bigint NULL;
-- Modify "data_sources" table
ALTER TABLE "data_sources" ADD COLUMN "cache_ttl_seconds" bigint NULL;
-- Modify "queries" table
ALTER TABLE "queries" ADD COLUMN "cache_ttl_seconds" bigint NULL;
