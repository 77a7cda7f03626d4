package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// Config holds the fixtures the suite needs. Every field is required
// unless marked optional.
type Config struct {
	// ValidConfig is a configuration (JSON object, without secrets) that
	// connects, and ValidSecrets its secret fields.
	ValidConfig  string
	ValidSecrets map[string]string
	// InvalidConfig is a configuration ValidateConfig must reject with at
	// least one field error (and CheckHealth must not call healthy).
	InvalidConfig  string
	InvalidSecrets map[string]string

	// KnownQuery returns exactly KnownRows, in this order. Values are
	// compared after normalisation: Go integers as int64, floats as
	// float64, times in UTC, sdk.Date for dates (see Result.Rows).
	KnownQuery string
	KnownRows  [][]any
	// EchoQuery has one text parameter and returns it as the only value of
	// its only row ("SELECT $1::text", "SELECT ?").
	EchoQuery string
	// ManyRowsQuery returns at least 1,000 rows in a deterministic order.
	ManyRowsQuery string
	// SlowQuery runs for at least 10 seconds unless cancelled
	// ("SELECT pg_sleep(60)", a huge recursive CTE). Leave it empty and set
	// Slow when your language has no such thing.
	SlowQuery string
	// Slow (optional hook, instead of SlowQuery) prepares something slow
	// and returns a query, in your connector's own language, that reads it
	// and so runs for at least 10 seconds unless cancelled: a table behind
	// a server that never answers, a row lock held by the test, a file that
	// is a pipe nobody writes. Only that query may be slow: KnownQuery must
	// still answer. It is called once per cancellation check; undo what it
	// did with t.Cleanup. No test-only syntax (sleep functions) is needed
	// in your query language.
	Slow func(t testing.TB) string
	// WriteStatements must each be refused (read-only) and change nothing:
	// KnownQuery must still return KnownRows afterwards.
	WriteStatements []string

	// Tables (optional) must appear in the listing of their namespace.
	Tables []sdk.TableRef
	// MissingTable (optional) does not exist; DescribeTables must answer
	// NotFound. Default: {Name: "sdktest_no_such_table"} in the first
	// namespace.
	MissingTable *sdk.TableRef
	// BadQuery (optional) is not valid for the connector. Default:
	// "THIS IS NOT A QUERY".
	BadQuery string

	// TableQuery (optional hook, strongly recommended) returns a query, in
	// your connector's own language, that reads every column of table:
	// "SELECT * FROM t", a JSON request, whatever your language uses (the
	// suite caps the result at 1,000 rows). With it, the suite checks for
	// each fixture table (Tables, else the first tables listed) that what
	// Query emits matches what DescribeTables declares: the same column
	// names, the same Arrow types, and no NULL in a column declared
	// non-nullable (SchemaProblems). Without it that check is skipped.
	TableQuery func(table sdk.TableRef) string
}

// Run runs the conformance suite against c, served in-process through the
// SDK's gRPC adapter and go-plugin's gRPC transport.
func Run(t *testing.T, c sdk.Connector, cfg Config) {
	sp := &spy{Connector: c, ended: make(chan time.Time, 8)}
	h := Start(t, sp, cfg.ValidConfig, cfg.ValidSecrets)
	run(t, h, cfg, sp)
}

// RunExecutable runs the conformance suite against the connector binary at
// path, started as the host starts it.
func RunExecutable(t *testing.T, path string, cfg Config) {
	h := StartExecutable(t, path, cfg.ValidConfig, cfg.ValidSecrets)
	run(t, h, cfg, nil)
}

const cancelQueryID = "sdktest-cancel"

// spy reports when a cancelled query actually returned inside the connector.
type spy struct {
	sdk.Connector
	ended chan time.Time
}

func (s *spy) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	err := s.Connector.Query(ctx, cfg, q, w)
	if q.ID == cancelQueryID {
		s.ended <- time.Now()
	}
	return err
}

func checkConfig(t *testing.T, cfg Config) {
	t.Helper()
	missing := []string{}
	for name, v := range map[string]string{
		"ValidConfig": cfg.ValidConfig, "InvalidConfig": cfg.InvalidConfig, "KnownQuery": cfg.KnownQuery,
		"EchoQuery": cfg.EchoQuery, "ManyRowsQuery": cfg.ManyRowsQuery,
	} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, name)
		}
	}
	if strings.TrimSpace(cfg.SlowQuery) == "" && cfg.Slow == nil {
		missing = append(missing, "SlowQuery (or the Slow hook)")
	}
	if len(cfg.WriteStatements) == 0 {
		missing = append(missing, "WriteStatements")
	}
	if len(missing) > 0 {
		t.Fatalf("sdktest.Config is missing %s", strings.Join(missing, ", "))
	}
}

func run(t *testing.T, h *Harness, cfg Config, sp *spy) {
	checkConfig(t, cfg)
	s := &suite{h: h, cfg: cfg, spy: sp}
	for _, v := range cfg.ValidSecrets {
		if len(v) >= 4 {
			s.secrets = append(s.secrets, v)
		}
	}
	for _, v := range cfg.InvalidSecrets {
		if len(v) >= 4 {
			s.secrets = append(s.secrets, v)
		}
	}
	t.Run("Describe", s.describe)
	t.Run("ValidateConfig", s.validateConfig)
	t.Run("CheckHealth", s.checkHealth)
	t.Run("Introspection", s.introspection)
	t.Run("ResultsMatchDeclaredSchema", s.schemaMatches)
	t.Run("QueryKnownRows", s.queryKnown)
	t.Run("QueryBatches", s.queryBatches)
	t.Run("QueryMaxRows", s.queryMaxRows)
	t.Run("QueryMaxBytes", s.queryMaxBytes)
	t.Run("Parameters", s.parameters)
	t.Run("Cancellation", s.cancellation)
	t.Run("ReadOnly", s.readOnly)
	t.Run("BadQuery", s.badQuery)
	t.Run("Concurrency", s.concurrency)
	t.Run("Dispose", s.dispose)
}

type suite struct {
	h       *Harness
	cfg     Config
	spy     *spy
	secrets []string

	manyOnce sync.Once
	many     *Result
	manyErr  error
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// noSecret fails if msg contains a secret value.
func (s *suite) noSecret(t *testing.T, what, msg string) {
	t.Helper()
	for _, v := range s.secrets {
		if strings.Contains(msg, v) {
			t.Errorf("%s contains a secret value: %q", what, msg)
		}
	}
}

var (
	versionRe = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$`)
	secretRe  = regexp.MustCompile(`(?i)(pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credential)`)
)

func (s *suite) describe(t *testing.T) {
	d, err := s.h.Describe(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !sdk.ValidName(d.Name) {
		t.Errorf("name %q does not match %s (the host's rule for connector names)", d.Name, sdk.NamePattern)
	}
	if !versionRe.MatchString(d.Version) {
		t.Errorf("version %q is not semver", d.Version)
	}
	if d.DisplayName == "" {
		t.Error("display name is empty")
	}
	if d.SDKVersion == "" {
		t.Error("sdk version is empty")
	}
	var schema map[string]any
	if err := json.Unmarshal(d.ConfigSchema, &schema); err != nil {
		t.Fatalf("config schema is not a JSON object: %v", err)
	}
	if schema["type"] != "object" {
		t.Errorf(`config schema: "type" is %v, want "object"`, schema["type"])
	}
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		t.Fatal(`config schema has no "properties" object`)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.ConfigSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("config.json", doc); err != nil {
		t.Fatal(err)
	}
	compiled, err := c.Compile("config.json")
	if err != nil {
		t.Fatalf("config schema is not a valid JSON Schema: %v", err)
	}
	isSecret := func(name string) bool {
		p, _ := props[name].(map[string]any)
		return p != nil && (p["x-secret"] == true || p["writeOnly"] == true)
	}
	for name := range props {
		if secretRe.MatchString(name) && !isSecret(name) {
			t.Errorf(`property %q looks like a secret but is not marked "x-secret": true`, name)
		}
	}
	for name := range s.cfg.ValidSecrets {
		if _, ok := props[name]; !ok {
			t.Errorf("secret %q is not a property of the config schema", name)
		} else if !isSecret(name) {
			t.Errorf(`secret %q is not marked "x-secret": true`, name)
		}
	}
	// The valid fixture (with its secrets) must satisfy the schema: the
	// host validates every configuration against it.
	merged := map[string]any{}
	if err := json.Unmarshal([]byte(s.cfg.ValidConfig), &merged); err != nil {
		t.Fatalf("ValidConfig: %v", err)
	}
	for k, v := range s.cfg.ValidSecrets {
		merged[k] = v
	}
	inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(mustJSON(merged)))
	if err := compiled.Validate(inst); err != nil {
		t.Errorf("the valid configuration does not satisfy the config schema: %v", err)
	}
	if !slices.Contains(sdk.ModelDialects, d.SQLDialect) {
		t.Logf("note: SQL dialect %q is not one of %v: saved queries work, data models on this connector are refused (docs/plugins.md, \"Data models and SQL dialects\")", d.SQLDialect, sdk.ModelDialects)
	}
	if ap, ok := schema["additionalProperties"]; !ok || ap != false {
		t.Logf(`note: config schema allows additional properties; "additionalProperties": false lets the host reject unknown parameters`)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (s *suite) validateConfig(t *testing.T) {
	ctx := ctxT(t)
	fes, err := s.h.ValidateConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fes) != 0 {
		t.Errorf("the valid configuration was rejected: %v", fes)
	}
	fes, err = s.h.With(s.cfg.InvalidConfig, s.cfg.InvalidSecrets).ValidateConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fes) == 0 {
		t.Errorf("the invalid configuration %s was accepted", s.cfg.InvalidConfig)
	}
	for _, fe := range fes {
		if fe.Message == "" {
			t.Errorf("field error without a message: %+v", fe)
		}
		if fe.Field != "" && !strings.HasPrefix(fe.Field, "/") {
			t.Errorf("field %q is not a JSON pointer", fe.Field)
		}
		s.noSecret(t, "field error", fe.Message)
	}
}

func (s *suite) checkHealth(t *testing.T) {
	ctx := ctxT(t)
	hr, err := s.h.CheckHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hr.OK {
		t.Errorf("the valid configuration is not healthy: %s", hr.Message)
	}
	s.noSecret(t, "health message", hr.Message)
	hr, err = s.h.With(s.cfg.InvalidConfig, s.cfg.InvalidSecrets).CheckHealth(ctx)
	if err != nil {
		if c := Code(err); c == codes.Internal || c == codes.Unknown {
			t.Errorf("CheckHealth on the invalid configuration: %v", err)
		}
		s.noSecret(t, "health error", Message(err))
		return
	}
	if hr.OK {
		t.Errorf("the invalid configuration is healthy")
	}
	s.noSecret(t, "health message", hr.Message)
}

const maxPages = 10000

func (s *suite) walkNamespaces(ctx context.Context, size int) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	tok := ""
	for range maxPages {
		p, err := s.h.ListNamespaces(ctx, size, tok)
		if err != nil {
			return nil, err
		}
		if len(p.Namespaces) > size {
			return nil, fmt.Errorf("a page of %d namespaces for page size %d", len(p.Namespaces), size)
		}
		out = append(out, p.Namespaces...)
		if p.NextToken == "" {
			return out, nil
		}
		if seen[p.NextToken] {
			return nil, fmt.Errorf("page token %q repeats: paging would not end", p.NextToken)
		}
		seen[p.NextToken] = true
		tok = p.NextToken
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

func (s *suite) walkTables(ctx context.Context, ns string, size int) ([]sdk.TableRef, error) {
	var out []sdk.TableRef
	seen := map[string]bool{}
	tok := ""
	for range maxPages {
		p, err := s.h.ListTables(ctx, ns, size, tok)
		if err != nil {
			return nil, err
		}
		if len(p.Tables) > size {
			return nil, fmt.Errorf("a page of %d tables for page size %d", len(p.Tables), size)
		}
		out = append(out, p.Tables...)
		if p.NextToken == "" {
			return out, nil
		}
		if seen[p.NextToken] {
			return nil, fmt.Errorf("page token %q repeats: paging would not end", p.NextToken)
		}
		seen[p.NextToken] = true
		tok = p.NextToken
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

func (s *suite) introspection(t *testing.T) {
	ctx := ctxT(t)
	ns1, err := s.walkNamespaces(ctx, 1)
	if err != nil {
		t.Fatalf("namespaces, page size 1: %v", err)
	}
	nsAll, err := s.walkNamespaces(ctx, 1000)
	if err != nil {
		t.Fatalf("namespaces, page size 1000: %v", err)
	}
	if !reflect.DeepEqual(ns1, nsAll) {
		t.Errorf("namespaces differ by page size:\n%v\n%v", ns1, nsAll)
	}
	if d := dups(nsAll); d != "" {
		t.Errorf("namespace %q listed twice", d)
	}
	namespaces := nsAll
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	// The namespaces of the fixtures first, then a few others.
	want := map[string][]string{}
	order := []string{}
	for _, tr := range s.cfg.Tables {
		if _, ok := want[tr.Namespace]; !ok {
			order = append(order, tr.Namespace)
		}
		want[tr.Namespace] = append(want[tr.Namespace], tr.Name)
	}
	for _, ns := range namespaces {
		if len(order) >= 5 {
			break
		}
		if _, ok := want[ns]; !ok {
			want[ns] = nil
			order = append(order, ns)
		}
	}
	var toDescribe []sdk.TableRef
	for _, ns := range order {
		t1, err := s.walkTables(ctx, ns, 1)
		if err != nil {
			t.Fatalf("tables of %q, page size 1: %v", ns, err)
		}
		tAll, err := s.walkTables(ctx, ns, 1000)
		if err != nil {
			t.Fatalf("tables of %q, page size 1000: %v", ns, err)
		}
		if !reflect.DeepEqual(t1, tAll) {
			t.Errorf("tables of %q differ by page size:\n%v\n%v", ns, t1, tAll)
		}
		names := make([]string, len(tAll))
		for i, tr := range tAll {
			names[i] = tr.Name
			if tr.Name == "" {
				t.Errorf("a table of %q has no name", ns)
			}
			if tr.Namespace != ns {
				t.Errorf("table %q listed under %q says namespace %q", tr.Name, ns, tr.Namespace)
			}
		}
		if d := dups(names); d != "" {
			t.Errorf("table %q listed twice in %q", d, ns)
		}
		for _, w := range want[ns] {
			if !contains(names, w) {
				t.Errorf("table %q is not listed in namespace %q (got %v)", w, ns, names)
			}
		}
		toDescribe = append(toDescribe, tAll[:min(3, len(tAll))]...)
	}
	for _, tr := range s.cfg.Tables {
		if !containsRef(toDescribe, tr) {
			toDescribe = append(toDescribe, tr)
		}
	}
	if len(toDescribe) > 0 {
		infos, err := s.h.DescribeTables(ctx, toDescribe...)
		if err != nil {
			t.Fatalf("DescribeTables: %v", err)
		}
		if len(infos) != len(toDescribe) {
			t.Fatalf("DescribeTables: %d tables for %d asked", len(infos), len(toDescribe))
		}
		for i, ti := range infos {
			if ti.Ref.Name != toDescribe[i].Name || ti.Ref.Namespace != toDescribe[i].Namespace {
				t.Errorf("DescribeTables answer %d is %v, asked %v", i, ti.Ref, toDescribe[i])
			}
			if len(ti.Columns) == 0 {
				t.Errorf("table %v has no columns", ti.Ref)
			}
			for _, c := range ti.Columns {
				if c.Name == "" || c.NativeType == "" || c.ArrowType == "" {
					t.Errorf("table %v: incomplete column %+v", ti.Ref, c)
				}
			}
		}
	}
	missing := sdk.TableRef{Namespace: namespaces[0], Name: "sdktest_no_such_table"}
	if s.cfg.MissingTable != nil {
		missing = *s.cfg.MissingTable
	}
	if _, err := s.h.DescribeTables(ctx, missing); Code(err) != codes.NotFound {
		t.Errorf("DescribeTables of a missing table: want NotFound, got %v", err)
	}
	if _, err := s.h.ListTables(ctx, namespaces[0], 1, "sdktest-not-a-page-token"); Code(err) != codes.InvalidArgument {
		t.Errorf("ListTables with a forged page token: want InvalidArgument, got %v", err)
	}
}

func dups(xs []string) string {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func containsRef(xs []sdk.TableRef, x sdk.TableRef) bool {
	for _, y := range xs {
		if x.Namespace == y.Namespace && x.Name == y.Name {
			return true
		}
	}
	return false
}

// Normalize converts an expected value to the form Result.Rows uses.
func Normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint:
		return uint64(x)
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	case float32:
		return float64(x)
	case time.Time:
		return x.UTC()
	}
	return v
}

// SameRows reports whether got equals want after normalisation, with a
// description of the first difference.
func SameRows(got, want [][]any) (bool, string) {
	if len(got) != len(want) {
		return false, fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			return false, fmt.Sprintf("row %d has %d columns, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			g, w := got[i][j], Normalize(want[i][j])
			if gt, ok := g.(time.Time); ok {
				if wt, ok := w.(time.Time); ok && gt.Equal(wt) {
					continue
				}
			}
			if !reflect.DeepEqual(g, w) {
				return false, fmt.Sprintf("row %d column %d: got %#v, want %#v", i, j, g, w)
			}
		}
	}
	return true, ""
}

func (s *suite) queryKnown(t *testing.T) {
	res, err := s.h.Query(ctxT(t), s.cfg.KnownQuery)
	if err != nil {
		t.Fatal(err)
	}
	if !res.FirstMessageSchema {
		t.Error("the first message does not start with the schema")
	}
	if ok, diff := SameRows(res.Rows, s.cfg.KnownRows); !ok {
		t.Errorf("KnownQuery: %s\ngot %v", diff, res.Rows)
	}
	for _, p := range NullProblems(res) {
		t.Errorf("KnownQuery: %s", p)
	}
	if res.Truncated {
		t.Error("truncated without a limit")
	}
	if res.Schema.NumFields() == 0 {
		t.Error("no columns")
	}
}

func (s *suite) manyRows(t *testing.T) *Result {
	s.manyOnce.Do(func() {
		s.many, s.manyErr = s.h.Query(ctxT(t), s.cfg.ManyRowsQuery)
	})
	if s.manyErr != nil {
		t.Fatal(s.manyErr)
	}
	if len(s.many.Rows) < 1000 {
		t.Fatalf("ManyRowsQuery returned %d rows; it must return at least 1000", len(s.many.Rows))
	}
	for _, p := range NullProblems(s.many) {
		t.Errorf("ManyRowsQuery: %s", p)
	}
	return s.many
}

func (s *suite) queryBatches(t *testing.T) {
	full := s.manyRows(t)
	for i, n := range full.BatchRows {
		if n > sdk.DefaultBatchMaxRows {
			t.Errorf("batch %d has %d rows, over the default %d", i, n, sdk.DefaultBatchMaxRows)
		}
	}
	for i, n := range full.MessageSizes {
		if n > sdk.DefaultBatchMaxBytes {
			t.Errorf("message %d has %d bytes, over the default %d", i, n, sdk.DefaultBatchMaxBytes)
		}
	}
	const rowsPer, bytesPer = 100, 16 << 10
	res, err := s.h.QueryLimits(ctxT(t), s.cfg.ManyRowsQuery, sdk.Limits{BatchMaxRows: rowsPer, BatchMaxBytes: bytesPer})
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := SameRows(res.Rows, full.Rows); !ok {
		t.Errorf("small batches changed the result: %s", diff)
	}
	if !res.FirstMessageSchema {
		t.Error("the first message does not start with the schema")
	}
	for i, n := range res.BatchRows {
		if n > rowsPer {
			t.Errorf("batch %d has %d rows, over batch_max_rows %d", i, n, rowsPer)
		}
	}
	for i, n := range res.MessageSizes {
		if n > bytesPer {
			t.Errorf("message %d has %d bytes, over batch_max_bytes %d", i, n, bytesPer)
		}
	}
	rows := len(res.Rows)
	if len(res.MessageSizes) < (rows+rowsPer-1)/rowsPer {
		t.Errorf("%d messages for %d rows at %d rows per batch", len(res.MessageSizes), rows, rowsPer)
	}
	if len(res.MessageSizes)*2 > rows {
		t.Errorf("%d messages for %d rows: about one message per row", len(res.MessageSizes), rows)
	}
}

func (s *suite) queryMaxRows(t *testing.T) {
	full := s.manyRows(t)
	res, err := s.h.QueryLimits(ctxT(t), s.cfg.ManyRowsQuery, sdk.Limits{MaxRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 10 || !res.Truncated {
		t.Fatalf("max_rows 10: %d rows, truncated %v", len(res.Rows), res.Truncated)
	}
	if ok, diff := SameRows(res.Rows, full.Rows[:10]); !ok {
		t.Errorf("max_rows 10 is not the first 10 rows: %s", diff)
	}
}

func (s *suite) queryMaxBytes(t *testing.T) {
	full := s.manyRows(t)
	limit := full.Bytes / 2
	res, err := s.h.QueryLimits(ctxT(t), s.cfg.ManyRowsQuery, sdk.Limits{MaxBytes: limit, BatchMaxBytes: int(max(limit/8, 4096))})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || res.Bytes > limit || len(res.Rows) >= len(full.Rows) || len(res.Rows) == 0 {
		t.Fatalf("max_bytes %d: %d bytes, %d of %d rows, truncated %v", limit, res.Bytes, len(res.Rows), len(full.Rows), res.Truncated)
	}
	if ok, diff := SameRows(res.Rows, full.Rows[:len(res.Rows)]); !ok {
		t.Errorf("max_bytes: not a prefix of the full result: %s", diff)
	}
}

// Injection is the text the parameter check binds; it must come back as data.
var Injection = []string{
	`it's "quoted" '; DROP TABLE x; --`,
	`Robert'); DROP TABLE students;--`,
	`\' OR '1'='1`,
	`$1 ? :name @p1 %s %%`,
	"line1\nline2\ttab\\",
	"ünïcødé 🚀",
	"",
}

func (s *suite) parameters(t *testing.T) {
	ctx := ctxT(t)
	for _, text := range Injection {
		res, err := s.h.Query(ctx, s.cfg.EchoQuery, text)
		if err != nil {
			t.Errorf("EchoQuery with %q: %v", text, err)
			continue
		}
		if len(res.Rows) != 1 || len(res.Rows[0]) != 1 || res.Rows[0][0] != text {
			t.Errorf("EchoQuery with %q returned %#v", text, res.Rows)
		}
	}
	if ok, diff := s.known(ctx); !ok {
		t.Errorf("after the parameter checks, KnownQuery: %s", diff)
	}
}

func (s *suite) known(ctx context.Context) (bool, string) {
	res, err := s.h.Query(ctx, s.cfg.KnownQuery)
	if err != nil {
		return false, err.Error()
	}
	return SameRows(res.Rows, s.cfg.KnownRows)
}

func (s *suite) cancellation(t *testing.T) {
	h := *s.h
	h.queryID = cancelQueryID
	drain := func() {
		if s.spy == nil {
			return
		}
		for {
			select {
			case <-s.spy.ended:
			default:
				return
			}
		}
	}
	// waitEnded checks that the connector's Query returned soon after at.
	waitEnded := func(at time.Time) {
		if s.spy == nil {
			return
		}
		select {
		case ended := <-s.spy.ended:
			if d := ended.Sub(at); d > 2*time.Second {
				t.Errorf("the connector's Query returned %v after the cancellation", d)
			}
		case <-time.After(5 * time.Second):
			t.Error("the connector's Query did not return within 5s of the cancellation")
		}
	}

	slow := func() string {
		if s.cfg.Slow != nil {
			return s.cfg.Slow(t)
		}
		return s.cfg.SlowQuery
	}
	drain()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	q := slow()
	go func() {
		_, err := h.Query(ctx, q)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	at := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("SlowQuery finished successfully; it must run for at least 10 s")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the call did not return within 3 s of cancel")
	}
	waitEnded(at)

	drain()
	dctx, dcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer dcancel()
	q = slow()
	start := time.Now()
	_, err := h.Query(dctx, q)
	if Code(err) != codes.DeadlineExceeded {
		t.Errorf("SlowQuery past its deadline: want DeadlineExceeded, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a 500 ms deadline returned after %v", d)
	}
	waitEnded(start.Add(500 * time.Millisecond))

	if ok, diff := s.known(ctxT(t)); !ok {
		t.Errorf("after cancellations, KnownQuery: %s", diff)
	}
}

func (s *suite) readOnly(t *testing.T) {
	ctx := ctxT(t)
	for _, stmt := range s.cfg.WriteStatements {
		res, err := s.h.Query(ctx, stmt)
		if err == nil {
			t.Errorf("write statement accepted: %s (returned %d rows)", stmt, len(res.Rows))
			continue
		}
		if Code(err) == codes.Internal {
			t.Errorf("write statement %q: Internal error (a connector bug?): %v", stmt, err)
		}
		s.noSecret(t, "error", Message(err))
	}
	if ok, diff := s.known(ctx); !ok {
		t.Errorf("after the write statements, KnownQuery: %s", diff)
	}
}

func (s *suite) badQuery(t *testing.T) {
	q := s.cfg.BadQuery
	if q == "" {
		q = "THIS IS NOT A QUERY"
	}
	_, err := s.h.Query(ctxT(t), q)
	if err == nil {
		t.Fatalf("%q succeeded", q)
	}
	if Code(err) == codes.Internal {
		t.Errorf("bad query: Internal error (a connector bug?): %v", err)
	}
	if Message(err) == "" {
		t.Error("bad query: empty error message")
	}
	s.noSecret(t, "error", Message(err))
}

func (s *suite) concurrency(t *testing.T) {
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, diff := s.known(ctx); !ok {
				errs <- diff
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent KnownQuery: %s", e)
	}
}

func (s *suite) dispose(t *testing.T) {
	ctx := ctxT(t)
	if err := s.h.Dispose(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, diff := s.known(ctx); !ok {
		t.Errorf("after Dispose, KnownQuery: %s", diff)
	}
	h := *s.h
	h.Version++
	res, err := h.Query(ctx, s.cfg.KnownQuery)
	if err != nil {
		t.Fatalf("after a config version change: %v", err)
	}
	if ok, diff := SameRows(res.Rows, s.cfg.KnownRows); !ok {
		t.Errorf("after a config version change: %s", diff)
	}
}
