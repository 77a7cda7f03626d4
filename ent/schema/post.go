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

// Post is a piece of written content (annotations, announcements).
type Post struct{ ent.Schema }

func (Post) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Post) Annotations() []schema.Annotation {
	// Enums are plain text columns: the database enforces their values too.
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"posts_status_check": "status IN ('draft', 'published', 'archived')",
		}),
	}
}

func (Post) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}),
		field.String("title").MaxRuneLen(255).SchemaType(varchar(255)).NotEmpty(),
		field.Text("content"),
		field.Enum("status").Values("draft", "published", "archived").Default("draft"),
		field.Time("published_at").Optional().Nillable(),
	}
}

func (Post) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("posts").Field("user_id").Unique().Required(),
		edge.To("comments", Comment.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("tags", Tag.Type).Through("post_tags", PostTag.Type),
	}
}

func (Post) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").StorageKey("posts_user_id_idx"),
		index.Fields("status").StorageKey("posts_status_idx"),
		index.Fields("published_at").StorageKey("posts_published_at_idx"),
	}
}
