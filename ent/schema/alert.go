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

// Alert is a threshold rule on a metric.
type Alert struct{ ent.Schema }

func (Alert) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Alert) Annotations() []schema.Annotation {
	// Enums are plain text columns: the database enforces their values too.
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"alerts_threshold_type_check": "threshold_type IN ('above', 'below', 'equal', 'not_equal')",
			"alerts_status_check":         "status IN ('active', 'triggered', 'resolved', 'paused')",
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
	}
}

func (Alert) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("alerts").Field("user_id").Unique().Required(),
		edge.To("notifications", AlertNotification.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (Alert) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").StorageKey("alerts_user_id_idx"),
		index.Fields("status").StorageKey("alerts_status_idx"),
	}
}
