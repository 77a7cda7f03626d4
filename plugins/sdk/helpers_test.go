package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	plugin "github.com/hashicorp/go-plugin"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
	"github.com/datapulse/datapulse/plugins/sdk/wire"
)

// genConnector is a synthetic connector whose "SQL" is a small command
// language, so each test can ask for the behaviour it needs:
//
//	rows N            N rows through the RowBuilder
//	write N K         N rows as records of K rows each, through Write
//	big N             N rows with a 1 KiB text column, through the RowBuilder
//	echo              one row: each parameter as text, and its Go type
//	block             one batch, then waits for the context to end
//	fail              an InvalidArgument error quoting the password
//	panic             panics
//	empty             a schema and no rows
type genConnector struct {
	mu         sync.Mutex
	lastParams []any
	limitSeen  bool
	stopped    chan error // block: what ended it
	disposed   []string
}

func newGen() *genConnector { return &genConnector{stopped: make(chan error, 10)} }

var genSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64},
	{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (g *genConnector) Describe() sdk.Description {
	return sdk.Description{
		Name: "gen", DisplayName: "Generator", Version: "0.1.0",
		Capabilities: []string{sdk.CapabilitySQL},
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"password":{"type":"string","x-secret":true}}}`),
	}
}

func (g *genConnector) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	var c struct {
		Port     int    `json:"port"`
		Password string `json:"password"`
	}
	if err := cfg.Decode(&c); err != nil {
		return sdk.AsFieldErrors(err)
	}
	if c.Port < 0 {
		return []sdk.FieldError{{Field: "/port", Message: "must not be negative (password " + c.Password + ")"}}
	}
	return nil
}

func (g *genConnector) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	if cfg.Values["down"] == true {
		return sdk.Health{}, fmt.Errorf("cannot log in with password %s", cfg.Secrets["password"])
	}
	return sdk.Health{ServerVersion: "gen 1"}, nil
}

func (g *genConnector) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	ns, next, err := sdk.PageOf([]string{"a", "b", "c"}, p)
	return sdk.NamespacePage{Namespaces: ns, NextToken: next}, err
}

func (g *genConnector) ListTables(ctx context.Context, cfg sdk.Config, namespace string, p sdk.Page) (sdk.TablePage, error) {
	// Echo the page size the SDK passed as the table names.
	all := make([]sdk.TableRef, 0, 2000)
	for i := range 2000 {
		all = append(all, sdk.TableRef{Namespace: namespace, Name: fmt.Sprintf("t%04d", i), Kind: sdk.KindTable})
	}
	ts, next, err := sdk.PageOf(all, p)
	return sdk.TablePage{Tables: ts, NextToken: next}, err
}

func (g *genConnector) DescribeTables(ctx context.Context, cfg sdk.Config, tables []sdk.TableRef) ([]sdk.TableInfo, error) {
	var out []sdk.TableInfo
	for _, t := range tables {
		if t.Name == "missing" {
			return nil, sdk.Errorf(sdk.CodeNotFound, "table %q does not exist", t.Name)
		}
		ti := sdk.TableInfo{Ref: t}
		for _, f := range genSchema.Fields() {
			ti.Columns = append(ti.Columns, sdk.Column{Name: f.Name, NativeType: "x", Type: f.Type, Nullable: f.Nullable})
		}
		out = append(out, ti)
	}
	return out, nil
}

func (g *genConnector) Dispose(id string) {
	g.mu.Lock()
	g.disposed = append(g.disposed, id)
	g.mu.Unlock()
}

func (g *genConnector) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	f := strings.Fields(q.SQL)
	if len(f) == 0 {
		return sdk.Errorf(sdk.CodeInvalidArgument, "empty query")
	}
	arg := func(i int) int {
		n, _ := strconv.Atoi(f[i])
		return n
	}
	switch f[0] {
	case "rows":
		if err := w.SetSchema(genSchema); err != nil {
			return err
		}
		rb := w.Rows()
		for i := range arg(1) {
			err := rb.Append(int64(i), "name-"+strconv.Itoa(i), float64(i)/2, epoch.Add(time.Duration(i)*time.Second), i%2 == 0)
			if errors.Is(err, sdk.ErrLimitReached) {
				g.mu.Lock()
				g.limitSeen = true
				g.mu.Unlock()
				return nil
			}
			if err != nil {
				return err
			}
		}
		return nil
	case "big":
		schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "blob", Type: arrow.BinaryTypes.String}}, nil)
		if err := w.SetSchema(schema); err != nil {
			return err
		}
		pad := strings.Repeat("x", 1024)
		rb := w.Rows()
		for i := range arg(1) {
			if err := rb.Append(int64(i), pad); err != nil {
				if errors.Is(err, sdk.ErrLimitReached) {
					return nil
				}
				return err
			}
		}
		return nil
	case "write":
		n, k := arg(1), arg(2)
		b := array.NewRecordBuilder(w.Allocator(), genSchema)
		defer b.Release()
		for start := 0; start < n; start += k {
			for i := start; i < min(start+k, n); i++ {
				b.Field(0).(*array.Int64Builder).Append(int64(i))
				b.Field(1).(*array.StringBuilder).Append("name-" + strconv.Itoa(i))
				b.Field(2).(*array.Float64Builder).Append(float64(i) / 2)
				b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(epoch.Add(time.Duration(i) * time.Second).UnixMicro()))
				b.Field(4).(*array.BooleanBuilder).Append(i%2 == 0)
			}
			rec := b.NewRecordBatch()
			err := w.Write(rec)
			rec.Release()
			if err != nil {
				return err
			}
		}
		return nil
	case "echo":
		g.mu.Lock()
		g.lastParams = q.Params
		g.mu.Unlock()
		schema := arrow.NewSchema([]arrow.Field{{Name: "value", Type: arrow.BinaryTypes.String, Nullable: true}, {Name: "type", Type: arrow.BinaryTypes.String}}, nil)
		if err := w.SetSchema(schema); err != nil {
			return err
		}
		rb := w.Rows()
		for _, p := range q.Params {
			var s any
			if p != nil {
				s = fmt.Sprint(p)
			}
			if err := rb.Append(s, fmt.Sprintf("%T", p)); err != nil {
				return err
			}
		}
		return nil
	case "block":
		if err := w.SetSchema(genSchema); err != nil {
			return err
		}
		rb := w.Rows()
		for i := range 10 {
			if err := rb.Append(int64(i), nil, 0.0, epoch, true); err != nil {
				return err
			}
		}
		if err := rb.Flush(); err != nil {
			return err
		}
		// A 10-row write is held back to coalesce; force it out by filling
		// a quarter of a batch.
		for i := range q.Limits.BatchMaxRows / 4 {
			if err := rb.Append(int64(i), nil, 0.0, epoch, true); err != nil {
				return err
			}
		}
		if err := rb.Flush(); err != nil {
			return err
		}
		<-ctx.Done()
		g.stopped <- ctx.Err()
		return ctx.Err()
	case "types":
		schema := arrow.NewSchema([]arrow.Field{
			{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
			{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
			{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
			{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
			{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
			{Name: "big", Type: arrow.BinaryTypes.LargeString, Nullable: true},
			{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
			{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
			{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}, Nullable: true},
			{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		}, nil)
		if err := w.SetSchema(schema); err != nil {
			return err
		}
		rb := w.Rows()
		name := "ptr"
		if err := rb.Append(int8(-1), 300, int64(70000), uint64(1<<63), 1.5, []byte{1, 2}, "large",
			sdk.Date{Year: 2024, Month: 2, Day: 29}, "12.34", epoch, &name); err != nil {
			return err
		}
		var nilPtr *string
		if err := rb.Append(nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nilPtr); err != nil {
			return err
		}
		if q.SQL == "types bad" {
			// 1000 does not fit int8: the row cannot be completed, so the
			// query fails even though the connector ignores the error.
			_ = rb.Append(1000, 0, 0, 0, 0.0, nil, nil, nil, nil, nil, nil)
		}
		return nil
	case "fail":
		return sdk.Errorf(sdk.CodeInvalidArgument, "syntax error near %q (logged in with %s)", "SELEC", cfg.Secrets["password"])
	case "panic":
		panic("boom")
	case "empty":
		return w.SetSchema(genSchema)
	}
	return sdk.Errorf(sdk.CodeInvalidArgument, "unknown command %q", f[0])
}

// startGen serves g over go-plugin's in-process gRPC test connection and
// returns the generated client the host would use. Results are allocated
// from a checked allocator that must be empty when the test ends.
func startGen(t *testing.T, g sdk.Connector) connectorv1.ConnectorClient {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		sdk.PluginName: sdk.NewTestPlugin(g, mem),
	})
	_ = server // stopped by the client's Close (go-plugin's Shutdown call)
	t.Cleanup(func() {
		client.Close()
		mem.AssertSize(t, 0)
	})
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	cc, ok := raw.(connectorv1.ConnectorClient)
	if !ok {
		t.Fatalf("Dispense returned %T", raw)
	}
	return cc
}

const testSecret = "s3cr3t-Pa55"

func dsCtx() *connectorv1.DataSourceContext {
	return &connectorv1.DataSourceContext{DatasourceId: "ds1", ConfigVersion: 1, ConfigJson: []byte(`{}`), Secrets: map[string]string{"password": testSecret}, RequestId: "req-1"}
}

// result is a decoded Query response.
type result struct {
	schema  *arrow.Schema
	batches []int   // rows per record batch
	ids     []int64 // the first column, when it is int64
	rows    [][]any // the first 5000 rows
	stream  *wire.ResultStream
	trailer *connectorv1.Trailer
}

// runQuery runs a query and decodes the whole result, keeping the first
// column's values (and all columns for small results).
func runQuery(t *testing.T, ctx context.Context, cc connectorv1.ConnectorClient, sql string, lim *connectorv1.Limits, params ...any) (*result, error) {
	t.Helper()
	ps, err := wire.EncodeParams(params)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := cc.Query(ctx, &connectorv1.QueryRequest{Ds: dsCtx(), Sql: sql, Params: ps, Limits: lim, QueryId: "q1"})
	if err != nil {
		return nil, err
	}
	rs := wire.NewResultStream(stream)
	rd, err := ipc.NewReader(rs)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	res := &result{schema: rd.Schema(), stream: rs}
	for rd.Next() {
		rec := rd.RecordBatch()
		res.batches = append(res.batches, int(rec.NumRows()))
		if ids, ok := rec.Column(0).(*array.Int64); ok {
			res.ids = append(res.ids, ids.Int64Values()...)
		}
		for i := range int(rec.NumRows()) {
			if len(res.rows) >= 5000 {
				break
			}
			row := make([]any, rec.NumCols())
			for c := range int(rec.NumCols()) {
				row[c] = sdktest.Value(rec.Column(c), i)
			}
			res.rows = append(res.rows, row)
		}
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if err := rs.Drain(); err != nil {
		return nil, err
	}
	res.trailer = rs.Trailer()
	return res, nil
}
