package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
)

// SDKVersion is this SDK's semantic version, reported to the host in
// Describe (DescribeResponse.sdk_version). It equals the module's release
// tag: plugins/sdk/v1.0.0 is SDKVersion "1.0.0". It is independent of
// ProtocolVersion, the wire protocol's major version.
const SDKVersion = "1.0.0"

// server adapts a Connector to the generated gRPC service.
type server struct {
	connectorv1.UnimplementedConnectorServer
	impl Connector
	log  hclog.Logger
	// mem is the allocator for results (tests swap in a checked one).
	mem memory.Allocator
	// active holds the ids of the queries whose Query method is running;
	// Describe lists them (activeQueriesHeader) so that the host can tell
	// a connector that ignores cancellation from one that stopped.
	active sync.Map
}

// activeQueriesHeader is the Describe response header listing the running
// query ids (the host's ActiveQueriesHeader).
const activeQueriesHeader = "datapulse-active-queries"

func newServer(impl Connector, log hclog.Logger) *server {
	if log == nil {
		log = Logger()
	}
	return &server{impl: impl, log: log, mem: memory.DefaultAllocator}
}

// config turns the protocol's data-source context into a Config.
func (s *server) config(ds *connectorv1.DataSourceContext) (Config, error) {
	cfg := Config{
		DataSourceID: ds.GetDatasourceId(),
		Version:      ds.GetConfigVersion(),
		Secrets:      ds.GetSecrets(),
		RequestID:    ds.GetRequestId(),
		Values:       map[string]any{},
	}
	if cfg.Secrets == nil {
		cfg.Secrets = map[string]string{}
	}
	raw := bytes.TrimSpace(ds.GetConfigJson())
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	cfg.JSON = json.RawMessage(raw)
	if err := json.Unmarshal(raw, &cfg.Values); err != nil || cfg.Values == nil {
		return cfg, status.Error(codes.InvalidArgument, "config_json is not a JSON object")
	}
	return cfg, nil
}

// ctxFor adds a logger naming the request to ctx.
func (s *server) ctxFor(ctx context.Context, method string, cfg Config) context.Context {
	l := s.log.With("method", method)
	if cfg.DataSourceID != "" {
		l = l.With("datasource_id", cfg.DataSourceID)
	}
	if cfg.RequestID != "" {
		l = l.With("request_id", cfg.RequestID)
	}
	return withLogger(ctx, l)
}

// guard runs fn, turning a panic into an Internal status (and a log line
// with the stack) so that one bad call does not take down the process and
// every other call in flight.
func (s *server) guard(method string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("connector panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "connector panicked in %s: %v", method, r)
		}
	}()
	return fn()
}

func (s *server) Describe(ctx context.Context, req *connectorv1.DescribeRequest) (resp *connectorv1.DescribeResponse, err error) {
	var ids []string
	s.active.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	if len(ids) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs(activeQueriesHeader, strings.Join(ids, ",")))
	}
	err = s.guard("Describe", func() error {
		d := s.impl.Describe()
		resp = &connectorv1.DescribeResponse{
			Name:             d.Name,
			DisplayName:      d.DisplayName,
			Version:          d.Version,
			SdkVersion:       SDKVersion,
			Capabilities:     d.Capabilities,
			ConfigSchemaJson: string(d.ConfigSchema),
			SqlDialect:       d.SQLDialect,
		}
		return nil
	})
	return resp, err
}

func (s *server) ValidateConfig(ctx context.Context, req *connectorv1.ValidateConfigRequest) (resp *connectorv1.ValidateConfigResponse, err error) {
	cfg, err := s.config(req.GetDs())
	if err != nil {
		// Not even a JSON object: that is the answer, not a failure.
		return &connectorv1.ValidateConfigResponse{Errors: []*connectorv1.FieldError{{Field: "", Message: "configuration is not a JSON object"}}}, nil
	}
	ctx = s.ctxFor(ctx, "ValidateConfig", cfg)
	err = s.guard("ValidateConfig", func() error {
		fes := s.impl.ValidateConfig(ctx, cfg)
		resp = &connectorv1.ValidateConfigResponse{}
		secrets := cfg.secretValues()
		for _, fe := range fes {
			resp.Errors = append(resp.Errors, &connectorv1.FieldError{Field: fe.Field, Message: scrub(fe.Message, secrets)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, toStatus(ctx, ctx.Err(), nil)
	}
	return resp, nil
}

func (s *server) CheckHealth(ctx context.Context, req *connectorv1.CheckHealthRequest) (resp *connectorv1.CheckHealthResponse, err error) {
	cfg, err := s.config(req.GetDs())
	if err != nil {
		return nil, err
	}
	ctx = s.ctxFor(ctx, "CheckHealth", cfg)
	err = s.guard("CheckHealth", func() error {
		start := time.Now()
		h, herr := s.impl.CheckHealth(ctx, cfg)
		latency := h.Latency
		if latency == 0 {
			latency = time.Since(start)
		}
		if herr != nil {
			if ctx.Err() != nil {
				return toStatus(ctx, herr, cfg.secretValues())
			}
			resp = &connectorv1.CheckHealthResponse{Ok: false, Message: scrub(herr.Error(), cfg.secretValues()), ProbeLatencyMs: latency.Milliseconds()}
			return nil
		}
		msg := h.Message
		if msg == "" {
			msg = "ok"
		}
		resp = &connectorv1.CheckHealthResponse{Ok: true, Message: scrub(msg, cfg.secretValues()), ServerVersion: h.ServerVersion, ProbeLatencyMs: latency.Milliseconds()}
		return nil
	})
	return resp, err
}

func pageOf(size int32, token string) Page {
	n := int(size)
	if n <= 0 {
		n = DefaultPageSize
	}
	if n > MaxPageSize {
		n = MaxPageSize
	}
	return Page{Size: n, Token: token}
}

func (s *server) ListNamespaces(ctx context.Context, req *connectorv1.ListNamespacesRequest) (resp *connectorv1.ListNamespacesResponse, err error) {
	cfg, err := s.config(req.GetDs())
	if err != nil {
		return nil, err
	}
	ctx = s.ctxFor(ctx, "ListNamespaces", cfg)
	err = s.guard("ListNamespaces", func() error {
		page := pageOf(req.GetPageSize(), req.GetPageToken())
		p, lerr := s.impl.ListNamespaces(ctx, cfg, page)
		if lerr != nil {
			return toStatus(ctx, lerr, cfg.secretValues())
		}
		if len(p.Namespaces) > page.Size {
			return status.Errorf(codes.Internal, "connector returned %d namespaces for a page of %d", len(p.Namespaces), page.Size)
		}
		resp = &connectorv1.ListNamespacesResponse{Namespaces: p.Namespaces, NextPageToken: p.NextToken}
		return nil
	})
	return resp, err
}

func (s *server) ListTables(ctx context.Context, req *connectorv1.ListTablesRequest) (resp *connectorv1.ListTablesResponse, err error) {
	cfg, err := s.config(req.GetDs())
	if err != nil {
		return nil, err
	}
	ctx = s.ctxFor(ctx, "ListTables", cfg)
	err = s.guard("ListTables", func() error {
		page := pageOf(req.GetPageSize(), req.GetPageToken())
		p, lerr := s.impl.ListTables(ctx, cfg, req.GetNamespace(), page)
		if lerr != nil {
			return toStatus(ctx, lerr, cfg.secretValues())
		}
		if len(p.Tables) > page.Size {
			return status.Errorf(codes.Internal, "connector returned %d tables for a page of %d", len(p.Tables), page.Size)
		}
		resp = &connectorv1.ListTablesResponse{NextPageToken: p.NextToken}
		for _, t := range p.Tables {
			resp.Tables = append(resp.Tables, tableRefToProto(t))
		}
		return nil
	})
	return resp, err
}

// MaxDescribeTables is the most tables one DescribeTables call may name.
const MaxDescribeTables = 1000

func (s *server) DescribeTables(ctx context.Context, req *connectorv1.DescribeTablesRequest) (resp *connectorv1.DescribeTablesResponse, err error) {
	cfg, err := s.config(req.GetDs())
	if err != nil {
		return nil, err
	}
	if len(req.GetTables()) > MaxDescribeTables {
		return nil, status.Errorf(codes.InvalidArgument, "at most %d tables per call", MaxDescribeTables)
	}
	ctx = s.ctxFor(ctx, "DescribeTables", cfg)
	err = s.guard("DescribeTables", func() error {
		refs := make([]TableRef, len(req.GetTables()))
		for i, t := range req.GetTables() {
			refs[i] = TableRef{Namespace: t.GetNamespace(), Name: t.GetName(), Kind: TableKind(t.GetKind())}
		}
		infos, derr := s.impl.DescribeTables(ctx, cfg, refs)
		if derr != nil {
			return toStatus(ctx, derr, cfg.secretValues())
		}
		resp = &connectorv1.DescribeTablesResponse{}
		for _, ti := range infos {
			pt := &connectorv1.TableInfo{Ref: tableRefToProto(ti.Ref)}
			for _, c := range ti.Columns {
				at := ""
				if c.Type != nil {
					at = c.Type.String()
				}
				pt.Columns = append(pt.Columns, &connectorv1.ColumnInfo{Name: c.Name, NativeType: c.NativeType, ArrowType: at, Nullable: c.Nullable})
			}
			resp.Tables = append(resp.Tables, pt)
		}
		return nil
	})
	return resp, err
}

func tableRefToProto(t TableRef) *connectorv1.TableRef {
	kind := connectorv1.TableKind_TABLE_KIND_UNSPECIFIED
	switch t.Kind {
	case KindTable:
		kind = connectorv1.TableKind_TABLE_KIND_TABLE
	case KindView:
		kind = connectorv1.TableKind_TABLE_KIND_VIEW
	case KindFile:
		kind = connectorv1.TableKind_TABLE_KIND_FILE
	}
	return &connectorv1.TableRef{Namespace: t.Namespace, Name: t.Name, Kind: kind}
}

func limitsFromProto(l *connectorv1.Limits) Limits {
	return normalizeLimits(Limits{
		MaxRows:       l.GetMaxRows(),
		MaxBytes:      l.GetMaxBytes(),
		BatchMaxRows:  int(l.GetBatchMaxRows()),
		BatchMaxBytes: int(l.GetBatchMaxBytes()),
	})
}

func (s *server) Query(req *connectorv1.QueryRequest, stream grpc.ServerStreamingServer[connectorv1.QueryResponse]) error {
	start := time.Now()
	ctx := stream.Context()
	cfg, err := s.config(req.GetDs())
	if err != nil {
		return err
	}
	params, err := decodeParams(req.GetParams())
	if err != nil {
		return toStatus(ctx, err, nil)
	}
	q := Query{SQL: req.GetSql(), Params: params, Limits: limitsFromProto(req.GetLimits()), ID: req.GetQueryId()}
	ctx = s.ctxFor(ctx, "Query", cfg)
	if q.ID != "" {
		ctx = withLogger(ctx, LoggerFrom(ctx).With("query_id", q.ID))
	}
	secrets := cfg.secretValues()
	w := newResultWriter(ctx, q.Limits, s.mem, func(b []byte) error {
		return stream.Send(&connectorv1.QueryResponse{Msg: &connectorv1.QueryResponse_ArrowIpc{ArrowIpc: b}})
	})
	if q.ID != "" {
		s.active.Store(q.ID, struct{}{})
		defer s.active.Delete(q.ID)
	}
	err = s.guard("Query", func() error {
		qerr := s.impl.Query(ctx, cfg, q, w)
		if qerr != nil && !errors.Is(qerr, ErrLimitReached) {
			return qerr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.finish()
	})
	if err != nil {
		w.release()
		LoggerFrom(ctx).Debug("query failed", "error", scrub(err.Error(), secrets))
		return toStatus(ctx, err, secrets)
	}
	rows, nbytes, truncated, elapsed := w.trailerStats(start)
	return stream.Send(&connectorv1.QueryResponse{Msg: &connectorv1.QueryResponse_Trailer{Trailer: &connectorv1.Trailer{
		Rows:            rows,
		IpcBytes:        nbytes,
		Truncated:       truncated,
		SourceElapsedMs: elapsed.Milliseconds(),
	}}})
}

func (s *server) DisposeInstance(ctx context.Context, req *connectorv1.DisposeInstanceRequest) (*connectorv1.DisposeInstanceResponse, error) {
	err := s.guard("DisposeInstance", func() error {
		s.impl.Dispose(req.GetDatasourceId())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &connectorv1.DisposeInstanceResponse{}, nil
}
