package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/google/uuid"
)

// Alert is a threshold rule on a metric: what it evaluates (source), how
// often, and what its evaluation states mean (docs/alerts.md).
type Alert struct{ ent.Schema }

func (Alert) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Alert) Annotations() []schema.Annotation {
	// Enums are plain text columns: the database enforces their values too.
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"alerts_threshold_type_check":   "threshold_type IN ('above', 'below', 'equal', 'not_equal')",
			"alerts_status_check":           "status IN ('active', 'triggered', 'resolved', 'paused')",
			"alerts_state_check":            "state IN ('normal', 'pending', 'alerting', 'no_data', 'error')",
			"alerts_no_data_state_check":    "no_data_state IN ('no_data', 'alerting', 'normal', 'keep_state')",
			"alerts_error_state_check":      "error_state IN ('error', 'alerting', 'keep_state')",
			"alerts_interval_seconds_check": "interval_seconds >= 10",
			"alerts_for_seconds_check":      "for_seconds >= 0",
		}),
	}
}

func (Alert) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}),
		field.String("metric").MaxRuneLen(100).SchemaType(varchar(100)).NotEmpty(),
		field.Enum("threshold_type").Values("above", "below", "equal", "not_equal"),
		field.Float("threshold_value").SchemaType(map[string]string{dialect.Postgres: "numeric"}),
		field.JSON("channels", []types.AlertChannel{}).Default([]types.AlertChannel{}).SchemaType(jsonb).Annotations(entsql.Default("[]")),
		field.Enum("status").Values("active", "triggered", "resolved", "paused").Default("active"),
		// What is evaluated; NULL for rows older than evaluation (never evaluated).
		field.JSON("source", &types.AlertSource{}).Optional().SchemaType(jsonb),
		field.Int("interval_seconds").Default(60),
		field.Int("for_seconds").Default(0),
		field.Enum("no_data_state").Values("no_data", "alerting", "normal", "keep_state").Default("no_data"),
		field.Enum("error_state").Values("error", "alerting", "keep_state").Default("error"),
		// A model dimension: one instance per value.
		field.String("group_by").Optional().Nillable().MaxRuneLen(255).SchemaType(varchar(255)),
		field.Time("snoozed_until").Optional().Nillable(),
		// Aggregate evaluation state: the worst of the instances' states.
		field.Enum("state").Values("normal", "pending", "alerting", "no_data", "error").Default("normal"),
		// When the alert is next due; claimed by a conditional update so that
		// one process evaluates it once per interval.
		field.Time("next_eval_at").Optional().Nillable(),
		field.Time("last_evaluated_at").Optional().Nillable(),
		field.Text("last_error").Optional().Nillable(),
	}
}

func (Alert) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("alerts").Field("user_id").Unique().Required(),
		edge.To("notifications", AlertNotification.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("instances", AlertInstance.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("events", AlertEvent.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (Alert) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").StorageKey("alerts_user_id_idx"),
		index.Fields("status").StorageKey("alerts_status_idx"),
		index.Fields("next_eval_at").StorageKey("alerts_next_eval_at_idx"),
	}
}
