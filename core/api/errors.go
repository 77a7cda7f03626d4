package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/lograte"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
)

// retryAfterUnavailable is the Retry-After (seconds) of a 503 that does not
// say otherwise: a database or data source that restarts is usually back
// within seconds.
const retryAfterUnavailable = 2

// databaseUnavailable is the answer to a request that failed because the
// metadata database could not be used (store.IsUnavailable); the cause is
// in the server log, never in the answer.
const databaseUnavailable = "the database is unavailable; try again shortly"

// ErrorBody is the one error envelope of the API:
// {"error": {"code", "message", "details", "request_id"}}.
type ErrorBody struct {
	Err    ErrorInfo `json:"error"`
	status int
	// retryAfter is sent as Retry-After (429, 503).
	retryAfter int
}

// ErrorInfo describes one failure.
type ErrorInfo struct {
	Code      string         `json:"code" example:"not_found" doc:"machine-readable error code"`
	Message   string         `json:"message" doc:"human-readable explanation"`
	Details   map[string]any `json:"details,omitempty" doc:"structured details, e.g. the fields at fault"`
	RequestID string         `json:"request_id,omitempty"`
}

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *ErrorBody) Error() string             { return e.Err.Message }
func (e *ErrorBody) GetStatus() int            { return e.status }
func (e *ErrorBody) ContentType(string) string { return "application/json" }
func (e *ErrorBody) GetHeaders() http.Header {
	if e.retryAfter > 0 {
		return http.Header{"Retry-After": []string{strconv.Itoa(e.retryAfter)}}
	}
	return nil
}

var codes = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "unauthenticated",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusNotAcceptable:         "not_acceptable",
	http.StatusRequestTimeout:        "timeout",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "payload_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "unprocessable",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusInternalServerError:   "internal",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusGatewayTimeout:        "timeout",
}

func newError(status int, code, msg string) *ErrorBody {
	if code == "" {
		code = codes[status]
		if code == "" {
			code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
		}
	}
	return &ErrorBody{Err: ErrorInfo{Code: code, Message: msg}, status: status}
}

// fromDomain maps a domain error to the envelope; ok is false for errors that
// are not the client's business (they become a 500 without details).
func fromDomain(err error) (*ErrorBody, bool) {
	var de *errs.Error
	msg := ""
	if errors.As(err, &de) {
		msg = de.Message
	}
	kind := func(status int, code, fallback string) *ErrorBody {
		if msg == "" {
			msg = fallback
		}
		return newError(status, code, msg)
	}
	switch {
	case errors.Is(err, errs.ErrInvalid):
		e := kind(http.StatusBadRequest, "validation_failed", "invalid input")
		switch {
		case de != nil && len(de.Fields) > 0:
			fields := make([]FieldError, len(de.Fields))
			for i, f := range de.Fields {
				fields[i] = FieldError{Field: f.Field, Message: f.Message}
			}
			e.Err.Details = map[string]any{"fields": fields}
		case de != nil && de.Field != "":
			e.Err.Details = map[string]any{"fields": []FieldError{{Field: de.Field, Message: de.Message}}}
		}
		return e, true
	case errors.Is(err, errs.ErrNotFound):
		return kind(http.StatusNotFound, "not_found", "not found"), true
	case ent.IsValidationError(err):
		// A value the API let through but a column's validator refuses
		// (the API's own limits should catch it first).
		var ve *ent.ValidationError
		errors.As(err, &ve)
		e := newError(http.StatusBadRequest, "validation_failed", ve.Name+" is invalid (too long or empty)")
		e.Err.Details = map[string]any{"fields": []FieldError{{Field: ve.Name, Message: e.Err.Message}}}
		return e, true
	case errors.Is(err, errs.ErrConflict):
		return kind(http.StatusConflict, "conflict", "conflict"), true
	case errors.Is(err, errs.ErrUnauthenticated):
		return kind(http.StatusUnauthorized, "unauthenticated", "authentication required"), true
	case errors.Is(err, errs.ErrForbidden):
		return kind(http.StatusForbidden, "forbidden", "forbidden"), true
	case errors.Is(err, errs.ErrUpstream):
		return kind(http.StatusBadGateway, "upstream_error", "the data source failed"), true
	case errors.Is(err, errs.ErrUpstreamTimeout):
		return kind(http.StatusGatewayTimeout, "upstream_timeout", "the data source did not answer in time"), true
	case errors.Is(err, errs.ErrUnavailable):
		e := kind(http.StatusServiceUnavailable, "unavailable", "temporarily unavailable; try again later")
		e.retryAfter = retryAfterUnavailable
		if de != nil && de.RetryAfter > 0 {
			e.retryAfter = int(de.RetryAfter.Seconds() + 0.999)
		}
		return e, true
	case store.IsUnavailable(err):
		e := newError(http.StatusServiceUnavailable, "unavailable", databaseUnavailable)
		e.retryAfter = retryAfterUnavailable
		return e, true
	case errors.Is(err, errs.ErrRateLimited):
		e := kind(http.StatusTooManyRequests, "rate_limited", "too many requests")
		if de != nil && de.RetryAfter > 0 {
			e.retryAfter = int(de.RetryAfter.Seconds() + 0.999)
		}
		return e, true
	}
	return nil, false
}

// installErrorModel makes huma produce our envelope for every error it
// reports (validation, body limits, handler errors), mapping domain errors to
// their HTTP status in this one place.
func installErrorModel(log *lograte.Limiter) {
	huma.NewError = func(status int, msg string, es ...error) huma.StatusError {
		return humaError(nil, log, status, msg, es...)
	}
	huma.NewErrorWithContext = func(ctx huma.Context, status int, msg string, es ...error) huma.StatusError {
		return humaError(ctx, log, status, msg, es...)
	}
}

// logFailure logs a request that failed on the server's side: a database
// outage at warn, anything else unexpected at error. Repeated failures of
// one kind (the outage; the same error on the same route) are logged once
// and then counted per interval, so an outage under load costs a few lines,
// not one per request; the access log still has every request.
func logFailure(ctx context.Context, log *lograte.Limiter, err error, requestID, route string) {
	if ctx == nil {
		ctx = context.Background()
	}
	if store.IsUnavailable(err) {
		log.Log(ctx, slog.LevelWarn, "database unavailable", "database unavailable; answering 503",
			slog.Any("error", err), slog.String("request_id", requestID), slog.String("route", route))
		return
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	log.Log(ctx, slog.LevelError, "request failed\x00"+route+"\x00"+msg, "request failed",
		slog.Any("error", err), slog.String("request_id", requestID), slog.String("route", route))
}

func humaError(ctx huma.Context, log *lograte.Limiter, status int, msg string, es ...error) huma.StatusError {
	var e *ErrorBody
	switch {
	case status == http.StatusInternalServerError && len(es) == 1:
		de, ok := fromDomain(es[0])
		if ok {
			e = de
		} else {
			e = newError(http.StatusInternalServerError, "internal", "internal error; quote the request id when reporting it")
		}
		if ok && !store.IsUnavailable(es[0]) {
			break // the client's or a data source's failure: nothing to log
		}
		if ctx != nil {
			logFailure(ctx.Context(), log, es[0], requestIDOf(humafiber.Unwrap(ctx)), ctx.Operation().Path)
		} else {
			logFailure(nil, log, es[0], "", "")
		}
	case status == http.StatusUnprocessableEntity || status == http.StatusBadRequest:
		// Schema validation and malformed JSON are both the client's input.
		e = newError(http.StatusBadRequest, "validation_failed", validationMessage(msg))
		var fields []FieldError
		for _, err := range es {
			var d *huma.ErrorDetail
			if errors.As(err, &d) {
				// The offending value is left out: it may be a password.
				fields = append(fields, FieldError{Field: strings.TrimPrefix(d.Location, "body."), Message: d.Message})
			} else if err != nil {
				fields = append(fields, FieldError{Message: err.Error()})
			}
		}
		if len(fields) > 0 {
			e.Err.Details = map[string]any{"fields": fields}
		}
	case status == http.StatusUnsupportedMediaType:
		e = newError(status, "", "send the request body as JSON with Content-Type: application/json")
	default:
		e = newError(status, "", msg)
		if status == http.StatusServiceUnavailable {
			e.retryAfter = retryAfterUnavailable
		}
	}
	if ctx != nil {
		e.Err.RequestID = requestIDOf(humafiber.Unwrap(ctx))
		if e.retryAfter > 0 {
			// huma applies headers only of errors the handler returned itself.
			ctx.SetHeader("Retry-After", strconv.Itoa(e.retryAfter))
		}
	}
	return e
}

func validationMessage(msg string) string {
	if msg == "" || msg == "validation failed" {
		return "the request is invalid; see details"
	}
	return msg
}

// fiberErrorHandler renders errors raised outside huma (unknown routes, 405,
// body too large at the server, panics) in the same envelope.
func fiberErrorHandler(log *lograte.Limiter, methods *methodIndex) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var fe *fiber.Error
		var body *ErrorBody
		switch {
		case errors.As(err, &body):
		case errors.As(err, &fe):
			msg := fe.Message
			switch fe.Code {
			case http.StatusNotFound:
				msg = "no such route: " + c.Method() + " " + c.Path()
			case http.StatusMethodNotAllowed:
				msg = "method " + c.Method() + " is not allowed on " + c.Path()
				if allow := methods.allowed(c.Path()); len(allow) > 0 {
					c.Set("Allow", strings.Join(allow, ", "))
				}
			case http.StatusRequestEntityTooLarge:
				msg = "request body is too large"
			}
			body = newError(fe.Code, "", msg)
		default:
			de, ok := fromDomain(err)
			if ok {
				body = de
			} else {
				body = newError(http.StatusInternalServerError, "internal", "internal error; quote the request id when reporting it")
			}
			if !ok || store.IsUnavailable(err) {
				route, _ := c.Locals(routeKey{}).(string)
				if route == "" {
					route = c.Path()
				}
				logFailure(c.UserContext(), log, err, requestIDOf(c), route)
			}
		}
		id := requestIDOf(c)
		if id == "" {
			// Rejected before any middleware ran (e.g. by the server's body limit).
			id = uuid.Must(uuid.NewV7()).String()
			c.Set(requestIDHeader, id)
		}
		body.Err.RequestID = id
		if body.retryAfter > 0 {
			c.Set("Retry-After", strconv.Itoa(body.retryAfter))
		}
		return c.Status(body.status).JSON(body)
	}
}
