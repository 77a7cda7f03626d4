package queries

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/savedquery"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/policy"
)

// Limits bound every run.
type Limits struct {
	MaxRows int64         // default 100,000
	Timeout time.Duration // default 30 s
}

// Service holds saved queries and runs SQL.
type Service struct {
	db      *ent.Client
	pol     *policy.Enforcer
	ds      *datasources.Service
	conns   *host.Host
	limits  Limits
	caching Caching
}

// New returns the queries service.
func New(db *ent.Client, pol *policy.Enforcer, ds *datasources.Service, conns *host.Host, l Limits, c Caching) *Service {
	if l.MaxRows <= 0 {
		l.MaxRows = 100_000
	}
	if l.Timeout <= 0 {
		l.Timeout = 30 * time.Second
	}
	s := &Service{db: db, pol: pol, ds: ds, conns: conns, limits: l, caching: c}
	if ds != nil {
		// Results cached under a source's old settings must not outlive
		// them, whoever changed the source (HTTP or a Go caller).
		ds.OnChanged(func(id uuid.UUID) { s.ForgetSource(id) })
	}
	return s
}

// SavedQuery as the API shows it.
type SavedQuery struct {
	ID           uuid.UUID              `json:"id"`
	UserID       uuid.UUID              `json:"user_id"`
	Name         string                 `json:"name"`
	Description  *string                `json:"description"`
	SQL          string                 `json:"sql"`
	DataSourceID *uuid.UUID             `json:"data_source_id"`
	Parameters   []types.QueryParameter `json:"parameters"`
	// CacheTTLSeconds overrides the data source's result cache TTL.
	CacheTTLSeconds *int      `json:"cache_ttl_seconds"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func toAPI(q *ent.SavedQuery) SavedQuery {
	ps := q.Parameters
	if ps == nil {
		ps = []types.QueryParameter{}
	}
	return SavedQuery{ID: q.ID, UserID: q.UserID, Name: q.Name, Description: q.Description, SQL: q.SQL,
		DataSourceID: q.DataSourceID, Parameters: ps, CacheTTLSeconds: q.CacheTTLSeconds, CreatedAt: q.CreatedAt, UpdatedAt: q.UpdatedAt}
}

// Input creates or changes a saved query; nil fields stay on update.
type Input struct {
	Name         *string
	Description  *string
	SQL          *string
	DataSourceID *uuid.UUID
	Parameters   *[]types.QueryParameter
	// CacheTTLSeconds: -1 clears (the data source's TTL applies).
	CacheTTLSeconds *int
}

const maxSQL = 1 << 20

func checkInput(in Input, create bool) error {
	if create && (in.Name == nil || in.SQL == nil) {
		return errs.Invalid("name", "name and sql are required")
	}
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if n == "" || len([]rune(n)) > 255 || strings.ContainsAny(n, "\x00\r\n") {
			return errs.Invalid("name", "name must be 1 to 255 characters on one line")
		}
	}
	if in.SQL != nil && (strings.TrimSpace(*in.SQL) == "" || len(*in.SQL) > maxSQL || strings.ContainsRune(*in.SQL, 0)) {
		return errs.Invalid("sql", "sql must be non-empty text of at most 1 MiB")
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > 10_000 {
		return errs.Invalid("description", "description must be at most 10000 characters")
	}
	return datasources.CheckTTL(in.CacheTTLSeconds)
}

func (s *Service) checkSource(ctx context.Context, id *uuid.UUID) error {
	if id == nil {
		return nil
	}
	if _, err := s.ds.Get(ctx, *id); err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return errs.Invalid("data_source_id", "no data source with this id")
		}
		return err
	}
	return nil
}

// Create saves a query owned by the caller (queries:create).
func (s *Service) Create(ctx context.Context, in Input) (SavedQuery, error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return SavedQuery{}, err
	}
	if err := s.pol.RequireSubject(ctx, sub, policy.Queries, policy.QueriesCreate); err != nil {
		return SavedQuery{}, err
	}
	if err := checkInput(in, true); err != nil {
		return SavedQuery{}, err
	}
	params := []types.QueryParameter{}
	if in.Parameters != nil {
		params = *in.Parameters
	}
	if err := CheckDefinitions(*in.SQL, params); err != nil {
		return SavedQuery{}, err
	}
	if err := s.checkSource(ctx, in.DataSourceID); err != nil {
		return SavedQuery{}, err
	}
	q, err := s.db.SavedQuery.Create().SetUserID(sub.UserID).SetName(strings.TrimSpace(*in.Name)).SetSQL(*in.SQL).
		SetNillableDescription(in.Description).SetNillableDataSourceID(in.DataSourceID).SetParameters(params).
		SetNillableCacheTTLSeconds(datasources.StoredTTL(in.CacheTTLSeconds)).Save(ctx)
	if err != nil {
		return SavedQuery{}, err
	}
	s.pol.Facts().SetOwner(policy.KindQuery, q.ID, q.UserID)
	return toAPI(q), nil
}

// authorized loads a query the caller may do act on (policy.Require): their
// own, or any for admins. Another user's query is "not found".
func (s *Service) authorized(ctx context.Context, id uuid.UUID, act policy.Action) (*ent.SavedQuery, error) {
	if err := s.pol.Require(ctx, policy.Query(id), act); err != nil {
		return nil, err
	}
	q, err := s.db.SavedQuery.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("query")
	}
	return q, err
}

func (s *Service) isAdmin(sub policy.Subject) bool {
	return sub.System || s.pol.Facts().IsAdmin(sub.UserID)
}

// List lists the caller's saved queries (all for admins).
func (s *Service) List(ctx context.Context, q string, p paging.Params) (paging.Page[SavedQuery], error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return paging.Page[SavedQuery]{}, err
	}
	p, err = p.Normalize()
	if err != nil {
		return paging.Page[SavedQuery]{}, err
	}
	field, desc, err := p.SortField("-updated_at", "name", "created_at", "updated_at")
	if err != nil {
		return paging.Page[SavedQuery]{}, err
	}
	query := s.db.SavedQuery.Query()
	if !s.isAdmin(sub) {
		query.Where(savedquery.UserID(sub.UserID))
	}
	if q = strings.TrimSpace(q); q != "" {
		query.Where(savedquery.NameContainsFold(q))
	}
	order := ent.Asc(field)
	if desc {
		order = ent.Desc(field)
	}
	return paging.Collect(ctx, p, query.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.SavedQuery, error) {
			return query.Order(order, ent.Asc(savedquery.FieldID)).Offset(off).Limit(n).All(ctx)
		}, toAPI)
}

// Get returns one visible saved query.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (SavedQuery, error) {
	q, err := s.authorized(ctx, id, policy.QueriesRead)
	if err != nil {
		return SavedQuery{}, err
	}
	return toAPI(q), nil
}

// Update changes a visible saved query.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in Input) (SavedQuery, error) {
	q, err := s.authorized(ctx, id, policy.QueriesEdit)
	if err != nil {
		return SavedQuery{}, err
	}
	if err := checkInput(in, false); err != nil {
		return SavedQuery{}, err
	}
	sql, params := q.SQL, q.Parameters
	if in.SQL != nil {
		sql = *in.SQL
	}
	if in.Parameters != nil {
		params = *in.Parameters
	}
	if err := CheckDefinitions(sql, params); err != nil {
		return SavedQuery{}, err
	}
	if err := s.checkSource(ctx, in.DataSourceID); err != nil {
		return SavedQuery{}, err
	}
	up := s.db.SavedQuery.UpdateOne(q).SetSQL(sql).SetParameters(params).SetNillableDataSourceID(in.DataSourceID)
	if in.Name != nil {
		up.SetName(strings.TrimSpace(*in.Name))
	}
	if in.Description != nil {
		up.SetDescription(*in.Description)
	}
	if v := in.CacheTTLSeconds; v != nil && *v < 0 {
		up.ClearCacheTTLSeconds()
	} else if v != nil {
		up.SetCacheTTLSeconds(*v)
	}
	nq, err := up.Save(ctx)
	if err != nil {
		return SavedQuery{}, err
	}
	return toAPI(nq), nil
}

// Delete removes a visible saved query.
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	q, err := s.authorized(ctx, id, policy.QueriesDelete)
	if err != nil {
		return err
	}
	if err := s.db.SavedQuery.DeleteOne(q).Exec(ctx); err != nil {
		return err
	}
	s.pol.Facts().Forget(policy.KindQuery, id)
	return nil
}

// RunOptions tune one run within the server's limits.
type RunOptions struct {
	MaxRows int64
	Timeout time.Duration
}

func (s *Service) bounded(o RunOptions) (int64, time.Duration) {
	rows, timeout := s.limits.MaxRows, s.limits.Timeout
	if o.MaxRows > 0 && o.MaxRows < rows {
		rows = o.MaxRows
	}
	if o.Timeout > 0 && o.Timeout < timeout {
		timeout = o.Timeout
	}
	return rows, timeout
}

// Run executes a visible saved query with parameter values. The caller
// consumes the stream and must Close it; ctx bounds the whole run.
func (s *Service) Run(ctx context.Context, id uuid.UUID, values map[string]any, o RunOptions) (Batches, error) {
	q, err := s.authorized(ctx, id, policy.QueriesRead)
	if err != nil {
		return nil, err
	}
	if q.DataSourceID == nil {
		return nil, errs.Invalid("data_source_id", "this query has no data source; set one first")
	}
	bound, err := Bind(q.Parameters, values)
	if err != nil {
		return nil, err
	}
	return s.run(ctx, *q.DataSourceID, q.SQL, bound, o)
}

// RunAdHoc executes SQL on a data source (queries:run). Placeholders take
// their values from params as given (JSON types).
func (s *Service) RunAdHoc(ctx context.Context, dataSource uuid.UUID, sql string, params map[string]any, o RunOptions) (Batches, error) {
	if strings.TrimSpace(sql) == "" || len(sql) > maxSQL {
		return nil, errs.Invalid("sql", "sql must be non-empty text of at most 1 MiB")
	}
	bound := make(map[string]any, len(params))
	for k, v := range params {
		switch x := v.(type) {
		case json.Number:
			if i, err := x.Int64(); err == nil {
				bound[k] = i
			} else if f, err := x.Float64(); err == nil {
				bound[k] = f
			}
		case float64:
			if x == float64(int64(x)) {
				bound[k] = int64(x)
			} else {
				bound[k] = x
			}
		case nil, bool, string, []any:
			bound[k] = x
		default:
			return nil, errs.Invalid("parameters."+k, "parameters are JSON scalars or lists")
		}
	}
	return s.run(ctx, dataSource, sql, bound, o)
}

func (s *Service) run(ctx context.Context, dataSource uuid.UUID, sql string, values map[string]any, o RunOptions) (Batches, error) {
	return s.RunBuilt(ctx, dataSource, Template(sql, values), o)
}

// start sends compiled SQL to the data source's connector.
func (s *Service) start(ctx context.Context, conn datasources.Conn, sql string, args []any, o RunOptions) (Batches, error) {
	rows, timeout := s.bounded(o)
	res, err := s.conns.Query(ctx, conn.Connector, conn.Source, host.Query{SQL: sql, Params: args, MaxRows: rows, Timeout: timeout})
	if err != nil {
		return nil, datasources.ConnectorError(err)
	}
	return res, nil
}

// Template returns the builder of a {{name}} template with its values for a
// connector's dialect.
func Template(sql string, values map[string]any) Builder {
	return func(dialect string) (string, []any, error) {
		d := DialectSQLite
		switch dialect {
		case "postgres", "postgresql":
			d = DialectPostgres
		case "mysql", "mariadb":
			d = DialectMySQL
		}
		c, err := Compile(sql, d, values)
		if err != nil {
			return "", nil, err
		}
		for i, a := range c.Args {
			if dt, ok := a.(Date); ok {
				c.Args[i] = host.Date{Time: dt.Time}
			}
		}
		return c.SQL, c.Args, nil
	}
}
