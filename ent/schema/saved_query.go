package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/datapulse/datapulse/ent/schema/types"
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
		field.String("name").MaxRuneLen(255).SchemaType(varchar(255)).NotEmpty(),
		field.Text("sql").NotEmpty(),
		field.Text("description").Optional().Nillable(),
		// The data source the query runs on; NULL once that source is deleted.
		field.UUID("data_source_id", uuid.UUID{}).Optional().Nillable(),
		// Typed declarations of the {{name}} placeholders in sql.
		field.JSON("parameters", []types.QueryParameter{}).Default([]types.QueryParameter{}).SchemaType(jsonb).
			Annotations(entsql.Default("[]")),
		// Seconds a result stays cached; NULL inherits, 0 never caches.
		field.Int("cache_ttl_seconds").Optional().Nillable().Min(0),
	}
}

func (SavedQuery) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("queries").Field("user_id").Unique().Required(),
		edge.From("data_source", DataSource.Type).Ref("queries").Field("data_source_id").Unique(),
	}
}

func (SavedQuery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").StorageKey("queries_user_id_idx"),
		index.Fields("data_source_id").StorageKey("queries_data_source_id_idx"),
	}
}
