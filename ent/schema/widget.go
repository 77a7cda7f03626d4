package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/google/uuid"
)

// Widget is one visualisation on a dashboard.
type Widget struct{ ent.Schema }

func (Widget) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

// Policy is a fail-closed backstop behind the services' authorization (privacy.go).
func (Widget) Policy() ent.Policy { return widgetPolicy() }

func (Widget) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("dashboard_id", uuid.UUID{}),
		field.String("type").MaxRuneLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.JSON("config", map[string]any{}).Default(map[string]any{}).SchemaType(jsonb).Annotations(entsql.Default("{}")),
		field.JSON("position", types.Position{}).SchemaType(jsonb),
	}
}

func (Widget) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("dashboard", Dashboard.Type).Ref("widgets").Field("dashboard_id").Unique().Required(),
	}
}

func (Widget) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("dashboard_id").StorageKey("widgets_dashboard_id_idx"),
	}
}
