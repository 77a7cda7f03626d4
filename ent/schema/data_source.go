package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
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
		field.String("name").MaxLen(100).SchemaType(varchar(100)).NotEmpty(),
		// The connector's name, e.g. "postgres".
		field.String("type").MaxLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.JSON("config", map[string]any{}).Default(map[string]any{}).SchemaType(jsonb).Annotations(entsql.Default("{}")),
		field.Enum("status").Values("pending", "connected", "error", "disabled").Default("pending"),
		field.Time("last_sync").Optional().Nillable(),
	}
}

func (DataSource) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("type").StorageKey("data_sources_type_idx"),
	}
}
