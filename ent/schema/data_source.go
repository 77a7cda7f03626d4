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

// DataSource is a connection to an external database through a connector.
type DataSource struct{ ent.Schema }

func (DataSource) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (DataSource) Annotations() []schema.Annotation {
	// Enums are plain text columns: the database enforces their values too.
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"data_sources_status_check": "status IN ('pending', 'connected', 'error', 'disabled')",
		}),
	}
}

func (DataSource) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxRuneLen(100).SchemaType(varchar(100)).NotEmpty(),
		// The connector's name, e.g. "postgres".
		field.String("type").MaxRuneLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.JSON("config", map[string]any{}).Default(map[string]any{}).SchemaType(jsonb).Annotations(entsql.Default("{}")),
		field.Enum("status").Values("pending", "connected", "error", "disabled").Default("pending"),
		field.Time("last_sync").Optional().Nillable(),
		// Secret configuration fields, each sealed with AES-256-GCM and bound
		// to this row and field (core/secrets). Never returned by the API.
		field.JSON("secrets", map[string]string{}).Default(map[string]string{}).SchemaType(jsonb).
			Annotations(entsql.Default("{}")).Sensitive(),
		// Bumped on every change: connectors key their connection caches on it.
		field.Int64("config_version").Default(1),
		// The last health check's failure, if it failed.
		field.Text("last_error").Optional().Nillable(),
		field.UUID("created_by", uuid.UUID{}).Optional().Nillable(),
		// Seconds a result stays cached; NULL inherits, 0 never caches.
		field.Int("cache_ttl_seconds").Optional().Nillable().Min(0),
	}
}

func (DataSource) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("creator", User.Type).Ref("data_sources").Field("created_by").Unique(),
		edge.To("queries", SavedQuery.Type).Annotations(entsql.OnDelete(entsql.SetNull)),
	}
}

func (DataSource) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("type").StorageKey("data_sources_type_idx"),
		index.Fields("name").Unique().StorageKey("data_sources_name_idx"),
		index.Fields("created_by").StorageKey("data_sources_created_by_idx"),
	}
}
