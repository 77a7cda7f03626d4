package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/queries"
)

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

type schemaOutput struct {
	Body datasources.Schema
}

type adHocInput struct {
	RunOptions
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		SQL        string         `json:"sql" minLength:"1" maxLength:"1048576"`
		Parameters map[string]any `json:"parameters,omitempty" doc:"values for {{name}} placeholders (bound, never spliced)"`
	}
}

// dataSourceRoutes are data sources: CRUD, health, schema, ad-hoc queries and
// their result cache.
func (s *Server) dataSourceRoutes() {
	dsv, qsv := s.deps.DataSources, s.deps.Queries
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
}
