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

// DashboardShare grants one user a permission level on one dashboard.
type DashboardShare struct{ ent.Schema }

func (DashboardShare) Annotations() []schema.Annotation {
	return []schema.Annotation{
		// Enums are plain text columns: the database enforces their values too.
		entsql.Checks(map[string]string{
			"dashboard_shares_permission_level_check": "permission_level IN ('view', 'edit')",
		}),
		field.ID("dashboard_id", "user_id")}
}

// Policy is a fail-closed backstop behind the services' authorization (privacy.go).
func (DashboardShare) Policy() ent.Policy { return dashboardSharePolicy() }

func (DashboardShare) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("dashboard_id", uuid.UUID{}),
		field.UUID("user_id", uuid.UUID{}),
		field.Enum("permission_level").Values("view", "edit").Default("view").SchemaType(varchar(20)),
		field.Time("shared_at").Default(Now).Immutable().Annotations(nowDefault),
	}
}

func (DashboardShare) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("dashboard", Dashboard.Type).Field("dashboard_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("user", User.Type).Field("user_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

func (DashboardShare) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id").StorageKey("dashboard_shares_user_id_idx"),
	}
}
