package api

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/alerting"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/ent/schema/types"
)

type alertOutput struct {
	Body alerting.Alert
}

type alertPageOutput struct {
	Body paging.Page[alerting.Alert]
}

type alertBody struct {
	Metric          *string                  `json:"metric,omitempty" minLength:"1" maxLength:"100" doc:"a name people read, e.g. EU revenue (last hour)"`
	ThresholdType   *string                  `json:"threshold_type,omitempty" enum:"above,below,equal,not_equal"`
	ThresholdValue  *float64                 `json:"threshold_value,omitempty"`
	Channels        *[]alerting.ChannelInput `json:"channels,omitempty" maxItems:"20" doc:"[{type: email|webhook|slack, target, secret?}]; secrets are never returned (secret_set)"`
	Source          *types.AlertSource       `json:"source,omitempty" doc:"{model_id, measure, filters} or {query_id, column, parameters}; the value compared is the first row's"`
	IntervalSeconds *int                     `json:"interval_seconds,omitempty" minimum:"10" doc:"how often it is evaluated (default 60)"`
	ForSeconds      *int                     `json:"for_seconds,omitempty" minimum:"0" doc:"how long the condition must hold before firing (pending until then)"`
	NoDataState     *string                  `json:"no_data_state,omitempty" enum:"no_data,alerting,normal,keep_state"`
	ErrorState      *string                  `json:"error_state,omitempty" enum:"error,alerting,keep_state"`
	GroupBy         *string                  `json:"group_by,omitempty" maxLength:"255" doc:"a model dimension: one instance per value (\"\" clears)"`
	Status          *string                  `json:"status,omitempty" enum:"active,paused" doc:"paused alerts are not evaluated"`
}

func (b alertBody) input() alerting.Input {
	return alerting.Input{Metric: b.Metric, ThresholdType: b.ThresholdType, ThresholdValue: b.ThresholdValue,
		Channels: b.Channels, Source: b.Source, IntervalSeconds: b.IntervalSeconds, ForSeconds: b.ForSeconds,
		NoDataState: b.NoDataState, ErrorState: b.ErrorState, GroupBy: b.GroupBy, Status: b.Status}
}

type createAlertInput struct {
	Body alertBody
}

type updateAlertInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body alertBody
}

type listAlertsInput struct {
	ListParams
	Status string `query:"status" enum:"active,triggered,resolved,paused"`
	Owner  string `query:"owner" maxLength:"64" doc:"owner's user id (admins)"`
	Q      string `query:"q" maxLength:"255" doc:"matches the metric name"`
}

type evaluationOutput struct {
	Body alerting.Evaluation
}

type historyInput struct {
	ListParams
	ID string `path:"id" maxLength:"64"`
}

type historyOutput struct {
	Body paging.Page[alerting.Event]
}

type snoozeInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Until *time.Time `json:"until,omitempty" doc:"RFC 3339; omitted or null unsnoozes"`
	}
}

type testNotificationOutput struct {
	Body struct {
		Results []alerting.TestResult `json:"results"`
	}
}

type listNotificationsInput struct {
	ListParams
	Alert string `query:"alert" maxLength:"64" doc:"an alert id"`
	State string `query:"state" enum:"open,acknowledged,resolved"`
}

type notificationOutput struct {
	Body alerting.Notification
}

type notificationPageOutput struct {
	Body paging.Page[alerting.Notification]
}

type linkInput struct {
	Token string `path:"token" maxLength:"200"`
}

var linkPage = template.Must(template.New("link").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>DataPulse alert: {{.Metric}}</title></head>
<body>
{{if .Done}}<p>The notification for <strong>{{.Metric}}</strong> is now <strong>{{.State}}</strong>.</p>
{{else}}<p>Alert <strong>{{.Metric}}</strong>: the notification is <strong>{{.State}}</strong>.</p>
<form method="post" action=""><button type="submit">{{.Verb}} this notification</button></form>
<p>Nothing changes until you press the button.</p>{{end}}
</body></html>
`))

func (s *Server) alertRoutes() {
	asv := s.deps.Alerts
	if asv == nil {
		return
	}
	tags := []string{"alerts"}
	aID := func(raw string) (uuid.UUID, error) { return parseID(raw, "alert") }
	register(s, Authenticated, huma.Operation{
		OperationID: "createAlert", Metadata: idempotent(), Method: http.MethodPost, Path: "/api/v1/alerts", Tags: tags,
		Summary:       "Create an alert (alerts:manage); its source must be readable by you",
		DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *createAlertInput) (*alertOutput, error) {
		a, err := asv.Create(ctx, in.Body.input())
		return &alertOutput{Body: a}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "listAlerts", Method: http.MethodGet, Path: "/api/v1/alerts", Tags: tags,
		Summary: "Your alerts (admins: every alert)",
	}, func(ctx context.Context, in *listAlertsInput) (*alertPageOutput, error) {
		f := alerting.ListFilter{Status: in.Status, Q: in.Q}
		if in.Owner != "" {
			id, err := uuid.Parse(in.Owner)
			if err != nil {
				return nil, errs.Invalid("owner", "owner must be a user id")
			}
			f.Owner = id
		}
		p, err := asv.List(ctx, f, in.paging())
		return &alertPageOutput{Body: p}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "getAlert", Method: http.MethodGet, Path: "/api/v1/alerts/{id}", Tags: tags,
		Summary: "An alert (its owner or an admin)",
	}, func(ctx context.Context, in *idInput) (*alertOutput, error) {
		id, err := aID(in.ID)
		if err != nil {
			return nil, err
		}
		a, err := asv.Get(ctx, id)
		return &alertOutput{Body: a}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "updateAlert", Method: http.MethodPatch, Path: "/api/v1/alerts/{id}", Tags: tags,
		Summary: "Change an alert (its owner or an admin); status paused/active pauses and resumes",
	}, func(ctx context.Context, in *updateAlertInput) (*alertOutput, error) {
		id, err := aID(in.ID)
		if err != nil {
			return nil, err
		}
		a, err := asv.Update(ctx, id, in.Body.input())
		return &alertOutput{Body: a}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "deleteAlert", Method: http.MethodDelete, Path: "/api/v1/alerts/{id}", Tags: tags,
		Summary: "Delete an alert with its history and notifications (its owner or an admin)", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idInput) (*struct{}, error) {
		id, err := aID(in.ID)
		if err != nil {
			return nil, err
		}
		return nil, asv.Delete(ctx, id)
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "evaluateAlert", Metadata: idempotent(), Method: http.MethodPost, Path: "/api/v1/alerts/{id}/evaluate", Tags: tags,
		Summary:     "Evaluate an alert now and apply the result as a scheduled evaluation would",
		Description: "The source runs under the owner's rights. State changes are recorded in the history and notify exactly as scheduled evaluations do.",
	}, func(ctx context.Context, in *idInput) (*evaluationOutput, error) {
		id, err := aID(in.ID)
		if err != nil {
			return nil, err
		}
		ev, err := asv.Evaluate(ctx, id)
		return &evaluationOutput{Body: ev}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "alertHistory", Method: http.MethodGet, Path: "/api/v1/alerts/{id}/history", Tags: tags,
		Summary: "An alert's state changes with their values, newest first",
	}, func(ctx context.Context, in *historyInput) (*historyOutput, error) {
		id, err := aID(in.ID)
		if err != nil {
			return nil, err
		}
		p, err := asv.History(ctx, id, in.paging())
		return &historyOutput{Body: p}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "snoozeAlert", Method: http.MethodPost, Path: "/api/v1/alerts/{id}/snooze", Tags: tags,
		Summary: "Stop evaluating an alert until a time; without until, unsnooze",
	}, func(ctx context.Context, in *snoozeInput) (*alertOutput, error) {
		id, err := aID(in.ID)
		if err != nil {
			return nil, err
		}
		var until time.Time
		if in.Body.Until != nil {
			until = *in.Body.Until
		}
		a, err := asv.Snooze(ctx, id, until)
		return &alertOutput{Body: a}, err
	})
	register(s, Authenticated, huma.Operation{
		OperationID: "testAlertNotification", Metadata: idempotent(), Method: http.MethodPost, Path: "/api/v1/alerts/{id}/test-notification", Tags: tags,
		Summary: "Send a test message through each of the alert's channels; reports per channel",
	}, func(ctx context.Context, in *idInput) (*testNotificationOutput, error) {
		id, err := aID(in.ID)
		if err != nil {
			return nil, err
		}
		res, err := asv.TestNotification(ctx, id)
		out := &testNotificationOutput{}
		out.Body.Results = res
		return out, err
	})

	ntags := []string{"alert notifications"}
	nID := func(raw string) (uuid.UUID, error) { return parseID(raw, "notification") }
	register(s, Authenticated, huma.Operation{
		OperationID: "listAlertNotifications", Method: http.MethodGet, Path: "/api/v1/alert-notifications", Tags: ntags,
		Summary: "Your alert notifications (admins: every one)",
	}, func(ctx context.Context, in *listNotificationsInput) (*notificationPageOutput, error) {
		f := alerting.NotificationFilter{State: in.State}
		if in.Alert != "" {
			id, err := uuid.Parse(in.Alert)
			if err != nil {
				return nil, errs.Invalid("alert", "alert must be an alert id")
			}
			f.AlertID = id
		}
		p, err := asv.Notifications(ctx, f, in.paging())
		return &notificationPageOutput{Body: p}, err
	})
	for _, action := range []string{alerting.ActionAcknowledge, alerting.ActionResolve} {
		summary := "Acknowledge a notification (its recipient, the alert's owner or an admin)"
		op := "acknowledgeAlertNotification"
		if action == alerting.ActionResolve {
			summary = "Resolve a notification by hand (its recipient, the alert's owner or an admin)"
			op = "resolveAlertNotification"
		}
		register(s, Authenticated, huma.Operation{
			OperationID: op, Method: http.MethodPost, Path: "/api/v1/alert-notifications/{id}/" + action, Tags: ntags,
			Summary: summary,
		}, func(ctx context.Context, in *idInput) (*notificationOutput, error) {
			id, err := nID(in.ID)
			if err != nil {
				return nil, err
			}
			var n alerting.Notification
			if action == alerting.ActionAcknowledge {
				n, err = asv.Acknowledge(ctx, id)
			} else {
				n, err = asv.Resolve(ctx, id)
			}
			return &notificationOutput{Body: n}, err
		})
	}
	page := func(t alerting.LinkTarget, done bool) *huma.StreamResponse {
		verb := "Acknowledge"
		if t.Link.Action == alerting.ActionResolve {
			verb = "Resolve"
		}
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			hc.SetHeader("Content-Type", "text/html; charset=utf-8")
			hc.SetHeader("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
			hc.SetStatus(http.StatusOK)
			linkPage.Execute(hc.BodyWriter(), map[string]any{ //nolint:errcheck // the client went away
				"Metric": t.Metric, "State": t.Notification.State, "Verb": verb, "Done": done})
		}}
	}
	register(s, Public, huma.Operation{
		OperationID: "showAlertLink", Method: http.MethodGet, Path: "/api/v1/alert-links/{token}", Tags: ntags,
		Summary:     "One-click link from a notification message: a confirmation page (changes nothing)",
		Description: "Signed, expiring and bound to one notification and its recipient. A GET (e.g. a mail scanner prefetching the link) only shows what the button would do.",
	}, func(ctx context.Context, in *linkInput) (*huma.StreamResponse, error) {
		t, err := asv.InspectLink(ctx, in.Token)
		if err != nil {
			return nil, err
		}
		return page(t, false), nil
	})
	register(s, Public, huma.Operation{
		OperationID: "applyAlertLink", Method: http.MethodPost, Path: "/api/v1/alert-links/{token}", Tags: ntags,
		Summary: "One-click link: apply its action (acknowledge or resolve) as the notification's recipient",
	}, func(ctx context.Context, in *linkInput) (*huma.StreamResponse, error) {
		t, err := asv.ApplyLink(ctx, in.Token)
		if err != nil {
			return nil, err
		}
		return page(t, true), nil
	})
}
