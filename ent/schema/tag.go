package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Tag labels posts.
type Tag struct{ ent.Schema }

func (Tag) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, CreatedMixin{}} }

func (Tag) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxRuneLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.String("slug").MaxRuneLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.String("color").MaxRuneLen(7).SchemaType(varchar(7)).Optional().Nillable().Default("#000000"),
	}
}

func (Tag) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("posts", Post.Type).Ref("tags").Through("post_tags", PostTag.Type),
	}
}

func (Tag) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("name").Unique().StorageKey("tags_name_idx"),
		index.Fields("slug").Unique().StorageKey("tags_slug_idx"),
	}
}
