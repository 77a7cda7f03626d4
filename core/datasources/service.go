// Package datasources holds the data sources DataSource users connect:
// their configuration (secrets sealed at rest, never returned), health,
// schema introspection and ad-hoc query execution through the connector host.
package datasources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/secrets"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/datasource"
	"github.com/datapulse/datapulse/ent/schema"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/policy"
)

// Service is the data sources domain.
type Service struct {
	db    *ent.Client
	pol   *policy.Enforcer
	conns *host.Host
	box   *secrets.Box
	log   *slog.Logger

	mu      sync.Mutex
	schemas map[string]*connectorSchema // by connector name + version

	// changed are told, after commit, that a source's settings changed or
	// that it was deleted (e.g. the result cache drops its results).
	changedMu sync.RWMutex
	changed   []func(id uuid.UUID)
}

// OnChanged registers fn to be called after a data source's configuration
// or cache settings changed, or after it was deleted. fn must not block.
func (s *Service) OnChanged(fn func(id uuid.UUID)) {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	s.changed = append(s.changed, fn)
}

func (s *Service) notifyChanged(id uuid.UUID) {
	s.changedMu.RLock()
	defer s.changedMu.RUnlock()
	for _, fn := range s.changed {
		fn(id)
	}
}

// New returns the data sources service.
func New(db *ent.Client, pol *policy.Enforcer, conns *host.Host, box *secrets.Box, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	detailLog.Store(log)
	return &Service{db: db, pol: pol, conns: conns, box: box, log: log, schemas: map[string]*connectorSchema{}}
}

// DataSource as the API shows it: configuration without secret values; each
// secret field appears as "<field>_set": true|false instead.
type DataSource struct {
	ID            uuid.UUID      `json:"id"`
	Name          string         `json:"name"`
	Type          string         `json:"type" doc:"connector name"`
	Config        map[string]any `json:"config"`
	Status        string         `json:"status" enum:"pending,connected,error,disabled"`
	LastSync      *time.Time     `json:"last_sync"`
	LastError     *string        `json:"last_error"`
	ConfigVersion int64          `json:"config_version"`
	// CacheTTLSeconds is how long results from this source stay cached;
	// null uses the server's default, 0 turns caching off.
	CacheTTLSeconds *int       `json:"cache_ttl_seconds"`
	CreatedBy       *uuid.UUID `json:"created_by"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// require checks a collection-level action on data sources: they are
// managed and used by role, not one by one.
func (s *Service) require(ctx context.Context, act policy.Action) (policy.Subject, error) {
	sub, err := policy.SubjectFrom(ctx)
	if err != nil {
		return sub, err
	}
	return sub, s.pol.RequireSubject(ctx, sub, policy.DataSources, act)
}

// requireUse allows whoever may run queries or manage sources to see them.
func (s *Service) requireUse(ctx context.Context) (policy.Subject, error) {
	return s.require(ctx, policy.DataSourcesUse)
}

// schemaOf returns a connector's compiled config schema. It asks the host
// about that one connector: it waits (within ctx) only for that connector's
// first start, never for another's, and a connector that cannot start
// answers with the reason.
func (s *Service) schemaOf(ctx context.Context, connector string) (*connectorSchema, host.ConnectorInfo, error) {
	c, err := s.conns.Connector(ctx, connector)
	if errors.Is(err, host.ErrUnknownConnector) {
		return nil, host.ConnectorInfo{}, errs.Invalid("type", fmt.Sprintf("no connector named %q", connector))
	}
	if err != nil && len(c.ConfigSchema) == 0 {
		return nil, c, ConnectorError(err)
	}
	return s.compiled(connector, c)
}

// compiled compiles (once per connector version) a described connector's
// config schema.
func (s *Service) compiled(connector string, c host.ConnectorInfo) (*connectorSchema, host.ConnectorInfo, error) {
	if len(c.ConfigSchema) == 0 {
		return nil, c, errs.Upstream(fmt.Sprintf("connector %s has not described its configuration (status %s: %s)", connector, c.Status, c.Reason))
	}
	key := c.Name + "@" + c.Version
	s.mu.Lock()
	cs, ok := s.schemas[key]
	s.mu.Unlock()
	if ok {
		return cs, c, nil
	}
	cs, err := compileSchema(json.RawMessage(c.ConfigSchema))
	if err != nil {
		return nil, c, errs.Upstream(fmt.Sprintf("connector %s: %v", connector, err))
	}
	s.mu.Lock()
	s.schemas[key] = cs
	s.mu.Unlock()
	return cs, c, nil
}

// shownSchema is schemaOf for showing a data source (which of its fields
// are secrets): it never waits for a connector, and nil means unknown yet.
func (s *Service) shownSchema(connector string) *connectorSchema {
	c, err := s.conns.Info(connector)
	if err != nil || len(c.ConfigSchema) == 0 {
		return nil
	}
	cs, _, _ := s.compiled(connector, c)
	return cs
}

func binding(id uuid.UUID, field string) string { return "data_source/" + id.String() + "/" + field }

// toAPI shows a row without secrets.
func (s *Service) toAPI(d *ent.DataSource, cs *connectorSchema) DataSource {
	cfg := make(map[string]any, len(d.Config)+len(d.Secrets))
	for k, v := range d.Config {
		cfg[k] = v
	}
	// Every secret field the schema declares (and any stored one) shows as
	// <field>_set, never with its value.
	names := map[string]bool{}
	for k := range d.Secrets {
		names[k] = true
	}
	if cs != nil {
		for _, k := range cs.secrets {
			names[k] = true
		}
	}
	for k := range names {
		_, set := d.Secrets[k]
		cfg[k+"_set"] = set
	}
	return DataSource{ID: d.ID, Name: d.Name, Type: d.Type, Config: cfg, Status: string(d.Status), LastSync: d.LastSync,
		LastError: d.LastError, ConfigVersion: d.ConfigVersion, CacheTTLSeconds: d.CacheTTLSeconds, CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// open decrypts a row's secrets for a call to its connector.
func (s *Service) open(d *ent.DataSource) (host.DataSource, error) {
	plain, err := json.Marshal(d.Config)
	if err != nil {
		return host.DataSource{}, err
	}
	sec := make(map[string]string, len(d.Secrets))
	for k, v := range d.Secrets {
		pt, err := s.box.Open(v, binding(d.ID, k))
		if err != nil {
			// Never the value, never the ciphertext.
			return host.DataSource{}, errs.Unavailable(fmt.Sprintf("secret %q of data source %s cannot be decrypted (was the encryption key changed?)", k, d.Name))
		}
		sec[k] = pt
	}
	return host.DataSource{ID: d.ID.String(), Version: d.ConfigVersion, Config: plain, Secrets: sec}, nil
}

// Input creates or changes a data source. On update, config keys present
// replace the stored ones; a secret given as "" or null is removed; absent
// secrets stay as they are.
type Input struct {
	Name   *string
	Type   string
	Config map[string]any
	// CacheTTLSeconds sets the result cache TTL; -1 clears it (server default).
	CacheTTLSeconds *int
}

// MaxCacheTTLSeconds bounds every configurable cache TTL (one week).
const MaxCacheTTLSeconds = 7 * 24 * 3600

// CheckTTL validates a result cache TTL given to the API in seconds (data
// sources, saved queries and dashboards): -1 clears it, 0 turns caching off.
func CheckTTL(v *int) error {
	if v != nil && (*v < -1 || *v > MaxCacheTTLSeconds) {
		return errs.Invalid("cache_ttl_seconds", "cache_ttl_seconds must be -1 (inherit), 0 (no caching) or up to 604800")
	}
	return nil
}

// StoredTTL is the TTL to store for a new row: nil when absent or cleared.
func StoredTTL(v *int) *int {
	if v == nil || *v < 0 {
		return nil
	}
	return v
}

func checkName(v *string) (string, error) {
	if v == nil {
		return "", errs.Invalid("name", "name is required")
	}
	n := strings.TrimSpace(*v)
	if n == "" || len([]rune(n)) > 100 || strings.ContainsAny(n, "\x00\r\n") {
		return "", errs.Invalid("name", "name must be 1 to 100 characters on one line")
	}
	return n, nil
}

// prepare validates a full configuration for a connector and splits it into
// stored plain values and sealed secrets for row id.
func (s *Service) prepare(ctx context.Context, connector string, id uuid.UUID, version int64, cfg map[string]any) (map[string]any, map[string]string, error) {
	cs, _, err := s.schemaOf(ctx, connector)
	if err != nil {
		return nil, nil, err
	}
	if fe := cs.validate(cfg); len(fe) > 0 {
		return nil, nil, invalidConfig(fe)
	}
	plain := map[string]any{}
	sealed := map[string]string{}
	secretVals := map[string]string{}
	for k, v := range cfg {
		if !cs.isSecret(k) {
			plain[k] = v
			continue
		}
		str, ok := v.(string)
		if !ok {
			return nil, nil, errs.Invalid("config/"+k, "secret fields are strings")
		}
		if str == "" {
			continue
		}
		secretVals[k] = str
		sv, err := s.box.Seal(str, binding(id, k))
		if err != nil {
			return nil, nil, err
		}
		sealed[k] = sv
	}
	raw, err := json.Marshal(plain)
	if err != nil {
		return nil, nil, err
	}
	fe, err := s.conns.ValidateConfig(ctx, connector, host.DataSource{ID: id.String(), Version: version, Config: raw, Secrets: secretVals})
	if err != nil {
		return nil, nil, ConnectorError(err)
	}
	if len(fe) > 0 {
		out := make([]FieldError, len(fe))
		for i, e := range fe {
			out[i] = FieldError{Field: e.Field, Message: e.Message}
		}
		return nil, nil, invalidConfig(out)
	}
	return plain, sealed, nil
}

// invalidConfig reports every field error of a configuration; fields are
// JSON pointers under config (e.g. config/port).
func invalidConfig(fe []FieldError) error {
	parts := make([]string, len(fe))
	fields := make([]errs.FieldError, len(fe))
	for i, f := range fe {
		name := "config" + f.Field
		parts[i] = name + ": " + f.Message
		fields[i] = errs.FieldError{Field: name, Message: f.Message}
	}
	return errs.InvalidFields("config is invalid: "+strings.Join(parts, "; "), fields)
}

// ConnectorError turns a host failure into a domain error for the client.
func ConnectorError(err error) error {
	var ce *host.ConnectorError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		if m, ok := clientTypeError(ce.Message); ok {
			return errs.Invalid("parameters", m)
		}
		if connectFailure(ce.Message) {
			// The driver's text (FATAL lines, host, user, database) is for
			// the server log, not the client.
			logDetail("data source connection failed", ce.Code.String(), ce.Message)
			switch ce.Code {
			case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.Unauthenticated:
				return errs.Upstream("the data source refused the connection (check its host, database, user and password); details are in the server log")
			}
			return errs.Unavailable("the data source is unreachable or not accepting connections; try again later (details are in the server log)")
		}
		// The connector's own classification decides whose fault it is.
		switch ce.Code {
		case codes.InvalidArgument, codes.NotFound, codes.ResourceExhausted, codes.Unimplemented, codes.OutOfRange:
			return errs.Invalid("sql", ce.Message)
		case codes.PermissionDenied:
			return errs.Forbidden(ce.Message)
		case codes.Unavailable:
			return errs.Unavailable(ce.Message)
		case codes.DeadlineExceeded:
			return errs.UpstreamTimeout(ce.Message)
		}
		return errs.Upstream(ce.Message)
	case errors.Is(err, host.ErrInvalidParameter):
		// A value the protocol cannot carry (an object inside a list…).
		return errs.Invalid("parameters", strings.TrimPrefix(err.Error(), host.ErrInvalidParameter.Error()+": "))
	case errors.Is(err, host.ErrConnectorTimeout), errors.Is(err, context.DeadlineExceeded):
		return errs.UpstreamTimeout("the connector did not answer in time")
	case errors.Is(err, host.ErrConnectorUnavailable):
		return errs.Unavailable(err.Error())
	case errors.Is(err, host.ErrUnknownConnector):
		// A stored source whose connector is no longer installed.
		return errs.Unavailable(err.Error())
	case errors.Is(err, host.ErrConnectorCrashed), errors.Is(err, host.ErrConnectorStart),
		errors.Is(err, host.ErrProtocol), errors.Is(err, host.ErrConnectorDisabled), errors.Is(err, host.ErrResultTooLarge):
		return errs.Upstream(err.Error())
	}
	return err
}

// Create adds a data source (datasources:manage).
func (s *Service) Create(ctx context.Context, in Input) (DataSource, error) {
	sub, err := s.require(ctx, policy.DatasourcesManage)
	if err != nil {
		return DataSource{}, err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return DataSource{}, err
	}
	if in.Config == nil {
		in.Config = map[string]any{}
	}
	id := schema.NewID()
	plain, sealed, err := s.prepare(ctx, in.Type, id, 1, in.Config)
	if err != nil {
		return DataSource{}, err
	}
	if err := CheckTTL(in.CacheTTLSeconds); err != nil {
		return DataSource{}, err
	}
	c := s.db.DataSource.Create().SetID(id).SetName(name).SetType(in.Type).SetConfig(plain).SetSecrets(sealed).
		SetNillableCacheTTLSeconds(StoredTTL(in.CacheTTLSeconds))
	if !sub.System {
		c.SetCreatedBy(sub.UserID)
	}
	d, err := c.Save(ctx)
	if ent.IsConstraintError(err) {
		return DataSource{}, errs.Conflict("a data source with this name already exists")
	}
	if err != nil {
		return DataSource{}, err
	}
	cs := s.shownSchema(d.Type)
	return s.toAPI(d, cs), nil
}

// List lists data sources (queries:run or datasources:manage).
func (s *Service) List(ctx context.Context, q string, p paging.Params) (paging.Page[DataSource], error) {
	if _, err := s.requireUse(ctx); err != nil {
		return paging.Page[DataSource]{}, err
	}
	p, err := p.Normalize()
	if err != nil {
		return paging.Page[DataSource]{}, err
	}
	field, desc, err := p.SortField("name", "name", "created_at", "updated_at", "type", "status")
	if err != nil {
		return paging.Page[DataSource]{}, err
	}
	query := s.db.DataSource.Query()
	if q = strings.TrimSpace(q); q != "" {
		query.Where(datasource.NameContainsFold(q))
	}
	order := ent.Asc(field)
	if desc {
		order = ent.Desc(field)
	}
	return paging.Collect(ctx, p, query.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.DataSource, error) {
			return query.Order(order, ent.Asc(datasource.FieldID)).Offset(off).Limit(n).All(ctx)
		}, func(d *ent.DataSource) DataSource {
			cs := s.shownSchema(d.Type)
			return s.toAPI(d, cs)
		})
}

func (s *Service) get(ctx context.Context, id uuid.UUID) (*ent.DataSource, error) {
	d, err := s.db.DataSource.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("data source")
	}
	return d, err
}

// Get returns one data source (queries:run or datasources:manage).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (DataSource, error) {
	if _, err := s.requireUse(ctx); err != nil {
		return DataSource{}, err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return DataSource{}, err
	}
	cs := s.shownSchema(d.Type)
	return s.toAPI(d, cs), nil
}

// Update changes a data source (datasources:manage). The connector type
// cannot change.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in Input) (DataSource, error) {
	sub, err := s.require(ctx, policy.DatasourcesManage)
	if err != nil {
		return DataSource{}, err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return DataSource{}, err
	}
	if in.Type != "" && in.Type != d.Type {
		return DataSource{}, errs.Invalid("type", "the connector of a data source cannot change; create a new one")
	}
	up := s.db.DataSource.UpdateOne(d)
	if err := CheckTTL(in.CacheTTLSeconds); err != nil {
		return DataSource{}, err
	}
	if v := in.CacheTTLSeconds; v != nil && *v < 0 {
		up.ClearCacheTTLSeconds()
	} else if v != nil {
		up.SetCacheTTLSeconds(*v)
	}
	if in.Name != nil {
		name, err := checkName(in.Name)
		if err != nil {
			return DataSource{}, err
		}
		up.SetName(name)
	}
	if in.Config != nil {
		cs, _, err := s.schemaOf(ctx, d.Type)
		if err != nil {
			return DataSource{}, err
		}
		if !sub.System && !s.pol.Facts().IsAdmin(sub.UserID) {
			if err := requireSecretsAgain(cs, d, in.Config); err != nil {
				return DataSource{}, err
			}
		}
		// Merge: the stored config and secrets, overlaid by what was sent.
		current, err := s.open(d)
		if err != nil {
			return DataSource{}, err
		}
		merged := map[string]any{}
		for k, v := range d.Config {
			merged[k] = v
		}
		for k, v := range current.Secrets {
			merged[k] = v
		}
		for k, v := range in.Config {
			if v == nil || (cs.isSecret(k) && v == "") {
				delete(merged, k)
				continue
			}
			merged[k] = v
		}
		plain, sealed, err := s.prepare(ctx, d.Type, d.ID, d.ConfigVersion+1, merged)
		if err != nil {
			return DataSource{}, err
		}
		up.SetConfig(plain).SetSecrets(sealed).SetConfigVersion(d.ConfigVersion + 1).SetStatus(datasource.StatusPending).ClearLastError()
	}
	nd, err := up.Save(ctx)
	if ent.IsConstraintError(err) {
		return DataSource{}, errs.Conflict("a data source with this name already exists")
	}
	if err != nil {
		return DataSource{}, err
	}
	if in.Config != nil {
		s.conns.Dispose(ctx, d.Type, d.ID.String())
	}
	if in.Config != nil || in.CacheTTLSeconds != nil {
		// What was derived from the old settings must not outlive them.
		s.notifyChanged(d.ID)
	}
	cs := s.shownSchema(nd.Type)
	return s.toAPI(nd, cs), nil
}

// Delete removes a data source; its saved queries stay, without a source.
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	if _, err := s.require(ctx, policy.DatasourcesManage); err != nil {
		return err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if err := s.db.DataSource.DeleteOne(d).Exec(ctx); err != nil {
		return err
	}
	s.conns.Dispose(ctx, d.Type, d.ID.String())
	s.notifyChanged(d.ID)
	return nil
}

// Health checks a data source through its connector and records the result
// (datasources:manage).
func (s *Service) Health(ctx context.Context, id uuid.UUID) (DataSource, host.Health, error) {
	if _, err := s.require(ctx, policy.DatasourcesManage); err != nil {
		return DataSource{}, host.Health{}, err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return DataSource{}, host.Health{}, err
	}
	ds, err := s.open(d)
	if err != nil {
		return DataSource{}, host.Health{}, err
	}
	h, herr := s.conns.CheckHealth(ctx, d.Type, ds)
	up := s.db.DataSource.UpdateOne(d).SetLastSync(time.Now().UTC())
	switch {
	case herr != nil:
		msg := ConnectorError(herr).Error()
		up.SetStatus(datasource.StatusError).SetLastError(msg)
		h = host.Health{OK: false, Message: msg}
	case !h.OK:
		if connectFailure(h.Message) {
			logDetail("data source connection failed", "health", h.Message)
			h.Message = "the data source refused the connection or is unreachable (check its host, port, database, user and password); details are in the server log"
		}
		up.SetStatus(datasource.StatusError).SetLastError(h.Message)
	default:
		up.SetStatus(datasource.StatusConnected).ClearLastError()
	}
	nd, err := up.Save(ctx)
	if err != nil {
		return DataSource{}, h, err
	}
	cs := s.shownSchema(nd.Type)
	return s.toAPI(nd, cs), h, nil
}

// Conn is a data source opened for running queries.
type Conn struct {
	Connector string // connector name
	Dialect   string // its SQL dialect: postgres, mysql, sqlite, …
	Source    host.DataSource
	// CacheTTLSeconds is the source's result cache TTL (nil: server default).
	CacheTTLSeconds *int
}

type openMemoKey struct{}

type openMemo struct {
	mu   sync.Mutex
	open map[uuid.UUID]*opened
}

type opened struct {
	once sync.Once
	conn Conn
	err  error
}

// WithOpenMemo returns a context in which Open remembers every data source
// it opened: one request running many queries (a dashboard render) checks
// authorization, reads the row and decrypts its secrets once per source.
// The context must stay within that one request (one caller).
func WithOpenMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, openMemoKey{}, &openMemo{open: map[uuid.UUID]*opened{}})
}

// Open opens a data source for running a query (queries:run): the
// connector, its SQL dialect and the decrypted configuration.
func (s *Service) Open(ctx context.Context, id uuid.UUID) (Conn, error) {
	m, ok := ctx.Value(openMemoKey{}).(*openMemo)
	if !ok {
		return s.openConn(ctx, id)
	}
	m.mu.Lock()
	o := m.open[id]
	if o == nil {
		o = &opened{}
		m.open[id] = o
	}
	m.mu.Unlock()
	o.once.Do(func() { o.conn, o.err = s.openConn(ctx, id) })
	return o.conn, o.err
}

func (s *Service) openConn(ctx context.Context, id uuid.UUID) (Conn, error) {
	if err := s.pol.Require(ctx, policy.DataSources, policy.QueriesRun); err != nil {
		return Conn{}, err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return Conn{}, err
	}
	_, info, err := s.schemaOf(ctx, d.Type)
	if errors.Is(err, errs.ErrInvalid) {
		return Conn{}, errs.Unavailable(fmt.Sprintf("connector %q of this data source is not installed", d.Type))
	}
	if err != nil {
		return Conn{}, err
	}
	ds, err := s.open(d)
	if err != nil {
		return Conn{}, err
	}
	return Conn{Connector: d.Type, Dialect: info.SQLDialect, Source: ds, CacheTTLSeconds: d.CacheTTLSeconds}, nil
}

// Describe returns the columns of the given tables of a data source
// (queries:run or datasources:manage); tables that do not exist are absent
// from the answer.
func (s *Service) Describe(ctx context.Context, id uuid.UUID, tables []host.TableRef) ([]host.TableInfo, error) {
	if _, err := s.requireUse(ctx); err != nil {
		return nil, err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	ds, err := s.open(d)
	if err != nil {
		return nil, err
	}
	// One table per call: connectors answer NotFound for the whole call when
	// one table is missing, and a missing table is an answer here.
	var infos []host.TableInfo
	for _, t := range tables {
		got, err := s.conns.DescribeTables(ctx, d.Type, ds, []host.TableRef{t})
		var ce *host.ConnectorError
		if errors.As(err, &ce) && ce.Code == codes.NotFound {
			continue
		}
		if err != nil {
			return nil, ConnectorError(err)
		}
		infos = append(infos, got...)
	}
	return infos, nil
}

// Schema is a data source's structure for query and model editors.
type Schema struct {
	Namespaces []string      `json:"namespaces"`
	Tables     []SchemaTable `json:"tables"`
	// Truncated is set when the source has more tables than one answer holds.
	Truncated bool `json:"truncated"`
}

// SchemaTable is one table with its columns.
type SchemaTable struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Kind      string         `json:"kind"`
	Columns   []SchemaColumn `json:"columns"`
}

// SchemaColumn is one column.
type SchemaColumn struct {
	Name       string `json:"name"`
	NativeType string `json:"native_type"`
	ArrowType  string `json:"arrow_type"`
	Nullable   bool   `json:"nullable"`
}

// MaxSchemaTables bounds one schema answer.
const MaxSchemaTables = 2000

// Schema lists namespaces, tables and columns through the connector's paged
// introspection (queries:run or datasources:manage).
func (s *Service) Schema(ctx context.Context, id uuid.UUID) (Schema, error) {
	if _, err := s.requireUse(ctx); err != nil {
		return Schema{}, err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return Schema{}, err
	}
	ds, err := s.open(d)
	if err != nil {
		return Schema{}, err
	}
	out := Schema{Namespaces: []string{}, Tables: []SchemaTable{}}
	token := ""
	for {
		ns, next, err := s.conns.ListNamespaces(ctx, d.Type, ds, 500, token)
		if err != nil {
			return Schema{}, ConnectorError(err)
		}
		out.Namespaces = append(out.Namespaces, ns...)
		if next == "" || len(out.Namespaces) > 10_000 {
			break
		}
		token = next
	}
	var refs []host.TableRef
	for _, ns := range append([]string{""}, out.Namespaces...) {
		if ns == "" && len(out.Namespaces) > 0 {
			continue
		}
		token = ""
		for {
			ts, next, err := s.conns.ListTables(ctx, d.Type, ds, ns, 500, token)
			if err != nil {
				return Schema{}, ConnectorError(err)
			}
			refs = append(refs, ts...)
			if len(refs) >= MaxSchemaTables {
				refs, out.Truncated = refs[:MaxSchemaTables], true
				break
			}
			if next == "" {
				break
			}
			token = next
		}
		if out.Truncated {
			break
		}
	}
	for start := 0; start < len(refs); start += 100 {
		end := min(start+100, len(refs))
		infos, err := s.conns.DescribeTables(ctx, d.Type, ds, refs[start:end])
		if err != nil {
			return Schema{}, ConnectorError(err)
		}
		for _, ti := range infos {
			t := SchemaTable{Namespace: ti.Ref.Namespace, Name: ti.Ref.Name, Kind: ti.Ref.Kind, Columns: make([]SchemaColumn, len(ti.Columns))}
			for i, c := range ti.Columns {
				t.Columns[i] = SchemaColumn{Name: c.Name, NativeType: c.NativeType, ArrowType: c.ArrowType, Nullable: c.Nullable}
			}
			out.Tables = append(out.Tables, t)
		}
	}
	return out, nil
}

// requireSecretsAgain refuses an update that re-points a data source (host,
// port, database, user, TLS settings…: any non-secret field that is not
// clearly harmless) while keeping stored secrets the caller did not give
// again: otherwise whoever may manage sources could send the stored password
// to a server of their choosing with a health check. Instance admins are
// exempt (the caller checks).
func requireSecretsAgain(cs *connectorSchema, d *ent.DataSource, update map[string]any) error {
	changed := identityChanges(cs, d.Config, update)
	if len(changed) == 0 {
		return nil
	}
	var missing []string
	for _, k := range cs.secrets {
		if _, stored := d.Secrets[k]; !stored {
			continue
		}
		if _, given := update[k]; !given {
			missing = append(missing, k)
		}
	}
	for k := range d.Secrets {
		// A stored secret the current schema no longer declares.
		if !cs.isSecret(k) {
			if _, given := update[k]; !given {
				missing = append(missing, k)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	msg := "changing " + strings.Join(changed, ", ") + " requires " + strings.Join(missing, ", ") + " to be given again"
	fields := make([]errs.FieldError, len(missing))
	for i, k := range missing {
		fields[i] = errs.FieldError{Field: "config/" + k, Message: msg}
	}
	return errs.InvalidFields(msg, fields)
}

// detailLog receives what is kept from clients (set by New).
var detailLog atomic.Pointer[slog.Logger]

func logDetail(msg, code, detail string) {
	if l := detailLog.Load(); l != nil {
		l.Warn(msg, "code", code, "detail", detail)
	}
}

// connectFailure reports whether a connector's message is a failure to
// connect or a server-side FATAL (authentication, missing database,
// shutdown), whose text names hosts, users and databases.
func connectFailure(msg string) bool {
	return strings.Contains(msg, "FATAL:") || strings.HasPrefix(msg, "failed to connect to") ||
		strings.Contains(msg, "dial error") || strings.Contains(msg, "connection refused")
}

// clientTypeError recognises a driver's complaint that a parameter value
// does not fit its placeholder (Go internals such as []*string{…(0xc…)})
// and gives a message without them.
func clientTypeError(msg string) (string, bool) {
	if !strings.Contains(msg, "unable to encode") && !strings.Contains(msg, "failed to encode args") &&
		!strings.Contains(msg, "(0x") {
		return "", false
	}
	out := "a parameter value has a type its placeholder cannot take (e.g. text for a number, or a list of the wrong type)"
	if i := strings.Index(msg, "args["); i >= 0 {
		j := strings.IndexByte(msg[i:], ']')
		if j > 0 {
			if n, err := strconv.Atoi(msg[i+5 : i+j]); err == nil {
				out = fmt.Sprintf("parameter %d: %s", n+1, out)
			}
		}
	}
	return out, true
}
