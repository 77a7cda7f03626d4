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

// Dashboard is a named board of widgets owned by one user.
type Dashboard struct{ ent.Schema }

func (Dashboard) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

// Policy is a fail-closed backstop behind the services' authorization (privacy.go).
func (Dashboard) Policy() ent.Policy { return dashboardPolicy() }

func (Dashboard) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("owner_id", uuid.UUID{}),
		field.String("name").MaxRuneLen(255).SchemaType(varchar(255)).NotEmpty(),
		field.Text("description").Optional().Nillable(),
		// Filters declared on the dashboard; values come with each render.
		field.JSON("filters", []types.DashboardFilter{}).Default([]types.DashboardFilter{}).SchemaType(jsonb).
			Annotations(entsql.Default("[]")),
		// Seconds a result stays cached; NULL inherits, 0 never caches.
		field.Int("cache_ttl_seconds").Optional().Nillable().Min(0),
	}
}

func (Dashboard) Edges() []ent.Edge {
	cascade := entsql.OnDelete(entsql.Cascade)
	return []ent.Edge{
		edge.From("owner", User.Type).Ref("dashboards").Field("owner_id").Unique().Required(),
		edge.To("widgets", Widget.Type).Annotations(cascade),
		edge.To("reports", Report.Type).Annotations(cascade),
		edge.To("shared_with", User.Type).Through("dashboard_shares", DashboardShare.Type),
	}
}

func (Dashboard) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("owner_id").StorageKey("dashboards_owner_id_idx"),
		// Lists are newest first: the first page is read off this index.
		index.Fields("updated_at", "id").StorageKey("dashboards_updated_at_idx"),
	}
}
