package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/queries"
)

type dataModelOutput struct {
	Body datamodels.DataModel
}

type dataModelPageOutput struct {
	Body paging.Page[datamodels.DataModel]
}

type createDataModelInput struct {
	Body struct {
		Name   string        `json:"name" minLength:"1" maxLength:"255"`
		Config models.Config `json:"config"`
	}
}

type updateDataModelInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name   *string        `json:"name,omitempty" minLength:"1" maxLength:"255"`
		Config *models.Config `json:"config,omitempty"`
	}
}

type listDataModelsInput struct {
	ListParams
	Q string `query:"q" maxLength:"255"`
}

type checkModelOutput struct {
	Body datamodels.CheckResult
}

type modelQueryInput struct {
	RunOptions
	ID      string         `path:"id" maxLength:"64"`
	Explain bool           `query:"explain" doc:"answer the compiled SQL and its bound values instead of running it"`
	Body    models.Request `required:"true"`
}

func (s *Server) modelRoutes() {
	msv := s.deps.Models
	tags := []string{"data models"}
	mID := func(raw string) (uuid.UUID, error) { return parseID(raw, "data model") }
	register(s, Authenticated, huma.Operation{
		OperationID: "createDataModel", Method: http.MethodPost, Path: "/api/v1/data-models", Tags: tags,
		Summary:       "Create a semantic data model (models:manage)",
		Errors:        upstreamErrors,
		Description:   "The config is validated and every column it names is checked against the data source's schema.",
		DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *createDataModelInput) (*dataModelOutput, error) {
		m, err := msv.Create(ctx, datamodels.Input{Name: &in.Body.Name, Config: &in.Body.Config})
		return &dataModelOutput{Body: m}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listDataModels", Method: http.MethodGet, Path: "/api/v1/data-models", Tags: tags,
		Summary: "Data models (queries:run or models:manage)",
	}, func(ctx context.Context, in *listDataModelsInput) (*dataModelPageOutput, error) {
		p, err := msv.List(ctx, in.Q, in.paging())
		return &dataModelPageOutput{Body: p}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "getDataModel", Method: http.MethodGet, Path: "/api/v1/data-models/{id}", Tags: tags,
		Summary: "A data model (queries:run or models:manage)",
	}, func(ctx context.Context, in *idInput) (*dataModelOutput, error) {
		id, err := mID(in.ID)
		if err != nil {
			return nil, err
		}
		m, err := msv.Get(ctx, id)
		return &dataModelOutput{Body: m}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateDataModel", Method: http.MethodPatch, Path: "/api/v1/data-models/{id}", Tags: tags,
		Summary: "Change a data model (its owner or an admin, models:manage)",
		Errors:  upstreamErrors,
	}, func(ctx context.Context, in *updateDataModelInput) (*dataModelOutput, error) {
		id, err := mID(in.ID)
		if err != nil {
			return nil, err
		}
		m, err := msv.Update(ctx, id, datamodels.Input{Name: in.Body.Name, Config: in.Body.Config})
		return &dataModelOutput{Body: m}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteDataModel", Method: http.MethodDelete, Path: "/api/v1/data-models/{id}", Tags: tags,
		Summary: "Delete a data model (its owner or an admin, models:manage)", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		id, err := mID(in.ID)
		if err != nil {
			return nil, err
		}
		return nil, msv.Delete(ctx, id)
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "checkDataModel", Method: http.MethodGet, Path: "/api/v1/data-models/{id}/check", Tags: tags,
		Summary: "Re-check a model against its data source as it is now; lists the fields that broke",
		Errors:  upstreamErrors,
	}, func(ctx context.Context, in *idInput) (*checkModelOutput, error) {
		id, err := mID(in.ID)
		if err != nil {
			return nil, err
		}
		r, err := msv.Check(ctx, id)
		return &checkModelOutput{Body: r}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "queryDataModel", Method: http.MethodPost, Path: "/api/v1/data-models/{id}/query", Tags: tags,
		Summary:     "Query a model: measures by dimensions, filtered and sorted (queries:run)",
		Errors:      upstreamErrors,
		Responses:   s.runResponses(),
		Description: "Compiles to the data source's SQL dialect (identifiers quoted, values bound) and runs through its connector. ?explain=true answers {dialect, sql, params} without running. Output as for saved queries; JSON results are cached (X-DataPulse-Cache).",
	}, func(ctx context.Context, in *modelQueryInput) (*huma.StreamResponse, error) {
		id, err := mID(in.ID)
		if err != nil {
			return nil, err
		}
		if in.Explain {
			ex, err := msv.Explain(ctx, id, in.Body)
			if err != nil {
				return nil, err
			}
			return &huma.StreamResponse{Body: func(hc huma.Context) {
				hc.SetHeader("Content-Type", "application/json")
				hc.SetStatus(http.StatusOK)
				writeJSON(hc.BodyWriter(), ex)
			}}, nil
		}
		return s.runResponse(ctx, in.RunOptions, func(ctx context.Context) (queries.Batches, error) {
			return msv.Run(ctx, id, in.Body, in.options())
		}, func(ctx context.Context) (queries.Fetched, error) {
			return msv.Query(ctx, id, in.Body, datamodels.QueryOptions{Run: in.options(), Cache: in.cache()})
		})
	})
}
