-- Create "data_sources" table
CREATE TABLE "data_sources" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(100) NOT NULL, "type" character varying(50) NOT NULL, "config" jsonb NOT NULL DEFAULT '{}', "status" character varying NOT NULL DEFAULT 'pending', "last_sync" timestamptz NULL, PRIMARY KEY ("id"), CONSTRAINT "data_sources_status_check" CHECK ((status)::text = ANY ((ARRAY['pending'::character varying, 'connected'::character varying, 'error'::character varying, 'disabled'::character varying])::text[])));
-- Create index "data_sources_type_idx" to table: "data_sources"
CREATE INDEX "data_sources_type_idx" ON "data_sources" ("type");
-- Create "departments" table
CREATE TABLE "departments" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(100) NOT NULL, "description" text NULL, PRIMARY KEY ("id"));
-- Create index "departments_name_idx" to table: "departments"
CREATE UNIQUE INDEX "departments_name_idx" ON "departments" ("name");
-- Create "users" table
CREATE TABLE "users" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "email" character varying(255) NOT NULL, "password" character varying(255) NOT NULL, "name" character varying(100) NULL, "role" character varying NOT NULL DEFAULT 'user', "email_verified_at" timestamptz NULL, "department_id" uuid NULL, PRIMARY KEY ("id"), CONSTRAINT "users_departments_users" FOREIGN KEY ("department_id") REFERENCES "departments" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "users_role_check" CHECK ((role)::text = ANY ((ARRAY['user'::character varying, 'admin'::character varying])::text[])));
-- Create index "users_department_id_idx" to table: "users"
CREATE INDEX "users_department_id_idx" ON "users" ("department_id");
-- Create index "users_email_idx" to table: "users"
CREATE UNIQUE INDEX "users_email_idx" ON "users" ("email");
-- Create index "users_role_idx" to table: "users"
CREATE INDEX "users_role_idx" ON "users" ("role");
-- Create "alerts" table
CREATE TABLE "alerts" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "metric" character varying(100) NOT NULL, "threshold_type" character varying NOT NULL, "threshold_value" numeric NOT NULL, "channels" jsonb NOT NULL DEFAULT '[]', "status" character varying NOT NULL DEFAULT 'active', "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "alerts_users_alerts" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "alerts_status_check" CHECK ((status)::text = ANY ((ARRAY['active'::character varying, 'triggered'::character varying, 'resolved'::character varying, 'paused'::character varying])::text[])), CONSTRAINT "alerts_threshold_type_check" CHECK ((threshold_type)::text = ANY ((ARRAY['above'::character varying, 'below'::character varying, 'equal'::character varying, 'not_equal'::character varying])::text[])));
-- Create index "alerts_status_idx" to table: "alerts"
CREATE INDEX "alerts_status_idx" ON "alerts" ("status");
-- Create index "alerts_user_id_idx" to table: "alerts"
CREATE INDEX "alerts_user_id_idx" ON "alerts" ("user_id");
-- Create "alert_notifications" table
CREATE TABLE "alert_notifications" ("id" uuid NOT NULL, "sent_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "acknowledged_at" timestamptz NULL, "resolved_at" timestamptz NULL, "alert_id" uuid NOT NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "alert_notifications_alerts_notifications" FOREIGN KEY ("alert_id") REFERENCES "alerts" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "alert_notifications_users_alert_notifications" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "alert_notifications_alert_id_idx" to table: "alert_notifications"
CREATE INDEX "alert_notifications_alert_id_idx" ON "alert_notifications" ("alert_id");
-- Create index "alert_notifications_user_id_idx" to table: "alert_notifications"
CREATE INDEX "alert_notifications_user_id_idx" ON "alert_notifications" ("user_id");
-- Create "api_tokens" table
CREATE TABLE "api_tokens" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(100) NOT NULL, "token_hash" character varying(64) NOT NULL, "prefix" character varying(16) NOT NULL, "scopes" jsonb NOT NULL DEFAULT '[]', "expires_at" timestamptz NULL, "last_used_at" timestamptz NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "api_tokens_users_api_tokens" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "api_tokens_token_hash_idx" to table: "api_tokens"
CREATE UNIQUE INDEX "api_tokens_token_hash_idx" ON "api_tokens" ("token_hash");
-- Create index "api_tokens_user_id_idx" to table: "api_tokens"
CREATE INDEX "api_tokens_user_id_idx" ON "api_tokens" ("user_id");
-- Create "posts" table
CREATE TABLE "posts" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "title" character varying(255) NOT NULL, "content" text NOT NULL, "status" character varying NOT NULL DEFAULT 'draft', "published_at" timestamptz NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "posts_users_posts" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "posts_status_check" CHECK ((status)::text = ANY ((ARRAY['draft'::character varying, 'published'::character varying, 'archived'::character varying])::text[])));
-- Create index "posts_published_at_idx" to table: "posts"
CREATE INDEX "posts_published_at_idx" ON "posts" ("published_at");
-- Create index "posts_status_idx" to table: "posts"
CREATE INDEX "posts_status_idx" ON "posts" ("status");
-- Create index "posts_user_id_idx" to table: "posts"
CREATE INDEX "posts_user_id_idx" ON "posts" ("user_id");
-- Create "comments" table
CREATE TABLE "comments" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "content" text NOT NULL, "status" character varying NOT NULL DEFAULT 'active', "post_id" uuid NOT NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "comments_posts_comments" FOREIGN KEY ("post_id") REFERENCES "posts" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "comments_users_comments" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "comments_status_check" CHECK ((status)::text = ANY ((ARRAY['active'::character varying, 'hidden'::character varying, 'deleted'::character varying])::text[])));
-- Create index "comments_post_id_idx" to table: "comments"
CREATE INDEX "comments_post_id_idx" ON "comments" ("post_id");
-- Create index "comments_post_user_idx" to table: "comments"
CREATE INDEX "comments_post_user_idx" ON "comments" ("post_id", "user_id");
-- Create index "comments_user_id_idx" to table: "comments"
CREATE INDEX "comments_user_id_idx" ON "comments" ("user_id");
-- Create "dashboards" table
CREATE TABLE "dashboards" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(255) NOT NULL, "description" text NULL, "owner_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "dashboards_users_dashboards" FOREIGN KEY ("owner_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "dashboards_owner_id_idx" to table: "dashboards"
CREATE INDEX "dashboards_owner_id_idx" ON "dashboards" ("owner_id");
-- Create "dashboard_shares" table
CREATE TABLE "dashboard_shares" ("permission_level" character varying(20) NOT NULL DEFAULT 'view', "shared_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "dashboard_id" uuid NOT NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("dashboard_id", "user_id"), CONSTRAINT "dashboard_shares_dashboards_dashboard" FOREIGN KEY ("dashboard_id") REFERENCES "dashboards" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "dashboard_shares_users_user" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "dashboard_shares_permission_level_check" CHECK ((permission_level)::text = ANY ((ARRAY['view'::character varying, 'edit'::character varying])::text[])));
-- Create index "dashboard_shares_user_id_idx" to table: "dashboard_shares"
CREATE INDEX "dashboard_shares_user_id_idx" ON "dashboard_shares" ("user_id");
-- Create "data_models" table
CREATE TABLE "data_models" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(255) NOT NULL, "config" jsonb NOT NULL DEFAULT '{}', "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "data_models_users_data_models" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "data_models_user_id_idx" to table: "data_models"
CREATE INDEX "data_models_user_id_idx" ON "data_models" ("user_id");
-- Create "tags" table
CREATE TABLE "tags" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(50) NOT NULL, "slug" character varying(50) NOT NULL, "color" character varying(7) NULL DEFAULT '#000000', PRIMARY KEY ("id"));
-- Create index "tags_name_idx" to table: "tags"
CREATE UNIQUE INDEX "tags_name_idx" ON "tags" ("name");
-- Create index "tags_slug_idx" to table: "tags"
CREATE UNIQUE INDEX "tags_slug_idx" ON "tags" ("slug");
-- Create "post_tags" table
CREATE TABLE "post_tags" ("created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "post_id" uuid NOT NULL, "tag_id" uuid NOT NULL, PRIMARY KEY ("post_id", "tag_id"), CONSTRAINT "post_tags_posts_post" FOREIGN KEY ("post_id") REFERENCES "posts" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "post_tags_tags_tag" FOREIGN KEY ("tag_id") REFERENCES "tags" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "post_tags_tag_id_idx" to table: "post_tags"
CREATE INDEX "post_tags_tag_id_idx" ON "post_tags" ("tag_id");
-- Create "profiles" table
CREATE TABLE "profiles" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "avatar" character varying(255) NULL, "bio" text NULL, "phone" character varying(50) NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "profiles_users_profiles" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "profiles_user_id_idx" to table: "profiles"
CREATE UNIQUE INDEX "profiles_user_id_idx" ON "profiles" ("user_id");
-- Create "queries" table
CREATE TABLE "queries" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(255) NOT NULL, "sql" text NOT NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "queries_users_queries" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "queries_user_id_idx" to table: "queries"
CREATE INDEX "queries_user_id_idx" ON "queries" ("user_id");
-- Create "reports" table
CREATE TABLE "reports" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "schedule" character varying(50) NOT NULL, "recipients" jsonb NOT NULL DEFAULT '[]', "format" character varying(20) NOT NULL, "dashboard_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "reports_dashboards_reports" FOREIGN KEY ("dashboard_id") REFERENCES "dashboards" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "reports_dashboard_id_idx" to table: "reports"
CREATE INDEX "reports_dashboard_id_idx" ON "reports" ("dashboard_id");
-- Create "sessions" table
CREATE TABLE "sessions" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "refresh_hash" character varying(64) NOT NULL, "expires_at" timestamptz NOT NULL, "revoked_at" timestamptz NULL, "user_agent" character varying(255) NULL, "user_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "sessions_users_sessions" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "sessions_user_id_idx" to table: "sessions"
CREATE INDEX "sessions_user_id_idx" ON "sessions" ("user_id");
-- Create "roles" table
CREATE TABLE "roles" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "name" character varying(50) NOT NULL, "description" text NULL, "permissions" jsonb NOT NULL DEFAULT '[]', PRIMARY KEY ("id"));
-- Create index "roles_name_idx" to table: "roles"
CREATE UNIQUE INDEX "roles_name_idx" ON "roles" ("name");
-- Create "user_roles" table
CREATE TABLE "user_roles" ("assigned_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "user_id" uuid NOT NULL, "role_id" uuid NOT NULL, "assigned_by" uuid NULL, PRIMARY KEY ("user_id", "role_id"), CONSTRAINT "user_roles_roles_role" FOREIGN KEY ("role_id") REFERENCES "roles" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "user_roles_users_assigner" FOREIGN KEY ("assigned_by") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "user_roles_users_user" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "user_roles_assigned_by_idx" to table: "user_roles"
CREATE INDEX "user_roles_assigned_by_idx" ON "user_roles" ("assigned_by");
-- Create index "user_roles_role_id_idx" to table: "user_roles"
CREATE INDEX "user_roles_role_id_idx" ON "user_roles" ("role_id");
-- Create "widgets" table
CREATE TABLE "widgets" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "type" character varying(50) NOT NULL, "config" jsonb NOT NULL DEFAULT '{}', "position" jsonb NOT NULL, "dashboard_id" uuid NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "widgets_dashboards_widgets" FOREIGN KEY ("dashboard_id") REFERENCES "dashboards" ("id") ON UPDATE NO ACTION ON DELETE CASCADE);
-- Create index "widgets_dashboard_id_idx" to table: "widgets"
CREATE INDEX "widgets_dashboard_id_idx" ON "widgets" ("dashboard_id");
-- Create "workflows" table
CREATE TABLE "workflows" ("id" uuid NOT NULL, "created_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, "type" character varying(50) NOT NULL, "status" character varying NOT NULL DEFAULT 'pending', "data" jsonb NOT NULL DEFAULT '{}', "requester_id" uuid NOT NULL, "approver_id" uuid NULL, PRIMARY KEY ("id"), CONSTRAINT "workflows_users_approved_workflows" FOREIGN KEY ("approver_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, CONSTRAINT "workflows_users_requested_workflows" FOREIGN KEY ("requester_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "workflows_status_check" CHECK ((status)::text = ANY ((ARRAY['pending'::character varying, 'approved'::character varying, 'rejected'::character varying, 'cancelled'::character varying])::text[])));
-- Create index "workflows_approver_id_idx" to table: "workflows"
CREATE INDEX "workflows_approver_id_idx" ON "workflows" ("approver_id");
-- Create index "workflows_requester_id_idx" to table: "workflows"
CREATE INDEX "workflows_requester_id_idx" ON "workflows" ("requester_id");
-- Create index "workflows_status_idx" to table: "workflows"
CREATE INDEX "workflows_status_idx" ON "workflows" ("status");
