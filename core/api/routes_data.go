package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/ent/schema/types"
)

type connectorView struct {
	Name         string         `json:"name"`
	DisplayName  string         `json:"display_name"`
	Version      string         `json:"version"`
	Builtin      bool           `json:"builtin"`
	Status       string         `json:"status" enum:"stopped,starting,ready,crashed,unavailable,disabled"`
	LastError    string         `json:"last_error,omitempty"`
	SQLDialect   string         `json:"sql_dialect"`
	Capabilities []string       `json:"capabilities"`
	ConfigSchema map[string]any `json:"config_schema,omitempty"`
}

type connectorsOutput struct {
	Body struct {
		Items []connectorView `json:"items"`
	}
}

type dataSourceOutput struct {
	Body datasources.DataSource
}

type dataSourcePageOutput struct {
	Body paging.Page[datasources.DataSource]
}

type createDataSourceInput struct {
	Body struct {
		Name   string         `json:"name" minLength:"1" maxLength:"100"`
		Type   string         `json:"type" minLength:"1" maxLength:"50" doc:"connector name, see GET /api/v1/connectors"`
		Config map[string]any `json:"config" doc:"validated against the connector's config_schema; secret fields are write-only"`
		// Seconds results stay cached (0: never); absent uses the server default.
		CacheTTLSeconds *int `json:"cache_ttl_seconds,omitempty" minimum:"0" maximum:"604800" doc:"result cache TTL in seconds (0: no caching); absent: the server's --cache-ttl"`
	}
}

type updateDataSourceInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name            *string        `json:"name,omitempty" minLength:"1" maxLength:"100"`
		Config          map[string]any `json:"config,omitempty" doc:"keys given replace stored ones; a secret set to \"\" or null is removed; absent secrets are kept"`
		CacheTTLSeconds *int           `json:"cache_ttl_seconds,omitempty" minimum:"-1" maximum:"604800" doc:"result cache TTL in seconds (0: no caching, -1: back to the server default)"`
	}
}

type listDataSourcesInput struct {
	ListParams
	Q string `query:"q" maxLength:"100"`
}

type healthOutputDS struct {
	Body struct {
		DataSource    datasources.DataSource `json:"data_source"`
		OK            bool                   `json:"ok"`
		Message       string                 `json:"message,omitempty"`
		ServerVersion string                 `json:"server_version,omitempty"`
		LatencyMS     int64                  `json:"latency_ms"`
	}
}

type invalidateOutput struct {
	Body struct {
		Invalidated int `json:"invalidated" doc:"cached results dropped"`
	}
}

// CacheHeader tells whether a JSON result came from the result cache: hit,
// miss or bypass (Cache-Control: no-cache).
const CacheHeader = "X-DataPulse-Cache"

type schemaOutput struct {
	Body datasources.Schema
}

// RunOptions are the query parameters of a run (exported: huma only reads
// parameters of exported embedded structs).
type RunOptions struct {
	Format    string `query:"format" enum:"json,ndjson,csv" doc:"output format; default from Accept (application/x-ndjson, text/csv), else json"`
	Accept    string `header:"Accept"`
	MaxRows   int64  `query:"max_rows" minimum:"1" doc:"lower the row cap for this run"`
	TimeoutMS int64  `query:"timeout_ms" minimum:"1" doc:"lower the timeout for this run"`
	// CacheControl: no-cache skips the result cache lookup (JSON output).
	CacheControl string `header:"Cache-Control" doc:"no-cache: run at the source even when a cached result is fresh"`
}

func (o RunOptions) cache() queries.CacheOptions {
	return queries.CacheOptions{Bypass: noCache(o.CacheControl)}
}

// noCache reports whether a Cache-Control header asks for a fresh answer.
func noCache(cacheControl string) bool {
	cc := strings.ToLower(cacheControl)
	return strings.Contains(cc, "no-cache") || strings.Contains(cc, "no-store")
}

type adHocInput struct {
	RunOptions
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		SQL        string         `json:"sql" minLength:"1" maxLength:"1048576"`
		Parameters map[string]any `json:"parameters,omitempty" doc:"values for {{name}} placeholders (bound, never spliced)"`
	}
}

type runSavedInput struct {
	RunOptions
	ID   string `path:"id" maxLength:"64"`
	Body *struct {
		Parameters map[string]any `json:"parameters,omitempty"`
	} `required:"false"`
}

type queryOutput struct {
	Body queries.SavedQuery
}

type queryPageOutput struct {
	Body paging.Page[queries.SavedQuery]
}

type createQueryInput struct {
	Body struct {
		Name            string                 `json:"name" minLength:"1" maxLength:"255"`
		Description     *string                `json:"description,omitempty" maxLength:"10000"`
		SQL             string                 `json:"sql" minLength:"1" maxLength:"1048576"`
		DataSourceID    *uuid.UUID             `json:"data_source_id,omitempty"`
		Parameters      []types.QueryParameter `json:"parameters,omitempty" maxItems:"64"`
		CacheTTLSeconds *int                   `json:"cache_ttl_seconds,omitempty" minimum:"0" maximum:"604800" doc:"result cache TTL in seconds for this query (0: no caching); absent: the data source's"`
	}
}

type updateQueryInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name            *string                 `json:"name,omitempty" minLength:"1" maxLength:"255"`
		Description     *string                 `json:"description,omitempty" maxLength:"10000"`
		SQL             *string                 `json:"sql,omitempty" minLength:"1" maxLength:"1048576"`
		DataSourceID    *uuid.UUID              `json:"data_source_id,omitempty"`
		Parameters      *[]types.QueryParameter `json:"parameters,omitempty" maxItems:"64"`
		CacheTTLSeconds *int                    `json:"cache_ttl_seconds,omitempty" minimum:"-1" maximum:"604800" doc:"result cache TTL in seconds (0: no caching, -1: the data source's)"`
	}
}

type listQueriesInput struct {
	ListParams
	Q string `query:"q" maxLength:"255"`
}

func (o RunOptions) format() string {
	if o.Format != "" {
		return o.Format
	}
	a := strings.ToLower(o.Accept)
	switch {
	case strings.Contains(a, "application/x-ndjson"), strings.Contains(a, "application/ndjson"):
		return "ndjson"
	case strings.Contains(a, "text/csv"):
		return "csv"
	}
	return "json"
}

func (o RunOptions) options() queries.RunOptions {
	return queries.RunOptions{MaxRows: o.MaxRows, Timeout: time.Duration(o.TimeoutMS) * time.Millisecond}
}

// runResponse answers a run in the requested format. JSON is collected (the
// row cap bounds it); NDJSON and CSV stream as batches arrive, on a context
// that outlives the handler and ends with the stream, so a client that goes
// away stops the query at the source.
func (s *Server) runResponse(ctx context.Context, o RunOptions, start func(context.Context) (queries.Batches, error),
	fetch func(context.Context) (queries.Fetched, error)) (*huma.StreamResponse, error) {
	format := o.format()
	if format == "json" && fetch != nil {
		// Through the result cache; a client that hangs up stops waiting
		// (the query itself ends once nobody waits for it).
		ctx, stop := untilDisconnect(ctx)
		defer stop()
		f, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			hc.SetHeader("Content-Type", "application/json")
			hc.SetHeader(CacheHeader, f.Cache)
			hc.SetStatus(http.StatusOK)
			writeJSON(hc.BodyWriter(), f.Result)
		}}, nil
	}
	if format == "json" {
		// Collected before answering (so a connector failing mid-result is
		// still a proper error status); a client that hangs up meanwhile
		// cancels the query at the source.
		ctx, stop := untilDisconnect(ctx)
		defer stop()
		b, err := start(ctx)
		if err != nil {
			return nil, err
		}
		started := time.Now()
		res, err := queries.Collect(b, started)
		if err != nil {
			return nil, datasources.ConnectorError(err)
		}
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			hc.SetHeader("Content-Type", "application/json")
			hc.SetStatus(http.StatusOK)
			writeJSON(hc.BodyWriter(), res)
		}}, nil
	}
	// The stream is written after the handler returns: give it its own
	// context (keeping the caller's identity) and a deadline.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.deps.StreamTimeout)
	b, err := start(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if b, err = queries.Prefetch(b); err != nil {
		cancel()
		return nil, datasources.ConnectorError(err)
	}
	return &huma.StreamResponse{Body: func(hc huma.Context) {
		fc := humafiber.Unwrap(hc)
		if format == "csv" {
			fc.Set("Content-Type", "text/csv; charset=utf-8")
			fc.Set("Content-Disposition", `attachment; filename="result.csv"`)
		} else {
			fc.Set("Content-Type", "application/x-ndjson")
		}
		fc.Status(http.StatusOK)
		started := time.Now()
		reqID := requestIDOf(fc)
		// The result goes through a pipe fasthttp reads as the chunked body:
		// a read error (CloseWithError) makes it stop without the final
		// chunk and drop the connection, which is how a CSV stream that
		// failed midway is told from a complete one.
		pr, pw := io.Pipe()
		go func() {
			defer cancel()
			w := bufio.NewWriterSize(pw, 32<<10)
			var err error
			if format == "csv" {
				err = queries.WriteCSV(w, b)
			} else {
				err = queries.WriteNDJSON(w, b, started)
			}
			if err != nil && !errors.Is(err, io.ErrClosedPipe) {
				s.log.Warn("result stream ended early", "error", err, "format", format, "request_id", reqID)
				if format == "csv" {
					// CSV has no in-band error marker.
					w.Flush() //nolint:errcheck // the rows so far, then the break
					pw.CloseWithError(errStreamFailed)
					return
				}
				// The status is already sent: say so in the stream itself
				// (docs/streams.md).
				writeJSON(w, streamError(err, reqID))
			}
			if err := w.Flush(); err != nil {
				pw.CloseWithError(err)
				return
			}
			pw.Close()
		}()
		fc.Context().SetBodyStream(pr, -1)
	}}, nil
}

// runResponses documents the three output formats of a run (the handler
// streams, so huma cannot infer them).
func (s *Server) runResponses() map[string]*huma.Response {
	schema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(queries.Result{}), true, "QueryResult")
	return map[string]*huma.Response{"200": {
		Description: "The result: JSON (collected), or NDJSON / CSV streamed as it is produced.",
		Headers: map[string]*huma.Param{CacheHeader: {
			Description: "JSON results of saved queries and models: whether the result came from the result cache",
			Schema:      &huma.Schema{Type: huma.TypeString, Enum: []any{"hit", "miss", "bypass"}},
		}},
		Content: map[string]*huma.MediaType{
			"application/json":     {Schema: schema},
			"application/x-ndjson": {Schema: &huma.Schema{Type: "string", Description: "one JSON object per row, then {\"_meta\": {row_count, truncated, columns, elapsed_ms}}; a failure after the stream started ends it with {\"_error\": {code, message, request_id}} instead of _meta (docs/streams.md)"}},
			"text/csv":             {Schema: &huma.Schema{Type: "string", Description: "header line, then one line per row; formula-like text cells are prefixed with '. A failure after the stream started aborts the connection before the end of the chunked body (docs/streams.md)"}},
		},
	}}
}

func (s *Server) dataRoutes() {
	dsv, qsv, hst := s.deps.DataSources, s.deps.Queries, s.deps.Connectors
	register(s, Authenticated, huma.Operation{
		OperationID: "listConnectors", Method: http.MethodGet, Path: "/api/v1/connectors", Tags: []string{"connectors"},
		Summary: "Available connectors with their config schema and status",
	}, func(ctx context.Context, _ *struct{}) (*connectorsOutput, error) {
		out := &connectorsOutput{}
		for _, c := range hst.Connectors(ctx) {
			v := connectorView{Name: c.Name, DisplayName: c.DisplayName, Version: c.Version, Builtin: c.Builtin,
				Status: c.Status, LastError: c.LastError, SQLDialect: c.SQLDialect, Capabilities: c.Capabilities}
			if v.Capabilities == nil {
				v.Capabilities = []string{}
			}
			if len(c.ConfigSchema) > 0 {
				_ = jsonUnmarshal(c.ConfigSchema, &v.ConfigSchema)
			}
			out.Body.Items = append(out.Body.Items, v)
		}
		if out.Body.Items == nil {
			out.Body.Items = []connectorView{}
		}
		return out, nil
	})

	tags := []string{"data sources"}
	register(s, Authenticated, huma.Operation{
		OperationID: "createDataSource", Method: http.MethodPost, Path: "/api/v1/data-sources", Tags: tags,
		Summary: "Connect a data source (datasources:manage)", DefaultStatus: http.StatusCreated,
		Errors: append([]int{http.StatusConflict}, upstreamErrors...),
	}, func(ctx context.Context, in *createDataSourceInput) (*dataSourceOutput, error) {
		d, err := dsv.Create(ctx, datasources.Input{Name: &in.Body.Name, Type: in.Body.Type, Config: in.Body.Config, CacheTTLSeconds: in.Body.CacheTTLSeconds})
		return &dataSourceOutput{Body: d}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listDataSources", Method: http.MethodGet, Path: "/api/v1/data-sources", Tags: tags,
		Summary: "Data sources (queries:run or datasources:manage)",
	}, func(ctx context.Context, in *listDataSourcesInput) (*dataSourcePageOutput, error) {
		p, err := dsv.List(ctx, in.Q, in.paging())
		return &dataSourcePageOutput{Body: p}, err
	})
	dsID := func(raw string) (uuid.UUID, error) { return parseID(raw, "data source") }
	register(s, Authenticated, huma.Operation{
		OperationID: "getDataSource", Method: http.MethodGet, Path: "/api/v1/data-sources/{id}", Tags: tags, Summary: "A data source",
	}, func(ctx context.Context, in *idInput) (*dataSourceOutput, error) {
		id, err := dsID(in.ID)
		if err != nil {
			return nil, err
		}
		d, err := dsv.Get(ctx, id)
		return &dataSourceOutput{Body: d}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateDataSource", Method: http.MethodPatch, Path: "/api/v1/data-sources/{id}", Tags: tags,
		Summary: "Change a data source (datasources:manage)",
		Errors:  append([]int{http.StatusConflict}, upstreamErrors...),
	}, func(ctx context.Context, in *updateDataSourceInput) (*dataSourceOutput, error) {
		id, err := dsID(in.ID)
		if err != nil {
			return nil, err
		}
		d, err := dsv.Update(ctx, id, datasources.Input{Name: in.Body.Name, Config: in.Body.Config, CacheTTLSeconds: in.Body.CacheTTLSeconds})
		return &dataSourceOutput{Body: d}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteDataSource", Method: http.MethodDelete, Path: "/api/v1/data-sources/{id}", Tags: tags,
		Summary: "Delete a data source (its saved queries stay, without a source)", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		id, err := dsID(in.ID)
		if err != nil {
			return nil, err
		}
		return nil, dsv.Delete(ctx, id)
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "invalidateDataSourceCache", Method: http.MethodPost, Path: "/api/v1/data-sources/{id}/cache/invalidate", Tags: tags,
		Summary: "Drop every cached result of a data source (datasources:manage)",
	}, func(ctx context.Context, in *idInput) (*invalidateOutput, error) {
		id, err := dsID(in.ID)
		if err != nil {
			return nil, err
		}
		n, err := qsv.InvalidateCache(ctx, id)
		out := &invalidateOutput{}
		out.Body.Invalidated = n
		return out, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "checkDataSourceHealth", Method: http.MethodPost, Path: "/api/v1/data-sources/{id}/health", Tags: tags,
		Summary: "Connect and probe; records status and last_sync (datasources:manage)",
		Errors:  upstreamErrors,
	}, func(ctx context.Context, in *idInput) (*healthOutputDS, error) {
		id, err := dsID(in.ID)
		if err != nil {
			return nil, err
		}
		d, h, err := dsv.Health(ctx, id)
		if err != nil {
			return nil, err
		}
		out := &healthOutputDS{}
		out.Body.DataSource, out.Body.OK, out.Body.Message = d, h.OK, h.Message
		out.Body.ServerVersion, out.Body.LatencyMS = h.ServerVersion, h.Latency.Milliseconds()
		return out, nil
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "getDataSourceSchema", Method: http.MethodGet, Path: "/api/v1/data-sources/{id}/schema", Tags: tags,
		Summary: "Namespaces, tables and columns of a data source (queries:run or datasources:manage)",
		Errors:  upstreamErrors,
	}, func(ctx context.Context, in *idInput) (*schemaOutput, error) {
		id, err := dsID(in.ID)
		if err != nil {
			return nil, err
		}
		sc, err := dsv.Schema(ctx, id)
		return &schemaOutput{Body: sc}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "queryDataSource", Method: http.MethodPost, Path: "/api/v1/data-sources/{id}/query", Tags: tags,
		Summary:     "Run ad-hoc read-only SQL (queries:run)",
		Errors:      upstreamErrors,
		Responses:   s.runResponses(),
		Description: "Output: JSON {columns, rows, row_count, truncated, elapsed_ms}, or streamed NDJSON / CSV (?format= or Accept).",
	}, func(ctx context.Context, in *adHocInput) (*huma.StreamResponse, error) {
		id, err := dsID(in.ID)
		if err != nil {
			return nil, err
		}
		if err := checkParamValues(in.Body.Parameters); err != nil {
			return nil, err
		}
		return s.runResponse(ctx, in.RunOptions, func(ctx context.Context) (queries.Batches, error) {
			return qsv.RunAdHoc(ctx, id, in.Body.SQL, in.Body.Parameters, in.options())
		}, nil)
	})

	qtags := []string{"queries"}
	qID := func(raw string) (uuid.UUID, error) { return parseID(raw, "query") }
	register(s, Authenticated, huma.Operation{
		OperationID: "createQuery", Method: http.MethodPost, Path: "/api/v1/queries", Tags: qtags,
		Summary: "Save a query (queries:create)", DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *createQueryInput) (*queryOutput, error) {
		b := in.Body
		ps := b.Parameters
		if ps == nil {
			ps = []types.QueryParameter{}
		}
		q, err := qsv.Create(ctx, queries.Input{Name: &b.Name, Description: b.Description, SQL: &b.SQL, DataSourceID: b.DataSourceID, Parameters: &ps, CacheTTLSeconds: b.CacheTTLSeconds})
		return &queryOutput{Body: q}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listQueries", Method: http.MethodGet, Path: "/api/v1/queries", Tags: qtags,
		Summary: "The caller's saved queries (all for admins)",
	}, func(ctx context.Context, in *listQueriesInput) (*queryPageOutput, error) {
		p, err := qsv.List(ctx, in.Q, in.paging())
		return &queryPageOutput{Body: p}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "getQuery", Method: http.MethodGet, Path: "/api/v1/queries/{id}", Tags: qtags, Summary: "A saved query",
	}, func(ctx context.Context, in *idInput) (*queryOutput, error) {
		id, err := qID(in.ID)
		if err != nil {
			return nil, err
		}
		q, err := qsv.Get(ctx, id)
		return &queryOutput{Body: q}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateQuery", Method: http.MethodPatch, Path: "/api/v1/queries/{id}", Tags: qtags, Summary: "Change a saved query",
	}, func(ctx context.Context, in *updateQueryInput) (*queryOutput, error) {
		id, err := qID(in.ID)
		if err != nil {
			return nil, err
		}
		b := in.Body
		q, err := qsv.Update(ctx, id, queries.Input{Name: b.Name, Description: b.Description, SQL: b.SQL, DataSourceID: b.DataSourceID, Parameters: b.Parameters, CacheTTLSeconds: b.CacheTTLSeconds})
		return &queryOutput{Body: q}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteQuery", Method: http.MethodDelete, Path: "/api/v1/queries/{id}", Tags: qtags,
		Summary: "Delete a saved query", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		id, err := qID(in.ID)
		if err != nil {
			return nil, err
		}
		return nil, qsv.Delete(ctx, id)
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "runQuery", Method: http.MethodPost, Path: "/api/v1/queries/{id}/run", Tags: qtags,
		Summary:     "Run a saved query with parameter values (queries:run)",
		Errors:      upstreamErrors,
		Responses:   s.runResponses(),
		Description: "Output: JSON {columns, rows, row_count, truncated, elapsed_ms}, or streamed NDJSON / CSV (?format= or Accept).",
	}, func(ctx context.Context, in *runSavedInput) (*huma.StreamResponse, error) {
		id, err := qID(in.ID)
		if err != nil {
			return nil, err
		}
		var values map[string]any
		if in.Body != nil {
			values = in.Body.Parameters
		}
		if err := checkParamValues(values); err != nil {
			return nil, err
		}
		return s.runResponse(ctx, in.RunOptions, func(ctx context.Context) (queries.Batches, error) {
			return qsv.Run(ctx, id, values, in.options())
		}, func(ctx context.Context) (queries.Fetched, error) {
			return qsv.FetchSaved(ctx, id, values, in.options(), in.cache())
		})
	})
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client may be gone; nothing to do then
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// checkParamValues refuses parameter values no connector can bind before
// anything is sent: a value is a JSON scalar or a list of scalars of one JSON
// type (nulls allowed); objects and nested lists are not.
func checkParamValues(params map[string]any) error {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		field := "parameters." + k
		list, isList := params[k].([]any)
		if !isList {
			if jsonKind(params[k]) == "" {
				return errs.Invalid(field, "parameter "+k+" must be a string, number, boolean, null or a list of them")
			}
			continue
		}
		first := ""
		for i, item := range list {
			kind := jsonKind(item)
			switch {
			case kind == "":
				return errs.Invalid(field, fmt.Sprintf("parameter %s: item %d is an object or a list; list items are strings, numbers or booleans", k, i+1))
			case kind == "null":
			case first == "":
				first = kind
			case kind != first:
				return errs.Invalid(field, fmt.Sprintf("parameter %s: item %d is a %s but the list holds %ss; a list holds one type", k, i+1, kind, first))
			}
		}
	}
	return nil
}

// jsonKind names a decoded JSON scalar's type; "" for objects and lists.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64, json.Number, int, int64:
		return "number"
	}
	return ""
}

// streamErrorLine is the last line of an NDJSON stream that failed after it
// started (docs/streams.md): the error envelope's fields under "_error".
type streamErrorLine struct {
	Err ErrorInfo `json:"_error"`
}

func streamError(err error, reqID string) streamErrorLine {
	e, ok := fromDomain(datasources.ConnectorError(err))
	if !ok {
		e = newError(http.StatusBadGateway, "upstream_error", "the result stream failed; quote the request id when reporting it")
	}
	info := e.Err
	info.Details = nil
	info.RequestID = reqID
	return streamErrorLine{Err: info}
}

// errStreamFailed ends a CSV body that failed midway.
var errStreamFailed = errors.New("result stream failed")
