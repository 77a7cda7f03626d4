// Package sqlitero is read-only SQLite access shared by the sqlite and csv
// connectors: opening a database so that SQLite itself refuses every write,
// running a query into an SDK ResultWriter, and introspection.
//
// Read-only is enforced by SQLite, in three layers, none of which looks at
// SQL text:
//   - the database is opened with mode=ro (SQLite opens the file
//     read-only: every write fails with SQLITE_READONLY);
//   - PRAGMA query_only=1 on every connection;
//   - an authorizer (sqlite3_set_authorizer) on every connection that
//     allows only reading: SELECT, reading columns, functions (except
//     load_extension), recursive CTEs and a few introspection PRAGMAs. It
//     denies everything else at prepare time, including what mode=ro does
//     not stop: ATTACH (reading another file, such as DataPulse's own
//     database), VACUUM INTO (writing a copy anywhere), PRAGMA query_only=0,
//     BEGIN (a connection left in a transaction) and temporary tables.
package sqlitero

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// FileDSN returns the DSN that opens the database file at path (absolute,
// already checked) read-only. The path is escaped, so characters such as
// '?', '#' and '%' in a file name cannot add URI parameters.
func FileDSN(path string) string {
	u := url.URL{Path: path}
	return "file:" + u.EscapedPath() + "?" + roParams
}

// MemDSN returns the DSN of the in-memory database name (SQLite's memdb
// VFS), opened read-only. The database exists while some connection to it
// (the one that loaded it) stays open.
func MemDSN(name string) string {
	return "file:/" + url.PathEscape(name) + "?vfs=memdb&" + roParams
}

const roParams = "mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(5000)&_pragma=trusted_schema(0)&_defensive=1"

// Options tune Open.
type Options struct {
	// MaxConns caps the pool (default 4).
	MaxConns int
	// NoAuthorizer leaves the authorizer out: only tests use it, to show
	// that the other layers hold on their own.
	NoAuthorizer bool
}

// Open returns a pool over dsn with the read-only authorizer on every
// connection. It does not connect: call Ping or run a query.
func Open(dsn string, opts Options) *sql.DB {
	d := &sqlite.Driver{}
	if !opts.NoAuthorizer {
		d.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
			r, ok := c.(sqlite.AuthorizerRegisterer)
			if !ok {
				return errors.New("the SQLite driver does not support an authorizer")
			}
			return r.RegisterAuthorizer(authorize)
		})
	}
	db := sql.OpenDB(dsnConnector{d: d, dsn: dsn})
	n := opts.MaxConns
	if n <= 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db
}

type dsnConnector struct {
	d   *sqlite.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// readPragmas are the PRAGMAs a query may use: they only read.
var readPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true,
	"index_info": true, "index_xinfo": true, "foreign_key_list": true, "collation_list": true,
	"function_list": true, "database_list": true,
}

// deniedFunctions are functions no query may call.
var deniedFunctions = map[string]bool{"load_extension": true, "fts3_tokenizer": true}

// authorize is the read-only policy (see the package comment). Anything
// not listed is denied, so new SQLite actions fail closed.
func authorize(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthFunction:
		if deniedFunctions[strings.ToLower(arg2)] {
			return sqlite.AuthorizerDeny
		}
		return sqlite.AuthorizerOK
	case sqlite.AuthPragma:
		if readPragmas[strings.ToLower(arg1)] {
			return sqlite.AuthorizerOK
		}
	}
	return sqlite.AuthorizerDeny
}

// Err maps an SQLite error to an SDK error with a code.
func Err(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_AUTH, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
			return sdk.Errorf(sdk.CodePermissionDenied, "refused: the data source is read-only (%v)", err)
		case sqlite3.SQLITE_INTERRUPT:
			return sdk.WithCode(sdk.CodeUnavailable, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR:
			return sdk.WithCode(sdk.CodeUnavailable, err)
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return sdk.Errorf(sdk.CodeInvalidArgument, "not a usable SQLite database: %v", err)
		case sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_FULL:
			return sdk.WithCode(sdk.CodeResourceExhausted, err)
		default:
			return sdk.WithCode(sdk.CodeInvalidArgument, err)
		}
	}
	return err
}

// Args converts query parameters to driver values. Lists are refused:
// SQLite has no array type (the host expands list parameters).
func Args(params []any) ([]any, error) {
	out := make([]any, len(params))
	for i, p := range params {
		switch v := p.(type) {
		case nil, bool, int64, float64, string:
			out[i] = v
		case time.Time:
			out[i] = v.UTC().Format("2006-01-02 15:04:05.999999")
		case sdk.Date:
			out[i] = v.String()
		case []any:
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "parameter %d: list parameters are not supported by SQLite", i+1)
		default:
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "parameter %d: unsupported type %T", i+1, p)
		}
	}
	return out, nil
}

// TimestampType is the Arrow type of date and time columns.
var TimestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// kind is a column's Arrow representation.
type kind int

const (
	kText kind = iota
	kInt
	kFloat
	kBool
	kBlob
	kTime
)

func (k kind) arrow() arrow.DataType {
	switch k {
	case kInt:
		return arrow.PrimitiveTypes.Int64
	case kFloat:
		return arrow.PrimitiveTypes.Float64
	case kBool:
		return arrow.FixedWidthTypes.Boolean
	case kBlob:
		return arrow.BinaryTypes.Binary
	case kTime:
		return TimestampType
	}
	return arrow.BinaryTypes.String
}

func (k kind) String() string { return k.arrow().String() }

// declKind maps a declared column type to a kind by SQLite's affinity rules
// (https://www.sqlite.org/datatype3.html#determination_of_column_affinity),
// with BOOL and DATE/TIME recognised. ok is false for no declared type.
func declKind(decl string) (k kind, ok bool) {
	d := strings.ToUpper(decl)
	switch {
	case d == "":
		return kText, false
	case strings.Contains(d, "BOOL"):
		return kBool, true
	case strings.Contains(d, "INT"):
		return kInt, true
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return kText, true
	case strings.Contains(d, "BLOB"):
		return kBlob, true
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return kFloat, true
	case strings.Contains(d, "DATE"), strings.Contains(d, "TIME"):
		return kTime, true
	}
	return kFloat, true // NUMERIC affinity
}

// ArrowTypeOfDecl is the Arrow type a column of declared type decl is
// described with.
func ArrowTypeOfDecl(decl string) arrow.DataType {
	k, _ := declKind(decl)
	return k.arrow()
}

// valueKind is the kind of one scanned value.
func valueKind(v any) (kind, bool) {
	switch v.(type) {
	case int64:
		return kInt, true
	case float64:
		return kFloat, true
	case string:
		return kText, true
	case []byte:
		return kBlob, true
	case time.Time:
		return kTime, true
	case bool:
		return kBool, true
	}
	return kText, false
}

// inferKind decides a column's kind from its declared type and the values
// of the first rows.
func inferKind(decl string, col int, rows [][]any) kind {
	seen := map[kind]bool{}
	boolish := true
	for _, r := range rows {
		v := r[col]
		if v == nil {
			continue
		}
		k, _ := valueKind(v)
		seen[k] = true
		if i, ok := v.(int64); !ok || (i != 0 && i != 1) {
			if _, isBool := v.(bool); !isBool {
				boolish = false
			}
		}
	}
	dk, declared := declKind(decl)
	if len(seen) == 0 {
		return dk
	}
	only := func(ks ...kind) bool {
		for k := range seen {
			found := false
			for _, x := range ks {
				found = found || k == x
			}
			if !found {
				return false
			}
		}
		return true
	}
	if declared {
		switch dk {
		case kBool:
			if boolish {
				return kBool
			}
		case kInt:
			if only(kInt) {
				return kInt
			}
		case kFloat:
			if only(kInt, kFloat) {
				return kFloat
			}
		case kTime:
			if only(kTime) {
				return kTime
			}
		case kBlob:
			if only(kBlob) {
				return kBlob
			}
		case kText:
			return kText
		}
	}
	switch {
	case only(kInt):
		return kInt
	case only(kInt, kFloat):
		return kFloat
	case only(kTime):
		return kTime
	case only(kBlob):
		return kBlob
	case only(kBool):
		return kBool
	}
	return kText
}

// peekRows is how many rows are read before the schema is decided.
const peekRows = 1024

// Query runs q on db and writes the result to w. Column types come from the
// declared types and the first rows; a later value that does not fit its
// column is an error asking for a CAST.
func Query(ctx context.Context, db *sql.DB, q sdk.Query, w sdk.ResultWriter) error {
	args, err := Args(q.Params)
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, q.SQL, args...)
	if err != nil {
		return Err(ctx, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return Err(ctx, err)
	}
	n := len(cts)
	scan := func() ([]any, error) {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, Err(ctx, err)
		}
		return vals, nil
	}
	var buffered [][]any
	more := true
	for len(buffered) < peekRows {
		if !rows.Next() {
			more = false
			break
		}
		vals, err := scan()
		if err != nil {
			return err
		}
		buffered = append(buffered, vals)
	}
	if !more {
		if err := rows.Err(); err != nil {
			return Err(ctx, err)
		}
	}
	kinds := make([]kind, n)
	fields := make([]arrow.Field, n)
	seenNames := map[string]int{}
	for i, ct := range cts {
		kinds[i] = inferKind(ct.DatabaseTypeName(), i, buffered)
		name := ct.Name()
		if c := seenNames[name]; c > 0 {
			// Arrow allows duplicate names but hosts map columns by name.
			name = fmt.Sprintf("%s_%d", name, c+1)
		}
		seenNames[ct.Name()]++
		fields[i] = arrow.Field{Name: name, Type: kinds[i].arrow(), Nullable: true}
	}
	if err := w.SetSchema(arrow.NewSchema(fields, nil)); err != nil {
		return err
	}
	rb := w.Rows()
	row := make([]any, n)
	rowNum := 0
	put := func(vals []any) error {
		rowNum++
		for i, v := range vals {
			x, err := convert(kinds[i], v)
			if err != nil {
				return sdk.Errorf(sdk.CodeInvalidArgument, "column %q, row %d: %v; its type (%s) was decided from the first rows: CAST it in the query", cts[i].Name(), rowNum, err, kinds[i])
			}
			row[i] = x
		}
		return rb.Append(row...)
	}
	for _, vals := range buffered {
		if err := put(vals); err != nil {
			return err
		}
	}
	buffered = nil
	for more && rows.Next() {
		vals, err := scan()
		if err != nil {
			return err
		}
		if err := put(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return Err(ctx, err)
	}
	return nil
}

// convert turns a scanned value into what the RowBuilder takes for k.
func convert(k kind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch k {
	case kText:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return strings.ToValidUTF8(string(x), "\uFFFD"), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		case int64, float64, bool:
			return fmt.Sprint(x), nil
		}
	case kInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if x == float64(int64(x)) {
				return int64(x), nil
			}
		case bool:
			return x, nil
		}
	case kFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	case kBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		}
	case kBlob:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case kTime:
		if t, ok := v.(time.Time); ok {
			return t, nil
		}
	}
	return nil, fmt.Errorf("a %T value does not fit", v)
}

// Tables lists the tables and views of the main database, by name.
func Tables(ctx context.Context, db *sql.DB) ([]sdk.TableRef, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, Err(ctx, err)
	}
	defer rows.Close()
	var out []sdk.TableRef
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, Err(ctx, err)
		}
		k := sdk.KindTable
		if typ == "view" {
			k = sdk.KindView
		}
		out = append(out, sdk.TableRef{Namespace: Namespace, Name: name, Kind: k})
	}
	return out, Err(ctx, rows.Err())
}

// Namespace is the only namespace of an SQLite database.
const Namespace = "main"

// Describe returns the columns of table in the main database, or a
// NotFound error.
func Describe(ctx context.Context, db *sql.DB, table string) ([]sdk.Column, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, Err(ctx, err)
	}
	defer rows.Close()
	var out []sdk.Column
	for rows.Next() {
		var name, typ string
		var notnull, pk int64
		if err := rows.Scan(&name, &typ, &notnull, &pk); err != nil {
			return nil, Err(ctx, err)
		}
		native := typ
		if native == "" {
			native = "ANY"
		}
		out = append(out, sdk.Column{Name: name, NativeType: native, Type: ArrowTypeOfDecl(typ), Nullable: notnull == 0})
	}
	if err := rows.Err(); err != nil {
		return nil, Err(ctx, err)
	}
	if len(out) == 0 {
		return nil, sdk.Errorf(sdk.CodeNotFound, "table %q does not exist", table)
	}
	return out, nil
}

// CheckNamespace accepts "" and "main".
func CheckNamespace(ns string) error {
	if ns == "" || ns == Namespace {
		return nil
	}
	return sdk.Errorf(sdk.CodeNotFound, "namespace %q does not exist (SQLite has only %q)", ns, Namespace)
}

// Version returns SQLite's version.
func Version(ctx context.Context, db *sql.DB) (string, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return "", Err(ctx, err)
	}
	return "SQLite " + v, nil
}
