package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Profile is the 1:1 personal data of a user.
type Profile struct{ ent.Schema }

func (Profile) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Profile) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}).Immutable(),
		field.String("avatar").MaxRuneLen(255).SchemaType(varchar(255)).Optional().Nillable(),
		field.Text("bio").Optional().Nillable(),
		field.String("phone").MaxRuneLen(50).SchemaType(varchar(50)).Optional().Nillable(),
	}
}

func (Profile) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("profiles").Field("user_id").Unique().Required().Immutable(),
	}
}

func (Profile) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").Unique().StorageKey("profiles_user_id_idx"),
	}
}
