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

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/queries"
)

// How query results are answered: run options, the JSON/NDJSON/CSV formats,
// streaming and its failure marks, parameter value checks.

// CacheHeader tells whether a JSON result came from the result cache: hit,
// miss or bypass (Cache-Control: no-cache).
const CacheHeader = "X-DataPulse-Cache"

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
		// elapsed_ms counts from here: start returns once the schema has
		// arrived, which may be most of the query's time.
		started := time.Now()
		b, err := start(ctx)
		if err != nil {
			return nil, err
		}
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
	started := time.Now()
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
