-- Create "api_tokens" table
CREATE TABLE `api_tokens` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `token_hash` text NOT NULL, `prefix` text NOT NULL, `scopes` json NOT NULL DEFAULT '[]', `expires_at` datetime NULL, `last_used_at` datetime NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `api_tokens_users_api_tokens` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "api_tokens_token_hash_idx" to table: "api_tokens"
CREATE UNIQUE INDEX `api_tokens_token_hash_idx` ON `api_tokens` (`token_hash`);
-- Create index "api_tokens_user_id_idx" to table: "api_tokens"
CREATE INDEX `api_tokens_user_id_idx` ON `api_tokens` (`user_id`);
-- Create "alerts" table
CREATE TABLE `alerts` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `metric` text NOT NULL, `threshold_type` text NOT NULL, `threshold_value` real NOT NULL, `channels` json NOT NULL DEFAULT '[]', `status` text NOT NULL DEFAULT ('active'), `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `alerts_users_alerts` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `alerts_status_check` CHECK (status IN ('active', 'triggered', 'resolved', 'paused')), CONSTRAINT `alerts_threshold_type_check` CHECK (threshold_type IN ('above', 'below', 'equal', 'not_equal')));
-- Create index "alerts_user_id_idx" to table: "alerts"
CREATE INDEX `alerts_user_id_idx` ON `alerts` (`user_id`);
-- Create index "alerts_status_idx" to table: "alerts"
CREATE INDEX `alerts_status_idx` ON `alerts` (`status`);
-- Create "alert_notifications" table
CREATE TABLE `alert_notifications` (`id` uuid NOT NULL, `sent_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `acknowledged_at` datetime NULL, `resolved_at` datetime NULL, `alert_id` uuid NOT NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `alert_notifications_alerts_notifications` FOREIGN KEY (`alert_id`) REFERENCES `alerts` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_notifications_users_alert_notifications` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "alert_notifications_alert_id_idx" to table: "alert_notifications"
CREATE INDEX `alert_notifications_alert_id_idx` ON `alert_notifications` (`alert_id`);
-- Create index "alert_notifications_user_id_idx" to table: "alert_notifications"
CREATE INDEX `alert_notifications_user_id_idx` ON `alert_notifications` (`user_id`);
-- Create "comments" table
CREATE TABLE `comments` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `content` text NOT NULL, `status` text NOT NULL DEFAULT ('active'), `post_id` uuid NOT NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `comments_posts_comments` FOREIGN KEY (`post_id`) REFERENCES `posts` (`id`) ON DELETE CASCADE, CONSTRAINT `comments_users_comments` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `comments_status_check` CHECK (status IN ('active', 'hidden', 'deleted')));
-- Create index "comments_post_id_idx" to table: "comments"
CREATE INDEX `comments_post_id_idx` ON `comments` (`post_id`);
-- Create index "comments_user_id_idx" to table: "comments"
CREATE INDEX `comments_user_id_idx` ON `comments` (`user_id`);
-- Create index "comments_post_user_idx" to table: "comments"
CREATE INDEX `comments_post_user_idx` ON `comments` (`post_id`, `user_id`);
-- Create "dashboards" table
CREATE TABLE `dashboards` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `description` text NULL, `owner_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `dashboards_users_dashboards` FOREIGN KEY (`owner_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "dashboards_owner_id_idx" to table: "dashboards"
CREATE INDEX `dashboards_owner_id_idx` ON `dashboards` (`owner_id`);
-- Create "dashboard_shares" table
CREATE TABLE `dashboard_shares` (`permission_level` text NOT NULL DEFAULT ('view'), `shared_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `dashboard_id` uuid NOT NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`dashboard_id`, `user_id`), CONSTRAINT `dashboard_shares_dashboards_dashboard` FOREIGN KEY (`dashboard_id`) REFERENCES `dashboards` (`id`) ON DELETE CASCADE, CONSTRAINT `dashboard_shares_users_user` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `dashboard_shares_permission_level_check` CHECK (permission_level IN ('view', 'edit')));
-- Create index "dashboard_shares_user_id_idx" to table: "dashboard_shares"
CREATE INDEX `dashboard_shares_user_id_idx` ON `dashboard_shares` (`user_id`);
-- Create "data_models" table
CREATE TABLE `data_models` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `config` json NOT NULL DEFAULT '{}', `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `data_models_users_data_models` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "data_models_user_id_idx" to table: "data_models"
CREATE INDEX `data_models_user_id_idx` ON `data_models` (`user_id`);
-- Create "data_sources" table
CREATE TABLE `data_sources` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `type` text NOT NULL, `config` json NOT NULL DEFAULT '{}', `status` text NOT NULL DEFAULT ('pending'), `last_sync` datetime NULL, PRIMARY KEY (`id`), CONSTRAINT `data_sources_status_check` CHECK (status IN ('pending', 'connected', 'error', 'disabled')));
-- Create index "data_sources_type_idx" to table: "data_sources"
CREATE INDEX `data_sources_type_idx` ON `data_sources` (`type`);
-- Create "departments" table
CREATE TABLE `departments` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `description` text NULL, PRIMARY KEY (`id`));
-- Create index "departments_name_idx" to table: "departments"
CREATE UNIQUE INDEX `departments_name_idx` ON `departments` (`name`);
-- Create "posts" table
CREATE TABLE `posts` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `title` text NOT NULL, `content` text NOT NULL, `status` text NOT NULL DEFAULT ('draft'), `published_at` datetime NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `posts_users_posts` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `posts_status_check` CHECK (status IN ('draft', 'published', 'archived')));
-- Create index "posts_user_id_idx" to table: "posts"
CREATE INDEX `posts_user_id_idx` ON `posts` (`user_id`);
-- Create index "posts_status_idx" to table: "posts"
CREATE INDEX `posts_status_idx` ON `posts` (`status`);
-- Create index "posts_published_at_idx" to table: "posts"
CREATE INDEX `posts_published_at_idx` ON `posts` (`published_at`);
-- Create "post_tags" table
CREATE TABLE `post_tags` (`created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `post_id` uuid NOT NULL, `tag_id` uuid NOT NULL, PRIMARY KEY (`post_id`, `tag_id`), CONSTRAINT `post_tags_posts_post` FOREIGN KEY (`post_id`) REFERENCES `posts` (`id`) ON DELETE CASCADE, CONSTRAINT `post_tags_tags_tag` FOREIGN KEY (`tag_id`) REFERENCES `tags` (`id`) ON DELETE CASCADE);
-- Create index "post_tags_tag_id_idx" to table: "post_tags"
CREATE INDEX `post_tags_tag_id_idx` ON `post_tags` (`tag_id`);
-- Create "profiles" table
CREATE TABLE `profiles` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `avatar` text NULL, `bio` text NULL, `phone` text NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `profiles_users_profiles` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "profiles_user_id_idx" to table: "profiles"
CREATE UNIQUE INDEX `profiles_user_id_idx` ON `profiles` (`user_id`);
-- Create "reports" table
CREATE TABLE `reports` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `schedule` text NOT NULL, `recipients` json NOT NULL DEFAULT '[]', `format` text NOT NULL, `dashboard_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `reports_dashboards_reports` FOREIGN KEY (`dashboard_id`) REFERENCES `dashboards` (`id`) ON DELETE CASCADE);
-- Create index "reports_dashboard_id_idx" to table: "reports"
CREATE INDEX `reports_dashboard_id_idx` ON `reports` (`dashboard_id`);
-- Create "roles" table
CREATE TABLE `roles` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `description` text NULL, `permissions` json NOT NULL DEFAULT '[]', PRIMARY KEY (`id`));
-- Create index "roles_name_idx" to table: "roles"
CREATE UNIQUE INDEX `roles_name_idx` ON `roles` (`name`);
-- Create "queries" table
CREATE TABLE `queries` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `sql` text NOT NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `queries_users_queries` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "queries_user_id_idx" to table: "queries"
CREATE INDEX `queries_user_id_idx` ON `queries` (`user_id`);
-- Create "sessions" table
CREATE TABLE `sessions` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `refresh_hash` text NOT NULL, `expires_at` datetime NOT NULL, `revoked_at` datetime NULL, `user_agent` text NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `sessions_users_sessions` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "sessions_user_id_idx" to table: "sessions"
CREATE INDEX `sessions_user_id_idx` ON `sessions` (`user_id`);
-- Create "tags" table
CREATE TABLE `tags` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `name` text NOT NULL, `slug` text NOT NULL, `color` text NULL DEFAULT ('#000000'), PRIMARY KEY (`id`));
-- Create index "tags_name_idx" to table: "tags"
CREATE UNIQUE INDEX `tags_name_idx` ON `tags` (`name`);
-- Create index "tags_slug_idx" to table: "tags"
CREATE UNIQUE INDEX `tags_slug_idx` ON `tags` (`slug`);
-- Create "users" table
CREATE TABLE `users` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `email` text NOT NULL, `password` text NOT NULL, `name` text NULL, `role` text NOT NULL DEFAULT ('user'), `email_verified_at` datetime NULL, `department_id` uuid NULL, PRIMARY KEY (`id`), CONSTRAINT `users_departments_users` FOREIGN KEY (`department_id`) REFERENCES `departments` (`id`) ON DELETE SET NULL, CONSTRAINT `users_role_check` CHECK (role IN ('user', 'admin')));
-- Create index "users_email_idx" to table: "users"
CREATE UNIQUE INDEX `users_email_idx` ON `users` (`email`);
-- Create index "users_role_idx" to table: "users"
CREATE INDEX `users_role_idx` ON `users` (`role`);
-- Create index "users_department_id_idx" to table: "users"
CREATE INDEX `users_department_id_idx` ON `users` (`department_id`);
-- Create "user_roles" table
CREATE TABLE `user_roles` (`assigned_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `user_id` uuid NOT NULL, `role_id` uuid NOT NULL, `assigned_by` uuid NULL, PRIMARY KEY (`user_id`, `role_id`), CONSTRAINT `user_roles_users_user` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `user_roles_roles_role` FOREIGN KEY (`role_id`) REFERENCES `roles` (`id`) ON DELETE CASCADE, CONSTRAINT `user_roles_users_assigner` FOREIGN KEY (`assigned_by`) REFERENCES `users` (`id`) ON DELETE SET NULL);
-- Create index "user_roles_role_id_idx" to table: "user_roles"
CREATE INDEX `user_roles_role_id_idx` ON `user_roles` (`role_id`);
-- Create index "user_roles_assigned_by_idx" to table: "user_roles"
CREATE INDEX `user_roles_assigned_by_idx` ON `user_roles` (`assigned_by`);
-- Create "widgets" table
CREATE TABLE `widgets` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `type` text NOT NULL, `config` json NOT NULL DEFAULT '{}', `position` json NOT NULL, `dashboard_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `widgets_dashboards_widgets` FOREIGN KEY (`dashboard_id`) REFERENCES `dashboards` (`id`) ON DELETE CASCADE);
-- Create index "widgets_dashboard_id_idx" to table: "widgets"
CREATE INDEX `widgets_dashboard_id_idx` ON `widgets` (`dashboard_id`);
-- Create "workflows" table
CREATE TABLE `workflows` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `type` text NOT NULL, `status` text NOT NULL DEFAULT ('pending'), `data` json NOT NULL DEFAULT '{}', `requester_id` uuid NOT NULL, `approver_id` uuid NULL, PRIMARY KEY (`id`), CONSTRAINT `workflows_users_requested_workflows` FOREIGN KEY (`requester_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `workflows_users_approved_workflows` FOREIGN KEY (`approver_id`) REFERENCES `users` (`id`) ON DELETE SET NULL, CONSTRAINT `workflows_status_check` CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')));
-- Create index "workflows_requester_id_idx" to table: "workflows"
CREATE INDEX `workflows_requester_id_idx` ON `workflows` (`requester_id`);
-- Create index "workflows_approver_id_idx" to table: "workflows"
CREATE INDEX `workflows_approver_id_idx` ON `workflows` (`approver_id`);
-- Create index "workflows_status_idx" to table: "workflows"
CREATE INDEX `workflows_status_idx` ON `workflows` (`status`);
