// Package dbguard keeps database connectors away from databases DataPulse
// forbids: its own metadata database.
package dbguard

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
)

// Env holds the forbidden databases as a JSON array of Database. The
// `plugin serve` command sets it from the host's --forbidden-database flags
// (plugins/host.ForbiddenDatabase is the same JSON).
const Env = "DATAPULSE_FORBIDDEN_DATABASES"

// Database identifies a forbidden database; see plugins/host.ForbiddenDatabase.
type Database struct {
	Kind             string   `json:"kind"`
	Hosts            []string `json:"hosts"`
	Port             int      `json:"port"`
	Database         string   `json:"database"`
	SystemIdentifier string   `json:"system_identifier"`
	DatabaseOID      uint32   `json:"database_oid"`
	ServerAddr       string   `json:"server_addr"`
	ServerPort       int      `json:"server_port"`
}

// ErrForbidden is the refusal; its message is shown to the user.
var ErrForbidden = errors.New("this is DataPulse's own metadata database, which cannot be a data source")

// FromEnv returns the forbidden databases of kind in the environment. A
// value that does not parse is an error: the connector must then refuse to
// connect anywhere rather than guard nothing.
func FromEnv(kind string) ([]Database, error) {
	raw := os.Getenv(Env)
	if raw == "" {
		return nil, nil
	}
	var all []Database
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		return nil, errors.New(Env + " is not a JSON array of databases")
	}
	var out []Database
	for _, d := range all {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out, nil
}

// Named reports whether host, port and database name one of the forbidden
// databases: the same database name and port, and the host the same name
// (case-insensitive) or one of its addresses equal to one of theirs. addrs
// are host's resolved addresses (the caller resolves it once).
func Named(forbidden []Database, host string, addrs []string, port int, database string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	for _, f := range forbidden {
		if f.Port != port || f.Database != database {
			continue
		}
		for _, h := range f.Hosts {
			if strings.EqualFold(h, host) {
				return true
			}
			hip := net.ParseIP(h)
			for _, a := range append([]string{host}, addrs...) {
				if ip := net.ParseIP(a); ip != nil && hip != nil && ip.Equal(hip) {
					return true
				}
			}
		}
	}
	return false
}

// Identity is what a connection reports about the database it reached.
type Identity struct {
	SystemIdentifier string // empty when the login may not read it
	DatabaseOID      uint32
	Database         string
	ServerAddr       string // empty over a Unix socket
	ServerPort       int
}

// Reached reports whether a connection that reports id reached one of the
// forbidden databases. With the system identifier known on both sides it
// decides (with the database's OID); otherwise the database name and the
// server address and port the connection arrived at must match.
func Reached(forbidden []Database, id Identity) bool {
	for _, f := range forbidden {
		if f.SystemIdentifier != "" && id.SystemIdentifier != "" {
			if f.SystemIdentifier == id.SystemIdentifier && f.DatabaseOID == id.DatabaseOID {
				return true
			}
			continue
		}
		if f.Database != id.Database {
			continue
		}
		if f.ServerAddr != "" && id.ServerAddr != "" && f.ServerPort == id.ServerPort {
			a, b := net.ParseIP(f.ServerAddr), net.ParseIP(id.ServerAddr)
			if a != nil && b != nil && a.Equal(b) {
				return true
			}
		}
	}
	return false
}
