// Package rendering produces the data of dashboards: every widget's query
// (a saved query with parameters, or a data model query) runs concurrently
// under the viewer's own permissions, with the dashboard's filter values
// flowing into the widgets that map them. One failing widget does not fail
// the dashboard.
package rendering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/policy"
)

// Service renders dashboards.
type Service struct {
	dash        *dashboards.Service
	q           *queries.Service
	m           *datamodels.Service
	pol         *policy.Enforcer
	concurrency int
	log         *slog.Logger
}

// New returns the rendering service and installs it as the dashboards'
// widget source check. concurrency bounds the widgets of one render that
// run at once.
func New(dash *dashboards.Service, q *queries.Service, m *datamodels.Service, pol *policy.Enforcer, concurrency int, log *slog.Logger) *Service {
	if concurrency < 1 {
		concurrency = 32
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{dash: dash, q: q, m: m, pol: pol, concurrency: concurrency, log: log}
	dash.SetSourceChecker(s)
	return s
}

// Options tune one render.
type Options struct {
	// Bypass skips cached results (Cache-Control: no-cache).
	Bypass bool
}

// MaxWidgetRows caps one widget's result (more: truncated): a dashboard
// answers every widget at once, and no chart or table page shows more.
const MaxWidgetRows = 10_000

// Widget statuses.
const (
	StatusOK    = "ok"
	StatusError = "error"
	// StatusNoData: the widget shows no data (text) or names none yet.
	StatusNoData = "no_data"
)

// WidgetData is one widget's result or its own error.
type WidgetData struct {
	WidgetID  uuid.UUID
	Type      string
	Status    string
	Cache     string // hit, miss or bypass; empty without data
	ElapsedMS int64
	Result    *queries.Result
	Err       error
}

// DashboardData is a rendered dashboard.
type DashboardData struct {
	DashboardID uuid.UUID
	// Filters are the values applied (given or defaults).
	Filters   map[string]any
	Widgets   []WidgetData
	ElapsedMS int64
}

// Cache summarizes the widgets' cache statuses: hit when every data widget
// was answered from the cache.
func (d DashboardData) Cache() string {
	out := queries.CacheHit
	for _, w := range d.Widgets {
		switch w.Cache {
		case queries.CacheBypass:
			return queries.CacheBypass
		case queries.CacheMiss, "":
			if w.Status != StatusNoData {
				out = queries.CacheMiss
			}
		}
	}
	return out
}

// Dashboard runs every widget of a dashboard the caller may read.
func (s *Service) Dashboard(ctx context.Context, id uuid.UUID, values map[string]any, o Options) (DashboardData, error) {
	started := time.Now()
	d, applied, err := s.open(ctx, id, values)
	if err != nil {
		return DashboardData{}, err
	}
	ctx, src, err := s.prepare(ctx, d.Widgets)
	if err != nil {
		return DashboardData{}, err
	}
	out := DashboardData{DashboardID: d.ID, Filters: applied, Widgets: make([]WidgetData, len(d.Widgets))}
	sem := make(chan struct{}, s.concurrency)
	var wg sync.WaitGroup
	for i, w := range d.Widgets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out.Widgets[i] = WidgetData{WidgetID: w.ID, Type: w.Type, Status: StatusError, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			out.Widgets[i] = s.widget(ctx, d, w, applied, o, src)
		}()
	}
	wg.Wait()
	out.ElapsedMS = time.Since(started).Milliseconds()
	return out, nil
}

// Widget runs one widget of a dashboard the caller may read.
func (s *Service) Widget(ctx context.Context, id, widgetID uuid.UUID, values map[string]any, o Options) (WidgetData, error) {
	d, applied, err := s.open(ctx, id, values)
	if err != nil {
		return WidgetData{}, err
	}
	for _, w := range d.Widgets {
		if w.ID == widgetID {
			ctx, src, err := s.prepare(ctx, []dashboards.Widget{w})
			if err != nil {
				return WidgetData{}, err
			}
			return s.widget(ctx, d, w, applied, o, src), nil
		}
	}
	return WidgetData{}, errs.NotFound("widget")
}

// open loads a dashboard the caller may read and the filter values that
// apply to this render.
func (s *Service) open(ctx context.Context, id uuid.UUID, values map[string]any) (dashboards.Dashboard, map[string]any, error) {
	d, err := s.dash.Get(ctx, id)
	if err != nil {
		return d, nil, err
	}
	applied, err := resolveFilters(d.Filters, values)
	return d, applied, err
}

// widgetContext lets an API token scoped to reading render the dashboards it
// may read: the widgets' queries are fixed by the dashboard (none of the
// caller's SQL runs, and every run is read-only at the source), so the
// token's scope is lifted for them. The data still needs the user's own
// roles to allow queries:run.
func widgetContext(ctx context.Context) context.Context {
	p, ok := principal.From(ctx)
	if !ok || len(p.Scopes) == 0 {
		return ctx
	}
	unscoped := *p
	unscoped.Scopes = nil
	return principal.With(ctx, &unscoped)
}

// resolveFilters checks given filter values against the declarations and
// fills in defaults. A filter without a value (nor default) is not applied.
func resolveFilters(decl []types.DashboardFilter, values map[string]any) (map[string]any, error) {
	byName := map[string]types.DashboardFilter{}
	for _, f := range decl {
		byName[f.Name] = f
	}
	for name := range values {
		if _, ok := byName[name]; !ok {
			return nil, errs.Invalid("filters."+name, fmt.Sprintf("the dashboard has no filter %q", name))
		}
	}
	applied := map[string]any{}
	for _, f := range decl {
		v, given := values[f.Name]
		if !given {
			v = f.Default
		}
		if v == nil {
			continue
		}
		if _, err := dashboards.FilterValue(f, v); err != nil {
			return nil, errs.Invalid("filters."+f.Name, err.Error())
		}
		applied[f.Name] = v
	}
	return applied, nil
}

// sources are the saved queries and models a render's widgets name, each
// loaded once for the whole render.
type sources struct {
	// of is each widget's source as its config names it (or why not).
	of      map[uuid.UUID]parsedSource
	queries map[uuid.UUID]queries.SavedQuery
	models  map[uuid.UUID]models.Config
}

type parsedSource struct {
	src dashboards.WidgetSource
	err error
}

// prepare loads what the widgets name in two reads, makes every data source
// open once per render, and lifts a read-only token's scope for the widgets'
// fixed queries (widgetContext).
func (s *Service) prepare(ctx context.Context, ws []dashboards.Widget) (context.Context, sources, error) {
	var qids, mids []uuid.UUID
	out := sources{of: make(map[uuid.UUID]parsedSource, len(ws))}
	for _, w := range ws {
		src, err := dashboards.SourceOf(w.Config)
		out.of[w.ID] = parsedSource{src, err}
		if err != nil {
			continue // reported by the widget itself
		}
		if src.QueryID != nil {
			qids = append(qids, *src.QueryID)
		}
		if src.ModelID != nil {
			mids = append(mids, *src.ModelID)
		}
	}
	var err error
	if out.queries, err = s.q.LoadMany(ctx, qids); err != nil {
		return ctx, out, err
	}
	if out.models, err = s.m.Configs(ctx, mids); err != nil {
		return ctx, out, err
	}
	return widgetContext(datasources.WithOpenMemo(ctx)), out, nil
}

func (s *Service) widget(ctx context.Context, d dashboards.Dashboard, w dashboards.Widget, applied map[string]any, o Options, loaded sources) (out WidgetData) {
	started := time.Now()
	out = WidgetData{WidgetID: w.ID, Type: w.Type}
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "widget render panicked", "dashboard_id", d.ID, "widget_id", w.ID, "panic", fmt.Sprint(r))
			out.Status, out.Err, out.Result = StatusError, errors.New("widget render failed"), nil
		}
		out.ElapsedMS = time.Since(started).Milliseconds()
	}()
	parsed := loaded.of[w.ID]
	src, err := parsed.src, parsed.err
	if err != nil {
		out.Status, out.Err = StatusError, err
		return out
	}
	if !src.HasData() {
		out.Status = StatusNoData
		return out
	}
	co := queries.CacheOptions{Bypass: o.Bypass}
	if d.CacheTTLSeconds != nil {
		ttl := time.Duration(*d.CacheTTLSeconds) * time.Second
		co.TTL = &ttl
	}
	var f queries.Fetched
	if src.QueryID != nil {
		params := map[string]any{}
		maps.Copy(params, src.Parameters)
		for name, target := range src.FilterMap {
			if v, ok := applied[name]; ok {
				params[target] = v
			}
		}
		q, ok := loaded.queries[*src.QueryID]
		if !ok {
			out.Status, out.Err = StatusError, errs.Invalid("config.query_id", "the widget's saved query no longer exists")
			return out
		}
		f, err = s.q.FetchLoaded(ctx, q, params, queries.RunOptions{MaxRows: MaxWidgetRows}, co)
	} else {
		req := *src.ModelQuery
		req.Filters = append([]models.Filter(nil), req.Filters...)
		for name, target := range src.FilterMap {
			if v, ok := applied[name]; ok {
				req.Filters = append(req.Filters, modelFilter(target, v))
			}
		}
		cfg, ok := loaded.models[*src.ModelID]
		if !ok {
			out.Status, out.Err = StatusError, errs.Invalid("config.model_id", "the widget's data model no longer exists")
			return out
		}
		f, err = s.m.QueryConfig(ctx, cfg, req, datamodels.QueryOptions{Run: queries.RunOptions{MaxRows: MaxWidgetRows}, Cache: co})
	}
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			err = errs.Invalid("config", "the widget's query or model no longer exists")
		}
		out.Status, out.Err = StatusError, err
		return out
	}
	out.Status, out.Cache, out.Result = StatusOK, f.Cache, &f.Result
	return out
}

// modelFilter turns a dashboard filter value into a model filter on a
// dimension: a list filters with "in", a relative date range with its own
// operator, anything else with "=".
func modelFilter(dim string, v any) models.Filter {
	switch x := v.(type) {
	case []any:
		return models.Filter{Field: dim, Op: models.OpIn, Value: x}
	case string:
		if dashboards.IsRelativeDate(x) {
			if f, err := models.ParseFilter(dim + " " + x); err == nil {
				return f
			}
		}
	}
	return models.Filter{Field: dim, Op: models.OpEq, Value: v}
}

// CheckWidgetSource verifies, when a widget is added or changed, that the
// caller (in ctx) may read the data it names under their own rights, that
// the dashboard's owner may too, and that the query it describes is
// well-formed (dashboards.SourceChecker). A source the caller may not read
// answers exactly as an unknown id does.
func (s *Service) CheckWidgetSource(ctx context.Context, owner uuid.UUID, filters []types.DashboardFilter, src dashboards.WidgetSource) error {
	ownerSub := policy.Subject{UserID: owner}
	if !s.pol.Can(ctx, ownerSub, policy.DataSources, policy.QueriesRun) {
		return errs.Invalid("config", "the dashboard owner's role does not allow queries:run, so this widget could never show data")
	}
	if src.QueryID != nil {
		unknown := errs.Invalid("config.query_id", "no saved query with this id")
		if err := s.pol.Require(ctx, policy.Query(*src.QueryID), policy.QueriesRead); err != nil {
			if errors.Is(err, errs.ErrNotFound) {
				return unknown
			}
			return err
		}
		q, err := s.q.Load(ctx, *src.QueryID)
		if errors.Is(err, errs.ErrNotFound) {
			return unknown
		}
		if err != nil {
			return err
		}
		if !s.pol.Can(ctx, ownerSub, policy.Query(q.ID), policy.QueriesRead) {
			return errs.Invalid("config.query_id", "the dashboard owner cannot read this saved query")
		}
		declared := map[string]bool{}
		for _, p := range q.Parameters {
			declared[p.Name] = true
		}
		for name := range src.Parameters {
			if !declared[name] {
				return errs.Invalid("config.parameters."+name, fmt.Sprintf("the saved query has no parameter %q", name))
			}
		}
		for f, target := range src.FilterMap {
			if !declared[target] {
				return errs.Invalid("config.filter_map."+f, fmt.Sprintf("the saved query has no parameter %q", target))
			}
		}
		return nil
	}
	unknown := errs.Invalid("config.model_id", "no data model with this id")
	if err := s.pol.Require(ctx, policy.Model(*src.ModelID), policy.ModelsUse); err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return unknown
		}
		return err
	}
	cfg, err := s.m.Config(ctx, *src.ModelID)
	if errors.Is(err, errs.ErrNotFound) {
		return unknown
	}
	if err != nil {
		return err
	}
	dims := map[string]bool{}
	for _, d := range cfg.Dimensions {
		dims[d.Name] = true
	}
	for f, target := range src.FilterMap {
		if !dims[target] {
			return errs.Invalid("config.filter_map."+f, fmt.Sprintf("the model has no dimension %q", target))
		}
	}
	// Compiling (for any dialect) checks the query's fields, sort and
	// filters against the model.
	opt := models.Options{Dialect: "sqlite", Now: time.Now()}
	if cfg.SavedQueryID != "" {
		opt.Derived = &models.DerivedTable{SQL: "SELECT 1"}
	}
	if _, _, err := models.CompileWith(cfg, *src.ModelQuery, opt); err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			field := "config.model_query"
			if e.Field != "" {
				field += "." + e.Field
			}
			return errs.Invalid(field, e.Message)
		}
		return err
	}
	return nil
}
