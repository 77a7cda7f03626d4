package sdktest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// memConn is an in-memory connector; broken makes it misbehave in ways the
// suite must catch. stalled (when set) makes its "numbers" table stop
// answering, like a source that hangs: the Slow hook of the suite.
type memConn struct {
	broken  bool
	stalled *atomic.Bool
}

func (m memConn) Describe() sdk.Description {
	secret := `"x-secret": true`
	if m.broken {
		secret = `"description": "not marked"`
	}
	// "1mem": the host accepts a leading digit, and so must the suite.
	return sdk.Description{Name: "1mem", DisplayName: "Memory", Version: "1.0.0",
		ConfigSchema: json.RawMessage(`{"type": "object", "properties": {"size": {"type": "integer"}, "token": {"type": "string", ` + secret + `}}, "additionalProperties": false}`)}
}

func (m memConn) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	var c struct {
		Size  int    `json:"size"`
		Token string `json:"token"`
	}
	if err := cfg.Decode(&c); err != nil {
		return sdk.AsFieldErrors(err)
	}
	if c.Size < 0 {
		return []sdk.FieldError{{Field: "/size", Message: "must not be negative"}}
	}
	return nil
}

func (m memConn) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	if fes := m.ValidateConfig(ctx, cfg); len(fes) > 0 {
		return sdk.Health{}, sdk.FieldErrors(fes)
	}
	return sdk.Health{}, nil
}

func (m memConn) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	return sdk.NamespacePage{Namespaces: []string{"main"}}, nil
}

func (m memConn) ListTables(ctx context.Context, cfg sdk.Config, ns string, p sdk.Page) (sdk.TablePage, error) {
	if ns != "main" {
		return sdk.TablePage{}, sdk.Errorf(sdk.CodeNotFound, "no namespace %q", ns)
	}
	all := []sdk.TableRef{{Namespace: "main", Name: "numbers"}, {Namespace: "main", Name: "people"}}
	page, next, err := sdk.PageOf(all, p)
	if m.broken && next != "" {
		next = "always-the-same"
	}
	if m.broken && p.Token == "always-the-same" {
		page, next, err = all[1:], "always-the-same", nil
	}
	return sdk.TablePage{Tables: page, NextToken: next}, err
}

func (m memConn) DescribeTables(ctx context.Context, cfg sdk.Config, refs []sdk.TableRef) ([]sdk.TableInfo, error) {
	var out []sdk.TableInfo
	for _, r := range refs {
		if r.Name != "numbers" && r.Name != "people" {
			return nil, sdk.Errorf(sdk.CodeNotFound, "no table %q", r.Name)
		}
		cols := []sdk.Column{{Name: "n", NativeType: "int", Type: arrow.PrimitiveTypes.Int64}}
		if r.Name == "people" {
			cols = []sdk.Column{
				{Name: "id", NativeType: "int", Type: arrow.PrimitiveTypes.Int64},
				{Name: "name", NativeType: "text", Type: arrow.BinaryTypes.String},
				{Name: "nick", NativeType: "text", Type: arrow.BinaryTypes.String, Nullable: true},
			}
		}
		out = append(out, sdk.TableInfo{Ref: r, Columns: cols})
	}
	return out, nil
}

func (m memConn) Dispose(string) {}

func (m memConn) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	text := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	switch q.SQL {
	case "TABLE numbers": // every column of a table: what the TableQuery hook returns
		if m.stalled != nil && m.stalled.Load() {
			<-ctx.Done() // the source hangs; cancellation reaches it
			return ctx.Err()
		}
		typ := arrow.DataType(arrow.PrimitiveTypes.Int64)
		if m.broken { // declared int64, emits float64
			typ = arrow.PrimitiveTypes.Float64
		}
		w.SetSchema(arrow.NewSchema([]arrow.Field{{Name: "n", Type: typ}}, nil))
		rows := w.Rows()
		for i := range 5 {
			if err := rows.Append(i); err != nil {
				return err
			}
		}
		return nil
	case "TABLE people":
		w.SetSchema(arrow.NewSchema([]arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int64},
			{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "nick", Type: arrow.BinaryTypes.String, Nullable: true},
		}, nil))
		rows := w.Rows()
		people := [][]any{{1, "ada", nil}, {2, "grace", "amazing grace"}, {3, "edsger", nil}}
		if m.broken { // a NULL in "name", declared non-nullable
			people[2][1] = nil
		}
		for _, p := range people {
			if err := rows.Append(p...); err != nil {
				return err
			}
		}
		return nil
	case "PEOPLE":
		w.SetSchema(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String}}, nil))
		rows := w.Rows()
		for i, n := range []string{"ada", "grace"} {
			if err := rows.Append(i+1, n); err != nil {
				return err
			}
		}
		return nil
	case "MANY":
		w.SetSchema(arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil))
		rows := w.Rows()
		for i := range 1500 {
			if err := rows.Append(i); err != nil {
				return err
			}
		}
		return nil
	case "ECHO":
		w.SetSchema(text)
		v := q.Params[0]
		if m.broken { // "splices" the value, and loses what follows a quote
			v = strings.SplitN(fmt.Sprint(v), "'", 2)[0]
		}
		return w.Rows().Append(v)
	case "SLOW":
		if m.broken {
			time.Sleep(2500 * time.Millisecond) // ignores the context
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	case "DELETE":
		if m.broken {
			return w.SetSchema(text)
		}
		return sdk.Errorf(sdk.CodePermissionDenied, "read-only")
	}
	return sdk.Errorf(sdk.CodeInvalidArgument, "unknown query %q", q.SQL)
}

var config = sdktest.Config{
	TableQuery:      func(t sdk.TableRef) string { return "TABLE " + t.Name },
	ValidConfig:     `{"size": 1}`,
	ValidSecrets:    map[string]string{"token": "tok-secret"},
	InvalidConfig:   `{"size": -1}`,
	KnownQuery:      "PEOPLE",
	KnownRows:       [][]any{{1, "ada"}, {2, "grace"}},
	EchoQuery:       "ECHO",
	ManyRowsQuery:   "MANY",
	SlowQuery:       "SLOW",
	WriteStatements: []string{"DELETE"},
	Tables:          []sdk.TableRef{{Namespace: "main", Name: "people"}, {Namespace: "main", Name: "numbers"}},
}

// A correct connector passes.
func TestSuitePasses(t *testing.T) {
	sdktest.Run(t, memConn{}, config)
}

// The Slow hook instead of SlowQuery: the test makes the source hang and
// the connector's language needs no sleep function.
func TestSuiteSlowHook(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole suite again")
	}
	stalled := &atomic.Bool{}
	cfg := config
	cfg.SlowQuery = ""
	cfg.Slow = func(t testing.TB) string {
		stalled.Store(true)
		t.Cleanup(func() { stalled.Store(false) })
		return "TABLE numbers"
	}
	sdktest.Run(t, memConn{stalled: stalled}, cfg)
}

// TestBrokenHelper is run by TestSuiteCatchesBrokenConnector in a child
// process: it must fail.
func TestBrokenHelper(t *testing.T) {
	if os.Getenv("SDKTEST_BROKEN") != "1" {
		t.Skip("run by TestSuiteCatchesBrokenConnector")
	}
	sdktest.Run(t, memConn{broken: true}, config)
}

// A connector that leaves a secret unmarked, pages forever, splices
// parameters, ignores cancellation and accepts writes fails the suite with
// each of these named.
func TestSuiteCatchesBrokenConnector(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits out a connector that ignores cancellation")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SDKTEST_BROKEN=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed a broken connector:\n%s", out)
	}
	for _, want := range []string{
		`secret "token" is not marked "x-secret": true`,
		`page token "always-the-same" repeats`,
		`EchoQuery with "it's \"quoted\" '; DROP TABLE x; --" returned`,
		"after the cancellation",
		"write statement accepted: DELETE",
		`table "main"."numbers": column "n" is declared int64 but the result has float64`,
		`table "main"."people": column "name" is declared non-nullable but row 2 is NULL`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the suite did not report %q:\n%s", want, out)
		}
	}
}

// SchemaProblems on its own: each mistake named once.
func TestSchemaProblems(t *testing.T) {
	ctx := context.Background()
	h := sdktest.Start(t, memConn{broken: true}, `{"size": 1}`, map[string]string{"token": "tok-secret"})
	for _, tc := range []struct {
		table string
		want  []string
	}{
		{"numbers", []string{`column "n" is declared int64 but the result has float64`}},
		{"people", []string{`column "name" is declared non-nullable but row 2 is NULL`}},
	} {
		ref := sdk.TableRef{Namespace: "main", Name: tc.table}
		infos, err := h.DescribeTables(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.Query(ctx, "TABLE "+tc.table)
		if err != nil {
			t.Fatal(err)
		}
		if got := sdktest.SchemaProblems(infos[0], res); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: got %q, want %q", tc.table, got, tc.want)
		}
	}
	// Undeclared and missing columns, and a NULL the Arrow field forbids.
	res, err := h.Query(ctx, "PEOPLE")
	if err != nil {
		t.Fatal(err)
	}
	res.Rows[1][1] = nil
	got := sdktest.SchemaProblems(sdktest.TableInfo{Columns: []sdktest.ColumnInfo{{Name: "id", ArrowType: "int64"}, {Name: "age", ArrowType: "int64"}}}, res)
	want := []string{
		`column "age" is declared but not in the result`,
		`column "name" is in the result but not declared`,
		`column "name": the result's Arrow field is not nullable but row 1 is NULL`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// The kit and the host share one name rule.
func TestNameRule(t *testing.T) {
	for name, ok := range map[string]bool{
		"jsonfiles": true, "1mem": true, "a-b_c": true, strings.Repeat("a", 63): true,
		"": false, "-x": false, "_x": false, "Upper": false, "a.b": false, strings.Repeat("a", 64): false,
	} {
		if sdk.ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v", name, !ok)
		}
	}
}
