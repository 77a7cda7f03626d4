-- Create "idempotency_keys" table
CREATE TABLE "idempotency_keys" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "user_id" uuid NOT NULL, "key" character varying(255) NOT NULL, "request_hash" character varying(64) NOT NULL, "route" character varying(255) NOT NULL, "state" character varying NOT NULL DEFAULT 'in_progress', "locked_until" timestamptz NOT NULL, "status" bigint NULL, "headers" jsonb NULL, "body" bytea NULL, "expires_at" timestamptz NOT NULL, PRIMARY KEY ("id"));
-- Create index "idempotency_keys_expires_at_idx" to table: "idempotency_keys"
CREATE INDEX "idempotency_keys_expires_at_idx" ON "idempotency_keys" ("expires_at");
-- Create index "idempotency_keys_user_key_idx" to table: "idempotency_keys"
CREATE UNIQUE INDEX "idempotency_keys_user_key_idx" ON "idempotency_keys" ("user_id", "key");
