package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// AlertNotification is one notification an alert sent to a user: one row per
// recipient per firing, open until acknowledged or resolved.
type AlertNotification struct{ ent.Schema }

func (AlertNotification) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

func (AlertNotification) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"alert_notifications_state_check": "state IN ('open', 'acknowledged', 'resolved')",
		}),
	}
}

func (AlertNotification) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("alert_id", uuid.UUID{}),
		field.UUID("user_id", uuid.UUID{}),
		field.Time("sent_at").Default(Now).Annotations(nowDefault),
		field.Time("acknowledged_at").Optional().Nillable(),
		field.Time("resolved_at").Optional().Nillable(),
		// The instance that fired and the state change (event) that fired it;
		// NULL on rows older than evaluation.
		field.UUID("instance_id", uuid.UUID{}).Optional().Nillable(),
		field.UUID("event_id", uuid.UUID{}).Optional().Nillable(),
		field.Enum("state").Values("open", "acknowledged", "resolved").Default("open"),
		field.Float("value").Optional().Nillable(),
		// Who acknowledged / resolved it; NULL when resolved automatically.
		field.UUID("acknowledged_by", uuid.UUID{}).Optional().Nillable(),
		field.UUID("resolved_by", uuid.UUID{}).Optional().Nillable(),
		// resolution: "auto" (the value recovered) or "manual".
		field.String("resolution").Optional().Nillable().MaxRuneLen(20),
	}
}

func (AlertNotification) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("alert", Alert.Type).Ref("notifications").Field("alert_id").Unique().Required(),
		edge.From("user", User.Type).Ref("alert_notifications").Field("user_id").Unique().Required(),
		edge.From("instance", AlertInstance.Type).Ref("notifications").Field("instance_id").Unique(),
		edge.From("event", AlertEvent.Type).Ref("notifications").Field("event_id").Unique(),
	}
}

func (AlertNotification) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("alert_id").StorageKey("alert_notifications_alert_id_idx"),
		index.Fields("user_id").StorageKey("alert_notifications_user_id_idx"),
		// One notification per recipient per firing.
		index.Fields("event_id", "user_id").Unique().StorageKey("alert_notifications_event_id_user_id_idx"),
		index.Fields("instance_id", "state").StorageKey("alert_notifications_instance_id_state_idx"),
	}
}
