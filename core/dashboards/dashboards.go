// Package dashboards holds dashboards, their widgets and their shares. Every
// method authorizes its caller against the object it touches through the
// policy enforcer; lists are filtered in SQL by the same rules.
package dashboards

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/dashboard"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/predicate"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/ent/widget"
	"github.com/datapulse/datapulse/policy"
)

// Service is the dashboards domain.
type Service struct {
	db  *ent.Client
	pol *policy.Enforcer
	log *slog.Logger
}

// New returns the dashboards service.
func New(db *ent.Client, pol *policy.Enforcer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, pol: pol, log: log}
}

// Dashboard as the API shows it.
type Dashboard struct {
	ID          uuid.UUID `json:"id"`
	OwnerID     uuid.UUID `json:"owner_id"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	// Permission is the caller's access: owner, admin, edit or view.
	Permission string    `json:"permission" enum:"owner,admin,edit,view"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Widgets    []Widget  `json:"widgets,omitempty"`
}

// Widget is one visualisation on a dashboard.
type Widget struct {
	ID          uuid.UUID      `json:"id"`
	DashboardID uuid.UUID      `json:"dashboard_id"`
	Type        string         `json:"type"`
	Config      map[string]any `json:"config"`
	Position    types.Position `json:"position"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

func toWidget(w *ent.Widget) Widget {
	cfg := w.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	return Widget{ID: w.ID, DashboardID: w.DashboardID, Type: w.Type, Config: cfg, Position: w.Position, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

// subject returns the caller as the policy sees it.
func subject(ctx context.Context) (policy.Subject, *identity.Principal, error) {
	p, ok := identity.PrincipalFrom(ctx)
	if !ok {
		return policy.Subject{}, nil, errs.Unauthenticated("authentication required")
	}
	return policy.Subject{UserID: p.UserID, Scopes: p.Scopes, System: p.System}, p, nil
}

func (s *Service) permission(sub policy.Subject, d *ent.Dashboard) string {
	switch {
	case d.OwnerID == sub.UserID:
		return "owner"
	case s.pol.Facts().IsAdmin(sub.UserID) || sub.System:
		return "admin"
	}
	return s.pol.Facts().ShareLevel(policy.KindDashboard, d.ID, sub.UserID).String()
}

func (s *Service) toDashboard(sub policy.Subject, d *ent.Dashboard) Dashboard {
	out := Dashboard{ID: d.ID, OwnerID: d.OwnerID, Name: d.Name, Description: d.Description,
		Permission: s.permission(sub, d), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.Edges.Widgets != nil {
		out.Widgets = make([]Widget, len(d.Edges.Widgets))
		for i, w := range d.Edges.Widgets {
			out.Widgets[i] = toWidget(w)
		}
	}
	return out
}

// authorize loads a dashboard the caller may act on. A dashboard the caller
// cannot even read is "not found": its existence is not revealed.
func (s *Service) authorize(ctx context.Context, id uuid.UUID, act policy.Action) (policy.Subject, *ent.Dashboard, error) {
	sub, _, err := subject(ctx)
	if err != nil {
		return sub, nil, err
	}
	obj := policy.Dashboard(id)
	if !s.pol.Can(ctx, sub, obj, policy.DashboardsRead) {
		return sub, nil, errs.NotFound("dashboard")
	}
	if act != policy.DashboardsRead && !s.pol.Can(ctx, sub, obj, act) {
		return sub, nil, errs.Forbidden("you may not " + verb(act) + " this dashboard")
	}
	d, err := s.db.Dashboard.Get(ctx, id)
	if err != nil {
		return sub, nil, notFound(err, "dashboard")
	}
	return sub, d, nil
}

func verb(a policy.Action) string {
	_, v, _ := strings.Cut(string(a), ":")
	return v
}

func notFound(err error, what string) error {
	if ent.IsNotFound(err) {
		return errs.NotFound(what)
	}
	return err
}

// Input creates or changes a dashboard; nil fields stay as they are on update.
type Input struct {
	Name        *string
	Description *string
}

func checkName(v *string, required bool) (string, error) {
	if v == nil {
		if required {
			return "", errs.Invalid("name", "name is required")
		}
		return "", nil
	}
	n := strings.TrimSpace(*v)
	switch {
	case n == "":
		return "", errs.Invalid("name", "name must not be empty")
	case len([]rune(n)) > 255:
		return "", errs.Invalid("name", "name must be at most 255 characters")
	case strings.ContainsAny(n, "\x00\r\n"):
		return "", errs.Invalid("name", "name must be one line of text")
	}
	return n, nil
}

func checkDescription(v *string) error {
	if v != nil && (len(*v) > 10_000 || strings.ContainsRune(*v, 0)) {
		return errs.Invalid("description", "description must be at most 10000 bytes of text")
	}
	return nil
}

// Create makes a dashboard owned by the caller.
func (s *Service) Create(ctx context.Context, in Input) (Dashboard, error) {
	sub, _, err := subject(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	if !s.pol.Can(ctx, sub, policy.Dashboards, policy.DashboardsCreate) {
		return Dashboard{}, errs.Forbidden("your role may not create dashboards")
	}
	name, err := checkName(in.Name, true)
	if err != nil {
		return Dashboard{}, err
	}
	if err := checkDescription(in.Description); err != nil {
		return Dashboard{}, err
	}
	d, err := s.db.Dashboard.Create().SetOwnerID(sub.UserID).SetName(name).SetNillableDescription(in.Description).Save(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	s.pol.Facts().SetOwner(d.ID, d.OwnerID)
	return s.toDashboard(sub, d), nil
}

// Filter narrows a dashboard list.
type Filter struct {
	Q            string
	Owned        bool
	SharedWithMe bool
}

// visible is the SQL form of "may read": the same rules the enforcer applies,
// so a list never needs a decision per row.
func (s *Service) visible(sub policy.Subject, f Filter) predicate.Dashboard {
	owned := dashboard.OwnerID(sub.UserID)
	shared := dashboard.HasDashboardSharesWith(dashboardshare.UserID(sub.UserID))
	// On the collection, read is decided by the role (and token scope).
	canReadShared := s.pol.Can(context.Background(), sub, policy.Dashboards, policy.DashboardsRead)
	admin := sub.System || s.pol.Facts().IsAdmin(sub.UserID)
	switch {
	case f.Owned && f.SharedWithMe:
		if canReadShared || admin {
			return dashboard.Or(owned, shared)
		}
		return owned
	case f.Owned:
		return owned
	case f.SharedWithMe:
		if !canReadShared && !admin {
			return dashboard.IDIn() // nothing
		}
		return dashboard.And(shared, dashboard.OwnerIDNEQ(sub.UserID))
	case admin:
		return dashboard.Or() // every dashboard
	case canReadShared:
		return dashboard.Or(owned, shared)
	}
	return owned
}

// List returns the dashboards the caller may read.
func (s *Service) List(ctx context.Context, f Filter, p paging.Params) (paging.Page[Dashboard], error) {
	var page paging.Page[Dashboard]
	sub, _, err := subject(ctx)
	if err != nil {
		return page, err
	}
	p, err = p.Normalize()
	if err != nil {
		return page, err
	}
	field, desc, err := p.SortField("-updated_at", "name", "created_at", "updated_at")
	if err != nil {
		return page, err
	}
	preds := []predicate.Dashboard{}
	if v := s.visible(sub, f); v != nil {
		preds = append(preds, v)
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		if len(q) > 255 {
			return page, errs.Invalid("q", "q must be at most 255 characters")
		}
		preds = append(preds, dashboard.NameContainsFold(q))
	}
	query := s.db.Dashboard.Query().Where(preds...)
	order := ent.Asc(field)
	if desc {
		order = ent.Desc(field)
	}
	return paging.Collect(ctx, p, query.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.Dashboard, error) {
			return query.Order(order, ent.Desc(dashboard.FieldID)).Offset(off).Limit(n).All(ctx)
		}, func(d *ent.Dashboard) Dashboard { return s.toDashboard(sub, d) })
}

// Get returns a dashboard with its widgets.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Dashboard, error) {
	sub, _, err := s.authorize(ctx, id, policy.DashboardsRead)
	if err != nil {
		return Dashboard{}, err
	}
	d, err := s.db.Dashboard.Query().Where(dashboard.ID(id)).
		WithWidgets(func(q *ent.WidgetQuery) {
			q.Order(ent.Asc(widget.FieldCreatedAt), ent.Asc(widget.FieldID))
		}).Only(ctx)
	if err != nil {
		return Dashboard{}, notFound(err, "dashboard")
	}
	out := s.toDashboard(sub, d)
	if out.Widgets == nil {
		out.Widgets = []Widget{}
	}
	return out, nil
}

// Update changes a dashboard's name or description.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in Input) (Dashboard, error) {
	sub, d, err := s.authorize(ctx, id, policy.DashboardsEdit)
	if err != nil {
		return Dashboard{}, err
	}
	up := s.db.Dashboard.UpdateOne(d)
	if in.Name != nil {
		name, err := checkName(in.Name, true)
		if err != nil {
			return Dashboard{}, err
		}
		up.SetName(name)
	}
	if in.Description != nil {
		if err := checkDescription(in.Description); err != nil {
			return Dashboard{}, err
		}
		if *in.Description == "" {
			up.ClearDescription()
		} else {
			up.SetDescription(*in.Description)
		}
	}
	d, err = up.Save(ctx)
	if err != nil {
		return Dashboard{}, notFound(err, "dashboard")
	}
	return s.toDashboard(sub, d), nil
}

// Delete removes a dashboard with its widgets, shares and reports.
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	if _, _, err := s.authorize(ctx, id, policy.DashboardsDelete); err != nil {
		return err
	}
	if err := s.db.Dashboard.DeleteOneID(id).Exec(ctx); err != nil {
		return notFound(err, "dashboard")
	}
	s.pol.Facts().RemoveDashboard(id)
	return nil
}

// Duplicate copies a dashboard the caller can read, with its widgets, into a
// new dashboard the caller owns. Shares are not copied.
func (s *Service) Duplicate(ctx context.Context, id uuid.UUID, name *string) (Dashboard, error) {
	src, err := s.Get(ctx, id)
	if err != nil {
		return Dashboard{}, err
	}
	n := "Copy of " + src.Name
	if name != nil {
		n = *name
	}
	if len([]rune(n)) > 255 {
		n = string([]rune(n)[:255])
	}
	return s.createWith(ctx, Input{Name: &n, Description: src.Description}, src.Widgets)
}

// createWith creates a dashboard and its widgets in one transaction.
func (s *Service) createWith(ctx context.Context, in Input, widgets []Widget) (Dashboard, error) {
	sub, _, err := subject(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	if !s.pol.Can(ctx, sub, policy.Dashboards, policy.DashboardsCreate) {
		return Dashboard{}, errs.Forbidden("your role may not create dashboards")
	}
	name, err := checkName(in.Name, true)
	if err != nil {
		return Dashboard{}, err
	}
	if err := checkDescription(in.Description); err != nil {
		return Dashboard{}, err
	}
	if len(widgets) > MaxWidgetsPerDashboard {
		return Dashboard{}, errs.Invalid("widgets", "a dashboard holds at most 200 widgets")
	}
	builders := make([]*ent.WidgetCreate, 0, len(widgets))
	tx, err := s.db.Tx(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	d, err := tx.Dashboard.Create().SetOwnerID(sub.UserID).SetName(name).SetNillableDescription(in.Description).Save(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	for i, w := range widgets {
		cfg, err := normalizeConfig(w.Type, w.Config)
		if err != nil {
			return Dashboard{}, prefixField(err, i)
		}
		if err := checkPosition("position", w.Position); err != nil {
			return Dashboard{}, prefixField(err, i)
		}
		builders = append(builders, tx.Widget.Create().SetDashboardID(d.ID).SetType(w.Type).SetConfig(cfg).SetPosition(w.Position))
	}
	ws, err := tx.Widget.CreateBulk(builders...).Save(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	if err := tx.Commit(); err != nil {
		return Dashboard{}, err
	}
	s.pol.Facts().SetOwner(d.ID, d.OwnerID)
	d.Edges.Widgets = ws
	out := s.toDashboard(sub, d)
	if out.Widgets == nil {
		out.Widgets = []Widget{}
	}
	return out, nil
}

func prefixField(err error, i int) error {
	var e *errs.Error
	if errors.As(err, &e) {
		n := strconv.Itoa(i)
		return errs.Invalid("widgets["+n+"]."+e.Field, "widget "+n+": "+e.Message)
	}
	return err
}
