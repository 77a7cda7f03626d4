package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// AlertNotification is one notification an alert sent to a user.
type AlertNotification struct{ ent.Schema }

func (AlertNotification) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

func (AlertNotification) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("alert_id", uuid.UUID{}),
		field.UUID("user_id", uuid.UUID{}),
		field.Time("sent_at").Default(Now).Annotations(nowDefault),
		field.Time("acknowledged_at").Optional().Nillable(),
		field.Time("resolved_at").Optional().Nillable(),
	}
}

func (AlertNotification) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("alert", Alert.Type).Ref("notifications").Field("alert_id").Unique().Required(),
		edge.From("user", User.Type).Ref("alert_notifications").Field("user_id").Unique().Required(),
	}
}

func (AlertNotification) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("alert_id").StorageKey("alert_notifications_alert_id_idx"),
		index.Fields("user_id").StorageKey("alert_notifications_user_id_idx"),
	}
}
