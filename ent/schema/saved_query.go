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

// SavedQuery is a saved SQL query (table "queries"; ent reserves the name Query).
type SavedQuery struct{ ent.Schema }

func (SavedQuery) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "queries"}}
}

func (SavedQuery) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (SavedQuery) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}),
		field.String("name").MaxLen(255).SchemaType(varchar(255)).NotEmpty(),
		field.Text("sql").NotEmpty(),
	}
}

func (SavedQuery) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("queries").Field("user_id").Unique().Required(),
	}
}

func (SavedQuery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").StorageKey("queries_user_id_idx"),
	}
}
