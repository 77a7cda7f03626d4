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

// User is an account. The original design's SERIAL id is replaced by a UUID because every
// foreign key in that design that points here is a UUID (docs/schema.md).
type User struct{ ent.Schema }

func (User) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (User) Annotations() []schema.Annotation {
	// Enums are plain text columns: the database enforces their values too.
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"users_role_check": "role IN ('user', 'admin')",
		}),
	}
}

func (User) Fields() []ent.Field {
	return []ent.Field{
		// Stored lower-cased; uniqueness is therefore case-insensitive.
		field.String("email").MaxRuneLen(255).SchemaType(varchar(255)).NotEmpty(),
		// argon2id PHC string; never serialised.
		field.String("password").MaxRuneLen(255).SchemaType(varchar(255)).NotEmpty().Sensitive(),
		field.String("name").MaxRuneLen(100).SchemaType(varchar(100)).Optional().Nillable(),
		field.Enum("role").Values("user", "admin").Default("user"),
		field.UUID("department_id", uuid.UUID{}).Optional().Nillable(),
		field.Time("email_verified_at").Optional().Nillable(),
	}
}

func (User) Edges() []ent.Edge {
	cascade := entsql.OnDelete(entsql.Cascade)
	return []ent.Edge{
		edge.From("department", Department.Type).Ref("users").Field("department_id").Unique(),
		// 1:1 is enforced by profiles_user_id_idx (UNIQUE), the seed's index;
		// an ent O2O edge would add a second unique index on the same column.
		edge.To("profiles", Profile.Type).Annotations(cascade),
		edge.To("roles", Role.Type).Through("user_roles", UserRole.Type),
		edge.To("dashboards", Dashboard.Type).Annotations(cascade),
		edge.From("shared_dashboards", Dashboard.Type).Ref("shared_with").Through("dashboard_shares", DashboardShare.Type),
		edge.To("alerts", Alert.Type).Annotations(cascade),
		edge.To("alert_notifications", AlertNotification.Type).Annotations(cascade),
		edge.To("queries", SavedQuery.Type).Annotations(cascade),
		edge.To("data_models", DataModel.Type).Annotations(cascade),
		edge.To("requested_workflows", Workflow.Type).Annotations(cascade),
		edge.To("approved_workflows", Workflow.Type).Annotations(entsql.OnDelete(entsql.SetNull)),
		edge.To("posts", Post.Type).Annotations(cascade),
		edge.To("comments", Comment.Type).Annotations(cascade),
		edge.To("sessions", Session.Type).Annotations(cascade),
		edge.To("api_tokens", APIToken.Type).Annotations(cascade),
		edge.To("data_sources", DataSource.Type).Annotations(entsql.OnDelete(entsql.SetNull)),
	}
}

func (User) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("email").Unique().StorageKey("users_email_idx"),
		index.Fields("role").StorageKey("users_role_idx"),
		index.Fields("department_id").StorageKey("users_department_id_idx"),
	}
}
