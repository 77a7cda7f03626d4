package queries

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/resultcache"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/savedquery"
	"github.com/datapulse/datapulse/policy"
)

// Builder compiles a query for a connector's SQL dialect: the SQL text and
// the values bound to its placeholders.
type Builder func(dialect string) (sql string, args []any, err error)

// Caching configures the result cache of collected (JSON) results.
type Caching struct {
	// Cache holds results; nil disables caching.
	Cache *resultcache.Cache[Result]
	// DefaultTTL applies when neither the data source nor the caller sets
	// one; 0 means results are not cached by default.
	DefaultTTL time.Duration
	// Announce, when set, tells the other processes sharing the database
	// that a source's results were dropped (core/cachesync).
	Announce func(dataSource uuid.UUID)
}

// Cache statuses reported as X-DataPulse-Cache.
const (
	CacheHit    = "hit"
	CacheMiss   = "miss"
	CacheBypass = "bypass"
)

// CacheOptions tune the cache for one fetch.
type CacheOptions struct {
	// Bypass skips the lookup (the client sent Cache-Control: no-cache); the
	// fresh result is still stored.
	Bypass bool
	// TTL overrides the data source's TTL (a query's or dashboard's own).
	TTL *time.Duration
}

// Fetched is a collected result and how it was obtained.
type Fetched struct {
	Result Result
	// Cache is hit, miss or bypass.
	Cache string
	// SQL and Args are what ran (or would run) at the source.
	SQL  string
	Args []any
}

// Compiled returns the SQL and values build produces for a data source's
// dialect without running anything (queries:run on the source).
func (s *Service) Compiled(ctx context.Context, dataSource uuid.UUID, build Builder) (sql string, args []any, dialect string, err error) {
	conn, err := s.ds.Open(ctx, dataSource)
	if err != nil {
		return "", nil, "", err
	}
	sql, args, err = build(conn.Dialect)
	return sql, args, conn.Dialect, err
}

// Fetch runs a query on a data source and collects its result, answering
// from the result cache when it holds a fresh entry. Identical concurrent
// fetches run the query once. Entries are keyed by data source, compiled
// SQL, bound values, row cap and the caller's permission context, so callers
// with different rights never share one.
func (s *Service) Fetch(ctx context.Context, dataSource uuid.UUID, build Builder, o RunOptions, co CacheOptions) (Fetched, error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return Fetched{}, err
	}
	conn, err := s.ds.Open(ctx, dataSource)
	if err != nil {
		return Fetched{}, err
	}
	sql, args, err := build(conn.Dialect)
	if err != nil {
		return Fetched{}, err
	}
	ttl := s.caching.DefaultTTL
	if conn.CacheTTLSeconds != nil {
		ttl = time.Duration(*conn.CacheTTLSeconds) * time.Second
	}
	if co.TTL != nil {
		ttl = *co.TTL
	}
	out := Fetched{SQL: sql, Args: args, Cache: CacheMiss}
	compute := func(ctx context.Context) (Result, int64, error) {
		started := time.Now()
		b, err := s.start(ctx, conn, sql, args, o)
		if err != nil {
			return Result{}, 0, err
		}
		res, err := Collect(b, started)
		if err != nil {
			return Result{}, 0, datasources.ConnectorError(err)
		}
		return res, res.approxSize(), nil
	}
	if s.caching.Cache == nil || ttl <= 0 {
		out.Result, _, err = compute(ctx)
		if co.Bypass {
			out.Cache = CacheBypass
		}
		return out, err
	}
	rows, _ := s.bounded(o)
	key := resultcache.NewKey(dataSource.String(), sql, args, s.permission(sub)+"\x00rows="+strconv.FormatInt(rows, 10))
	res, hit, err := s.caching.Cache.Do(ctx, key, ttl, co.Bypass, compute)
	if err != nil {
		return Fetched{}, err
	}
	out.Result = res
	switch {
	case hit:
		out.Cache = CacheHit
	case co.Bypass:
		out.Cache = CacheBypass
	}
	return out, nil
}

// permission is the caller's permission context for cache keys. Access to
// data is decided by roles (and the instance admin flag), so callers with the
// same roles see the same data and may share entries; anyone else may not.
func (s *Service) permission(sub policy.Subject) string {
	if sub.System {
		return "system"
	}
	f := s.pol.Facts()
	if f.IsAdmin(sub.UserID) {
		return "admin"
	}
	roles := slices.Clone(f.RolesOf(sub.UserID))
	slices.Sort(roles)
	return "roles:" + strings.Join(roles, "\x1f")
}

// InvalidateCache drops every cached result of a data source
// (datasources:manage) and reports how many entries went.
func (s *Service) InvalidateCache(ctx context.Context, dataSource uuid.UUID) (int, error) {
	if err := s.pol.Require(ctx, policy.DataSources, policy.DatasourcesManage); err != nil {
		return 0, err
	}
	if _, err := s.ds.Get(ctx, dataSource); err != nil {
		return 0, err
	}
	return s.ForgetSource(dataSource), nil
}

// ForgetSource drops a data source's cached results (after its
// configuration changed or it was deleted) and tells the other processes.
func (s *Service) ForgetSource(dataSource uuid.UUID) int {
	if s.caching.Cache == nil {
		return 0
	}
	n := s.caching.Cache.Invalidate(dataSource.String())
	if s.caching.Announce != nil {
		s.caching.Announce(dataSource)
	}
	return n
}

// ForgetAnnounced drops a data source's cached results because another
// process announced it did (core/cachesync).
func (s *Service) ForgetAnnounced(dataSource uuid.UUID) {
	if s.caching.Cache != nil {
		s.caching.Cache.Invalidate(dataSource.String())
	}
}

// ForgetAll drops every cached result (announcements may have been missed).
func (s *Service) ForgetAll() {
	if s.caching.Cache != nil {
		s.caching.Cache.InvalidateAll()
	}
}

// FetchSaved runs a visible saved query with parameter values through the
// cache (the query's own TTL unless co sets one).
func (s *Service) FetchSaved(ctx context.Context, id uuid.UUID, values map[string]any, o RunOptions, co CacheOptions) (Fetched, error) {
	q, err := s.authorized(ctx, id, policy.QueriesRead)
	if err != nil {
		return Fetched{}, err
	}
	return s.fetchSaved(ctx, toAPI(q), values, o, co)
}

// FetchLoaded runs a saved query loaded by the caller (see LoadMany), who
// authorized the access; the data source still requires queries:run.
func (s *Service) FetchLoaded(ctx context.Context, q SavedQuery, values map[string]any, o RunOptions, co CacheOptions) (Fetched, error) {
	return s.fetchSaved(ctx, q, values, o, co)
}

// LoadMany loads several saved queries in one read without checking who
// asks (a dashboard's widgets); missing ids are absent from the answer.
func (s *Service) LoadMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]SavedQuery, error) {
	out := map[uuid.UUID]SavedQuery{}
	if len(ids) == 0 {
		return out, nil
	}
	qs, err := s.db.SavedQuery.Query().Where(savedquery.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		out[q.ID] = toAPI(q)
	}
	return out, nil
}

// Load returns a saved query without checking who may see it: for callers
// that authorized the access through something else (a dashboard's widget,
// a data model built on it).
func (s *Service) Load(ctx context.Context, id uuid.UUID) (SavedQuery, error) {
	q, err := s.db.SavedQuery.Get(ctx, id)
	if err != nil {
		if ent.IsNotFound(err) {
			return SavedQuery{}, errs.NotFound("query")
		}
		return SavedQuery{}, err
	}
	return toAPI(q), nil
}

func (s *Service) fetchSaved(ctx context.Context, q SavedQuery, values map[string]any, o RunOptions, co CacheOptions) (Fetched, error) {
	if q.DataSourceID == nil {
		return Fetched{}, errs.Invalid("data_source_id", "this query has no data source; set one first")
	}
	bound, err := Bind(q.Parameters, values)
	if err != nil {
		return Fetched{}, err
	}
	if co.TTL == nil && q.CacheTTLSeconds != nil {
		ttl := time.Duration(*q.CacheTTLSeconds) * time.Second
		co.TTL = &ttl
	}
	return s.Fetch(ctx, *q.DataSourceID, Template(q.SQL, bound), o, co)
}

// approxSize estimates a result's memory for the cache's byte bound.
func (r *Result) approxSize() int64 {
	n := int64(256)
	for _, c := range r.Columns {
		n += 64 + int64(len(c.Name)+len(c.ArrowType))
	}
	for _, row := range r.Rows {
		n += 24 + 16*int64(len(row))
		for _, v := range row {
			if s, ok := v.(string); ok {
				n += int64(len(s))
			}
		}
	}
	return n
}

// RunBuilt runs a built query on a data source as a stream (NDJSON / CSV
// output), bypassing the result cache.
func (s *Service) RunBuilt(ctx context.Context, dataSource uuid.UUID, build Builder, o RunOptions) (Batches, error) {
	conn, err := s.ds.Open(ctx, dataSource)
	if err != nil {
		return nil, err
	}
	sql, args, err := build(conn.Dialect)
	if err != nil {
		return nil, err
	}
	return s.start(ctx, conn, sql, args, o)
}

// CacheStats reports the result cache's counters (zero without a cache).
func (s *Service) CacheStats() resultcache.Stats {
	if s.caching.Cache == nil {
		return resultcache.Stats{}
	}
	return s.caching.Cache.Stats()
}
