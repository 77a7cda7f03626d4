// Package datamodels holds semantic data models: named dimensions and
// measures over a data source's table (or a saved query), checked against the
// source's schema when saved and compiled to the connector's SQL dialect when
// queried (core/models).
package datamodels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/datamodel"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/policy"
)

// Service is the data models domain.
type Service struct {
	db  *ent.Client
	pol *policy.Enforcer
	ds  *datasources.Service
	q   *queries.Service
	now func() time.Time
}

// New returns the data models service.
func New(db *ent.Client, pol *policy.Enforcer, ds *datasources.Service, q *queries.Service) *Service {
	return &Service{db: db, pol: pol, ds: ds, q: q, now: time.Now}
}

// DataModel as the API shows it.
type DataModel struct {
	ID        uuid.UUID     `json:"id"`
	UserID    uuid.UUID     `json:"user_id"`
	Name      string        `json:"name"`
	Config    models.Config `json:"config"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

func toAPI(m *ent.DataModel) (DataModel, error) {
	cfg, err := decode(m.Config)
	if err != nil {
		return DataModel{}, err
	}
	return DataModel{ID: m.ID, UserID: m.UserID, Name: m.Name, Config: cfg, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}, nil
}

func decode(raw map[string]any) (models.Config, error) {
	var cfg models.Config
	b, err := json.Marshal(raw)
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("stored model config: %w", err)
	}
	return cfg, nil
}

func encode(cfg models.Config) (map[string]any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// Input creates or changes a model; nil fields stay on update.
type Input struct {
	Name   *string
	Config *models.Config
}

func checkName(n *string) (string, error) {
	v := strings.TrimSpace(*n)
	if v == "" || len([]rune(v)) > 255 || strings.ContainsAny(v, "\x00\r\n") {
		return "", errs.Invalid("name", "name must be 1 to 255 characters on one line")
	}
	return v, nil
}

// requireUse allows model readers: queries:run or models:manage
// (policy.ModelsUse). Every model is visible to them.
func (s *Service) requireUse(ctx context.Context) error {
	return s.pol.Require(ctx, policy.Models, policy.ModelsUse)
}

// Create saves a model owned by the caller (models:manage) after checking
// its config and every column it names against the data source.
func (s *Service) Create(ctx context.Context, in Input) (DataModel, error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return DataModel{}, err
	}
	if err := s.pol.RequireSubject(ctx, sub, policy.Models, policy.ModelsManage); err != nil {
		return DataModel{}, err
	}
	if in.Name == nil || in.Config == nil {
		return DataModel{}, errs.Invalid("name", "name and config are required")
	}
	name, err := checkName(in.Name)
	if err != nil {
		return DataModel{}, err
	}
	if err := s.checkForSave(ctx, *in.Config); err != nil {
		return DataModel{}, err
	}
	raw, err := encode(*in.Config)
	if err != nil {
		return DataModel{}, err
	}
	m, err := s.db.DataModel.Create().SetUserID(sub.UserID).SetName(name).SetConfig(raw).Save(ctx)
	if err != nil {
		return DataModel{}, err
	}
	s.pol.Facts().SetOwner(policy.KindModel, m.ID, m.UserID)
	return toAPI(m)
}

func (s *Service) checkForSave(ctx context.Context, cfg models.Config) error {
	if err := models.Validate(cfg); err != nil {
		return err
	}
	problems, err := s.problems(ctx, cfg, true)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return errs.InvalidFields("the model does not match its data source", problems)
	}
	return nil
}

func (s *Service) load(ctx context.Context, id uuid.UUID) (*ent.DataModel, error) {
	m, err := s.db.DataModel.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("data model")
	}
	return m, err
}

// Get returns one model (queries:run or models:manage).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (DataModel, error) {
	if err := s.requireUse(ctx); err != nil {
		return DataModel{}, err
	}
	m, err := s.load(ctx, id)
	if err != nil {
		return DataModel{}, err
	}
	return toAPI(m)
}

// List lists models (queries:run or models:manage).
func (s *Service) List(ctx context.Context, q string, p paging.Params) (paging.Page[DataModel], error) {
	if err := s.requireUse(ctx); err != nil {
		return paging.Page[DataModel]{}, err
	}
	p, err := p.Normalize()
	if err != nil {
		return paging.Page[DataModel]{}, err
	}
	field, desc, err := p.SortField("-updated_at", "name", "created_at", "updated_at")
	if err != nil {
		return paging.Page[DataModel]{}, err
	}
	query := s.db.DataModel.Query()
	if q = strings.TrimSpace(q); q != "" {
		query.Where(datamodel.NameContainsFold(q))
	}
	order := ent.Asc(field)
	if desc {
		order = ent.Desc(field)
	}
	page, err := paging.Collect(ctx, p, query.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.DataModel, error) {
			return query.Order(order, ent.Asc(datamodel.FieldID)).Offset(off).Limit(n).All(ctx)
		}, func(m *ent.DataModel) DataModel {
			d, err := toAPI(m)
			if err != nil {
				// A stored config always decodes (it was encoded from one);
				// show the row without it rather than fail the page.
				return DataModel{ID: m.ID, UserID: m.UserID, Name: m.Name, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
			}
			return d
		})
	return page, err
}

// owned loads a model the caller may change: the role's models:manage, and
// their own (any for instance admins). Another user's model is forbidden,
// not hidden: models are visible to every query runner (policy.ModelsUse).
func (s *Service) owned(ctx context.Context, id uuid.UUID) (*ent.DataModel, error) {
	if err := s.pol.Require(ctx, policy.Models, policy.ModelsManage); err != nil {
		return nil, err
	}
	if err := s.pol.Require(ctx, policy.Model(id), policy.ModelsManage); err != nil {
		return nil, err
	}
	return s.load(ctx, id)
}

// Update changes a model (its owner or an admin, with models:manage).
func (s *Service) Update(ctx context.Context, id uuid.UUID, in Input) (DataModel, error) {
	m, err := s.owned(ctx, id)
	if err != nil {
		return DataModel{}, err
	}
	up := s.db.DataModel.UpdateOne(m)
	if in.Name != nil {
		name, err := checkName(in.Name)
		if err != nil {
			return DataModel{}, err
		}
		up.SetName(name)
	}
	if in.Config != nil {
		if err := s.checkForSave(ctx, *in.Config); err != nil {
			return DataModel{}, err
		}
		raw, err := encode(*in.Config)
		if err != nil {
			return DataModel{}, err
		}
		up.SetConfig(raw)
	}
	nm, err := up.Save(ctx)
	if err != nil {
		return DataModel{}, err
	}
	return toAPI(nm)
}

// Delete removes a model (its owner or an admin, with models:manage).
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	m, err := s.owned(ctx, id)
	if err != nil {
		return err
	}
	if err := s.db.DataModel.DeleteOne(m).Exec(ctx); err != nil {
		return err
	}
	s.pol.Facts().Forget(policy.KindModel, id)
	return nil
}

// CheckResult tells whether a saved model still matches its data source.
type CheckResult struct {
	OK       bool              `json:"ok"`
	Problems []errs.FieldError `json:"problems"`
}

// Check re-checks a saved model against its data source as it is now and
// lists the fields that broke (queries:run or models:manage).
func (s *Service) Check(ctx context.Context, id uuid.UUID) (CheckResult, error) {
	if err := s.requireUse(ctx); err != nil {
		return CheckResult{}, err
	}
	m, err := s.load(ctx, id)
	if err != nil {
		return CheckResult{}, err
	}
	cfg, err := decode(m.Config)
	if err != nil {
		return CheckResult{}, err
	}
	out := CheckResult{Problems: []errs.FieldError{}}
	if err := models.Validate(cfg); err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			out.Problems = append(out.Problems, e.Fields...)
		}
		return out, nil
	}
	p, err := s.problems(ctx, cfg, false)
	if err != nil {
		return CheckResult{}, err
	}
	out.Problems = append(out.Problems, p...)
	out.OK = len(out.Problems) == 0
	return out, nil
}

// problems compares the columns a valid config reads with the data source's
// schema. saving also requires the caller to see a saved-query base.
func (s *Service) problems(ctx context.Context, cfg models.Config, saving bool) ([]errs.FieldError, error) {
	dsID := uuid.MustParse(cfg.DataSourceID)
	if _, err := s.ds.Get(ctx, dsID); err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return []errs.FieldError{{Field: "data_source_id", Message: "no data source with this id"}}, nil
		}
		return nil, err
	}
	tables := map[string]map[string]bool{} // alias → column set; nil: table missing
	var out []errs.FieldError
	var refs []host.TableRef
	aliasOf := map[host.TableRef][]string{}
	add := func(alias string, t models.TableRef) {
		r := host.TableRef{Namespace: t.Namespace, Name: t.Name}
		if _, seen := aliasOf[r]; !seen {
			refs = append(refs, r)
		}
		aliasOf[r] = append(aliasOf[r], alias)
		tables[alias] = nil
	}
	if cfg.Table != nil {
		add(models.BaseAlias, *cfg.Table)
	} else {
		cols, problem, err := s.derivedColumns(ctx, cfg, dsID, saving)
		if err != nil {
			return nil, err
		}
		if problem != nil {
			return []errs.FieldError{*problem}, nil
		}
		tables[models.BaseAlias] = cols
	}
	for _, j := range cfg.Joins {
		add(j.Alias, j.Table)
	}
	if len(refs) > 0 {
		infos, err := s.ds.Describe(ctx, dsID, refs)
		if err != nil {
			return nil, err
		}
		for _, ti := range infos {
			key := host.TableRef{Namespace: ti.Ref.Namespace, Name: ti.Ref.Name}
			if _, ok := aliasOf[key]; !ok && key.Namespace != "" {
				// A connector may name the default namespace explicitly.
				key.Namespace = ""
			}
			cols := map[string]bool{}
			for _, c := range ti.Columns {
				cols[c.Name] = true
			}
			for _, a := range aliasOf[key] {
				tables[a] = cols
			}
		}
	}
	// Last, once the connector has answered (and so described itself):
	// a model on a connector whose dialect the compiler does not know
	// would be saved and then fail on every query.
	if p, err := s.dialectProblem(ctx, dsID); err != nil {
		return nil, err
	} else if p != nil {
		out = append(out, *p)
	}
	if cfg.Table != nil && tables[models.BaseAlias] == nil {
		out = append(out, errs.FieldError{Field: "table", Message: fmt.Sprintf("table %s does not exist in the data source", tableName(*cfg.Table))})
	}
	for i, j := range cfg.Joins {
		if tables[j.Alias] == nil {
			out = append(out, errs.FieldError{Field: fmt.Sprintf("joins[%d].table", i), Message: fmt.Sprintf("table %s does not exist in the data source", tableName(j.Table))})
		}
	}
	for _, u := range models.Columns(cfg) {
		cols := tables[u.Alias]
		if cols == nil {
			continue // the missing table is reported once
		}
		if !cols[u.Column] {
			out = append(out, errs.FieldError{Field: u.Field, Message: fmt.Sprintf("column %q does not exist in %s", u.Column, u.Alias)})
		}
	}
	return out, nil
}

func tableName(t models.TableRef) string {
	if t.Namespace != "" {
		return t.Namespace + "." + t.Name
	}
	return t.Name
}

// derivedColumns returns the columns of a saved-query base by running it at
// the source with no rows wanted.
func (s *Service) derivedColumns(ctx context.Context, cfg models.Config, dsID uuid.UUID, saving bool) (map[string]bool, *errs.FieldError, error) {
	qid := uuid.MustParse(cfg.SavedQueryID)
	var q queries.SavedQuery
	var err error
	if saving {
		q, err = s.q.Get(ctx, qid)
	} else {
		q, err = s.q.Load(ctx, qid)
	}
	if errors.Is(err, errs.ErrNotFound) {
		return nil, &errs.FieldError{Field: "saved_query_id", Message: "no saved query with this id"}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if q.DataSourceID == nil || *q.DataSourceID != dsID {
		return nil, &errs.FieldError{Field: "saved_query_id", Message: "the saved query does not run on the model's data source"}, nil
	}
	derived, err := derivedBuilder(q)
	if err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			return nil, &errs.FieldError{Field: "saved_query_id", Message: e.Message}, nil
		}
		return nil, nil, err
	}
	res, err := s.q.Fetch(ctx, dsID, func(dialect string) (string, []any, error) {
		sql, args, err := derived(dialect)
		return "SELECT * FROM (" + sql + ") AS " + models.BaseAlias + " WHERE 1 = 0", args, err
	}, queries.RunOptions{MaxRows: 1}, queries.CacheOptions{TTL: new(time.Duration)})
	if err != nil {
		if errors.Is(err, errs.ErrInvalid) {
			return nil, &errs.FieldError{Field: "saved_query_id", Message: "the saved query fails at the source: " + err.Error()}, nil
		}
		return nil, nil, err
	}
	cols := map[string]bool{}
	for _, c := range res.Result.Columns {
		cols[c.Name] = true
	}
	return cols, nil, nil
}

// derivedBuilder builds a saved query (its parameters at their defaults),
// as the base of a model, for the data source's dialect.
func derivedBuilder(q queries.SavedQuery) (queries.Builder, error) {
	bound, err := queries.Bind(q.Parameters, nil)
	if err != nil {
		return nil, errs.Invalid("saved_query_id", "the saved query needs parameter values; give its parameters defaults to use it as a model base")
	}
	return queries.Template(strings.TrimRight(strings.TrimSpace(q.SQL), ";"), bound), nil
}

// QueryOptions tune one model query.
type QueryOptions struct {
	Run   queries.RunOptions
	Cache queries.CacheOptions
}

// Explained is a model query compiled without running it.
type Explained struct {
	Dialect string `json:"dialect"`
	SQL     string `json:"sql"`
	Params  []any  `json:"params"`
}

// compile prepares a model query for its data source.
func (s *Service) compile(ctx context.Context, id uuid.UUID, req models.Request) (uuid.UUID, queries.Builder, error) {
	if err := s.requireUse(ctx); err != nil {
		return uuid.Nil, nil, err
	}
	m, err := s.load(ctx, id)
	if err != nil {
		return uuid.Nil, nil, err
	}
	return s.builder(ctx, m, req)
}

func (s *Service) builder(ctx context.Context, m *ent.DataModel, req models.Request) (uuid.UUID, queries.Builder, error) {
	cfg, err := decode(m.Config)
	if err != nil {
		return uuid.Nil, nil, err
	}
	return s.builderFor(ctx, cfg, req)
}

func (s *Service) builderFor(ctx context.Context, cfg models.Config, req models.Request) (uuid.UUID, queries.Builder, error) {
	dsID, err := uuid.Parse(cfg.DataSourceID)
	if err != nil {
		return uuid.Nil, nil, errs.Invalid("data_source_id", "the model has no valid data source; fix the model")
	}
	var derived queries.Builder
	if cfg.SavedQueryID != "" {
		q, err := s.q.Load(ctx, uuid.MustParse(cfg.SavedQueryID))
		if errors.Is(err, errs.ErrNotFound) {
			return uuid.Nil, nil, errs.Invalid("saved_query_id", "the model's saved query was deleted; fix the model")
		}
		if err != nil {
			return uuid.Nil, nil, err
		}
		if derived, err = derivedBuilder(q); err != nil {
			return uuid.Nil, nil, err
		}
	}
	// Relative ranges ("last 7 days") end at the next whole minute rather
	// than at this microsecond: the same request within a minute compiles to
	// the same bound values, so it can be answered from the result cache.
	now := s.now().UTC().Truncate(time.Minute).Add(time.Minute)
	return dsID, func(dialect string) (string, []any, error) {
		d, ok := modelDialect(dialect)
		if !ok {
			return "", nil, errs.Invalid("data_source_id", fmt.Sprintf("models do not support the %q SQL dialect of this data source's connector", dialect))
		}
		opt := models.Options{Dialect: d, Now: now}
		if derived != nil {
			sql, args, err := derived(dialect)
			if err != nil {
				return "", nil, err
			}
			opt.Derived = &models.DerivedTable{SQL: sql, Args: args}
		}
		return models.CompileWith(cfg, req, opt)
	}, nil
}

// dialectProblem reports a data source whose connector declares an SQL
// dialect models cannot be compiled to.
func (s *Service) dialectProblem(ctx context.Context, dsID uuid.UUID) (*errs.FieldError, error) {
	connector, dialect, err := s.ds.SQLDialect(ctx, dsID)
	if err != nil {
		return nil, err
	}
	return unsupportedDialect(connector, dialect), nil
}

// unsupportedDialect is the data_source_id problem of a connector declaring
// dialect, nil when models compile to it.
func unsupportedDialect(connector, dialect string) *errs.FieldError {
	if _, ok := modelDialect(dialect); ok {
		return nil
	}
	what := fmt.Sprintf("the %q SQL dialect", trunc(dialect, 64))
	if dialect == "" {
		what = "no SQL dialect"
	}
	// The dialects are not listed: one of them is also a metadata database
	// whose name error messages do not show.
	return &errs.FieldError{Field: "data_source_id", Message: fmt.Sprintf(
		"the data source's connector %q declares %s, which data models cannot compile to: a connector supports models by declaring one of sdk.ModelDialects (docs/plugins.md, \"Data models and SQL dialects\")",
		trunc(connector, 64), what)}
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func modelDialect(d string) (string, bool) {
	switch d {
	case "postgres", "postgresql":
		return "postgres", true
	case "mysql", "mariadb":
		return "mysql", true
	case "sqlite":
		return "sqlite", true
	case "ansi":
		return "ansi", true
	}
	return "", false
}

// Explain compiles a model query for its data source without running it.
func (s *Service) Explain(ctx context.Context, id uuid.UUID, req models.Request) (Explained, error) {
	dsID, build, err := s.compile(ctx, id, req)
	if err != nil {
		return Explained{}, err
	}
	sql, args, dialect, err := s.q.Compiled(ctx, dsID, build)
	if err != nil {
		return Explained{}, err
	}
	if args == nil {
		args = []any{}
	}
	return Explained{Dialect: dialect, SQL: sql, Params: args}, nil
}

// Query runs a model query through the connector and the result cache
// (queries:run).
func (s *Service) Query(ctx context.Context, id uuid.UUID, req models.Request, o QueryOptions) (queries.Fetched, error) {
	dsID, build, err := s.compile(ctx, id, req)
	if err != nil {
		return queries.Fetched{}, err
	}
	return s.q.Fetch(ctx, dsID, build, o.Run, o.Cache)
}

// QueryConfig runs a query on a model config loaded by the caller (see
// Configs), who authorized the access.
func (s *Service) QueryConfig(ctx context.Context, cfg models.Config, req models.Request, o QueryOptions) (queries.Fetched, error) {
	dsID, build, err := s.builderFor(ctx, cfg, req)
	if err != nil {
		return queries.Fetched{}, err
	}
	return s.q.Fetch(ctx, dsID, build, o.Run, o.Cache)
}

// Configs loads the configs of several models in one read, without
// checking who asks (a dashboard's widgets); missing ids are absent.
func (s *Service) Configs(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]models.Config, error) {
	out := map[uuid.UUID]models.Config{}
	if len(ids) == 0 {
		return out, nil
	}
	ms, err := s.db.DataModel.Query().Where(datamodel.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		cfg, err := decode(m.Config)
		if err != nil {
			return nil, err
		}
		out[m.ID] = cfg
	}
	return out, nil
}

// Run streams a model query's result (NDJSON / CSV output; not cached).
func (s *Service) Run(ctx context.Context, id uuid.UUID, req models.Request, o queries.RunOptions) (queries.Batches, error) {
	dsID, build, err := s.compile(ctx, id, req)
	if err != nil {
		return nil, err
	}
	return s.q.RunBuilt(ctx, dsID, build, o)
}

// Config returns a model's config without checking who asks: for callers
// that authorized the access through something else (a dashboard widget).
func (s *Service) Config(ctx context.Context, id uuid.UUID) (models.Config, error) {
	m, err := s.load(ctx, id)
	if err != nil {
		return models.Config{}, err
	}
	return decode(m.Config)
}
