package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// DataModel is a semantic model (dimensions, measures) over a data source.
type DataModel struct{ ent.Schema }

func (DataModel) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (DataModel) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}),
		field.String("name").MaxRuneLen(255).SchemaType(varchar(255)).NotEmpty(),
		field.JSON("config", map[string]any{}).Default(map[string]any{}).SchemaType(jsonb).Annotations(entsql.Default("{}")),
	}
}

func (DataModel) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("data_models").Field("user_id").Unique().Required(),
	}
}

func (DataModel) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").StorageKey("data_models_user_id_idx"),
	}
}
