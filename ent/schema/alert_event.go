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

// AlertEvent is one state change of an alert instance (its history).
type AlertEvent struct{ ent.Schema }

func (AlertEvent) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

func (AlertEvent) Annotations() []schema.Annotation {
	states := "('normal', 'pending', 'alerting', 'no_data', 'error')"
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"alert_events_from_state_check": "from_state IN " + states,
			"alert_events_to_state_check":   "to_state IN " + states,
		}),
	}
}

func (AlertEvent) Fields() []ent.Field {
	states := []string{"normal", "pending", "alerting", "no_data", "error"}
	return []ent.Field{
		field.UUID("alert_id", uuid.UUID{}),
		field.UUID("instance_id", uuid.UUID{}),
		field.String("group_key").Default("").MaxRuneLen(1000),
		field.Enum("from_state").Values(states...),
		field.Enum("to_state").Values(states...),
		field.Float("value").Optional().Nillable(),
		field.Float("threshold_value"),
		field.Text("reason").Optional().Nillable(),
		// seq is the instance's version after this change: unique per
		// instance, so one change is recorded once.
		field.Int("seq"),
		field.Time("created_at").Default(Now).Immutable().Annotations(nowDefault),
	}
}

func (AlertEvent) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("alert", Alert.Type).Ref("events").Field("alert_id").Unique().Required(),
		edge.From("instance", AlertInstance.Type).Ref("events").Field("instance_id").Unique().Required(),
		edge.To("notifications", AlertNotification.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (AlertEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("instance_id", "seq").Unique().StorageKey("alert_events_instance_id_seq_idx"),
		index.Fields("alert_id", "created_at").StorageKey("alert_events_alert_id_created_at_idx"),
	}
}
