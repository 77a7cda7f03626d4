package host

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
)

// Sentinel errors. Every error the host returns for a connector problem wraps
// exactly one of these (errors.Is), with a message that names the connector
// and never contains a data source's secrets.
var (
	// ErrUnknownConnector: no builtin or installed connector has that name.
	ErrUnknownConnector = errors.New("unknown connector")
	// ErrConnectorDisabled: the connector was refused (bad manifest, checksum
	// mismatch, unsupported protocol version, unsafe file permissions) and is
	// never started.
	ErrConnectorDisabled = errors.New("connector disabled")
	// ErrConnectorStart: the process could not be started or did not complete
	// the handshake (garbage on stdout, start timeout, wrong protocol).
	ErrConnectorStart = errors.New("connector failed to start")
	// ErrConnectorCrashed: the process died while the call was in flight. The
	// next call restarts it (after backoff).
	ErrConnectorCrashed = errors.New("connector crashed")
	// ErrConnectorTimeout: the call hit its deadline.
	ErrConnectorTimeout = errors.New("connector timed out")
	// ErrConnectorUnavailable: the crash-loop breaker is open, the connector is
	// waiting to be restarted, or the host is shutting down.
	ErrConnectorUnavailable = errors.New("connector unavailable")
	// ErrResultTooLarge: a single message exceeded the gRPC limit (64 MiB) or
	// the first batch alone exceeded the byte cap.
	ErrResultTooLarge = errors.New("connector result too large")
	// ErrProtocol: the connector broke the protocol (no schema, malformed
	// Arrow IPC, a batch that does not match the schema, a missing or
	// misplaced trailer, an invalid Describe answer).
	ErrProtocol = errors.New("connector protocol violation")
	// ErrInvalidParameter: a query parameter has a type the protocol cannot carry.
	ErrInvalidParameter = errors.New("invalid query parameter")
)

// ConnectorError is an error the connector itself returned (a gRPC status
// from its handler): bad SQL, authentication failure, database down. Message
// is the connector's text with the data source's secret values redacted.
type ConnectorError struct {
	Connector string
	Op        string     // "query", "check_health", …
	Code      codes.Code // the gRPC status code the connector chose
	Message   string
}

func (e *ConnectorError) Error() string {
	return fmt.Sprintf("connector %q %s: %s", e.Connector, e.Op, e.Message)
}

const maxMessageLen = 2048

// minRedactLen is the shortest secret value redact removes. Shorter values
// (a password "admin", a token "test") are ordinary words: replacing them
// everywhere would rewrite messages ("[redacted]istrator") while hiding
// nothing an attacker could not guess.
const minRedactLen = 8

// redact removes every secret value from a connector-provided message and
// bounds its length. Values shorter than minRedactLen are left alone.
func redact(msg string, secrets map[string]string) string {
	if len(secrets) > 0 {
		vals := make([]string, 0, len(secrets))
		for _, v := range secrets {
			if len(v) >= minRedactLen {
				vals = append(vals, v)
			}
		}
		// Longest first, so a secret that contains another is removed whole.
		sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
		for _, v := range vals {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen] + "…"
	}
	return strings.ToValidUTF8(msg, "?")
}

func protoErr(name, format string, args ...any) error {
	return fmt.Errorf("%w: connector %q: %s", ErrProtocol, name, fmt.Sprintf(format, args...))
}
