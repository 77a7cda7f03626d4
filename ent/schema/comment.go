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

// Comment is a user's reply to a post.
type Comment struct{ ent.Schema }

func (Comment) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Comment) Annotations() []schema.Annotation {
	// Enums are plain text columns: the database enforces their values too.
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"comments_status_check": "status IN ('active', 'hidden', 'deleted')",
		}),
	}
}

func (Comment) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("post_id", uuid.UUID{}),
		field.UUID("user_id", uuid.UUID{}),
		field.Text("content"),
		field.Enum("status").Values("active", "hidden", "deleted").Default("active"),
	}
}

func (Comment) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("post", Post.Type).Ref("comments").Field("post_id").Unique().Required(),
		edge.From("user", User.Type).Ref("comments").Field("user_id").Unique().Required(),
	}
}

func (Comment) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("post_id").StorageKey("comments_post_id_idx"),
		index.Fields("user_id").StorageKey("comments_user_id_idx"),
		index.Fields("post_id", "user_id").StorageKey("comments_post_user_idx"),
	}
}
