// Package postgres is the built-in PostgreSQL connector (pgx, natively).
//
// Read-only is enforced by PostgreSQL:
//   - every query runs in its own transaction started with BEGIN READ ONLY,
//     after a first statement (so the mode can no longer be changed), and is
//     always rolled back (which also undoes any SET it made);
//   - sessions start with default_transaction_read_only=on;
//   - the connector refuses to work as a role that can escape a read-only
//     transaction: a superuser (or a member of one), or a member of
//     pg_execute_server_program, pg_write_server_files or
//     pg_read_server_files. Those roles can run COPY … TO PROGRAM or write
//     server files even in a read-only transaction (checked here: it works).
//     The check runs on every new connection, so PostgreSQL's own
//     privilege system refuses those commands;
//   - the connector also refuses a role with write privileges on the
//     database (INSERT, UPDATE, DELETE, TRUNCATE on any table, MAINTAIN,
//     CREATE on the database or a schema): such a role can LOCK TABLE … IN
//     ACCESS EXCLUSIVE MODE, which a read-only transaction allows, and block
//     every other session reading the table;
//   - the connector refuses DataPulse's own metadata database (listed in
//     DATAPULSE_FORBIDDEN_DATABASES by the host): by host, port and name
//     before connecting, by the cluster's system identifier and the
//     database's OID (or server address, port and name) after;
//   - sessions run with a lock_timeout (5 s) and an
//     idle_in_transaction_session_timeout (1 min).
//
// The configuration admits only host, port, database, user, password
// (secret), sslmode (from a fixed set) and application_name; the connection
// string is built from them, so no other libpq parameter (options,
// passfile, service, sslrootcert, …) can be injected, and ~/.pgpass is
// never consulted. Unix sockets and host lists are refused.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datapulse/datapulse/plugins/builtin/internal/dbguard"
	"github.com/datapulse/datapulse/plugins/sdk"
)

// Version is the connector's version.
const Version = "1.0.0"

// Connector is the PostgreSQL connector.
type Connector struct {
	pools sdk.Instances[*pgxpool.Pool]
	// MaxConns per data source when its config sets no max_connections
	// (default 20: the widgets of a dashboard run concurrently).
	MaxConns int32
	// LockTimeout is the sessions' lock_timeout (default 5s).
	LockTimeout time.Duration
	// allowWriters accepts a login with write privileges (tests only).
	allowWriters bool
	// forbidden are databases never to connect to (DataPulse's own, from
	// DATAPULSE_FORBIDDEN_DATABASES); forbiddenErr is set when that list
	// does not parse, and then every connection is refused.
	forbidden    []dbguard.Database
	forbiddenErr error
}

// New returns the connector.
func New() sdk.Connector { return NewConnector() }

// NewConnector returns the connector as its concrete type.
func NewConnector() *Connector {
	c := &Connector{MaxConns: 20, LockTimeout: 5 * time.Second}
	c.forbidden, c.forbiddenErr = dbguard.FromEnv("postgres")
	c.pools.New = c.open
	c.pools.Close = func(p *pgxpool.Pool) { p.Close() }
	return c
}

// SSLModes are the accepted sslmode values.
var SSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "title": "PostgreSQL",
  "properties": {
    "host": {"type": "string", "title": "Host", "description": "Host name or IP address (no Unix sockets, no host lists)", "minLength": 1, "maxLength": 253},
    "port": {"type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 5432},
    "database": {"type": "string", "title": "Database", "minLength": 1, "maxLength": 63},
    "user": {"type": "string", "title": "User", "description": "A role with SELECT privileges only: not a superuser, no write or CREATE privileges, not in pg_execute_server_program, pg_write_server_files or pg_read_server_files", "minLength": 1, "maxLength": 63},
    "password": {"type": "string", "title": "Password", "x-secret": true, "writeOnly": true, "maxLength": 1024},
    "sslmode": {"type": "string", "title": "SSL mode", "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], "default": "prefer"},
    "application_name": {"type": "string", "title": "Application name", "maxLength": 63, "default": "datapulse"},
    "max_connections": {"type": "integer", "title": "Max connections", "description": "Most queries this data source runs at once (a dashboard's widgets run concurrently)", "minimum": 1, "maximum": 200, "default": 20}
  },
  "required": ["host", "database", "user"],
  "additionalProperties": false
}`

func (c *Connector) Describe() sdk.Description {
	return sdk.Description{
		Name:         "postgres",
		DisplayName:  "PostgreSQL",
		Version:      Version,
		Capabilities: []string{sdk.CapabilitySQL, sdk.CapabilityParameters, sdk.CapabilityIntrospection, sdk.CapabilityCancel},
		ConfigSchema: json.RawMessage(schema),
		SQLDialect:   "postgres",
	}
}

type config struct {
	Host            string `json:"host"`
	Port            *int   `json:"port"`
	Database        string `json:"database"`
	User            string `json:"user"`
	Password        string `json:"password"`
	SSLMode         string `json:"sslmode"`
	ApplicationName string `json:"application_name"`
	MaxConnections  *int   `json:"max_connections"`
}

var hostnameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// parseConfig decodes and checks a configuration.
func parseConfig(cfg sdk.Config) (config, error) {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return c, err
	}
	var fes sdk.FieldErrors
	add := func(field, msg string) { fes = append(fes, sdk.FieldError{Field: field, Message: msg}) }
	switch {
	case c.Host == "":
		add("/host", "is required")
	case net.ParseIP(strings.Trim(c.Host, "[]")) == nil && !hostnameRe.MatchString(c.Host):
		add("/host", "must be a host name or an IP address (Unix sockets and host lists are not allowed)")
	case len(c.Host) > 253:
		add("/host", "is too long")
	}
	if c.Port != nil && (*c.Port < 1 || *c.Port > 65535) {
		add("/port", "must be between 1 and 65535")
	}
	for field, v := range map[string]string{"/database": c.Database, "/user": c.User} {
		switch {
		case v == "":
			add(field, "is required")
		case len(v) > 63:
			add(field, "is longer than 63 bytes")
		case strings.ContainsRune(v, 0):
			add(field, "must not contain NUL")
		}
	}
	if strings.ContainsRune(c.Password, 0) {
		add("/password", "must not contain NUL")
	}
	if c.MaxConnections != nil && (*c.MaxConnections < 1 || *c.MaxConnections > 200) {
		add("/max_connections", "must be between 1 and 200")
	}
	if c.SSLMode == "" {
		c.SSLMode = "prefer"
	}
	valid := false
	for _, m := range SSLModes {
		valid = valid || c.SSLMode == m
	}
	if !valid {
		add("/sslmode", "must be one of "+strings.Join(SSLModes, ", "))
	}
	if c.ApplicationName == "" {
		c.ApplicationName = "datapulse"
	}
	if len(c.ApplicationName) > 63 || strings.IndexFunc(c.ApplicationName, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		add("/application_name", "must be at most 63 printable ASCII characters")
	}
	if len(fes) > 0 {
		return c, fes
	}
	return c, nil
}

// quote quotes a keyword/value connection-string value.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// poolConfig builds the pool configuration from a checked configuration.
// The connection string holds only the fields above; passfile is set empty so
// that no password file is read, and the password is set afterwards.
func (c *Connector) poolConfig(conf config) (*pgxpool.Config, error) {
	port := 5432
	if conf.Port != nil {
		port = *conf.Port
	}
	cs := strings.Join([]string{
		"host=" + quote(strings.Trim(conf.Host, "[]")),
		"port=" + strconv.Itoa(port),
		"dbname=" + quote(conf.Database),
		"user=" + quote(conf.User),
		"sslmode=" + quote(conf.SSLMode),
		"passfile=''",
		"connect_timeout=10",
	}, " ")
	pc, err := pgxpool.ParseConfig(cs)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "invalid connection settings")
	}
	cc := pc.ConnConfig
	cc.Password = conf.Password
	// Only these runtime parameters: none from the environment (PGOPTIONS).
	// lock_timeout: a query waiting for a lock (behind a migration's ALTER
	// TABLE, say) fails instead of queueing until the statement timeout and
	// holding up everything queued behind it. A transaction left idle (a
	// stalled connector) ends after a minute.
	lockTimeout := c.LockTimeout
	if lockTimeout <= 0 {
		lockTimeout = 5 * time.Second
	}
	cc.RuntimeParams = map[string]string{
		"application_name":                    conf.ApplicationName,
		"default_transaction_read_only":       "on",
		"lock_timeout":                        strconv.FormatInt(max(lockTimeout.Milliseconds(), 1), 10),
		"idle_in_transaction_session_timeout": "60000",
	}
	// A cancelled context sends a cancel request, so the server stops the
	// query at once instead of running on until it next writes to the
	// closed socket.
	// Statement descriptions are cached, not prepared statements: a query
	// running DEALLOCATE ALL cannot break the connection for the next one.
	cc.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	cc.BuildContextWatcherHandler = func(conn *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: conn, CancelRequestDelay: 0, DeadlineDelay: 2 * time.Second}
	}
	pc.MaxConns = c.MaxConns
	if conf.MaxConnections != nil {
		pc.MaxConns = int32(*conf.MaxConnections)
	}
	if pc.MaxConns <= 0 {
		pc.MaxConns = 20
	}
	pc.MinConns = 0
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.MaxConnLifetime = time.Hour
	allowWriters, forbidden := c.allowWriters, c.forbidden
	pc.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := checkRole(ctx, conn, allowWriters); err != nil {
			return err
		}
		return checkNotForbidden(ctx, conn, forbidden)
	}
	return pc, nil
}

// checkNotForbidden refuses a connection that reached a forbidden database
// (DataPulse's own): the same cluster (system identifier) and database
// (OID), or — when the login may not read the system identifier — the same
// database name at the same server address and port. It runs on every new
// connection: a host name can resolve elsewhere later.
func checkNotForbidden(ctx context.Context, conn *pgx.Conn, forbidden []dbguard.Database) error {
	if len(forbidden) == 0 {
		return nil
	}
	var id dbguard.Identity
	var oid int64
	var addr pgtype.Text
	var port pgtype.Int4
	if err := conn.QueryRow(ctx, `SELECT current_database(), d.oid::int8, host(inet_server_addr()), inet_server_port()
		FROM pg_database d WHERE d.datname = current_database()`).Scan(&id.Database, &oid, &addr, &port); err != nil {
		return err
	}
	id.DatabaseOID, id.ServerAddr, id.ServerPort = uint32(oid), addr.String, int(port.Int32)
	// pg_control_system() may have been revoked from the login: the
	// failed statement is inside no transaction, so the session goes on.
	var sysid pgtype.Text
	if err := conn.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&sysid); err == nil {
		id.SystemIdentifier = sysid.String
	} else if ctx.Err() != nil {
		return err
	}
	if dbguard.Reached(forbidden, id) {
		return sdk.WithCode(sdk.CodePermissionDenied, dbguard.ErrForbidden)
	}
	return nil
}

// checkRole refuses a role that could escape a read-only transaction, or
// that holds write privileges on the database.
func checkRole(ctx context.Context, conn *pgx.Conn, allowWriters bool) error {
	var super, program, write, read bool
	err := conn.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolsuper AND pg_has_role(current_user, r.oid, 'MEMBER')),
		pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'),
		pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'),
		pg_has_role(current_user, 'pg_read_server_files', 'MEMBER')`).Scan(&super, &program, &write, &read)
	if err != nil {
		return err
	}
	var what []string
	if super {
		what = append(what, "is (or can become) a superuser")
	}
	if program {
		what = append(what, "can run programs on the server (pg_execute_server_program)")
	}
	if write {
		what = append(what, "can write server files (pg_write_server_files)")
	}
	if read {
		what = append(what, "can read server files (pg_read_server_files)")
	}
	if len(what) > 0 {
		return sdk.Errorf(sdk.CodePermissionDenied,
			"the role %q %s: a read-only transaction does not stop that; connect as a role without these privileges",
			conn.Config().User, strings.Join(what, " and "))
	}
	if allowWriters {
		return nil
	}
	// A role that may write a table may also LOCK it in ACCESS EXCLUSIVE
	// mode, which PostgreSQL allows in a read-only transaction (also inside
	// a DO block): one query would block every reader of the table for as
	// long as it runs. A role with SELECT alone can take only ACCESS SHARE
	// locks. Write privileges count however they are held: granted on the
	// table or some of its columns, as its owner, through a role or
	// pg_write_all_data (has_*_privilege follows all of them); MAINTAIN
	// (PostgreSQL 17) also allows LOCK TABLE. CREATE on the database or on a
	// schema (beyond what every role has) is refused as well: it is not
	// needed to read.
	var server int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&server); err != nil {
		return err
	}
	privs := "INSERT, UPDATE, DELETE, TRUNCATE"
	if server >= 170000 {
		privs += ", MAINTAIN"
	}
	var table, schema string
	var db bool
	err = conn.QueryRow(ctx, `SELECT
		coalesce((SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
			AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
			AND (has_table_privilege(c.oid, $1) OR has_any_column_privilege(c.oid, 'INSERT, UPDATE'))
			LIMIT 1), ''),
		coalesce((SELECT format('%I', n.nspname) FROM pg_namespace n
			WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
			AND has_schema_privilege(n.oid, 'CREATE') AND NOT has_schema_privilege('public', n.oid, 'CREATE')
			LIMIT 1), ''),
		has_database_privilege(current_database(), 'CREATE')`, privs).Scan(&table, &schema, &db)
	if err != nil {
		return err
	}
	switch {
	case table != "":
		what = append(what, "may write the table "+table)
	case schema != "":
		what = append(what, "may create objects in the schema "+schema)
	case db:
		what = append(what, "may create schemas in the database")
	}
	if len(what) > 0 {
		return sdk.Errorf(sdk.CodePermissionDenied,
			"the role %q %s: a role with write privileges can lock tables through a read-only query and block other sessions; connect as a role with SELECT privileges only",
			conn.Config().User, what[0])
	}
	return nil
}

func (c *Connector) open(ctx context.Context, cfg sdk.Config) (*pgxpool.Pool, error) {
	conf, err := parseConfig(cfg)
	if err != nil {
		return nil, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	if c.forbiddenErr != nil {
		return nil, sdk.Errorf(sdk.CodeInternal, "the connector's list of forbidden databases is invalid: %v", c.forbiddenErr)
	}
	if len(c.forbidden) > 0 {
		// Before connecting: the address names DataPulse's own database.
		port := 5432
		if conf.Port != nil {
			port = *conf.Port
		}
		host := strings.Trim(conf.Host, "[]")
		var addrs []string
		if net.ParseIP(host) == nil {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			addrs, _ = net.DefaultResolver.LookupHost(rctx, host)
			cancel()
		}
		if dbguard.Named(c.forbidden, host, addrs, port, conf.Database) {
			return nil, sdk.WithCode(sdk.CodePermissionDenied, dbguard.ErrForbidden)
		}
	}
	pc, err := c.poolConfig(conf)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, mapErr(ctx, err)
	}
	// Connect once now: bad credentials and refused roles show here.
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, mapErr(pctx, err)
	}
	return pool, nil
}

// mapErr gives PostgreSQL and pgx errors an SDK code.
func mapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *sdk.Error
	if errors.As(err, &se) {
		return se
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "25006" || pe.Code == "42501" || strings.HasPrefix(pe.Code, "28"):
			return sdk.WithCode(sdk.CodePermissionDenied, err)
		case pe.Code == "55P03":
			// lock_timeout: another session holds a lock on the table.
			return sdk.WithCode(sdk.CodeUnavailable, err)
		case pe.Code == "57014":
			return fmt.Errorf("the statement timed out: %w", context.DeadlineExceeded)
		case pe.Code == "3D000":
			return sdk.WithCode(sdk.CodeNotFound, err)
		case strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57"):
			return sdk.WithCode(sdk.CodeUnavailable, err)
		case strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "54"):
			return sdk.WithCode(sdk.CodeResourceExhausted, err)
		default:
			return sdk.WithCode(sdk.CodeInvalidArgument, err)
		}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) {
		return sdk.WithCode(sdk.CodeUnavailable, err)
	}
	return err
}

func (c *Connector) pool(ctx context.Context, cfg sdk.Config) (*pgxpool.Pool, error) {
	return c.pools.Get(ctx, cfg)
}

func (c *Connector) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	_, err := parseConfig(cfg)
	return sdk.AsFieldErrors(err)
}

func (c *Connector) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	start := time.Now()
	pool, err := c.pool(ctx, cfg)
	if err != nil {
		return sdk.Health{}, err
	}
	var v string
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return sdk.Health{}, mapErr(ctx, err)
	}
	return sdk.Health{Message: "connected read-only", ServerVersion: "PostgreSQL " + v, Latency: time.Since(start)}, nil
}

// querier is what readTx hands to its function: the connection, inside the
// read-only transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readTx runs fn on a pooled connection inside a read-only transaction that
// is always rolled back. The statement timeout follows the context's
// deadline. The rollback also releases session-level advisory locks and
// deallocates prepared statements, so a query cannot leave the pooled
// session holding one.
func (c *Connector) readTx(ctx context.Context, cfg sdk.Config, fn func(querier) error) error {
	pool, err := c.pool(ctx, cfg)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return mapErr(ctx, err)
	}
	defer conn.Release()
	timeout := int64(0)
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl).Milliseconds(); timeout < 1 {
			return context.DeadlineExceeded
		}
	}
	// One round trip. set_config also takes the transaction's snapshot,
	// after which SET TRANSACTION READ WRITE is refused.
	begin := "BEGIN READ ONLY; SELECT set_config('statement_timeout', '" + strconv.FormatInt(timeout, 10) + "', true)"
	if _, err := conn.Conn().PgConn().Exec(ctx, begin).ReadAll(); err != nil {
		conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // discarded
		return mapErr(ctx, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		// Prepared statements outlive ROLLBACK; the connector prepares none
		// of its own (descriptions are cached, not statements).
		if _, err := conn.Conn().PgConn().Exec(rctx, "ROLLBACK; SELECT pg_advisory_unlock_all(); DEALLOCATE ALL").ReadAll(); err != nil {
			// A session in an unknown state is not reused.
			conn.Conn().Close(rctx) //nolint:errcheck // discarded
		}
	}()
	return fn(conn.Conn())
}

// args converts parameters for pgx. Lists become PostgreSQL arrays
// (= ANY($1)); their values must share one type.
func args(params []any) ([]any, error) {
	out := make([]any, len(params))
	for i, p := range params {
		switch v := p.(type) {
		case nil, bool, int64, float64, string, time.Time:
			out[i] = v
		case sdk.Date:
			out[i] = v.In(time.UTC)
		case []any:
			a, err := listArg(v)
			if err != nil {
				return nil, sdk.Errorf(sdk.CodeInvalidArgument, "parameter %d: %v", i+1, err)
			}
			out[i] = a
		default:
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "parameter %d: unsupported type %T", i+1, p)
		}
	}
	return out, nil
}

func listArg(vs []any) (any, error) {
	if len(vs) == 0 {
		return []string{}, nil
	}
	switch vs[0].(type) {
	case int64:
		return typedList[int64](vs)
	case float64:
		return typedList[float64](vs)
	case string:
		return typedList[string](vs)
	case bool:
		return typedList[bool](vs)
	case time.Time:
		return typedList[time.Time](vs)
	}
	return nil, fmt.Errorf("lists of %T are not supported", vs[0])
}

func typedList[T any](vs []any) ([]*T, error) {
	out := make([]*T, len(vs))
	for i, v := range vs {
		if v == nil {
			continue
		}
		x, ok := v.(T)
		if !ok {
			return nil, fmt.Errorf("a list mixes %T and %T", vs[0], v)
		}
		out[i] = &x
	}
	return out, nil
}

func (c *Connector) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	a, err := args(q.Params)
	if err != nil {
		return err
	}
	return c.readTx(ctx, cfg, func(tx querier) error {
		rows, err := tx.Query(ctx, q.SQL, a...)
		if err != nil {
			return mapErr(ctx, err)
		}
		defer rows.Close()
		schema := Schema(rows.FieldDescriptions())
		if err := w.SetSchema(schema); err != nil {
			return err
		}
		lim := w.Limits()
		batch := lim.BatchMaxRows
		if lim.MaxRows > 0 && lim.MaxRows < int64(batch) {
			// One row past the cap is enough to know the result is cut.
			batch = int(lim.MaxRows) + 1
		}
		err = ScanRecords(rows, schema, w.Allocator(), batch, int64(lim.BatchMaxBytes), func(rec arrow.RecordBatch) error {
			defer rec.Release()
			return w.Write(rec)
		})
		if errors.Is(err, sdk.ErrLimitReached) {
			return nil
		}
		if err != nil {
			return mapErr(ctx, err)
		}
		// A statement that returns no rows (or an error after the last row)
		// reports it here.
		return mapErr(ctx, rows.Err())
	})
}

func (c *Connector) Dispose(datasourceID string) { c.pools.Dispose(datasourceID) }
