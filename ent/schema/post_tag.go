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

// PostTag is the posts ↔ tags junction, keyed by (post_id, tag_id).
type PostTag struct{ ent.Schema }

func (PostTag) Annotations() []schema.Annotation {
	return []schema.Annotation{field.ID("post_id", "tag_id")}
}

func (PostTag) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("post_id", uuid.UUID{}),
		field.UUID("tag_id", uuid.UUID{}),
		field.Time("created_at").Default(Now).Immutable().Annotations(nowDefault),
	}
}

func (PostTag) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("post", Post.Type).Field("post_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("tag", Tag.Type).Field("tag_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (PostTag) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tag_id").StorageKey("post_tags_tag_id_idx"),
	}
}
