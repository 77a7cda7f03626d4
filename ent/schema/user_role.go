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

// UserRole is the users ↔ roles junction, keyed by (user_id, role_id).
type UserRole struct{ ent.Schema }

func (UserRole) Annotations() []schema.Annotation {
	return []schema.Annotation{field.ID("user_id", "role_id")}
}

func (UserRole) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}),
		field.UUID("role_id", uuid.UUID{}),
		field.Time("assigned_at").Default(Now).Immutable().Annotations(nowDefault),
		field.UUID("assigned_by", uuid.UUID{}).Optional().Nillable(),
	}
}

func (UserRole) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("user", User.Type).Field("user_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("role", Role.Type).Field("role_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
		// Who assigned the role; kept as NULL when that user is deleted.
		edge.To("assigner", User.Type).Field("assigned_by").Unique().
			Annotations(entsql.OnDelete(entsql.SetNull)),
	}
}

func (UserRole) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("role_id").StorageKey("user_roles_role_id_idx"),
		index.Fields("assigned_by").StorageKey("user_roles_assigned_by_idx"),
	}
}
