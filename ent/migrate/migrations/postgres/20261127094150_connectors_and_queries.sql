-- Modify "data_sources" table
ALTER TABLE "data_sources" ADD COLUMN "secrets" jsonb NOT NULL DEFAULT '{}', ADD COLUMN "config_version" bigint NOT NULL DEFAULT 1, ADD COLUMN "last_error" text NULL, ADD COLUMN "created_by" uuid NULL, ADD CONSTRAINT "data_sources_users_data_sources" FOREIGN KEY ("created_by") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL;
-- Create index "data_sources_created_by_idx" to table: "data_sources"
CREATE INDEX "data_sources_created_by_idx" ON "data_sources" ("created_by");
-- Create index "data_sources_name_idx" to table: "data_sources"
CREATE UNIQUE INDEX "data_sources_name_idx" ON "data_sources" ("name");
-- Modify "queries" table
ALTER TABLE "queries" ADD COLUMN "description" text NULL, ADD COLUMN "parameters" jsonb NOT NULL DEFAULT '[]', ADD COLUMN "data_source_id" uuid NULL, ADD CONSTRAINT "queries_data_sources_queries" FOREIGN KEY ("data_source_id") REFERENCES "data_sources" ("id") ON UPDATE NO ACTION ON DELETE SET NULL;
-- Create index "queries_data_source_id_idx" to table: "queries"
CREATE INDEX "queries_data_source_id_idx" ON "queries" ("data_source_id");
