package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Role is a named set of permissions (actions such as "dashboards:create").
type Role struct{ ent.Schema }

func (Role) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, CreatedMixin{}} }

func (Role) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxRuneLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.Text("description").Optional().Nillable(),
		field.Strings("permissions").Default([]string{}).SchemaType(jsonb).Annotations(entsql.Default("[]")),
	}
}

func (Role) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("users", User.Type).Ref("roles").Through("user_roles", UserRole.Type),
	}
}

func (Role) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("name").Unique().StorageKey("roles_name_idx"),
	}
}
