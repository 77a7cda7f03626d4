// Package sqlite is the built-in connector for an SQLite database file,
// opened read-only.
//
// The database must be an existing regular file given by absolute path (or a
// "file:" URI without parameters). A path that resolves — after symlinks,
// URI decoding and hard links — to a forbidden file is refused: the host
// lists DataPulse's data directory (with its metadata database) in
// DATAPULSE_FORBIDDEN_PATHS. A forbidden file also forbids its -wal, -shm
// and -journal files; a forbidden directory forbids every file under it.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/datapulse/datapulse/plugins/builtin/internal/pathguard"
	"github.com/datapulse/datapulse/plugins/builtin/internal/sqlitero"
	"github.com/datapulse/datapulse/plugins/sdk"
)

// EnvForbiddenPaths lists files and directories the connector must never
// open, separated by the OS path-list separator (':' on Unix).
const EnvForbiddenPaths = pathguard.Env

// Version is the connector's version.
const Version = "1.0.0"

// Options configure the connector.
type Options struct {
	// Forbidden are files (and directories) that must never be opened.
	Forbidden []string
	// noAuthorizer is for tests only (see sqlitero.Options).
	noAuthorizer bool
}

// Connector is the SQLite connector.
type Connector struct {
	opts  Options
	insts sdk.Instances[*sql.DB]
}

// New returns the connector with the forbidden paths from the environment.
func New() sdk.Connector {
	return NewWithOptions(Options{Forbidden: pathguard.FromEnv()})
}

// NewWithOptions returns the connector with explicit options.
func NewWithOptions(o Options) *Connector {
	c := &Connector{opts: o}
	c.insts.New = c.open
	c.insts.Close = func(db *sql.DB) { db.Close() }
	return c
}

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "title": "SQLite database file",
  "properties": {
    "path": {
      "type": "string",
      "title": "Database file",
      "description": "Absolute path of the database file on the DataPulse server, or a file: URI without parameters. It is opened read-only.",
      "minLength": 1,
      "maxLength": 4096
    }
  },
  "required": ["path"],
  "additionalProperties": false
}`

func (c *Connector) Describe() sdk.Description {
	return sdk.Description{
		Name:         "sqlite",
		DisplayName:  "SQLite",
		Version:      Version,
		Capabilities: []string{sdk.CapabilitySQL, sdk.CapabilityParameters, sdk.CapabilityIntrospection, sdk.CapabilityCancel},
		ConfigSchema: json.RawMessage(schema),
		SQLDialect:   "sqlite",
	}
}

type config struct {
	Path string `json:"path"`
}

// resolve checks the configuration and returns the database's canonical
// path.
func (c *Connector) resolve(cfg sdk.Config) (string, error) {
	var conf config
	if err := cfg.Decode(&conf); err != nil {
		return "", err
	}
	p, err := ResolvePath(conf.Path)
	if err != nil {
		return "", sdk.FieldErrors{{Field: "/path", Message: err.Error()}}
	}
	if err := pathguard.Check(p, c.opts.Forbidden); err != nil {
		return "", sdk.FieldErrors{{Field: "/path", Message: err.Error()}}
	}
	return p, nil
}

// ResolvePath turns the configured path into the canonical path of an
// existing regular file: a plain absolute path, or a file: URI with an empty
// or "localhost" host and no query or fragment. Symlinks are resolved.
func ResolvePath(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("is required")
	}
	if strings.ContainsRune(raw, 0) {
		return "", errors.New("must not contain NUL")
	}
	p := raw
	if len(raw) >= 5 && strings.EqualFold(raw[:5], "file:") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("is not a valid file: URI: %v", err)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
			return "", errors.New("must not carry URI parameters (?…) or a fragment: the connector sets its own")
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", errors.New("a file: URI must not name a remote host")
		}
		if u.Opaque != "" {
			return "", errors.New("must be an absolute path")
		}
		p = u.Path
	} else if strings.ContainsAny(raw, "?#") {
		// Not dangerous for us (the path is escaped), but a sign that URI
		// parameters were intended.
		return "", errors.New("must not contain '?' or '#'")
	}
	if p == ":memory:" || strings.HasPrefix(p, ":") {
		return "", errors.New("must be a database file")
	}
	if !filepath.IsAbs(p) {
		return "", errors.New("must be an absolute path")
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", errors.New("file does not exist")
		}
		return "", fmt.Errorf("cannot be resolved: %v", errors.Unwrap(err))
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("cannot be read: %v", errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return "", errors.New("is not a regular file")
	}
	return resolved, nil
}

func (c *Connector) open(ctx context.Context, cfg sdk.Config) (*sql.DB, error) {
	p, err := c.resolve(cfg)
	if err != nil {
		return nil, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	db := sqlitero.Open(sqlitero.FileDSN(p), sqlitero.Options{NoAuthorizer: c.opts.noAuthorizer})
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Open a connection and read the schema: "not a database" shows here.
	var n int
	if err := db.QueryRowContext(pctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		db.Close()
		return nil, sqlitero.Err(pctx, err)
	}
	// The file SQLite opened must still be the one checked (no swap
	// between the check and the open).
	if err := pathguard.Check(p, c.opts.Forbidden); err != nil {
		db.Close()
		return nil, sdk.Errorf(sdk.CodePermissionDenied, "path %v", err)
	}
	return db, nil
}

func (c *Connector) db(ctx context.Context, cfg sdk.Config) (*sql.DB, error) {
	return c.insts.Get(ctx, cfg)
}

func (c *Connector) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	_, err := c.resolve(cfg)
	return sdk.AsFieldErrors(err)
}

func (c *Connector) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	start := time.Now()
	db, err := c.db(ctx, cfg)
	if err != nil {
		return sdk.Health{}, err
	}
	v, err := sqlitero.Version(ctx, db)
	if err != nil {
		return sdk.Health{}, err
	}
	return sdk.Health{Message: "database opened read-only", ServerVersion: v, Latency: time.Since(start)}, nil
}

func (c *Connector) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	if _, err := c.db(ctx, cfg); err != nil {
		return sdk.NamespacePage{}, err
	}
	ns, next, err := sdk.PageOf([]string{sqlitero.Namespace}, p)
	return sdk.NamespacePage{Namespaces: ns, NextToken: next}, err
}

func (c *Connector) ListTables(ctx context.Context, cfg sdk.Config, namespace string, p sdk.Page) (sdk.TablePage, error) {
	if err := sqlitero.CheckNamespace(namespace); err != nil {
		return sdk.TablePage{}, err
	}
	db, err := c.db(ctx, cfg)
	if err != nil {
		return sdk.TablePage{}, err
	}
	all, err := sqlitero.Tables(ctx, db)
	if err != nil {
		return sdk.TablePage{}, err
	}
	ts, next, err := sdk.PageOf(all, p)
	for i := range ts {
		ts[i].Namespace = namespace // as asked: "" or "main"
	}
	return sdk.TablePage{Tables: ts, NextToken: next}, err
}

func (c *Connector) DescribeTables(ctx context.Context, cfg sdk.Config, tables []sdk.TableRef) ([]sdk.TableInfo, error) {
	db, err := c.db(ctx, cfg)
	if err != nil {
		return nil, err
	}
	out := make([]sdk.TableInfo, 0, len(tables))
	for _, t := range tables {
		if err := sqlitero.CheckNamespace(t.Namespace); err != nil {
			return nil, err
		}
		cols, err := sqlitero.Describe(ctx, db, t.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, sdk.TableInfo{Ref: t, Columns: cols})
	}
	return out, nil
}

func (c *Connector) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	db, err := c.db(ctx, cfg)
	if err != nil {
		return err
	}
	return sqlitero.Query(ctx, db, q, w)
}

func (c *Connector) Dispose(datasourceID string) { c.insts.Dispose(datasourceID) }
