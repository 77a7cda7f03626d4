package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/plugins/host"
)

type connectorView struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Version     string `json:"version"`
	SDKVersion  string `json:"sdk_version,omitempty" doc:"version of the connector SDK it is built on, as it reports it"`
	Builtin     bool   `json:"builtin"`
	Status      string `json:"status" enum:"ready,starting,crashed,unavailable,disabled,stopped" doc:"ready; starting; crashed (failing: retried on the next call after a backoff); unavailable (paused after repeated failures until retry_at); disabled (refused: manifest, checksum, version range); stopped (not started yet)"`
	// StatusReason says why a connector is not ready.
	StatusReason string         `json:"status_reason,omitempty" doc:"why it is not ready, and what happens next"`
	LastError    string         `json:"last_error,omitempty" doc:"the last start failure, crash, hang or refusal (kept after recovery)"`
	Crashes      int            `json:"crashes" doc:"failures since the server started"`
	RetryAt      *time.Time     `json:"retry_at,omitempty" doc:"when a failing, paused or checksum-refused connector is tried again"`
	SQLDialect   string         `json:"sql_dialect"`
	Capabilities []string       `json:"capabilities"`
	ConfigSchema map[string]any `json:"config_schema,omitempty"`
}

type connectorsOutput struct {
	Body struct {
		Items []connectorView `json:"items"`
	}
}

type connectorOutput struct {
	Body connectorView
}

type connectorNameInput struct {
	Name string `path:"name" maxLength:"63"`
}

func toConnectorView(c host.ConnectorInfo) connectorView {
	v := connectorView{Name: c.Name, DisplayName: c.DisplayName, Version: c.Version, SDKVersion: c.SDKVersion,
		Builtin: c.Builtin, Status: c.Status, StatusReason: c.Reason, LastError: c.LastError, Crashes: c.Crashes,
		SQLDialect: c.SQLDialect, Capabilities: c.Capabilities}
	if !c.RetryAt.IsZero() {
		t := c.RetryAt.UTC()
		v.RetryAt = &t
	}
	if v.Capabilities == nil {
		v.Capabilities = []string{}
	}
	if len(c.ConfigSchema) > 0 {
		_ = jsonUnmarshal(c.ConfigSchema, &v.ConfigSchema)
	}
	return v
}

func (s *Server) connectorRoutes() {
	hst := s.deps.Connectors
	tags := []string{"connectors"}
	register(s, Authenticated, huma.Operation{
		OperationID: "listConnectors", Method: http.MethodGet, Path: "/api/v1/connectors", Tags: tags,
		Summary:     "Available connectors with their config schema and status",
		Description: "Answered from each connector's state: a connector still starting, failing or refused is listed with its status and the reason, without delaying the answer.",
	}, func(ctx context.Context, _ *struct{}) (*connectorsOutput, error) {
		out := &connectorsOutput{}
		out.Body.Items = []connectorView{}
		for _, c := range hst.Connectors(ctx) {
			out.Body.Items = append(out.Body.Items, toConnectorView(c))
		}
		return out, nil
	})
	register(s, Admin, huma.Operation{
		OperationID: "reloadConnector", Method: http.MethodPost, Path: "/api/v1/connectors/{name}/reload", Tags: tags,
		Summary: "Restart or re-enable a connector (instance administrators)",
		Description: "Stops the connector's process, forgets its failures and crash-loop pause, reads a third-party connector's manifest again " +
			"(checksum and DataPulse version range included) and starts it. Queries in flight on the old process fail. " +
			"The answer is the connector's new state: a refused manifest is `disabled` with the reason.",
	}, func(ctx context.Context, in *connectorNameInput) (*connectorOutput, error) {
		info, err := hst.Reload(ctx, in.Name)
		switch {
		case errors.Is(err, host.ErrUnknownConnector):
			return nil, errs.NotFound("connector")
		case err != nil && info.Name == "":
			return nil, datasources.ConnectorError(err)
		}
		// A start that failed is in the state (status, last_error).
		return &connectorOutput{Body: toConnectorView(info)}, nil
	})
}
