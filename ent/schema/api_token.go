package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// APIToken is a personal access token for REST clients. Only its SHA-256 is
// stored; the token itself is shown once, at creation.
type APIToken struct{ ent.Schema }

func (APIToken) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, CreatedMixin{}} }

func (APIToken) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}).Immutable(),
		field.String("name").MaxRuneLen(100).SchemaType(varchar(100)).NotEmpty(),
		field.String("token_hash").MaxRuneLen(64).SchemaType(varchar(64)).NotEmpty().Sensitive().Immutable(),
		// The first characters of the token, so a user can tell tokens apart.
		field.String("prefix").MaxRuneLen(16).SchemaType(varchar(16)).Immutable(),
		field.Strings("scopes").Default([]string{}).SchemaType(jsonb).Annotations(entsql.Default("[]")),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("last_used_at").Optional().Nillable(),
	}
}

func (APIToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("api_tokens").Field("user_id").Unique().Required().Immutable(),
	}
}

func (APIToken) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("token_hash").Unique().StorageKey("api_tokens_token_hash_idx"),
		index.Fields("user_id").StorageKey("api_tokens_user_id_idx"),
	}
}
