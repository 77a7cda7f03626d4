-- Create index "dashboards_updated_at_idx" to table: "dashboards"
CREATE INDEX "dashboards_updated_at_idx" ON "dashboards" ("updated_at", "id");
