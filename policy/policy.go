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

// Object kinds. Every kind whose objects have an owner is indexed by Facts
// (SetOwner/Forget) without code of its own; see kindRules for how a kind's
// objects are read.
const (
	KindDashboard  = "dashboard"
	KindDataSource = "datasource"
	KindQuery      = "query"
	KindModel      = "model"
	KindAlert      = "alert"
	KindReport     = "report"
	KindWorkflow   = "workflow"
	KindPost       = "post"
	KindComment    = "comment"
)

// kindRule says how the objects of a kind are read.
type kindRule struct {
	// noun names an object of the kind in messages ("dashboard not found").
	noun string
	// read is the action a caller must be allowed on an object to know it
	// exists; refused, the object answers "not found".
	read Action
	// roleWide: a role granting read reaches every existing object of the
	// kind, not only the ones the caller owns (or that are shared).
	roleWide bool
}

// kindRules of the kinds that differ from the default: a kind not listed
// here is read by its owner and admins only (read action "<kind>:read", which
// no role grants) and called by its kind name. Data sources have no owners:
// services decide them on the collection.
var kindRules = map[string]kindRule{
	KindDashboard:  {noun: "dashboard", read: DashboardsRead},
	KindDataSource: {noun: "data source", read: DataSourcesUse},
	KindQuery:      {noun: "query", read: QueriesRead},
	KindModel:      {noun: "data model", read: ModelsUse, roleWide: true},
}

func ruleOf(kind string) kindRule {
	if r, ok := kindRules[kind]; ok {
		return r
	}
	return kindRule{noun: kind, read: Action(kind + ":read")}
}

// ReadAction is the action that reveals an object of kind.
func ReadAction(kind string) Action { return ruleOf(kind).read }

// Object is what an action is done to. A zero ID means the collection of
// that kind (e.g. creating a dashboard).
type Object struct {
	Kind string
	ID   uuid.UUID
}

// Of names one object of a kind.
func Of(kind string, id uuid.UUID) Object { return Object{Kind: kind, ID: id} }

// Dashboard names one dashboard; Dashboards names the collection.
func Dashboard(id uuid.UUID) Object { return Object{Kind: KindDashboard, ID: id} }

// Dashboards is the collection of dashboards.
var Dashboards = Object{Kind: KindDashboard}

// DataSources is the collection of data sources: they are managed and used
// by role (datasources:manage, queries:run), not shared one by one.
var DataSources = Object{Kind: KindDataSource}

// Query names one saved query.
func Query(id uuid.UUID) Object { return Object{Kind: KindQuery, ID: id} }

// Queries is the collection of saved queries.
var Queries = Object{Kind: KindQuery}

// Model names one data model.
func Model(id uuid.UUID) Object { return Object{Kind: KindModel, ID: id} }

// Models is the collection of semantic data models: managed by role
// (models:manage) and used by whoever may run queries (queries:run).
var Models = Object{Kind: KindModel}

// Alert names one alert: read, changed and deleted by its owner (or an
// admin); another user's alert is "not found".
func Alert(id uuid.UUID) Object { return Object{Kind: KindAlert, ID: id} }

// Alerts is the collection of alerts (alerts:manage to create).
var Alerts = Object{Kind: KindAlert}

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
		return ok && roleAllows(facts, s.UserID, act(args[1])), nil
	})
	ce.AddFunction("isCollection", func(args ...any) (any, error) {
		o, ok := obj(args[0])
		return ok && o.ID == uuid.Nil, nil
	})
	// objectAllows: what the role allows reaches this one object, through a
	// share (dashboards) or because the kind is role-wide for act (models).
	ce.AddFunction("objectAllows", func(args ...any) (any, error) {
		s, ok1 := sub(args[0])
		o, ok2 := obj(args[1])
		if !ok1 || !ok2 || o.ID == uuid.Nil {
			return false, nil
		}
		a := act(args[2])
		if o.Kind == KindDashboard {
			return shareAllows(facts.ShareLevel(o.Kind, o.ID, s.UserID), a), nil
		}
		r := ruleOf(o.Kind)
		return r.roleWide && r.read == a && facts.Exists(o.Kind, o.ID), nil
	})
	return &Enforcer{e: ce, facts: facts}, nil
}

// Facts returns the facts the enforcer reads.
func (e *Enforcer) Facts() *Facts { return e.facts }

// Can reports whether sub may do act on obj. Errors (a broken model) deny.
// Services authorize their caller with Require, which also says why not;
// Can is for questions about another subject (a dashboard owner vouching for
// a widget's source) and for the scopes of SQL-filtered lists.
func (e *Enforcer) Can(_ context.Context, sub Subject, obj Object, act Action) bool {
	ok, err := e.e.Enforce(&sub, &obj, string(act))
	return err == nil && ok
}

// roleAllows: a role grants act, or one of the actions act is composed of.
func roleAllows(f *Facts, user uuid.UUID, act Action) bool {
	if alts, ok := anyOf[act]; ok {
		for _, a := range alts {
			if f.RoleAllows(user, a) {
				return true
			}
		}
		return false
	}
	return f.RoleAllows(user, act)
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
