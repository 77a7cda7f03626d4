// Package csv is the built-in connector for a directory of CSV files, each
// file a table, queried with SQL (SQLite's dialect).
//
// On first use (and whenever the files change, or the data source's
// configuration version does) the connector loads every *.csv file of the
// directory into an in-memory SQLite database, inferring each column's type
// (integer, real, boolean, timestamp, text) from all its values. Queries
// then run on that database opened read-only: mode=ro, query_only and a
// read-only authorizer, as for the sqlite connector. The files themselves
// are only ever read.
package csv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/datapulse/datapulse/plugins/builtin/internal/pathguard"
	"github.com/datapulse/datapulse/plugins/builtin/internal/sqlitero"
	"github.com/datapulse/datapulse/plugins/sdk"
)

// Version is the connector's version.
const Version = "1.0.0"

// Limits bound what the connector loads.
type Limits struct {
	MaxFileBytes  int64 // per file (default 100 MiB)
	MaxTotalBytes int64 // all files of a directory (default 512 MiB)
	MaxFiles      int   // default 1000
	MaxColumns    int   // default 1000
}

// Options configure the connector.
type Options struct {
	Limits Limits
	// Forbidden are files and directories the connector must not read.
	Forbidden []string
}

// Connector is the CSV connector.
type Connector struct {
	opts  Options
	insts sdk.Instances[*dataset]
	// loads counts loads (tests).
	mu    sync.Mutex
	loads int
}

// New returns the connector with default limits and the forbidden paths of
// the environment (DATAPULSE_FORBIDDEN_PATHS).
func New() sdk.Connector {
	return NewWithOptions(Options{Forbidden: pathguard.FromEnv()})
}

// NewWithOptions returns the connector with explicit options.
func NewWithOptions(o Options) *Connector {
	if o.Limits.MaxFileBytes <= 0 {
		o.Limits.MaxFileBytes = 100 << 20
	}
	if o.Limits.MaxTotalBytes <= 0 {
		o.Limits.MaxTotalBytes = 512 << 20
	}
	if o.Limits.MaxFiles <= 0 {
		o.Limits.MaxFiles = 1000
	}
	if o.Limits.MaxColumns <= 0 {
		o.Limits.MaxColumns = 1000
	}
	c := &Connector{opts: o}
	c.insts.New = c.load
	c.insts.Close = func(d *dataset) { d.close() }
	return c
}

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "title": "Directory of CSV files",
  "properties": {
    "directory": {
      "type": "string",
      "title": "Directory",
      "description": "Absolute path of a directory on the DataPulse server. Each .csv file in it is a table named after the file.",
      "minLength": 1,
      "maxLength": 4096
    },
    "delimiter": {
      "type": "string",
      "title": "Field delimiter",
      "enum": [",", ";", "\t", "|"],
      "default": ","
    },
    "header": {
      "type": "boolean",
      "title": "First line is a header",
      "default": true
    }
  },
  "required": ["directory"],
  "additionalProperties": false
}`

func (c *Connector) Describe() sdk.Description {
	return sdk.Description{
		Name:         "csv",
		DisplayName:  "CSV files",
		Version:      Version,
		Capabilities: []string{sdk.CapabilitySQL, sdk.CapabilityParameters, sdk.CapabilityIntrospection, sdk.CapabilityCancel},
		ConfigSchema: json.RawMessage(schema),
		SQLDialect:   "sqlite",
	}
}

type config struct {
	Directory string `json:"directory"`
	Delimiter string `json:"delimiter"`
	Header    *bool  `json:"header"`
}

type settings struct {
	dir    string // canonical
	comma  rune
	header bool
}

func (c *Connector) settings(cfg sdk.Config) (settings, error) {
	var conf config
	if err := cfg.Decode(&conf); err != nil {
		return settings{}, err
	}
	var fes sdk.FieldErrors
	s := settings{comma: ',', header: conf.Header == nil || *conf.Header}
	switch conf.Delimiter {
	case "", ",":
	case ";", "\t", "|":
		s.comma, _ = utf8.DecodeRuneInString(conf.Delimiter)
	default:
		fes = append(fes, sdk.FieldError{Field: "/delimiter", Message: `must be one of ",", ";", tab, "|"`})
	}
	dir, err := resolveDir(conf.Directory)
	if err == nil {
		err = pathguard.Check(dir, c.opts.Forbidden)
	}
	if err != nil {
		fes = append(fes, sdk.FieldError{Field: "/directory", Message: err.Error()})
	}
	if len(fes) > 0 {
		return settings{}, fes
	}
	s.dir = dir
	return s, nil
}

func resolveDir(raw string) (string, error) {
	switch {
	case raw == "":
		return "", errors.New("is required")
	case strings.ContainsRune(raw, 0):
		return "", errors.New("must not contain NUL")
	case !filepath.IsAbs(raw):
		return "", errors.New("must be an absolute path")
	}
	dir, err := filepath.EvalSymlinks(raw)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", errors.New("directory does not exist")
		}
		return "", fmt.Errorf("cannot be resolved: %v", errors.Unwrap(err))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("cannot be read: %v", errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return "", errors.New("is not a directory")
	}
	return dir, nil
}

// file is one CSV file of the directory.
type file struct {
	table string // table name: the file name without ".csv"
	path  string // canonical
	size  int64
	mtime time.Time
}

// listFiles returns the directory's CSV files, sorted by table name, or an
// error naming the problem (too many, too large, a name clash, a link
// leading outside the directory or to a forbidden file).
func (c *Connector) listFiles(s settings) ([]file, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeUnavailable, "cannot read the directory: %v", errors.Unwrap(err))
	}
	var files []file
	var total int64
	names := map[string]string{}
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		if !strings.EqualFold(ext, ".csv") || strings.HasPrefix(name, ".") {
			continue
		}
		table := strings.TrimSuffix(name, ext)
		if table == "" || strings.HasPrefix(strings.ToLower(table), "sqlite_") {
			continue
		}
		if other, dup := names[strings.ToLower(table)]; dup {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "files %q and %q would both be table %q (table names ignore case)", other, name, table)
		}
		names[strings.ToLower(table)] = name
		p, err := filepath.EvalSymlinks(filepath.Join(s.dir, name))
		if err != nil {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "file %q cannot be resolved: %v", name, errors.Unwrap(err))
		}
		if !pathguard.Within(p, s.dir) {
			return nil, sdk.Errorf(sdk.CodePermissionDenied, "file %q links outside the directory", name)
		}
		if err := pathguard.Check(p, c.opts.Forbidden); err != nil {
			return nil, sdk.Errorf(sdk.CodePermissionDenied, "file %q %v", name, err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, sdk.Errorf(sdk.CodeUnavailable, "file %q: %v", name, errors.Unwrap(err))
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if fi.Size() > c.opts.Limits.MaxFileBytes {
			return nil, sdk.Errorf(sdk.CodeResourceExhausted, "file %q is %d bytes, over the limit of %d", name, fi.Size(), c.opts.Limits.MaxFileBytes)
		}
		total += fi.Size()
		if total > c.opts.Limits.MaxTotalBytes {
			return nil, sdk.Errorf(sdk.CodeResourceExhausted, "the CSV files exceed %d bytes in total", c.opts.Limits.MaxTotalBytes)
		}
		files = append(files, file{table: table, path: p, size: fi.Size(), mtime: fi.ModTime()})
		if len(files) > c.opts.Limits.MaxFiles {
			return nil, sdk.Errorf(sdk.CodeResourceExhausted, "more than %d CSV files", c.opts.Limits.MaxFiles)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].table < files[j].table })
	return files, nil
}

// fingerprint identifies the state of the files: a change reloads.
func fingerprint(s settings, files []file) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%c|%v", s.dir, s.comma, s.header)
	for _, f := range files {
		fmt.Fprintf(&b, "|%s:%d:%d", f.path, f.size, f.mtime.UnixNano())
	}
	return b.String()
}

// dataset is a loaded directory.
type dataset struct {
	holder *sql.DB // the read-write connection that loaded the data; keeps it alive
	ro     *sql.DB // read-only pool for queries
	tables []sdk.TableRef
	print  string
}

func (d *dataset) close() {
	if d.ro != nil {
		d.ro.Close()
	}
	if d.holder != nil {
		d.holder.Close()
	}
}

// get returns the loaded dataset for cfg, reloading when the files changed.
func (c *Connector) get(ctx context.Context, cfg sdk.Config) (*dataset, error) {
	s, err := c.settings(cfg)
	if err != nil {
		return nil, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	files, err := c.listFiles(s)
	if err != nil {
		return nil, err
	}
	want := fingerprint(s, files)
	for range 3 {
		d, err := c.insts.Get(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if d.print == want {
			return d, nil
		}
		c.insts.Dispose(cfg.DataSourceID)
	}
	return nil, sdk.Errorf(sdk.CodeUnavailable, "the CSV files keep changing; try again")
}

func randomName() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "datapulse-csv-" + hex.EncodeToString(b)
}

// load reads every CSV file into a new in-memory database.
func (c *Connector) load(ctx context.Context, cfg sdk.Config) (*dataset, error) {
	c.mu.Lock()
	c.loads++
	c.mu.Unlock()
	s, err := c.settings(cfg)
	if err != nil {
		return nil, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	files, err := c.listFiles(s)
	if err != nil {
		return nil, err
	}
	name := randomName()
	holder, err := sql.Open("sqlite", "file:/"+name+"?vfs=memdb&_time_format=sqlite")
	if err != nil {
		return nil, err
	}
	holder.SetMaxOpenConns(1)
	holder.SetMaxIdleConns(1)
	holder.SetConnMaxIdleTime(0)
	holder.SetConnMaxLifetime(0)
	d := &dataset{holder: holder, print: fingerprint(s, files)}
	for _, f := range files {
		if err := c.loadFile(ctx, holder, s, f); err != nil {
			d.close()
			return nil, err
		}
		d.tables = append(d.tables, sdk.TableRef{Namespace: sqlitero.Namespace, Name: f.table, Kind: sdk.KindFile})
	}
	d.ro = sqlitero.Open(sqlitero.MemDSN(name), sqlitero.Options{})
	if err := d.ro.PingContext(ctx); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// colType is an inferred column type, from the narrowest.
type colType int

const (
	tEmpty colType = iota // no value seen yet
	tBool
	tInt
	tFloat
	tTime
	tText
)

func (t colType) sql() string {
	switch t {
	case tBool:
		return "BOOLEAN"
	case tInt:
		return "INTEGER"
	case tFloat:
		return "REAL"
	case tTime:
		return "DATETIME"
	}
	return "TEXT"
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
}

func parseTime(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// fits reports whether v (non-empty) can be stored as t.
func fits(t colType, v string) bool {
	switch t {
	case tBool:
		_, ok := parseBool(v)
		return ok
	case tInt:
		if leadingZero(v) {
			return false
		}
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	case tFloat:
		if leadingZero(v) || strings.ContainsAny(v, "xXpP_nNiI") {
			return false // hex, NaN, Inf: text
		}
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	case tTime:
		_, ok := parseTime(v)
		return ok
	}
	return true
}

// leadingZero reports a number written with a leading zero ("007",
// "-0123"): an identifier or a postal code, kept as text.
func leadingZero(v string) bool {
	v = strings.TrimLeft(v, "+-")
	return len(v) > 1 && v[0] == '0' && v[1] >= '0' && v[1] <= '9'
}

// widen returns the narrowest type at least as wide as t that holds v.
func widen(t colType, v string) colType {
	if t == tEmpty {
		for _, c := range []colType{tBool, tInt, tFloat, tTime} {
			if fits(c, v) {
				return c
			}
		}
		return tText
	}
	if fits(t, v) {
		return t
	}
	switch t {
	case tInt:
		if fits(tFloat, v) {
			return tFloat
		}
	}
	return tText
}

func (s settings) reader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	cr.Comma = s.comma
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.LazyQuotes = false
	return cr
}

// loadFile infers the column types (first pass) and inserts the rows
// (second pass).
func (c *Connector) loadFile(ctx context.Context, db *sql.DB, s settings, f file) error {
	fail := func(line int, format string, args ...any) error {
		return sdk.Errorf(sdk.CodeInvalidArgument, "%s.csv, line %d: %s", f.table, line, fmt.Sprintf(format, args...))
	}
	open := func() (*os.File, *csv.Reader, error) {
		fh, err := os.Open(f.path)
		if err != nil {
			return nil, nil, sdk.Errorf(sdk.CodeUnavailable, "%s.csv: %v", f.table, errors.Unwrap(err))
		}
		return fh, s.reader(io.LimitReader(fh, c.opts.Limits.MaxFileBytes+1)), nil
	}
	fh, cr, err := open()
	if err != nil {
		return err
	}
	var names []string
	var types []colType
	line := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			fh.Close()
			return fail(line, "%v", errors.Unwrap(err))
		}
		if line%4096 == 0 && ctx.Err() != nil {
			fh.Close()
			return ctx.Err()
		}
		if line == 1 && s.header {
			if len(rec) > c.opts.Limits.MaxColumns {
				fh.Close()
				return fail(1, "%d columns, over the limit of %d", len(rec), c.opts.Limits.MaxColumns)
			}
			names = columnNames(rec)
			types = make([]colType, len(names))
			continue
		}
		if names == nil {
			if len(rec) > c.opts.Limits.MaxColumns {
				fh.Close()
				return fail(line, "%d columns, over the limit of %d", len(rec), c.opts.Limits.MaxColumns)
			}
			names = columnNames(make([]string, len(rec)))
			types = make([]colType, len(names))
		}
		if len(rec) > len(names) {
			fh.Close()
			return fail(line, "%d fields, but the file has %d columns", len(rec), len(names))
		}
		for i, v := range rec {
			if v != "" && types[i] != tText {
				types[i] = widen(types[i], v)
			}
		}
	}
	fh.Close()
	if names == nil {
		names = []string{"column_1"}
		types = []colType{tText}
	}
	cols := make([]string, len(names))
	for i, n := range names {
		cols[i] = quoteIdent(n) + " " + types[i].sql()
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+quoteIdent(f.table)+" ("+strings.Join(cols, ", ")+")"); err != nil {
		return sdk.Errorf(sdk.CodeInvalidArgument, "%s.csv: %v", f.table, err)
	}

	fh, cr, err = open()
	if err != nil {
		return err
	}
	defer fh.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+quoteIdent(f.table)+" VALUES ("+ph+")")
	if err != nil {
		return err
	}
	defer stmt.Close()
	args := make([]any, len(names))
	line = 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return fail(line, "%v", errors.Unwrap(err))
		}
		if line == 1 && s.header {
			continue
		}
		for i := range args {
			args[i] = nil
			if i >= len(rec) || rec[i] == "" {
				continue
			}
			v := rec[i]
			switch types[i] {
			case tBool:
				args[i], _ = parseBool(v)
			case tInt:
				args[i], _ = strconv.ParseInt(v, 10, 64)
			case tFloat:
				args[i], _ = strconv.ParseFloat(v, 64)
			case tTime:
				args[i], _ = parseTime(v)
			default:
				args[i] = strings.ToValidUTF8(v, "\uFFFD")
			}
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fail(line, "%v", err)
		}
	}
	return tx.Commit()
}

// columnNames makes header fields into unique, non-empty column names.
func columnNames(header []string) []string {
	out := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		n := strings.TrimSpace(strings.ToValidUTF8(h, ""))
		if i == 0 {
			n = strings.TrimPrefix(n, "\uFEFF") // a byte-order mark
		}
		if n == "" {
			n = fmt.Sprintf("column_%d", i+1)
		}
		base := n
		for k := 2; seen[strings.ToLower(n)]; k++ {
			n = fmt.Sprintf("%s_%d", base, k)
		}
		seen[strings.ToLower(n)] = true
		out[i] = n
	}
	return out
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func (c *Connector) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	_, err := c.settings(cfg)
	return sdk.AsFieldErrors(err)
}

func (c *Connector) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	start := time.Now()
	d, err := c.get(ctx, cfg)
	if err != nil {
		return sdk.Health{}, err
	}
	v, err := sqlitero.Version(ctx, d.ro)
	if err != nil {
		return sdk.Health{}, err
	}
	return sdk.Health{Message: fmt.Sprintf("%d CSV files loaded", len(d.tables)), ServerVersion: v, Latency: time.Since(start)}, nil
}

func (c *Connector) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	if _, err := c.settings(cfg); err != nil {
		return sdk.NamespacePage{}, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	ns, next, err := sdk.PageOf([]string{sqlitero.Namespace}, p)
	return sdk.NamespacePage{Namespaces: ns, NextToken: next}, err
}

func (c *Connector) ListTables(ctx context.Context, cfg sdk.Config, namespace string, p sdk.Page) (sdk.TablePage, error) {
	if err := sqlitero.CheckNamespace(namespace); err != nil {
		return sdk.TablePage{}, err
	}
	d, err := c.get(ctx, cfg)
	if err != nil {
		return sdk.TablePage{}, err
	}
	ts, next, err := sdk.PageOf(d.tables, p)
	out := make([]sdk.TableRef, len(ts))
	for i, t := range ts {
		t.Namespace = namespace
		out[i] = t
	}
	return sdk.TablePage{Tables: out, NextToken: next}, err
}

func (c *Connector) DescribeTables(ctx context.Context, cfg sdk.Config, tables []sdk.TableRef) ([]sdk.TableInfo, error) {
	d, err := c.get(ctx, cfg)
	if err != nil {
		return nil, err
	}
	out := make([]sdk.TableInfo, 0, len(tables))
	for _, t := range tables {
		if err := sqlitero.CheckNamespace(t.Namespace); err != nil {
			return nil, err
		}
		cols, err := sqlitero.Describe(ctx, d.ro, t.Name)
		if err != nil {
			return nil, err
		}
		t.Kind = sdk.KindFile
		out = append(out, sdk.TableInfo{Ref: t, Columns: cols})
	}
	return out, nil
}

func (c *Connector) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	d, err := c.get(ctx, cfg)
	if err != nil {
		return err
	}
	return sqlitero.Query(ctx, d.ro, q, w)
}

func (c *Connector) Dispose(datasourceID string) { c.insts.Dispose(datasourceID) }
