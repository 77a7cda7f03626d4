// Package dashboards holds dashboards, their widgets and their shares. Every
// method authorizes its caller against the object it touches through the
// policy enforcer; lists are filtered in SQL by the same rules.
package dashboards

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/dashboard"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/predicate"
	"github.com/datapulse/datapulse/ent/privacy"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/ent/widget"
	"github.com/datapulse/datapulse/policy"
)

// Service is the dashboards domain.
type Service struct {
	db  *ent.Client
	pol *policy.Enforcer
	log *slog.Logger
	// sources checks the data widgets name (SetSourceChecker).
	sources SourceChecker
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
	// Filters are declared here and given values when the dashboard renders.
	Filters []types.DashboardFilter `json:"filters"`
	// CacheTTLSeconds overrides the data sources' result cache TTL for this
	// dashboard's widgets.
	CacheTTLSeconds *int `json:"cache_ttl_seconds"`
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
	filters := d.Filters
	if filters == nil {
		filters = []types.DashboardFilter{}
	}
	out := Dashboard{ID: d.ID, OwnerID: d.OwnerID, Name: d.Name, Description: d.Description,
		Filters: filters, CacheTTLSeconds: d.CacheTTLSeconds,
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
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return sub, nil, err
	}
	if err := s.pol.RequireSubject(ctx, sub, policy.Dashboard(id), act); err != nil {
		return sub, nil, err
	}
	d, err := s.db.Dashboard.Get(ctx, id)
	if err != nil {
		return sub, nil, notFound(err, "dashboard")
	}
	return sub, d, nil
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
	Filters     *[]types.DashboardFilter
	// CacheTTLSeconds: -1 clears (the data sources' TTL applies).
	CacheTTLSeconds *int
}

// MaxFilters bounds a dashboard's filters.
const MaxFilters = 20

var filterTypes = map[string]bool{"text": true, "number": true, "date": true, "datetime": true, "boolean": true}

// checkFilters validates filter declarations.
func checkFilters(fs []types.DashboardFilter) error {
	if len(fs) > MaxFilters {
		return errs.Invalid("filters", "a dashboard has at most 20 filters")
	}
	seen := map[string]bool{}
	for i, f := range fs {
		p := "filters[" + strconv.Itoa(i) + "]"
		switch {
		case !isName(f.Name):
			return errs.Invalid(p+".name", "a filter name is a letter or _ then up to 62 letters, digits or _")
		case seen[f.Name]:
			return errs.Invalid(p+".name", "filter "+f.Name+" is declared twice")
		case !filterTypes[f.Type]:
			return errs.Invalid(p+".type", "type must be text, number, date, datetime or boolean")
		case len([]rune(f.Label)) > 255:
			return errs.Invalid(p+".label", "label must be at most 255 characters")
		}
		seen[f.Name] = true
		if f.Default != nil {
			if _, err := FilterValue(f, f.Default); err != nil {
				return errs.Invalid(p+".default", err.Error())
			}
		}
	}
	return nil
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
	if v != nil && (utf8.RuneCountInString(*v) > 10_000 || strings.ContainsRune(*v, 0)) {
		return errs.Invalid("description", "description must be at most 10000 characters of text")
	}
	return nil
}

// Create makes a dashboard owned by the caller.
func (s *Service) Create(ctx context.Context, in Input) (Dashboard, error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	if err := s.pol.RequireSubject(ctx, sub, policy.Dashboards, policy.DashboardsCreate); err != nil {
		return Dashboard{}, err
	}
	name, err := checkName(in.Name, true)
	if err != nil {
		return Dashboard{}, err
	}
	if err := checkDescription(in.Description); err != nil {
		return Dashboard{}, err
	}
	filters, err := inputFilters(in)
	if err != nil {
		return Dashboard{}, err
	}
	d, err := s.db.Dashboard.Create().SetOwnerID(sub.UserID).SetName(name).SetNillableDescription(in.Description).
		SetFilters(filters).SetNillableCacheTTLSeconds(datasources.StoredTTL(in.CacheTTLSeconds)).Save(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	s.pol.Facts().SetOwner(policy.KindDashboard, d.ID, d.OwnerID)
	return s.toDashboard(sub, d), nil
}

// Filter narrows a dashboard list.
type Filter struct {
	Q            string
	Owned        bool
	SharedWithMe bool
}

// sharedIDs is "id IN (dashboards shared with user)", driven by the shares'
// user_id index instead of a correlated lookup per dashboard.
func sharedIDs(user uuid.UUID) *sql.Selector {
	t := sql.Table(dashboardshare.Table)
	return sql.Select(t.C(dashboardshare.FieldDashboardID)).From(t).Where(sql.EQ(t.C(dashboardshare.FieldUserID), user))
}

func ownedIDs(user uuid.UUID) *sql.Selector {
	t := sql.Table(dashboard.Table).As("owned")
	return sql.Select(t.C(dashboard.FieldID)).From(t).Where(sql.EQ(t.C(dashboard.FieldOwnerID), user))
}

func idIn(sel *sql.Selector) predicate.Dashboard {
	return func(s *sql.Selector) { s.Where(sql.In(s.C(dashboard.FieldID), sel)) }
}

// scope says which dashboards a list may show, as the enforcer would decide
// for each one: owned, shared (when the role allows reading shares), or all.
type scope int

const (
	scopeNone scope = iota
	scopeOwned
	scopeShared // shared with the caller, not owned
	scopeOwnedOrShared
	scopeAll
)

func (s *Service) scopeFor(sub policy.Subject, f Filter) scope {
	// On the collection, read is decided by the role (and token scope).
	canReadShared := s.pol.Can(context.Background(), sub, policy.Dashboards, policy.DashboardsRead)
	admin := sub.System || s.pol.Facts().IsAdmin(sub.UserID)
	switch {
	case f.Owned && f.SharedWithMe:
		if canReadShared || admin {
			return scopeOwnedOrShared
		}
		return scopeOwned
	case f.Owned:
		return scopeOwned
	case f.SharedWithMe:
		if canReadShared || admin {
			return scopeShared
		}
		return scopeNone
	case admin:
		return scopeAll
	case canReadShared:
		return scopeOwnedOrShared
	}
	return scopeOwned
}

// visible is the SQL form of a scope.
func visible(sc scope, user uuid.UUID) predicate.Dashboard {
	switch sc {
	case scopeOwned:
		return dashboard.OwnerID(user)
	case scopeShared:
		return dashboard.And(idIn(sharedIDs(user)), dashboard.OwnerIDNEQ(user))
	case scopeOwnedOrShared:
		return idIn(sharedIDs(user).UnionAll(ownedIDs(user)))
	case scopeAll:
		return dashboard.Or() // no condition
	}
	return dashboard.IDIn() // nothing
}

// List returns the dashboards the caller may read.
func (s *Service) List(ctx context.Context, f Filter, p paging.Params) (paging.Page[Dashboard], error) {
	var page paging.Page[Dashboard]
	sub, err := policy.SubjectFrom(ctx)
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
	q := strings.TrimSpace(f.Q)
	if len(q) > 255 {
		return page, errs.Invalid("q", "q must be at most 255 characters")
	}
	sc := s.scopeFor(sub, f)
	preds := []predicate.Dashboard{visible(sc, sub.UserID)}
	if q != "" {
		preds = append(preds, dashboard.NameContainsFold(q))
	}
	// These queries are filtered exactly by the caller's rights above; the
	// privacy backstop would only add the same condition a second time.
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	query := s.db.Dashboard.Query().Where(preds...)
	count := query.Clone().Count
	if (sc == scopeOwnedOrShared || sc == scopeShared) && q == "" {
		// Owned and shared-with-me are each counted on their own index;
		// nobody shares a dashboard with its owner, so they never overlap.
		count = func(ctx context.Context) (int, error) {
			shared, err := s.db.DashboardShare.Query().Where(dashboardshare.UserID(sub.UserID)).Count(ctx)
			if err != nil || sc == scopeShared {
				return shared, err
			}
			owned, err := s.db.Dashboard.Query().Where(dashboard.OwnerID(sub.UserID)).Count(ctx)
			return owned + shared, err
		}
	}
	order := ent.Asc(field)
	if desc {
		order = ent.Desc(field)
	}
	visibleN := -1
	counted := func(ctx context.Context) (int, error) {
		n, err := count(ctx)
		visibleN = n
		return n, err
	}
	return paging.Collect(ctx, p, counted,
		func(ctx context.Context, off, n int) ([]*ent.Dashboard, error) {
			q := query
			if (sc == scopeOwnedOrShared || sc == scopeShared) && field == dashboard.FieldUpdatedAt && s.walkIndex(visibleN, off+n) {
				q = s.db.Dashboard.Query().Where(append(preds[1:], walkVisible(sc, sub.UserID))...)
			}
			return q.Order(order, ent.Desc(dashboard.FieldID)).Offset(off).Limit(n).All(ctx)
		}, func(d *ent.Dashboard) Dashboard { return s.toDashboard(sub, d) })
}

// walkIndex decides how SQLite finds a page of a user's visible dashboards
// in updated_at order. Looking up every visible dashboard and sorting costs
// about visible row lookups; walking the updated_at index newest first and
// keeping the visible ones costs about rows·total/visible index steps (a
// quarter of a lookup each). PostgreSQL's planner weighs this itself.
func (s *Service) walkIndex(visible, rows int) bool {
	if visible <= 0 {
		return false
	}
	total := s.pol.Facts().Dashboards()
	return 4*visible*visible > rows*total
}

// walkVisible is the owned-or-shared condition in a form SQLite cannot
// answer from the id index (the unary + makes the column an expression), so
// it reads the updated_at index in order and stops after one page.
func walkVisible(sc scope, user uuid.UUID) predicate.Dashboard {
	return func(s *sql.Selector) {
		sel := sharedIDs(user)
		if sc == scopeOwnedOrShared {
			sel = sel.UnionAll(ownedIDs(user))
		} else {
			s.Where(sql.NEQ(s.C(dashboard.FieldOwnerID), user))
		}
		if s.Dialect() != dialect.SQLite {
			s.Where(sql.In(s.C(dashboard.FieldID), sel))
			return
		}
		s.Where(sql.P(func(b *sql.Builder) {
			b.WriteString("+").Ident(s.C(dashboard.FieldID)).WriteString(" IN ").Wrap(func(b *sql.Builder) { b.Join(sel) })
		}))
	}
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
	if in.Filters != nil {
		if err := checkFilters(*in.Filters); err != nil {
			return Dashboard{}, err
		}
		if err := s.checkMappedFilters(ctx, d.ID, *in.Filters); err != nil {
			return Dashboard{}, err
		}
		up.SetFilters(append([]types.DashboardFilter{}, *in.Filters...))
	}
	if err := datasources.CheckTTL(in.CacheTTLSeconds); err != nil {
		return Dashboard{}, err
	}
	if v := in.CacheTTLSeconds; v != nil && *v < 0 {
		up.ClearCacheTTLSeconds()
	} else if v != nil {
		up.SetCacheTTLSeconds(*v)
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
	s.pol.Facts().Forget(policy.KindDashboard, id)
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
	return s.createWith(ctx, Input{Name: &n, Description: src.Description, Filters: &src.Filters, CacheTTLSeconds: src.CacheTTLSeconds}, src.Widgets)
}

// createWith creates a dashboard and its widgets in one transaction.
func (s *Service) createWith(ctx context.Context, in Input, widgets []Widget) (Dashboard, error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	if err := s.pol.RequireSubject(ctx, sub, policy.Dashboards, policy.DashboardsCreate); err != nil {
		return Dashboard{}, err
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
	filters, err := inputFilters(in)
	if err != nil {
		return Dashboard{}, err
	}
	cfgs := make([]map[string]any, len(widgets))
	for i, w := range widgets {
		// Checked before the transaction: the checks read other tables.
		if cfgs[i], err = s.widgetConfig(ctx, sub.UserID, filters, w.Type, w.Config); err != nil {
			return Dashboard{}, prefixField(err, i)
		}
	}
	for i, w := range widgets {
		if err := checkPosition("position", w.Position); err != nil {
			return Dashboard{}, prefixField(err, i)
		}
	}
	var d *ent.Dashboard
	var ws []*ent.Widget
	err = store.WithTx(ctx, s.db, func(tx *ent.Tx) error {
		var err error
		d, err = tx.Dashboard.Create().SetOwnerID(sub.UserID).SetName(name).SetNillableDescription(in.Description).
			SetFilters(filters).SetNillableCacheTTLSeconds(datasources.StoredTTL(in.CacheTTLSeconds)).Save(ctx)
		if err != nil {
			return err
		}
		builders := make([]*ent.WidgetCreate, 0, len(widgets))
		for i, w := range widgets {
			builders = append(builders, tx.Widget.Create().SetDashboardID(d.ID).SetType(w.Type).SetConfig(cfgs[i]).SetPosition(w.Position))
		}
		ws, err = tx.Widget.CreateBulk(builders...).Save(ctx)
		return err
	})
	if err != nil {
		return Dashboard{}, err
	}
	s.pol.Facts().SetOwner(policy.KindDashboard, d.ID, d.OwnerID)
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

// inputFilters validates the filters and TTL of a new dashboard.
func inputFilters(in Input) ([]types.DashboardFilter, error) {
	filters := []types.DashboardFilter{}
	if in.Filters != nil && *in.Filters != nil {
		filters = *in.Filters
	}
	if err := checkFilters(filters); err != nil {
		return nil, err
	}
	return filters, datasources.CheckTTL(in.CacheTTLSeconds)
}

// checkMappedFilters refuses new filters that drop (or rename) a filter a
// widget's config.filter_map routes: the widget would point at nothing, and
// duplicating or exporting/importing the dashboard would then fail. The
// answer is a 400 naming each widget and filter; remove the mapping first.
func (s *Service) checkMappedFilters(ctx context.Context, dashboardID uuid.UUID, filters []types.DashboardFilter) error {
	declared := make(map[string]bool, len(filters))
	for _, f := range filters {
		declared[f.Name] = true
	}
	ws, err := s.db.Widget.Query().Where(widget.DashboardID(dashboardID)).
		Order(ent.Asc(widget.FieldCreatedAt), ent.Asc(widget.FieldID)).All(ctx)
	if err != nil {
		return err
	}
	var fields []errs.FieldError
	var names []string
	for _, w := range ws {
		src, err := SourceOf(w.Config)
		if err != nil {
			continue
		}
		var missing []string
		for f := range src.FilterMap {
			if !declared[f] {
				missing = append(missing, f)
			}
		}
		slices.Sort(missing)
		for _, f := range missing {
			fields = append(fields, errs.FieldError{Field: "filters",
				Message: "widget " + w.ID.String() + " maps filter " + strconv.Quote(f) + " in its config.filter_map"})
			names = append(names, w.ID.String()+" ("+f+")")
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return errs.InvalidFields("these filters are still mapped by widgets; change their config.filter_map first: "+strings.Join(names, ", "), fields)
}
