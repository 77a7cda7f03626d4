// Package sdktest is the conformance suite for DataPulse connectors. A
// connector runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, myconnector.New(), sdktest.Config{ ... fixtures ... })
//	}
//
// The suite talks to the connector the way the host does: through the SDK's
// gRPC adapter and go-plugin's gRPC transport (in-process for Run, a real
// subprocess for RunExecutable), decoding results as an Arrow IPC stream.
//
// Harness gives connector tests the same access for their own checks.
package sdktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/wire"
)

// Harness is a connection to a connector through the protocol, with one
// data-source configuration.
type Harness struct {
	cc connectorv1.ConnectorClient
	// DataSourceID and Version are sent with every call.
	DataSourceID string
	Version      int64
	// Config is the configuration JSON (without secrets).
	Config string
	// Secrets are the secret fields.
	Secrets map[string]string

	queryID string
}

// Start serves c in-process over go-plugin's gRPC test transport and returns
// a Harness using configJSON and secrets. Everything is torn down with t.
func Start(t testing.TB, c sdk.Connector, configJSON string, secrets map[string]string) *Harness {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		sdk.PluginName: &sdk.GRPCPlugin{Impl: c},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return newHarness(t, raw, configJSON, secrets)
}

// StartExecutable starts the connector binary at path the way the host does
// (go-plugin handshake, gRPC only, AutoMTLS, no inherited environment) and
// returns a Harness for it. The process is killed with t.
func StartExecutable(t testing.TB, path string, configJSON string, secrets map[string]string) *Harness {
	t.Helper()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {sdk.PluginName: &sdk.GRPCPlugin{}}},
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     15 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "connector",
			Level:  hclog.Warn,
			Output: testWriter{t},
		}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return newHarness(t, raw, configJSON, secrets)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func newHarness(t testing.TB, raw any, configJSON string, secrets map[string]string) *Harness {
	cc, ok := raw.(connectorv1.ConnectorClient)
	if !ok {
		t.Fatalf("dispensed %T, not a ConnectorClient", raw)
	}
	if configJSON == "" {
		configJSON = "{}"
	}
	return &Harness{cc: cc, DataSourceID: "sdktest-ds", Version: 1, Config: configJSON, Secrets: secrets}
}

// With returns a copy of h using another configuration, as another data
// source (connectors cache per data source and version, and the host never
// changes a configuration without bumping the version).
func (h *Harness) With(configJSON string, secrets map[string]string) *Harness {
	c := *h
	c.Config = configJSON
	c.Secrets = secrets
	sum := sha256.Sum256([]byte(fmt.Sprint(configJSON, secrets)))
	c.DataSourceID = h.DataSourceID + "-" + hex.EncodeToString(sum[:6])
	return &c
}

func (h *Harness) ds() *connectorv1.DataSourceContext {
	return &connectorv1.DataSourceContext{
		DatasourceId:  h.DataSourceID,
		ConfigVersion: h.Version,
		ConfigJson:    []byte(h.Config),
		Secrets:       h.Secrets,
		RequestId:     "sdktest",
	}
}

// Description is what Describe returned.
type Description struct {
	sdk.Description
	SDKVersion string
}

// Describe calls Describe.
func (h *Harness) Describe(ctx context.Context) (Description, error) {
	r, err := h.cc.Describe(ctx, &connectorv1.DescribeRequest{HostVersion: "sdktest"})
	if err != nil {
		return Description{}, err
	}
	return Description{Description: sdk.Description{
		Name: r.Name, DisplayName: r.DisplayName, Version: r.Version, Capabilities: r.Capabilities,
		ConfigSchema: json.RawMessage(r.ConfigSchemaJson), SQLDialect: r.SqlDialect,
	}, SDKVersion: r.SdkVersion}, nil
}

// ValidateConfig calls ValidateConfig with h's configuration.
func (h *Harness) ValidateConfig(ctx context.Context) ([]sdk.FieldError, error) {
	r, err := h.cc.ValidateConfig(ctx, &connectorv1.ValidateConfigRequest{Ds: h.ds()})
	if err != nil {
		return nil, err
	}
	var out []sdk.FieldError
	for _, e := range r.Errors {
		out = append(out, sdk.FieldError{Field: e.Field, Message: e.Message})
	}
	return out, nil
}

// HealthResult is what CheckHealth returned.
type HealthResult struct {
	OK            bool
	Message       string
	ServerVersion string
	Latency       time.Duration
}

// CheckHealth calls CheckHealth.
func (h *Harness) CheckHealth(ctx context.Context) (HealthResult, error) {
	r, err := h.cc.CheckHealth(ctx, &connectorv1.CheckHealthRequest{Ds: h.ds()})
	if err != nil {
		return HealthResult{}, err
	}
	return HealthResult{OK: r.Ok, Message: r.Message, ServerVersion: r.ServerVersion, Latency: time.Duration(r.ProbeLatencyMs) * time.Millisecond}, nil
}

// ListNamespaces fetches one page.
func (h *Harness) ListNamespaces(ctx context.Context, size int, token string) (sdk.NamespacePage, error) {
	r, err := h.cc.ListNamespaces(ctx, &connectorv1.ListNamespacesRequest{Ds: h.ds(), PageSize: int32(size), PageToken: token})
	if err != nil {
		return sdk.NamespacePage{}, err
	}
	return sdk.NamespacePage{Namespaces: r.Namespaces, NextToken: r.NextPageToken}, nil
}

// ListTables fetches one page.
func (h *Harness) ListTables(ctx context.Context, namespace string, size int, token string) (sdk.TablePage, error) {
	r, err := h.cc.ListTables(ctx, &connectorv1.ListTablesRequest{Ds: h.ds(), Namespace: namespace, PageSize: int32(size), PageToken: token})
	if err != nil {
		return sdk.TablePage{}, err
	}
	p := sdk.TablePage{NextToken: r.NextPageToken}
	for _, t := range r.Tables {
		p.Tables = append(p.Tables, sdk.TableRef{Namespace: t.Namespace, Name: t.Name, Kind: sdk.TableKind(t.Kind)})
	}
	return p, nil
}

// ColumnInfo is a column as the host sees it (the Arrow type as text).
type ColumnInfo struct {
	Name, NativeType, ArrowType string
	Nullable                    bool
}

// TableInfo is a described table.
type TableInfo struct {
	Ref     sdk.TableRef
	Columns []ColumnInfo
}

// DescribeTables calls DescribeTables.
func (h *Harness) DescribeTables(ctx context.Context, tables ...sdk.TableRef) ([]TableInfo, error) {
	req := &connectorv1.DescribeTablesRequest{Ds: h.ds()}
	for _, t := range tables {
		req.Tables = append(req.Tables, &connectorv1.TableRef{Namespace: t.Namespace, Name: t.Name, Kind: connectorv1.TableKind(t.Kind)})
	}
	r, err := h.cc.DescribeTables(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []TableInfo
	for _, t := range r.Tables {
		ti := TableInfo{Ref: sdk.TableRef{Namespace: t.GetRef().GetNamespace(), Name: t.GetRef().GetName(), Kind: sdk.TableKind(t.GetRef().GetKind())}}
		for _, c := range t.Columns {
			ti.Columns = append(ti.Columns, ColumnInfo{Name: c.Name, NativeType: c.NativeType, ArrowType: c.ArrowType, Nullable: c.Nullable})
		}
		out = append(out, ti)
	}
	return out, nil
}

// Dispose calls DisposeInstance for h's data source.
func (h *Harness) Dispose(ctx context.Context) error {
	_, err := h.cc.DisposeInstance(ctx, &connectorv1.DisposeInstanceRequest{DatasourceId: h.DataSourceID})
	return err
}

func (h *Harness) qid() string {
	if h.queryID != "" {
		return h.queryID
	}
	return "sdktest"
}

// Result is a decoded query result.
type Result struct {
	Schema *arrow.Schema
	// Rows holds the values as Go values: int64, uint64, float64, bool,
	// string, []byte, time.Time (UTC), sdk.Date, decimals as strings, and
	// nil for NULL; other types as their Arrow text form.
	Rows [][]any
	// BatchRows is the row count of each record batch.
	BatchRows []int
	// MessageSizes is the size of each arrow_ipc message.
	MessageSizes []int
	// FirstMessageSchema reports whether the first message alone decodes
	// to the schema (it must: the schema comes first).
	FirstMessageSchema bool
	// Bytes is the sum of the messages' sizes.
	Bytes int64
	// Trailer values.
	TrailerRows     int64
	TrailerBytes    int64
	Truncated       bool
	SourceElapsedMs int64
}

// Query runs sql with params and no limits but the defaults.
func (h *Harness) Query(ctx context.Context, sql string, params ...any) (*Result, error) {
	return h.QueryLimits(ctx, sql, sdk.Limits{}, params...)
}

// QueryLimits runs sql with params under lim and decodes the whole result.
// A protocol violation (no trailer, a trailer that does not match the data,
// data after the trailer) is an error.
func (h *Harness) QueryLimits(ctx context.Context, sql string, lim sdk.Limits, params ...any) (*Result, error) {
	ps, err := wire.EncodeParams(params)
	if err != nil {
		return nil, err
	}
	stream, err := h.cc.Query(ctx, &connectorv1.QueryRequest{
		Ds: h.ds(), Sql: sql, Params: ps, QueryId: h.qid(),
		Limits: &connectorv1.Limits{MaxRows: lim.MaxRows, MaxBytes: lim.MaxBytes, BatchMaxRows: int32(lim.BatchMaxRows), BatchMaxBytes: int32(lim.BatchMaxBytes)},
	})
	if err != nil {
		return nil, err
	}
	rs := wire.NewResultStream(stream)
	rd, err := ipc.NewReader(rs)
	if err != nil {
		if e := rs.Err(); e != nil && e != io.EOF {
			return nil, e
		}
		return nil, fmt.Errorf("reading the IPC stream: %w", err)
	}
	defer rd.Release()
	res := &Result{Schema: rd.Schema()}
	for rd.Next() {
		rec := rd.RecordBatch()
		res.BatchRows = append(res.BatchRows, int(rec.NumRows()))
		res.Rows = append(res.Rows, Values(rec)...)
	}
	if err := rd.Err(); err != nil {
		if e := rs.Err(); e != nil && e != io.EOF {
			return nil, e
		}
		return nil, err
	}
	if err := rs.Drain(); err != nil {
		return nil, err
	}
	tr := rs.Trailer()
	if tr == nil {
		return nil, wire.ErrNoTrailer
	}
	res.MessageSizes = rs.Sizes
	res.Bytes = rs.Bytes
	res.TrailerRows, res.TrailerBytes, res.Truncated, res.SourceElapsedMs = tr.Rows, tr.IpcBytes, tr.Truncated, tr.SourceElapsedMs
	if tr.Rows != int64(len(res.Rows)) {
		return nil, fmt.Errorf("trailer says %d rows, the stream had %d", tr.Rows, len(res.Rows))
	}
	if tr.IpcBytes != rs.Bytes {
		return nil, fmt.Errorf("trailer says %d bytes, the stream had %d", tr.IpcBytes, rs.Bytes)
	}
	res.FirstMessageSchema = firstMessageIsSchema(rs.First)
	return res, nil
}

func firstMessageIsSchema(b []byte) bool {
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		return false
	}
	rd.Release()
	return true
}

// Values converts a record batch's rows to Go values (see Result.Rows).
func Values(rec arrow.RecordBatch) [][]any {
	rows := make([][]any, rec.NumRows())
	for i := range rows {
		rows[i] = make([]any, rec.NumCols())
	}
	for c, col := range rec.Columns() {
		for i := range rows {
			rows[i][c] = Value(col, i)
		}
	}
	return rows
}

// Value converts one array value to a Go value (see Result.Rows).
func Value(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.Int8:
		return int64(x.Value(i))
	case *array.Int16:
		return int64(x.Value(i))
	case *array.Int32:
		return int64(x.Value(i))
	case *array.Int64:
		return x.Value(i)
	case *array.Uint8:
		return uint64(x.Value(i))
	case *array.Uint16:
		return uint64(x.Value(i))
	case *array.Uint32:
		return uint64(x.Value(i))
	case *array.Uint64:
		return x.Value(i)
	case *array.Float32:
		return float64(x.Value(i))
	case *array.Float64:
		return x.Value(i)
	case *array.Boolean:
		return x.Value(i)
	case *array.String:
		return x.Value(i)
	case *array.LargeString:
		return x.Value(i)
	case *array.Binary:
		return append([]byte(nil), x.Value(i)...)
	case *array.Timestamp:
		unit := x.DataType().(*arrow.TimestampType).Unit
		return x.Value(i).ToTime(unit).UTC()
	case *array.Date32:
		return sdk.DateOf(x.Value(i).ToTime())
	case *array.Date64:
		return sdk.DateOf(x.Value(i).ToTime())
	case *array.Decimal128:
		return x.Value(i).ToString(x.DataType().(*arrow.Decimal128Type).Scale)
	}
	return a.ValueStr(i)
}

// Code returns the gRPC status code of an error from a Harness call
// (codes.OK for nil).
func Code(err error) codes.Code { return status.Code(err) }

// Message returns the message of an error from a Harness call.
func Message(err error) string { return status.Convert(err).Message() }
