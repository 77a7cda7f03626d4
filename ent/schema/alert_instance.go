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

// AlertInstance is the evaluation state of one alert for one group value
// (group_key "" when the alert has no group_by).
type AlertInstance struct{ ent.Schema }

func (AlertInstance) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

func (AlertInstance) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"alert_instances_state_check": "state IN ('normal', 'pending', 'alerting', 'no_data', 'error')",
		}),
	}
}

func (AlertInstance) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("alert_id", uuid.UUID{}),
		field.String("group_key").Default("").MaxRuneLen(1000),
		field.Enum("state").Values("normal", "pending", "alerting", "no_data", "error").Default("normal"),
		// since: when the instance entered its state.
		field.Time("since").Default(Now).Annotations(nowDefault),
		field.Float("last_value").Optional().Nillable(),
		field.Time("last_evaluated_at").Optional().Nillable(),
		field.Text("reason").Optional().Nillable(),
		// version grows by one with every state change: a change is applied
		// only by the writer that read the version before it (conditional
		// update), so concurrent evaluations cannot apply it twice.
		field.Int("version").Default(0),
	}
}

func (AlertInstance) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("alert", Alert.Type).Ref("instances").Field("alert_id").Unique().Required(),
		edge.To("events", AlertEvent.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("notifications", AlertNotification.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (AlertInstance) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("alert_id", "group_key").Unique().StorageKey("alert_instances_alert_id_group_key_idx"),
	}
}
