package policy

import "github.com/google/uuid"

// Built-in role names. Their rows are seeded by a migration so user_roles can
// reference them; their permissions are editable like any role's.
const (
	RoleAdmin  = "admin"
	RoleEditor = "editor"
	RoleViewer = "viewer"
)

// BuiltinRole is a role every installation starts with.
type BuiltinRole struct {
	ID          uuid.UUID
	Name        string
	Description string
	Permissions []Action
}

// BuiltinRoles are seeded by migration 20261127091400_builtin_roles. Holding
// the admin role grants every action; it does not make a user an instance
// administrator (users.role = admin does).
var BuiltinRoles = []BuiltinRole{
	{ID: uuid.MustParse("01930000-0000-7000-8000-000000000001"), Name: RoleAdmin,
		Description: "Every action", Permissions: Actions},
	{ID: uuid.MustParse("01930000-0000-7000-8000-000000000002"), Name: RoleEditor,
		Description: "Creates and edits dashboards, queries, models, alerts and reports; runs queries",
		Permissions: []Action{AlertsManage, ContentWrite, DashboardsCreate, DashboardsDelete, DashboardsEdit,
			DashboardsRead, DashboardsShare, ModelsManage, QueriesCreate, QueriesRun, ReportsManage, WorkflowsRequest}},
	{ID: uuid.MustParse("01930000-0000-7000-8000-000000000003"), Name: RoleViewer,
		Description: "Sees what is shared with them", Permissions: []Action{DashboardsRead}},
}
