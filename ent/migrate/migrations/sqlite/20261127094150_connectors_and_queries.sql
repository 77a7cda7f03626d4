-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_data_sources" table
CREATE TABLE `new_data_sources` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `type` text NOT NULL, `config` json NOT NULL DEFAULT '{}', `status` text NOT NULL DEFAULT ('pending'), `last_sync` datetime NULL, `secrets` json NOT NULL DEFAULT '{}', `config_version` integer NOT NULL DEFAULT (1), `last_error` text NULL, `created_by` uuid NULL, PRIMARY KEY (`id`), CONSTRAINT `data_sources_users_data_sources` FOREIGN KEY (`created_by`) REFERENCES `users` (`id`) ON DELETE SET NULL, CONSTRAINT `data_sources_status_check` CHECK (status IN ('pending', 'connected', 'error', 'disabled')));
-- Copy rows from old table "data_sources" to new temporary table "new_data_sources"
INSERT INTO `new_data_sources` (`id`, `created_at`, `updated_at`, `name`, `type`, `config`, `status`, `last_sync`) SELECT `id`, `created_at`, `updated_at`, `name`, `type`, `config`, `status`, `last_sync` FROM `data_sources`;
-- Drop "data_sources" table after copying rows
DROP TABLE `data_sources`;
-- Rename temporary table "new_data_sources" to "data_sources"
ALTER TABLE `new_data_sources` RENAME TO `data_sources`;
-- Create index "data_sources_type_idx" to table: "data_sources"
CREATE INDEX `data_sources_type_idx` ON `data_sources` (`type`);
-- Create index "data_sources_name_idx" to table: "data_sources"
CREATE UNIQUE INDEX `data_sources_name_idx` ON `data_sources` (`name`);
-- Create index "data_sources_created_by_idx" to table: "data_sources"
CREATE INDEX `data_sources_created_by_idx` ON `data_sources` (`created_by`);
-- Create "new_queries" table
CREATE TABLE `new_queries` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `sql` text NOT NULL, `description` text NULL, `parameters` json NOT NULL DEFAULT '[]', `data_source_id` uuid NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `queries_data_sources_queries` FOREIGN KEY (`data_source_id`) REFERENCES `data_sources` (`id`) ON DELETE SET NULL, CONSTRAINT `queries_users_queries` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Copy rows from old table "queries" to new temporary table "new_queries"
INSERT INTO `new_queries` (`id`, `created_at`, `updated_at`, `name`, `sql`, `user_id`) SELECT `id`, `created_at`, `updated_at`, `name`, `sql`, `user_id` FROM `queries`;
-- Drop "queries" table after copying rows
DROP TABLE `queries`;
-- Rename temporary table "new_queries" to "queries"
ALTER TABLE `new_queries` RENAME TO `queries`;
-- Create index "queries_user_id_idx" to table: "queries"
CREATE INDEX `queries_user_id_idx` ON `queries` (`user_id`);
-- Create index "queries_data_source_id_idx" to table: "queries"
CREATE INDEX `queries_data_source_id_idx` ON `queries` (`data_source_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
