package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code classifies an error for the host (and, through it, the user).
type Code int

const (
	// CodeUnknown: anything not classified.
	CodeUnknown Code = iota
	// CodeInvalidArgument: the user's input is wrong (bad SQL, a bad
	// parameter, a bad configuration).
	CodeInvalidArgument
	// CodeNotFound: a table, file or namespace does not exist.
	CodeNotFound
	// CodePermissionDenied: the source refused (a write on a read-only
	// connection, a forbidden file, bad credentials).
	CodePermissionDenied
	// CodeUnavailable: the source cannot be reached; retrying may help.
	CodeUnavailable
	// CodeResourceExhausted: a size limit of the connector was hit.
	CodeResourceExhausted
	// CodeUnimplemented: the connector does not support this.
	CodeUnimplemented
	// CodeInternal: a bug in the connector.
	CodeInternal
)

var codeNames = map[Code]string{
	CodeUnknown:           "unknown",
	CodeInvalidArgument:   "invalid argument",
	CodeNotFound:          "not found",
	CodePermissionDenied:  "permission denied",
	CodeUnavailable:       "unavailable",
	CodeResourceExhausted: "resource exhausted",
	CodeUnimplemented:     "unimplemented",
	CodeInternal:          "internal",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", int(c))
}

func (c Code) grpc() codes.Code {
	switch c {
	case CodeInvalidArgument:
		return codes.InvalidArgument
	case CodeNotFound:
		return codes.NotFound
	case CodePermissionDenied:
		return codes.PermissionDenied
	case CodeUnavailable:
		return codes.Unavailable
	case CodeResourceExhausted:
		return codes.ResourceExhausted
	case CodeUnimplemented:
		return codes.Unimplemented
	case CodeInternal:
		return codes.Internal
	}
	return codes.Unknown
}

// Error is an error with a Code. Its message reaches the user: say what went
// wrong in terms of the user's input, and never include credentials.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns Message, or the wrapped error's message when Message is
// empty.
func (e *Error) Error() string {
	if e.Message == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code; %w wraps as in fmt.Errorf.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// WithCode wraps err with a code, keeping its message. It returns nil for nil.
func WithCode(code Code, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, else
// CodeUnknown.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeUnknown
}

// minScrubLen is the shortest secret value removed from messages: shorter
// ones are ordinary words ("admin", "test") whose removal would mangle
// ordinary text; the host applies the same bound (plugins/host).
const minScrubLen = 8

const redacted = "[redacted]"

// scrub removes secret values (and their URL-escaped forms) from msg.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if len(form) >= minScrubLen && strings.Contains(msg, form) {
				msg = strings.ReplaceAll(msg, form, redacted)
			}
		}
	}
	return msg
}

// toStatus turns a connector's error into the gRPC status the host sees.
// ctx is the call's context: when the host cancelled the call or its
// deadline passed, that is what the status says, whatever error the source
// returned on the way out.
func toStatus(ctx context.Context, err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := scrub(err.Error(), secrets)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded: "+msg)
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled: "+msg)
	}
	var e *Error
	if errors.As(err, &e) {
		return status.Error(e.Code.grpc(), msg)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return status.Error(st.Code(), scrub(st.Message(), secrets))
	}
	return status.Error(codes.Unknown, msg)
}
