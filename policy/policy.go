package policy

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/google/uuid"
)

//go:embed model.conf
var modelText string

// Subject is who asks: a user, possibly through an API token whose scopes
// narrow what the user may do.
type Subject struct {
	UserID uuid.UUID
	// Scopes of the API token used; empty for interactive sessions (all of
	// the user's rights). "read" allows only :read actions.
	Scopes []string
	// System marks in-process administrative callers (CLI, bootstrap).
	System bool
}

// Object kinds.
const (
	KindDashboard  = "dashboard"
	KindDataSource = "datasource"
	KindQuery      = "query"
	KindModel      = "model"
)

// Object is what an action is done to. A zero ID means the collection of
// that kind (e.g. creating a dashboard).
type Object struct {
	Kind string
	ID   uuid.UUID
}

// Dashboard names one dashboard; Dashboards names the collection.
func Dashboard(id uuid.UUID) Object { return Object{Kind: KindDashboard, ID: id} }

// Dashboards is the collection of dashboards.
var Dashboards = Object{Kind: KindDashboard}

// DataSources is the collection of data sources: they are managed and used
// by role (datasources:manage, queries:run), not shared one by one.
var DataSources = Object{Kind: KindDataSource}

// Queries is the collection of saved queries.
var Queries = Object{Kind: KindQuery}

// Models is the collection of semantic data models: managed by role
// (models:manage) and used by whoever may run queries (queries:run).
var Models = Object{Kind: KindModel}

// Enforcer answers every authorization question of DataPulse.
type Enforcer struct {
	e     *casbin.Enforcer
	facts *Facts
}

// NewEnforcer builds the casbin enforcer over facts.
func NewEnforcer(facts *Facts) (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy: model: %w", err)
	}
	ce, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("policy: enforcer: %w", err)
	}
	ce.EnableLog(false)
	ce.EnableAutoSave(false)
	sub := func(v any) (*Subject, bool) { s, ok := v.(*Subject); return s, ok && s != nil }
	obj := func(v any) (*Object, bool) { o, ok := v.(*Object); return o, ok && o != nil }
	act := func(v any) Action { s, _ := v.(string); return Action(s) }
	ce.AddFunction("scopeAllows", func(args ...any) (any, error) {
		s, ok := sub(args[0])
		return ok && scopeAllows(s.Scopes, act(args[1])), nil
	})
	ce.AddFunction("isAdmin", func(args ...any) (any, error) {
		s, ok := sub(args[0])
		return ok && (s.System || facts.IsAdmin(s.UserID)), nil
	})
	ce.AddFunction("isOwner", func(args ...any) (any, error) {
		s, ok1 := sub(args[0])
		o, ok2 := obj(args[1])
		return ok1 && ok2 && o.ID != uuid.Nil && facts.IsOwner(o.Kind, o.ID, s.UserID), nil
	})
	ce.AddFunction("roleAllows", func(args ...any) (any, error) {
		s, ok := sub(args[0])
		return ok && facts.RoleAllows(s.UserID, act(args[1])), nil
	})
	ce.AddFunction("isCollection", func(args ...any) (any, error) {
		o, ok := obj(args[0])
		return ok && o.ID == uuid.Nil, nil
	})
	ce.AddFunction("shareAllows", func(args ...any) (any, error) {
		s, ok1 := sub(args[0])
		o, ok2 := obj(args[1])
		if !ok1 || !ok2 || o.ID == uuid.Nil {
			return false, nil
		}
		return shareAllows(facts.ShareLevel(o.Kind, o.ID, s.UserID), act(args[2])), nil
	})
	return &Enforcer{e: ce, facts: facts}, nil
}

// Facts returns the facts the enforcer reads.
func (e *Enforcer) Facts() *Facts { return e.facts }

// Can reports whether sub may do act on obj. Errors (a broken model) deny.
func (e *Enforcer) Can(_ context.Context, sub Subject, obj Object, act Action) bool {
	ok, err := e.e.Enforce(&sub, &obj, string(act))
	return err == nil && ok
}

// scopeAllows: an API token scoped to "read" may only read.
func scopeAllows(scopes []string, act Action) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, s := range scopes {
		if s == "write" {
			return true
		}
	}
	return strings.HasSuffix(string(act), ":read")
}

// Share levels, ordered: each includes the ones before it.
type Level int

const (
	LevelNone Level = iota
	LevelView
	LevelEdit
)

// ParseLevel reads dashboard_shares.permission_level.
func ParseLevel(s string) Level {
	switch s {
	case "view":
		return LevelView
	case "edit":
		return LevelEdit
	}
	return LevelNone
}

func (l Level) String() string {
	return [...]string{"none", "view", "edit"}[l]
}

// shareAllows: view grants read; edit grants read and edit. Deleting and
// sharing stay with owners and admins.
func shareAllows(l Level, act Action) bool {
	switch act {
	case DashboardsRead:
		return l >= LevelView
	case DashboardsEdit:
		return l >= LevelEdit
	}
	return false
}
