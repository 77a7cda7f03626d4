// Package policy holds DataPulse's authorization vocabulary: the actions a
// role can grant. Every place that accepts an action name checks it here.
package policy

import "slices"

// Action is a permission a role grants, "<resource>:<verb>".
type Action string

// Every action known to DataPulse. Roles may only list these.
const (
	DashboardsCreate  Action = "dashboards:create"
	DashboardsRead    Action = "dashboards:read"
	DashboardsEdit    Action = "dashboards:edit"
	DashboardsDelete  Action = "dashboards:delete"
	DashboardsShare   Action = "dashboards:share"
	DatasourcesManage Action = "datasources:manage"
	QueriesCreate     Action = "queries:create"
	QueriesRun        Action = "queries:run"
	ModelsManage      Action = "models:manage"
	AlertsManage      Action = "alerts:manage"
	ReportsManage     Action = "reports:manage"
	WorkflowsRequest  Action = "workflows:request"
	WorkflowsApprove  Action = "workflows:approve"
	ContentWrite      Action = "content:write"
	ContentModerate   Action = "content:moderate"
	UsersManage       Action = "users:manage"
)

// Actions no role grants: they are asked about one object, and only its
// owner (or an admin) is allowed them. They are not in Actions, so the roles
// API refuses them.
const (
	QueriesRead   Action = "queries:read"
	QueriesEdit   Action = "queries:edit"
	QueriesDelete Action = "queries:delete"
)

// Actions granted by holding any one of several role actions (see anyOf).
// Their names do not end in ":read", so a read-only token is refused them,
// as it is refused the actions that grant them.
const (
	// ModelsUse reads and queries data models: queries:run or models:manage.
	ModelsUse Action = "models:use"
	// DataSourcesUse reads data sources: queries:run or datasources:manage.
	DataSourcesUse Action = "datasources:use"
)

// anyOf lists the role actions that grant each composite action.
var anyOf = map[Action][]Action{
	ModelsUse:      {QueriesRun, ModelsManage},
	DataSourcesUse: {QueriesRun, DatasourcesManage},
}

// Actions lists every action, sorted.
var Actions = func() []Action {
	a := []Action{DashboardsCreate, DashboardsRead, DashboardsEdit, DashboardsDelete, DashboardsShare,
		DatasourcesManage, QueriesCreate, QueriesRun, ModelsManage, AlertsManage, ReportsManage,
		WorkflowsRequest, WorkflowsApprove, ContentWrite, ContentModerate, UsersManage}
	slices.Sort(a)
	return a
}()

// Valid reports whether a is a known action.
func Valid(a string) bool {
	_, found := slices.BinarySearch(Actions, Action(a))
	return found
}
