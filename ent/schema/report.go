package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Report is a scheduled delivery of a dashboard.
type Report struct{ ent.Schema }

func (Report) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Report) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("dashboard_id", uuid.UUID{}),
		// A cron expression, validated by the reports service.
		field.String("schedule").MaxRuneLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.Strings("recipients").Default([]string{}).SchemaType(jsonb).Annotations(entsql.Default("[]")),
		field.String("format").MaxRuneLen(20).SchemaType(varchar(20)).NotEmpty(),
	}
}

func (Report) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("dashboard", Dashboard.Type).Ref("reports").Field("dashboard_id").Unique().Required(),
	}
}

func (Report) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("dashboard_id").StorageKey("reports_dashboard_id_idx"),
	}
}
