package datasources_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/plugins/host"
)

// A12d/A13: what a connector reports is mapped to whose fault it is, and
// neither Go internals nor the database server's FATAL text reach the client.
func TestConnectorErrorMapping(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		kind   error
		field  string
		want   string
		banned []string
	}{
		{"driver cannot encode a parameter (was a 502 with Go internals)",
			&host.ConnectorError{Connector: "postgres", Op: "query", Code: codes.Unknown,
				Message: "failed to encode args[1]: unable to encode []*string{(*string)(0xc000fe45a0)} into binary format for _int8 (OID 1016): cannot find encode plan"},
			errs.ErrInvalid, "parameters", "parameter 2", []string{"0x", "*string", "OID"}},
		{"server shutting down (was a 503 with the FATAL line)",
			&host.ConnectorError{Connector: "postgres", Op: "query", Code: codes.Unavailable,
				Message: "FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"},
			errs.ErrUnavailable, "", "unreachable", []string{"FATAL", "SQLSTATE", "administrator"}},
		{"authentication failed",
			&host.ConnectorError{Connector: "postgres", Op: "query", Code: codes.PermissionDenied,
				Message: "failed to connect to `user=bob database=sales`: 10.0.0.5:5432 (db): server error: FATAL: password authentication failed for user \"bob\" (SQLSTATE 28P01)"},
			errs.ErrUpstream, "", "refused the connection", []string{"FATAL", "bob", "sales", "10.0.0.5"}},
		{"a value the protocol cannot carry (was a 500)",
			fmt.Errorf("%w: parameter 2: unsupported type map[string]interface {}", host.ErrInvalidParameter),
			errs.ErrInvalid, "parameters", "parameter 2", nil},
		{"an ordinary SQL error keeps its message",
			&host.ConnectorError{Connector: "postgres", Op: "query", Code: codes.InvalidArgument, Message: "ERROR: column \"x\" does not exist (SQLSTATE 42703)"},
			errs.ErrInvalid, "sql", "column \"x\" does not exist", nil},
	}
	for _, c := range cases {
		got := datasources.ConnectorError(c.err)
		if !errors.Is(got, c.kind) {
			t.Errorf("%s: %v is not %v", c.name, got, c.kind)
			continue
		}
		var de *errs.Error
		if !errors.As(got, &de) {
			t.Errorf("%s: %T is not a domain error", c.name, got)
			continue
		}
		if de.Field != c.field || !strings.Contains(de.Message, c.want) {
			t.Errorf("%s: field %q message %q (want field %q, message with %q)", c.name, de.Field, de.Message, c.field, c.want)
		}
		for _, b := range c.banned {
			if strings.Contains(de.Message, b) {
				t.Errorf("%s: message %q contains %q", c.name, de.Message, b)
			}
		}
	}
}
