-- Create "idempotency_keys" table
CREATE TABLE `idempotency_keys` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `user_id` uuid NOT NULL, `key` text NOT NULL, `request_hash` text NOT NULL, `route` text NOT NULL, `state` text NOT NULL DEFAULT ('in_progress'), `locked_until` datetime NOT NULL, `status` integer NULL, `headers` json NULL, `body` blob NULL, `expires_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- Create index "idempotency_keys_user_key_idx" to table: "idempotency_keys"
CREATE UNIQUE INDEX `idempotency_keys_user_key_idx` ON `idempotency_keys` (`user_id`, `key`);
-- Create index "idempotency_keys_expires_at_idx" to table: "idempotency_keys"
CREATE INDEX `idempotency_keys_expires_at_idx` ON `idempotency_keys` (`expires_at`);
