-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_alerts" table
CREATE TABLE `new_alerts` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `metric` text NOT NULL, `threshold_type` text NOT NULL, `threshold_value` real NOT NULL, `channels` json NOT NULL DEFAULT '[]', `status` text NOT NULL DEFAULT ('active'), `source` json NULL, `interval_seconds` integer NOT NULL DEFAULT (60), `for_seconds` integer NOT NULL DEFAULT (0), `no_data_state` text NOT NULL DEFAULT ('no_data'), `error_state` text NOT NULL DEFAULT ('error'), `group_by` text NULL, `snoozed_until` datetime NULL, `state` text NOT NULL DEFAULT ('normal'), `next_eval_at` datetime NULL, `last_evaluated_at` datetime NULL, `last_error` text NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `alerts_users_alerts` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `alerts_error_state_check` CHECK (error_state IN ('error', 'alerting', 'keep_state')), CONSTRAINT `alerts_for_seconds_check` CHECK (for_seconds >= 0), CONSTRAINT `alerts_interval_seconds_check` CHECK (interval_seconds >= 10), CONSTRAINT `alerts_no_data_state_check` CHECK (no_data_state IN ('no_data', 'alerting', 'normal', 'keep_state')), CONSTRAINT `alerts_state_check` CHECK (state IN ('normal', 'pending', 'alerting', 'no_data', 'error')), CONSTRAINT `alerts_status_check` CHECK (status IN ('active', 'triggered', 'resolved', 'paused')), CONSTRAINT `alerts_threshold_type_check` CHECK (threshold_type IN ('above', 'below', 'equal', 'not_equal')));
-- Copy rows from old table "alerts" to new temporary table "new_alerts"
INSERT INTO `new_alerts` (`id`, `created_at`, `updated_at`, `metric`, `threshold_type`, `threshold_value`, `channels`, `status`, `user_id`) SELECT `id`, `created_at`, `updated_at`, `metric`, `threshold_type`, `threshold_value`, `channels`, `status`, `user_id` FROM `alerts`;
-- Drop "alerts" table after copying rows
DROP TABLE `alerts`;
-- Rename temporary table "new_alerts" to "alerts"
ALTER TABLE `new_alerts` RENAME TO `alerts`;
-- Create index "alerts_user_id_idx" to table: "alerts"
CREATE INDEX `alerts_user_id_idx` ON `alerts` (`user_id`);
-- Create index "alerts_status_idx" to table: "alerts"
CREATE INDEX `alerts_status_idx` ON `alerts` (`status`);
-- Create index "alerts_next_eval_at_idx" to table: "alerts"
CREATE INDEX `alerts_next_eval_at_idx` ON `alerts` (`next_eval_at`);
-- Create "new_alert_notifications" table
CREATE TABLE `new_alert_notifications` (`id` uuid NOT NULL, `sent_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `acknowledged_at` datetime NULL, `resolved_at` datetime NULL, `state` text NOT NULL DEFAULT ('open'), `value` real NULL, `acknowledged_by` uuid NULL, `resolved_by` uuid NULL, `resolution` text NULL, `alert_id` uuid NOT NULL, `event_id` uuid NULL, `instance_id` uuid NULL, `user_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `alert_notifications_alerts_notifications` FOREIGN KEY (`alert_id`) REFERENCES `alerts` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_notifications_alert_events_notifications` FOREIGN KEY (`event_id`) REFERENCES `alert_events` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_notifications_alert_instances_notifications` FOREIGN KEY (`instance_id`) REFERENCES `alert_instances` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_notifications_users_alert_notifications` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_notifications_state_check` CHECK (state IN ('open', 'acknowledged', 'resolved')));
-- Copy rows from old table "alert_notifications" to new temporary table "new_alert_notifications"
INSERT INTO `new_alert_notifications` (`id`, `sent_at`, `acknowledged_at`, `resolved_at`, `alert_id`, `user_id`) SELECT `id`, `sent_at`, `acknowledged_at`, `resolved_at`, `alert_id`, `user_id` FROM `alert_notifications`;
-- Drop "alert_notifications" table after copying rows
DROP TABLE `alert_notifications`;
-- Rename temporary table "new_alert_notifications" to "alert_notifications"
ALTER TABLE `new_alert_notifications` RENAME TO `alert_notifications`;
-- Create index "alert_notifications_alert_id_idx" to table: "alert_notifications"
CREATE INDEX `alert_notifications_alert_id_idx` ON `alert_notifications` (`alert_id`);
-- Create index "alert_notifications_user_id_idx" to table: "alert_notifications"
CREATE INDEX `alert_notifications_user_id_idx` ON `alert_notifications` (`user_id`);
-- Create index "alert_notifications_event_id_user_id_idx" to table: "alert_notifications"
CREATE UNIQUE INDEX `alert_notifications_event_id_user_id_idx` ON `alert_notifications` (`event_id`, `user_id`);
-- Create index "alert_notifications_instance_id_state_idx" to table: "alert_notifications"
CREATE INDEX `alert_notifications_instance_id_state_idx` ON `alert_notifications` (`instance_id`, `state`);
-- Create "alert_events" table
CREATE TABLE `alert_events` (`id` uuid NOT NULL, `group_key` text NOT NULL DEFAULT (''), `from_state` text NOT NULL, `to_state` text NOT NULL, `value` real NULL, `threshold_value` real NOT NULL, `reason` text NULL, `seq` integer NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `alert_id` uuid NOT NULL, `instance_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `alert_events_alerts_events` FOREIGN KEY (`alert_id`) REFERENCES `alerts` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_events_alert_instances_events` FOREIGN KEY (`instance_id`) REFERENCES `alert_instances` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_events_from_state_check` CHECK (from_state IN ('normal', 'pending', 'alerting', 'no_data', 'error')), CONSTRAINT `alert_events_to_state_check` CHECK (to_state IN ('normal', 'pending', 'alerting', 'no_data', 'error')));
-- Create index "alert_events_instance_id_seq_idx" to table: "alert_events"
CREATE UNIQUE INDEX `alert_events_instance_id_seq_idx` ON `alert_events` (`instance_id`, `seq`);
-- Create index "alert_events_alert_id_created_at_idx" to table: "alert_events"
CREATE INDEX `alert_events_alert_id_created_at_idx` ON `alert_events` (`alert_id`, `created_at`);
-- Create "alert_instances" table
CREATE TABLE `alert_instances` (`id` uuid NOT NULL, `group_key` text NOT NULL DEFAULT (''), `state` text NOT NULL DEFAULT ('normal'), `since` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `last_value` real NULL, `last_evaluated_at` datetime NULL, `reason` text NULL, `version` integer NOT NULL DEFAULT (0), `alert_id` uuid NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `alert_instances_alerts_instances` FOREIGN KEY (`alert_id`) REFERENCES `alerts` (`id`) ON DELETE CASCADE, CONSTRAINT `alert_instances_state_check` CHECK (state IN ('normal', 'pending', 'alerting', 'no_data', 'error')));
-- Create index "alert_instances_alert_id_group_key_idx" to table: "alert_instances"
CREATE UNIQUE INDEX `alert_instances_alert_id_group_key_idx` ON `alert_instances` (`alert_id`, `group_key`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
