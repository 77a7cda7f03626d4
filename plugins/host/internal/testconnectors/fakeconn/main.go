// Command fakeconn is a connector for the host's tests. It speaks the
// connector protocol directly (connectorv1 + go-plugin, not the SDK) so it
// can misbehave on the wire: crash mid-stream, hang, send malformed Arrow IPC,
// switch schema, ignore limits, skip the trailer, send oversized messages.
//
// Its name is argv[3] of `fakeconn plugin serve <name>` (a builtin) or its
// own file name (installed under a plugins directory). Some names change how
// the process starts:
//
//	garbage     prints junk on stdout instead of the handshake and exits
//	crashstart  says why on stderr (as log.Fatal does) and exits before the handshake
//	nohandshake never completes the handshake (and never exits)
//	slowstart   sleeps 1.5 s before serving
//	v2          serves protocol version 2
//	misnamed    describes itself under another name
//
// The SQL text selects what Query does (see query()).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
	"github.com/datapulse/datapulse/plugins/sdk"
)

var (
	name   string
	logger hclog.Logger
	// wedge is held forever by "hanglock": every RPC then blocks on it.
	wedge     sync.Mutex
	cancelled atomic.Int64
	disposed  sync.Map
)

func main() {
	name = filepath.Base(os.Args[0])
	if len(os.Args) >= 4 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		name = os.Args[3]
	}
	hs := sdk.Handshake
	switch name {
	case "garbage":
		fmt.Println("hello, I am not a connector")
		os.Exit(1)
	case "crashstart":
		fmt.Fprintln(os.Stderr, "2026/12/04 10:00:00 fatal: cannot read license file /etc/fake.lic: permission denied")
		os.Exit(3)
	case "nohandshake":
		fmt.Fprintln(os.Stderr, "waiting for a license server that never answers")
		select {}
	case "slowstart":
		time.Sleep(1500 * time.Millisecond)
	case "v2":
		hs.ProtocolVersion = 2
	}
	logger = hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: os.Stderr, JSONFormat: true})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{int(hs.ProtocolVersion): {sdk.PluginName: &grpcPlugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
}

type grpcPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	connectorv1.RegisterConnectorServer(s, &server{})
	return nil
}

func (grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("connector side only")
}

type server struct {
	connectorv1.UnimplementedConnectorServer
}

func gate() { wedge.Lock(); wedge.Unlock() }

// active holds the ids of the queries whose handler is running: Describe
// lists them in the header the host reads after a query's deadline.
var active sync.Map

func (s *server) Describe(ctx context.Context, r *connectorv1.DescribeRequest) (*connectorv1.DescribeResponse, error) {
	gate()
	var ids []string
	active.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	if len(ids) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("datapulse-active-queries", strings.Join(ids, ",")))
	}
	hostVersion.Store(r.GetHostVersion())
	n := name
	if n == "misnamed" {
		n = "something-else"
	}
	return &connectorv1.DescribeResponse{
		Name: n, DisplayName: "Fake " + name, Version: "1.2.3", SdkVersion: "test",
		Capabilities:     []string{"sql", "parameters"},
		ConfigSchemaJson: `{"type":"object","properties":{"path":{"type":"string"},"password":{"type":"string","x-secret":true}}}`,
		SqlDialect:       "sqlite",
	}, nil
}

func config(ds *connectorv1.DataSourceContext) map[string]any {
	m := map[string]any{}
	_ = json.Unmarshal(ds.GetConfigJson(), &m)
	return m
}

func (s *server) ValidateConfig(_ context.Context, r *connectorv1.ValidateConfigRequest) (*connectorv1.ValidateConfigResponse, error) {
	gate()
	resp := &connectorv1.ValidateConfigResponse{}
	if _, bad := config(r.GetDs())["bad"]; bad {
		resp.Errors = append(resp.Errors, &connectorv1.FieldError{Field: "/bad", Message: "must not be set (password " + r.GetDs().GetSecrets()["password"] + ")"})
	}
	return resp, nil
}

func (s *server) CheckHealth(_ context.Context, r *connectorv1.CheckHealthRequest) (*connectorv1.CheckHealthResponse, error) {
	gate()
	pw := r.GetDs().GetSecrets()["password"]
	if _, ok := config(r.GetDs())["unreachable"]; ok {
		return nil, status.Errorf(codes.Unavailable, "database unreachable (tried password %s)", pw)
	}
	if pw != "right-password" {
		return &connectorv1.CheckHealthResponse{Ok: false, Message: "authentication failed for password " + pw}, nil
	}
	return &connectorv1.CheckHealthResponse{Ok: true, Message: "connected", ServerVersion: "Fake 1.0", ProbeLatencyMs: 3}, nil
}

var namespaces = []string{"alpha", "beta", "gamma", "delta", "epsilon"}

func (s *server) ListNamespaces(_ context.Context, r *connectorv1.ListNamespacesRequest) (*connectorv1.ListNamespacesResponse, error) {
	gate()
	start, _ := strconv.Atoi(r.GetPageToken())
	size := int(r.GetPageSize())
	if size <= 0 {
		size = 100
	}
	end := min(start+size, len(namespaces))
	resp := &connectorv1.ListNamespacesResponse{Namespaces: namespaces[start:end]}
	if end < len(namespaces) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

func (s *server) ListTables(_ context.Context, r *connectorv1.ListTablesRequest) (*connectorv1.ListTablesResponse, error) {
	gate()
	return &connectorv1.ListTablesResponse{Tables: []*connectorv1.TableRef{
		{Namespace: r.GetNamespace(), Name: "t1", Kind: connectorv1.TableKind_TABLE_KIND_TABLE},
		{Namespace: r.GetNamespace(), Name: "v1", Kind: connectorv1.TableKind_TABLE_KIND_VIEW},
	}}, nil
}

func (s *server) DescribeTables(_ context.Context, r *connectorv1.DescribeTablesRequest) (*connectorv1.DescribeTablesResponse, error) {
	gate()
	resp := &connectorv1.DescribeTablesResponse{}
	for _, t := range r.GetTables() {
		resp.Tables = append(resp.Tables, &connectorv1.TableInfo{Ref: t, Columns: []*connectorv1.ColumnInfo{
			{Name: "id", NativeType: "integer", ArrowType: "int64"},
			{Name: "name", NativeType: "text", ArrowType: "utf8", Nullable: true},
		}})
	}
	return resp, nil
}

func (s *server) DisposeInstance(_ context.Context, r *connectorv1.DisposeInstanceRequest) (*connectorv1.DisposeInstanceResponse, error) {
	gate()
	disposed.Store(r.GetDatasourceId(), true)
	return &connectorv1.DisposeInstanceResponse{}, nil
}

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

var textSchema = arrow.NewSchema([]arrow.Field{{Name: "text", Type: arrow.BinaryTypes.String}}, nil)

// batch builds rows [from, from+n) of the standard schema.
func batch(from, n int64, strlen int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	names := b.Field(1).(*array.StringBuilder)
	vals := b.Field(2).(*array.Float64Builder)
	tss := b.Field(3).(*array.TimestampBuilder)
	flags := b.Field(4).(*array.BooleanBuilder)
	pad := strings.Repeat("x", strlen)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := from; i < from+n; i++ {
		ids.Append(i)
		if i%10 == 9 {
			names.AppendNull()
		} else {
			names.Append("row-" + strconv.FormatInt(i, 10) + pad)
		}
		vals.Append(float64(i) * 0.5)
		tss.Append(arrow.Timestamp(base + i*1_000_000))
		flags.Append(i%2 == 0)
	}
	return b.NewRecordBatch()
}

func textBatch(lines []string) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, textSchema)
	defer b.Release()
	for _, l := range lines {
		b.Field(0).(*array.StringBuilder).Append(l)
	}
	return b.NewRecordBatch()
}

// out frames an IPC stream the way the protocol says: the bytes produced by
// each Write go out as one arrow_ipc message.
type out struct {
	stream grpc.ServerStreamingServer[connectorv1.QueryResponse]
	buf    bytes.Buffer
	w      *ipc.Writer
	rows   int64
	bytes  int64
}

func newOut(stream grpc.ServerStreamingServer[connectorv1.QueryResponse], s *arrow.Schema) *out {
	o := &out{stream: stream}
	o.w = ipc.NewWriter(&o.buf, ipc.WithSchema(s))
	return o
}

func (o *out) flush() error {
	if o.buf.Len() == 0 {
		return nil
	}
	o.bytes += int64(o.buf.Len())
	err := o.stream.Send(&connectorv1.QueryResponse{Msg: &connectorv1.QueryResponse_ArrowIpc{ArrowIpc: o.buf.Bytes()}})
	o.buf.Reset()
	return err
}

func (o *out) write(rec arrow.RecordBatch) error {
	if err := o.w.Write(rec); err != nil {
		return err
	}
	o.rows += rec.NumRows()
	return o.flush()
}

func (o *out) end(truncated bool) error {
	if err := o.w.Close(); err != nil {
		return err
	}
	if err := o.flush(); err != nil {
		return err
	}
	return o.trailer(truncated)
}

func (o *out) trailer(truncated bool) error {
	return o.stream.Send(&connectorv1.QueryResponse{Msg: &connectorv1.QueryResponse_Trailer{Trailer: &connectorv1.Trailer{
		Rows: o.rows, IpcBytes: o.bytes, Truncated: truncated,
	}}})
}

func (o *out) raw(p []byte) error {
	return o.stream.Send(&connectorv1.QueryResponse{Msg: &connectorv1.QueryResponse_ArrowIpc{ArrowIpc: p}})
}

// opts parses "word n key value flag …".
func opts(words []string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(words); i++ {
		k := words[i]
		if i+1 < len(words) {
			if _, err := strconv.Atoi(words[i+1]); err == nil {
				m[k] = words[i+1]
				i++
				continue
			}
		}
		m[k] = "true"
	}
	return m
}

func num(m map[string]string, k string, def int64) int64 {
	if v, ok := m[k]; ok {
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return def
}

var hostVersion atomic.Value

func (s *server) Query(r *connectorv1.QueryRequest, stream grpc.ServerStreamingServer[connectorv1.QueryResponse]) error {
	gate()
	if id := r.GetQueryId(); id != "" {
		active.Store(id, true)
		defer active.Delete(id)
	}
	ctx := stream.Context()
	words := strings.Fields(r.GetSql())
	if len(words) == 0 {
		return status.Error(codes.InvalidArgument, "empty query")
	}
	o := opts(words)
	lim := r.GetLimits()
	logger.Info("query", "sql", r.GetSql(), "query_id", r.GetQueryId())
	switch words[0] {
	case "rows":
		n := num(o, "rows", 10)
		bs := num(o, "batch", 1000)
		sleep := time.Duration(num(o, "sleep", 0)) * time.Millisecond
		strlen := int(num(o, "strlen", 0))
		truncated := false
		if o["ignore-limits"] == "" && lim.GetMaxRows() > 0 && n > lim.GetMaxRows() {
			n, truncated = lim.GetMaxRows(), true
		}
		w := newOut(stream, schema)
		var fixed arrow.RecordBatch
		if o["fixed"] != "" {
			fixed = batch(0, bs, strlen)
			defer fixed.Release()
		}
		for from := int64(0); from < n; from += bs {
			k := min(bs, n-from)
			var rec arrow.RecordBatch
			if fixed != nil && k == bs {
				rec = fixed
				rec.Retain()
			} else {
				rec = batch(from, k, strlen)
			}
			err := w.write(rec)
			rec.Release()
			if err != nil {
				return err
			}
			if sleep > 0 {
				select {
				case <-time.After(sleep):
				case <-ctx.Done():
					cancelled.Add(1)
					return ctx.Err()
				}
			}
		}
		if n == 0 {
			// schema only
			_ = w.w.Close()
			_ = w.flush()
			return w.trailer(false)
		}
		return w.end(truncated)
	case "crash":
		w := newOut(stream, schema)
		for i := int64(0); i < num(o, "crash", 2); i++ {
			rec := batch(i*100, 100, 0)
			_ = w.write(rec)
			rec.Release()
		}
		time.Sleep(50 * time.Millisecond) // let the batches reach the host
		os.Exit(3)
	case "hang":
		select {} // ignores the context: only the deadline saves the host
	case "hanglock":
		wedge.Lock() // never unlocked: every later call blocks too
		select {}
	case "slowcancel":
		w := newOut(stream, schema)
		for i := int64(0); ; i++ {
			rec := batch(i, 1, 0)
			err := w.write(rec)
			rec.Release()
			if err != nil {
				cancelled.Add(1)
				return err
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				cancelled.Add(1)
				return ctx.Err()
			}
		}
	case "schema-switch":
		w := newOut(stream, schema)
		rec := batch(0, 10, 0)
		_ = w.write(rec)
		rec.Release()
		w2 := newOut(stream, textSchema)
		t := textBatch([]string{"a", "b"})
		_ = w2.write(t)
		t.Release()
		return w2.end(false)
	case "bad-batch", "no-schema":
		// A record batch of another schema, without its schema message.
		var b2 bytes.Buffer
		w2 := ipc.NewWriter(&b2, ipc.WithSchema(textSchema))
		t := textBatch([]string{"aaaa", "bbbb", "cccc"})
		_ = w2.Write(t)
		mark := b2.Len()
		_ = w2.Write(t)
		t.Release()
		onlyBatch := append([]byte(nil), b2.Bytes()[mark:]...)
		if words[0] == "no-schema" {
			return stream.Send(&connectorv1.QueryResponse{Msg: &connectorv1.QueryResponse_ArrowIpc{ArrowIpc: onlyBatch}})
		}
		w := newOut(stream, schema)
		rec := batch(0, 10, 0)
		_ = w.write(rec)
		rec.Release()
		return w.raw(onlyBatch)
	case "garbage-ipc":
		w := newOut(stream, schema)
		rec := batch(0, 10, 0)
		_ = w.write(rec)
		rec.Release()
		junk := make([]byte, 4096)
		for i := range junk {
			junk[i] = byte(i*7 + 3)
		}
		// A valid continuation marker and a huge metadata length, then junk.
		copy(junk, []byte{0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x00, 0x00})
		return w.raw(junk)
	case "trailer-only":
		return (&out{stream: stream}).trailer(false)
	case "no-trailer":
		w := newOut(stream, schema)
		rec := batch(0, 10, 0)
		_ = w.write(rec)
		rec.Release()
		_ = w.w.Close()
		return w.flush()
	case "after-trailer":
		w := newOut(stream, schema)
		rec := batch(0, 10, 0)
		_ = w.write(rec)
		rec.Release()
		_ = w.trailer(false)
		return w.raw([]byte{1, 2, 3, 4})
	case "huge":
		w := newOut(stream, schema)
		rec := batch(0, 10, 0)
		_ = w.write(rec)
		rec.Release()
		return w.raw(make([]byte, num(o, "huge", 65)<<20))
	case "bomb":
		// A legitimately LZ4-compressed batch that is tiny on the wire and
		// 80 MB once decompressed.
		s1 := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues(make([]int64, 10_000_000), nil)
		col := b.NewArray()
		rec := array.NewRecordBatch(s1, []arrow.Array{col}, int64(col.Len()))
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(s1), ipc.WithLZ4())
		_ = w.Write(rec)
		_ = w.Close()
		o := &out{stream: stream}
		if err := o.raw(buf.Bytes()); err != nil {
			return err
		}
		o.rows = rec.NumRows()
		return o.trailer(false)
	case "env":
		cwd, _ := os.Getwd()
		lines := append([]string{"cwd:" + cwd}, os.Environ()...)
		for _, a := range os.Args {
			lines = append(lines, "arg:"+a)
		}
		return sendText(stream, lines)
	case "pid":
		return sendText(stream, []string{strconv.Itoa(os.Getpid())})
	case "delay": // "delay <ms>": nothing, not even the schema, for a while; then one row
		select {
		case <-time.After(time.Duration(num(o, "delay", 0)) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		w := newOut(stream, schema)
		rec := batch(0, 1, 0)
		defer rec.Release()
		if err := w.write(rec); err != nil {
			return err
		}
		return w.end(false)
	case "host-version":
		v, _ := hostVersion.Load().(string)
		return sendText(stream, []string{v})
	case "params":
		var lines []string
		for _, p := range r.GetParams() {
			lines = append(lines, fmt.Sprintf("%T=%v", p.GetValue(), p.GetValue()))
		}
		return sendText(stream, lines)
	case "cancelled":
		return sendText(stream, []string{strconv.FormatInt(cancelled.Load(), 10)})
	case "disposed":
		var ids []string
		disposed.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
		return sendText(stream, ids)
	case "request-id":
		return sendText(stream, []string{r.GetDs().GetRequestId()})
	case "error":
		return status.Errorf(codes.InvalidArgument, "syntax error near %q (connected with password %s)", "FROM", r.GetDs().GetSecrets()["password"])
	case "log":
		logger.Warn("hello from the connector", "answer", 42)
		return sendText(stream, []string{"logged"})
	case "stdout":
		fmt.Println("stray stdout line")
		return sendText(stream, []string{"printed"})
	}
	return status.Errorf(codes.InvalidArgument, "unknown fake query %q", words[0])
}

func sendText(stream grpc.ServerStreamingServer[connectorv1.QueryResponse], lines []string) error {
	w := newOut(stream, textSchema)
	rec := textBatch(lines)
	defer rec.Release()
	if err := w.write(rec); err != nil {
		return err
	}
	return w.end(false)
}
