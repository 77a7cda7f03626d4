package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Department groups users. Deleting one leaves its users without a department.
type Department struct{ ent.Schema }

func (Department) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Department) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxRuneLen(100).SchemaType(varchar(100)).NotEmpty(),
		field.Text("description").Optional().Nillable(),
	}
}

func (Department) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("users", User.Type).Annotations(entsql.OnDelete(entsql.SetNull)),
	}
}

func (Department) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("name").Unique().StorageKey("departments_name_idx"),
	}
}
