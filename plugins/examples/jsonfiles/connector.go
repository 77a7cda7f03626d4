package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/datapulse/datapulse/plugins/sdk"
)

const version = "0.3.0"

// maxLine bounds one line of a file.
const maxLine = 4 << 20

// inferLines is how many lines decide a table's columns.
const inferLines = 1000

type connector struct{}

func newConnector() *connector { return &connector{} }

// The configuration schema. "api_token" is not needed to read files: it is
// here to show how a secret is declared ("x-secret": true) — the host stores
// it encrypted, never returns it, and passes it in Config.Secrets.
const configSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "directory": {"type": "string", "minLength": 1, "description": "Absolute path of the directory holding the .jsonl files"},
    "api_token": {"type": "string", "x-secret": true, "description": "Optional; checked against the directory's .token file when that file exists"}
  },
  "required": ["directory"],
  "additionalProperties": false
}`

func (c *connector) Describe() sdk.Description {
	return sdk.Description{
		Name:         "jsonfiles",
		DisplayName:  "JSON-lines files",
		Version:      version,
		Capabilities: []string{sdk.CapabilityParameters, sdk.CapabilityIntrospection, sdk.CapabilityCancel},
		ConfigSchema: json.RawMessage(configSchema),
		SQLDialect:   "jsonfiles",
	}
}

type config struct {
	Directory string `json:"directory"`
	APIToken  string `json:"api_token"`
}

// settings decodes and checks the configuration.
func settings(cfg sdk.Config) (config, error) {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return c, err
	}
	if !filepath.IsAbs(c.Directory) {
		return c, sdk.FieldErrors{{Field: "/directory", Message: "must be an absolute path"}}
	}
	fi, err := os.Stat(c.Directory)
	if err != nil || !fi.IsDir() {
		return c, sdk.FieldErrors{{Field: "/directory", Message: "is not a readable directory"}}
	}
	if want, err := os.ReadFile(filepath.Join(c.Directory, ".token")); err == nil {
		if strings.TrimSpace(string(want)) != c.APIToken {
			return c, sdk.FieldErrors{{Field: "/api_token", Message: "does not match"}}
		}
	}
	return c, nil
}

func (c *connector) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	_, err := settings(cfg)
	return sdk.AsFieldErrors(err)
}

func (c *connector) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	s, err := settings(cfg)
	if err != nil {
		return sdk.Health{}, err
	}
	tables, err := listTables(s.Directory)
	if err != nil {
		return sdk.Health{}, err
	}
	return sdk.Health{Message: fmt.Sprintf("%d files", len(tables))}, nil
}

// listTables returns the table names (file names without extension), sorted,
// with their files.
func listTables(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeUnavailable, "cannot read the directory: %v", errors.Unwrap(err))
	}
	out := map[string]string{}
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if (ext != ".jsonl" && ext != ".ndjson") || !e.Type().IsRegular() {
			continue
		}
		out[strings.TrimSuffix(e.Name(), ext)] = filepath.Join(dir, e.Name())
	}
	return out, nil
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// One unnamed namespace: the directory.
func (c *connector) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	if _, err := settings(cfg); err != nil {
		return sdk.NamespacePage{}, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	return sdk.NamespacePage{}, nil
}

func (c *connector) ListTables(ctx context.Context, cfg sdk.Config, namespace string, p sdk.Page) (sdk.TablePage, error) {
	s, err := settings(cfg)
	if err != nil {
		return sdk.TablePage{}, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	if namespace != "" {
		return sdk.TablePage{}, sdk.Errorf(sdk.CodeNotFound, "namespace %q does not exist", namespace)
	}
	tables, err := listTables(s.Directory)
	if err != nil {
		return sdk.TablePage{}, err
	}
	names, next, err := sdk.PageOf(sortedNames(tables), p)
	if err != nil {
		return sdk.TablePage{}, err
	}
	page := sdk.TablePage{NextToken: next}
	for _, n := range names {
		page.Tables = append(page.Tables, sdk.TableRef{Name: n, Kind: sdk.KindFile})
	}
	return page, nil
}

func (c *connector) DescribeTables(ctx context.Context, cfg sdk.Config, refs []sdk.TableRef) ([]sdk.TableInfo, error) {
	s, err := settings(cfg)
	if err != nil {
		return nil, sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	tables, err := listTables(s.Directory)
	if err != nil {
		return nil, err
	}
	var out []sdk.TableInfo
	for _, r := range refs {
		path, ok := tables[r.Name]
		if !ok || r.Namespace != "" {
			return nil, sdk.Errorf(sdk.CodeNotFound, "table %q does not exist", r.Name)
		}
		cols, err := inferColumns(ctx, path)
		if err != nil {
			return nil, err
		}
		info := sdk.TableInfo{Ref: sdk.TableRef{Name: r.Name, Kind: sdk.KindFile}}
		for _, col := range cols {
			info.Columns = append(info.Columns, sdk.Column{Name: col.name, NativeType: col.native, Type: col.typ, Nullable: true})
		}
		out = append(out, info)
	}
	return out, nil
}

func (c *connector) Dispose(string) {} // nothing cached

// column is an inferred column.
type column struct {
	name   string
	native string // JSON type: "integer", "number", "boolean", "string", "json"
	typ    arrow.DataType
}

// inferColumns reads the first lines of a file: keys in order of first
// appearance, each typed by the values seen.
func inferColumns(ctx context.Context, path string) ([]column, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeUnavailable, "cannot open %s: %v", filepath.Base(path), errors.Unwrap(err))
	}
	defer f.Close()
	var order []string
	kinds := map[string]string{}
	sc := newScanner(f)
	for n := 0; n < inferLines && sc.Scan(); n++ {
		obj, err := decodeLine(sc.Bytes())
		if err != nil {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "%s, line %d: %v", filepath.Base(path), n+1, err)
		}
		for _, kv := range obj {
			k := kindOf(kv.value)
			prev, seen := kinds[kv.key]
			if !seen {
				order = append(order, kv.key)
			}
			kinds[kv.key] = merge(prev, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "%s: %v", filepath.Base(path), err)
	}
	cols := make([]column, len(order))
	for i, name := range order {
		k := kinds[name]
		if k == "" || k == "null" {
			k = "string"
		}
		cols[i] = column{name: name, native: k, typ: arrowType(k)}
	}
	return cols, nil
}

func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	return sc
}

type keyValue struct {
	key   string
	value any
}

// decodeLine decodes one object, keeping its keys in order. Blank lines are
// empty objects.
func decodeLine(line []byte) ([]keyValue, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []keyValue
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, keyValue{key: kt.(string), value: v})
	}
	return out, nil
}

func kindOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	}
	return "json"
}

func merge(a, b string) string {
	switch {
	case a == "" || a == "null":
		return b
	case b == "null" || a == b:
		return a
	case (a == "integer" && b == "number") || (a == "number" && b == "integer"):
		return "number"
	}
	return "json"
}

func arrowType(kind string) arrow.DataType {
	switch kind {
	case "integer":
		return arrow.PrimitiveTypes.Int64
	case "number":
		return arrow.PrimitiveTypes.Float64
	case "boolean":
		return arrow.FixedWidthTypes.Boolean
	}
	return arrow.BinaryTypes.String
}

// cell converts a JSON value to what the row builder takes for kind.
func cell(kind string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case "integer":
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
		}
	case "number":
		if n, ok := v.(json.Number); ok {
			return n.Float64()
		}
	case "boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
	default: // json: the value's JSON text
		if s, ok := v.(string); ok {
			return s, nil
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	return nil, fmt.Errorf("a %s value in a %s column", kindOf(v), kind)
}

func (c *connector) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	s, err := settings(cfg)
	if err != nil {
		return sdk.WithCode(sdk.CodeInvalidArgument, err)
	}
	st, err := parse(q.SQL)
	if err != nil {
		return sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
	}
	if st.params != len(q.Params) {
		return sdk.Errorf(sdk.CodeInvalidArgument, "the query has %d parameters, %d were given", st.params, len(q.Params))
	}
	for _, p := range q.Params {
		if _, isList := p.([]any); isList {
			return sdk.Errorf(sdk.CodeInvalidArgument, "list parameters are not supported")
		}
	}

	var cols []column
	var path string
	if st.table != "" {
		tables, err := listTables(s.Directory)
		if err != nil {
			return err
		}
		var ok bool
		if path, ok = tables[st.table]; !ok {
			return sdk.Errorf(sdk.CodeNotFound, "table %q does not exist", st.table)
		}
		if cols, err = inferColumns(ctx, path); err != nil {
			return err
		}
	}
	colIndex := map[string]int{}
	for i, col := range cols {
		colIndex[col.name] = i
	}

	// The output columns.
	type output struct {
		col   int // index into cols, or -1
		param any // for a parameter item
		sleep float64
		kind  string
	}
	var outs []output
	var fields []arrow.Field
	for _, it := range st.items {
		switch {
		case it.star:
			for i, col := range cols {
				outs = append(outs, output{col: i, kind: col.native})
				fields = append(fields, arrow.Field{Name: col.name, Type: col.typ, Nullable: true})
			}
		case it.param >= 0:
			v := q.Params[it.param]
			k := paramKind(v)
			outs = append(outs, output{col: -1, param: v, kind: k})
			fields = append(fields, arrow.Field{Name: fmt.Sprintf("param_%d", it.param+1), Type: arrowType(k), Nullable: true})
		case it.sleep > 0:
			outs = append(outs, output{col: -1, sleep: it.sleep, kind: "number"})
			fields = append(fields, arrow.Field{Name: "sleep", Type: arrow.PrimitiveTypes.Float64})
		default:
			i, ok := colIndex[it.column]
			if !ok {
				return sdk.Errorf(sdk.CodeInvalidArgument, "no column %q in %q", it.column, st.table)
			}
			outs = append(outs, output{col: i, kind: cols[i].native})
			fields = append(fields, arrow.Field{Name: it.column, Type: cols[i].typ, Nullable: true})
		}
	}
	conds := make([]compiled, len(st.where))
	for i, cond := range st.where {
		idx, ok := colIndex[cond.column]
		if !ok {
			return sdk.Errorf(sdk.CodeInvalidArgument, "no column %q in %q", cond.column, st.table)
		}
		v := cond.value
		if cond.param >= 0 {
			v = q.Params[cond.param]
		}
		conds[i] = compiled{col: cols[idx].name, op: cond.op, value: v}
	}
	if err := w.SetSchema(arrow.NewSchema(fields, nil)); err != nil {
		return err
	}
	rows := w.Rows()
	row := make([]any, len(outs))

	if st.table == "" { // SELECT ?, sleep(n): one row
		for i, o := range outs {
			if o.sleep > 0 {
				t := time.NewTimer(time.Duration(o.sleep * float64(time.Second)))
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
				row[i] = o.sleep
				continue
			}
			row[i] = paramValue(o.param)
		}
		return rows.Append(row...)
	}

	f, err := os.Open(path)
	if err != nil {
		return sdk.Errorf(sdk.CodeUnavailable, "cannot open %s: %v", st.table, errors.Unwrap(err))
	}
	defer f.Close()
	sc := newScanner(f)
	produced := int64(0)
	for line := 1; sc.Scan(); line++ {
		if line%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		kvs, err := decodeLine(sc.Bytes())
		if err != nil {
			return sdk.Errorf(sdk.CodeInvalidArgument, "%s, line %d: %v", st.table, line, err)
		}
		if len(kvs) == 0 {
			continue
		}
		obj := make(map[string]any, len(kvs))
		for _, kv := range kvs {
			obj[kv.key] = kv.value
		}
		if !matches(obj, conds) {
			continue
		}
		for i, o := range outs {
			if o.col < 0 {
				row[i] = paramValue(o.param)
				continue
			}
			v, err := cell(o.kind, obj[cols[o.col].name])
			if err != nil {
				return sdk.Errorf(sdk.CodeInvalidArgument, "%s, line %d, %q: %v (the column's type comes from the first %d lines)", st.table, line, cols[o.col].name, err, inferLines)
			}
			row[i] = v
		}
		if err := rows.Append(row...); err != nil {
			return err // ErrLimitReached included: the SDK ends the result
		}
		produced++
		if st.limit >= 0 && produced >= st.limit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return sdk.Errorf(sdk.CodeInvalidArgument, "%s: %v", st.table, err)
	}
	return nil
}

func paramKind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "number"
	}
	return "string"
}

func paramValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
