// Package errs holds the kinds of failure domain services report. Services
// wrap them (fmt.Errorf("…: %w", errs.ErrNotFound) or the constructors here);
// core/api maps each kind to one HTTP status, in one place.
package errs

import (
	"errors"
	"time"
)

// Kinds of failure.
var (
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrInvalid         = errors.New("invalid input")
	ErrUnauthenticated = errors.New("authentication required")
	ErrForbidden       = errors.New("forbidden")
	ErrRateLimited     = errors.New("too many requests")
	// ErrUpstream: a connector or the database behind it failed (bad
	// gateway); the message is the connector's, with secrets removed.
	ErrUpstream = errors.New("upstream failure")
	// ErrUpstreamTimeout: a connector did not answer in time.
	ErrUpstreamTimeout = errors.New("upstream timeout")
	// ErrUnavailable: a dependency is temporarily unavailable.
	ErrUnavailable = errors.New("unavailable")
)

// Error is a failure with a message meant for the API client.
type Error struct {
	Kind    error
	Message string
	// Field names the input field at fault, for ErrInvalid.
	Field string
	// RetryAfter is set for ErrRateLimited.
	RetryAfter time.Duration
	// Fields lists every field at fault when there are several (ErrInvalid).
	Fields []FieldError
}

// FieldError is one input field at fault.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// InvalidFields says several fields are wrong.
func InvalidFields(msg string, fields []FieldError) error {
	return &Error{Kind: ErrInvalid, Message: msg, Fields: fields}
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// NotFound says the named thing does not exist (or is hidden from the caller).
func NotFound(what string) error { return &Error{Kind: ErrNotFound, Message: what + " not found"} }

// Conflict says the request clashes with the current state.
func Conflict(msg string) error { return &Error{Kind: ErrConflict, Message: msg} }

// Invalid says one input field is wrong.
func Invalid(field, msg string) error { return &Error{Kind: ErrInvalid, Field: field, Message: msg} }

// Forbidden says the caller may not do this.
func Forbidden(msg string) error { return &Error{Kind: ErrForbidden, Message: msg} }

// Unauthenticated says credentials are missing, wrong or expired.
func Unauthenticated(msg string) error { return &Error{Kind: ErrUnauthenticated, Message: msg} }

// Upstream wraps a connector failure with a message for the client.
func Upstream(msg string) error { return &Error{Kind: ErrUpstream, Message: msg} }

// UpstreamTimeout says a connector did not answer in time.
func UpstreamTimeout(msg string) error { return &Error{Kind: ErrUpstreamTimeout, Message: msg} }

// Unavailable says to try again later.
func Unavailable(msg string) error { return &Error{Kind: ErrUnavailable, Message: msg} }

// RateLimited says to slow down and when to try again.
func RateLimited(msg string, retryAfter time.Duration) error {
	return &Error{Kind: ErrRateLimited, Message: msg, RetryAfter: retryAfter}
}
