package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/ent/schema/types"
)

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

// queryRoutes are saved queries and their runs.
func (s *Server) queryRoutes() {
	qsv := s.deps.Queries
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
