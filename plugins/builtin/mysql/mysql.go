// Package mysql is the built-in MySQL / MariaDB connector
// (github.com/go-sql-driver/mysql).
//
// Read-only is enforced by the server:
//   - sessions are SET SESSION TRANSACTION READ ONLY, and every query runs in
//     its own START TRANSACTION READ ONLY, always rolled back;
//   - the connector refuses a user holding FILE or SUPER, or any role: FILE
//     lets SELECT … INTO OUTFILE write server files even in a read-only
//     transaction (checked: it does), SUPER can change server settings;
//   - the connector refuses a user that may read the mysql schema (which
//     holds password hashes), and refuses SHOW GRANTS / SHOW CREATE USER
//     (which show the account's own hash) and dynamic SQL;
//   - the connection a user's query ran on is closed, never pooled, so no
//     session state or lock survives the query;
//   - multi-statements and LOAD DATA LOCAL INFILE are off in the driver.
//
// The configuration admits only host, port, database, user, password
// (secret) and tls (from a fixed set); the driver configuration is built
// from them, so no other DSN parameter can be injected.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// Version is the connector's version.
const Version = "1.0.0"

// Connector is the MySQL / MariaDB connector.
type Connector struct {
	dbs sdk.Instances[*source]
}

// source is an opened data source.
type source struct {
	db *sql.DB
	// killer sends KILL QUERY on connections of its own (never pooled), so a
	// kill never waits for a pool that the query to kill keeps full.
	killer  *sql.DB
	mariadb bool
	version string
}

// New returns the connector.
func New() sdk.Connector {
	c := &Connector{}
	c.dbs.New = c.open
	c.dbs.Close = func(s *source) { s.db.Close(); s.killer.Close() }
	return c
}

// TLSModes are the accepted tls values.
var TLSModes = []string{"disable", "preferred", "require", "skip-verify"}

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "title": "MySQL / MariaDB",
  "properties": {
    "host": {"type": "string", "title": "Host", "description": "Host name or IP address (no Unix sockets)", "minLength": 1, "maxLength": 253},
    "port": {"type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 3306},
    "database": {"type": "string", "title": "Database", "minLength": 1, "maxLength": 64},
    "user": {"type": "string", "title": "User", "description": "A user with SELECT on the data's databases only: no FILE or SUPER, no access to the mysql schema, no roles", "minLength": 1, "maxLength": 80},
    "password": {"type": "string", "title": "Password", "x-secret": true, "writeOnly": true, "maxLength": 1024},
    "tls": {"type": "string", "title": "TLS", "enum": ["disable", "preferred", "require", "skip-verify"], "default": "preferred"},
    "max_connections": {"type": "integer", "title": "Max connections", "description": "Most queries this data source runs at once (a dashboard's widgets run concurrently)", "minimum": 1, "maximum": 200, "default": 20}
  },
  "required": ["host", "database", "user"],
  "additionalProperties": false
}`

func (c *Connector) Describe() sdk.Description {
	return sdk.Description{
		Name:         "mysql",
		DisplayName:  "MySQL / MariaDB",
		Version:      Version,
		Capabilities: []string{sdk.CapabilitySQL, sdk.CapabilityParameters, sdk.CapabilityIntrospection, sdk.CapabilityCancel},
		ConfigSchema: json.RawMessage(schema),
		SQLDialect:   "mysql",
	}
}

type config struct {
	Host     string `json:"host"`
	Port     *int   `json:"port"`
	Database string `json:"database"`
	User     string `json:"user"`
	Password string `json:"password"`
	TLS      string `json:"tls"`
	// MaxConnections bounds the queries run at once (default 20).
	MaxConnections *int `json:"max_connections"`
}

var hostnameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

func parseConfig(cfg sdk.Config) (config, error) {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return c, err
	}
	var fes sdk.FieldErrors
	add := func(f, m string) { fes = append(fes, sdk.FieldError{Field: f, Message: m}) }
	switch {
	case c.Host == "":
		add("/host", "is required")
	case len(c.Host) > 253 || (net.ParseIP(strings.Trim(c.Host, "[]")) == nil && !hostnameRe.MatchString(c.Host)):
		add("/host", "must be a host name or an IP address (Unix sockets are not allowed)")
	}
	if c.Port != nil && (*c.Port < 1 || *c.Port > 65535) {
		add("/port", "must be between 1 and 65535")
	}
	if c.MaxConnections != nil && (*c.MaxConnections < 1 || *c.MaxConnections > 200) {
		add("/max_connections", "must be between 1 and 200")
	}
	if c.Database == "" {
		add("/database", "is required")
	} else if len(c.Database) > 64 || strings.ContainsAny(c.Database, "\x00/\\.`") {
		add("/database", "is not a valid database name")
	}
	if c.User == "" {
		add("/user", "is required")
	} else if len(c.User) > 80 || strings.ContainsRune(c.User, 0) {
		add("/user", "is not a valid user name")
	}
	if c.TLS == "" {
		c.TLS = "preferred"
	}
	ok := false
	for _, m := range TLSModes {
		ok = ok || c.TLS == m
	}
	if !ok {
		add("/tls", "must be one of "+strings.Join(TLSModes, ", "))
	}
	if len(fes) > 0 {
		return c, fes
	}
	return c, nil
}

// driverConfig builds the driver configuration field by field.
func driverConfig(c config) *mysqldrv.Config {
	dc := mysqldrv.NewConfig()
	port := 3306
	if c.Port != nil {
		port = *c.Port
	}
	dc.Net = "tcp"
	dc.Addr = net.JoinHostPort(strings.Trim(c.Host, "[]"), strconv.Itoa(port))
	dc.DBName = c.Database
	dc.User = c.User
	dc.Passwd = c.Password
	dc.TLSConfig = map[string]string{"disable": "false", "preferred": "preferred", "require": "true", "skip-verify": "skip-verify"}[c.TLS]
	// Dates and times arrive as text, parsed by the connector (zero dates
	// become NULL).
	dc.ParseTime = false
	dc.Loc = time.UTC
	dc.Timeout = 10 * time.Second
	dc.AllowAllFiles = false
	dc.AllowCleartextPasswords = false
	dc.AllowFallbackToPlaintext = false
	dc.AllowOldPasswords = false
	dc.MultiStatements = false
	dc.InterpolateParams = false
	// Session settings the driver sends after connecting: TIMESTAMP values
	// in UTC. Nothing from the user's configuration reaches here.
	dc.Params = map[string]string{"time_zone": "'+00:00'"}
	dc.Logger = logger{}
	return dc
}

type logger struct{}

func (logger) Print(v ...any) { sdk.Logger().Warn("mysql driver: " + fmt.Sprint(v...)) }

func (c *Connector) open(ctx context.Context, cfg sdk.Config) (*source, error) {
	conf, err := parseConfig(cfg)
	if err != nil {
		return nil, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	dc := driverConfig(conf)
	connector, err := mysqldrv.NewConnector(dc)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "invalid connection settings: %v", err)
	}
	db := sql.OpenDB(connector)
	maxConns := 20 // the widgets of a dashboard run concurrently
	if conf.MaxConnections != nil {
		maxConns = *conf.MaxConnections
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(min(maxConns, 4))
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	killer := sql.OpenDB(connector)
	killer.SetMaxOpenConns(4)
	killer.SetMaxIdleConns(0)
	s := &source{db: db, killer: killer}
	if err := db.QueryRowContext(pctx, "SELECT VERSION()").Scan(&s.version); err != nil {
		db.Close()
		killer.Close()
		return nil, mapErr(pctx, err)
	}
	s.mariadb = strings.Contains(strings.ToLower(s.version), "mariadb")
	if err := checkUser(pctx, db); err != nil {
		db.Close()
		killer.Close()
		return nil, err
	}
	return s, nil
}

// checkUser refuses a user that could escape a read-only transaction.
func checkUser(ctx context.Context, db *sql.DB) error {
	var user string
	var n int
	err := db.QueryRowContext(ctx, `SELECT CURRENT_USER(), COUNT(p.PRIVILEGE_TYPE) FROM (SELECT 1) one
		LEFT JOIN information_schema.USER_PRIVILEGES p
		ON p.GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
		AND p.PRIVILEGE_TYPE IN ('FILE', 'SUPER')`).Scan(&user, &n)
	if err != nil {
		return mapErr(ctx, err)
	}
	if n > 0 {
		return sdk.Errorf(sdk.CodePermissionDenied, "the user %s holds FILE or SUPER: a read-only transaction does not stop SELECT … INTO OUTFILE; connect as a user with SELECT privileges only", user)
	}
	var roles int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.APPLICABLE_ROLES`).Scan(&roles); err == nil && roles > 0 {
		return sdk.Errorf(sdk.CodePermissionDenied, "the user %s has roles (SET ROLE could raise its privileges within a session); connect as a user without roles", user)
	}
	// The mysql schema holds every account's password hash (mysql.user,
	// mysql.global_priv): an account that may read it hands them to anyone
	// who may query the data source. Its grants, then the server's answer.
	var grants int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (
		SELECT GRANTEE FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'SELECT'
		UNION ALL SELECT GRANTEE FROM information_schema.SCHEMA_PRIVILEGES WHERE PRIVILEGE_TYPE = 'SELECT' AND 'mysql' LIKE TABLE_SCHEMA
		UNION ALL SELECT GRANTEE FROM information_schema.TABLE_PRIVILEGES WHERE PRIVILEGE_TYPE = 'SELECT' AND TABLE_SCHEMA = 'mysql'
		UNION ALL SELECT GRANTEE FROM information_schema.COLUMN_PRIVILEGES WHERE PRIVILEGE_TYPE = 'SELECT' AND TABLE_SCHEMA = 'mysql'
		) p WHERE p.GRANTEE IN ('PUBLIC', CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), ''''))`).Scan(&grants); err != nil {
		return mapErr(ctx, err)
	}
	readable := grants > 0
	for _, table := range []string{"mysql.user", "mysql.global_priv"} {
		if readable {
			break
		}
		rows, err := db.QueryContext(ctx, "SELECT 1 FROM "+table+" WHERE 1 = 0")
		if err == nil {
			rows.Close()
			readable = true
			continue
		}
		var me *mysqldrv.MySQLError
		if !errors.As(err, &me) || (me.Number != 1142 && me.Number != 1143 && me.Number != 1146 && me.Number != 1044) {
			return mapErr(ctx, err)
		}
	}
	if readable {
		return sdk.Errorf(sdk.CodePermissionDenied, "the user %s may read the mysql system schema (SELECT on *.* or on mysql tables), which holds password hashes; grant SELECT on the data's databases only", user)
	}
	return nil
}

// mapErr gives server and driver errors an SDK code.
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
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1792, 1290, 1142, 1143, 1044, 1045, 1227, 1370, 1836:
			// read-only transaction, --read-only, denied table/column/db,
			// access denied, needs a privilege.
			return sdk.WithCode(sdk.CodePermissionDenied, err)
		case 3024, 1969:
			return fmt.Errorf("the statement timed out: %w", context.DeadlineExceeded)
		case 1049:
			return sdk.WithCode(sdk.CodeNotFound, err)
		case 1317:
			return sdk.WithCode(sdk.CodeUnavailable, err)
		}
		return sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, mysqldrv.ErrInvalidConn) {
		return sdk.WithCode(sdk.CodeUnavailable, err)
	}
	return err
}

func (c *Connector) source(ctx context.Context, cfg sdk.Config) (*source, error) {
	return c.dbs.Get(ctx, cfg)
}

func (c *Connector) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	_, err := parseConfig(cfg)
	return sdk.AsFieldErrors(err)
}

func (c *Connector) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	start := time.Now()
	s, err := c.source(ctx, cfg)
	if err != nil {
		return sdk.Health{}, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		return sdk.Health{}, mapErr(ctx, err)
	}
	return sdk.Health{Message: "connected read-only", ServerVersion: s.version, Latency: time.Since(start)}, nil
}

func (c *Connector) Dispose(id string) { c.dbs.Dispose(id) }

// readTx runs fn, which runs only the connector's own statements, on a
// pooled connection inside a read-only transaction (see runTx).
func (c *Connector) readTx(ctx context.Context, cfg sdk.Config, fn func(conn *sql.Conn) error) error {
	return c.runTx(ctx, cfg, false, fn)
}

// runTx runs fn on one connection inside a read-only transaction, always
// rolled back, with the statement time bounded by the context's deadline.
// When the context ends while fn runs, the query is killed on the server
// (KILL QUERY), which the driver alone does not do.
//
// With discard (a user's query), the connection is closed afterwards instead
// of going back to the pool. A statement can change its session in ways no
// rollback undoes and no SQL resets completely — SET SESSION (sql_select_limit,
// time_zone, sql_mode, NAMES…), user variables, USE, LOCK TABLES, GET_LOCK —
// and the driver (go-sql-driver/mysql, through v1.11) has no
// COM_RESET_CONNECTION. A pooled session a user's query ran on would carry
// that into the next user's query, or hold its locks while idle. Closing it
// ends the session on the server, which releases its locks. Pooled
// connections therefore only ever ran the connector's own statements.
func (c *Connector) runTx(ctx context.Context, cfg sdk.Config, discard bool, fn func(conn *sql.Conn) error) error {
	s, err := c.source(ctx, cfg)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return mapErr(ctx, err)
	}
	defer conn.Close()
	if discard {
		// Marking the connection bad makes database/sql close it on release
		// (conn.Close above) rather than pool it.
		defer conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // the point
	}
	// The session itself is read-only (re-asserted on every query: a query
	// may have changed it): after an implicit commit — DDL commits the
	// current transaction first — the next statement is still read-only.
	// max_statement_time / max_execution_time follow the deadline (0: none).
	var left time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if left = time.Until(dl); left <= 0 {
			return context.DeadlineExceeded
		}
	}
	var set string
	var limit any
	if s.mariadb {
		set, limit = "SET SESSION tx_read_only = 1, max_statement_time = ?", left.Seconds()
	} else {
		set, limit = "SET SESSION transaction_read_only = 1, max_execution_time = ?", left.Milliseconds()
	}
	if _, err := conn.ExecContext(ctx, set, limit); err != nil {
		return mapErr(ctx, err)
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION READ ONLY"); err != nil {
		return mapErr(ctx, err)
	}
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		return mapErr(ctx, err)
	}
	// Kill the query on the server if the context ends while it runs. The
	// mutex makes sure no KILL can hit a later query on this connection once
	// it is back in the pool.
	var mu sync.Mutex
	finished := false
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			if finished {
				return
			}
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = s.killer.ExecContext(kctx, "KILL QUERY "+strconv.FormatInt(id, 10))
		}
	}()
	err = fn(conn)
	mu.Lock()
	finished = true
	mu.Unlock()
	close(done)
	if discard {
		return err // closing the connection ends its transaction
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, rerr := conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
		// A session in an unknown state is not reused.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// args converts parameters for the driver. Lists are refused: MySQL has no
// array type (the host expands list parameters).
func args(params []any) ([]any, error) {
	out := make([]any, len(params))
	for i, p := range params {
		switch v := p.(type) {
		case nil, bool, int64, float64, string, time.Time:
			out[i] = v
		case sdk.Date:
			out[i] = v.String()
		case []any:
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "parameter %d: list parameters are not supported by MySQL", i+1)
		default:
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "parameter %d: unsupported type %T", i+1, p)
		}
	}
	return out, nil
}

func (c *Connector) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	a, err := args(q.Params)
	if err != nil {
		return err
	}
	if err := checkStatement(q.SQL); err != nil {
		return err
	}
	return c.runTx(ctx, cfg, true, func(conn *sql.Conn) error {
		rows, err := conn.QueryContext(ctx, q.SQL, a...)
		if err != nil {
			return mapErr(ctx, err)
		}
		defer rows.Close()
		if err := writeRows(ctx, rows, w); err != nil {
			if errors.Is(err, sdk.ErrLimitReached) {
				return nil
			}
			return mapErr(ctx, err)
		}
		return nil
	})
}
