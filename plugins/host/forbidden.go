package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ForbiddenDatabaseFlag is appended to a builtin's command line once per
// forbidden database, its value a ForbiddenDatabase as JSON:
// `<exe> plugin serve postgres --forbidden-database={"kind":"postgres",…}`.
// The `plugin serve` command hands the list to the builtin connectors that
// connect to databases (postgres) in DATAPULSE_FORBIDDEN_DATABASES.
const ForbiddenDatabaseFlag = "--forbidden-database"

// ForbiddenDatabase identifies a database the builtin connectors must never
// connect to: DataPulse's own metadata database. A connector refuses a data
// source whose host, port and database name name it (before connecting), or
// whose connection turns out to reach it (after connecting: the cluster's
// system identifier and the database's OID; where the login may not read
// the system identifier, the server address and port the connection reached
// and the database name).
type ForbiddenDatabase struct {
	// Kind is the database system: "postgres".
	Kind string `json:"kind"`
	// Hosts are the host names and IP addresses it is reached at (Unix
	// sockets left out), Port its port and Database its name.
	Hosts    []string `json:"hosts,omitempty"`
	Port     int      `json:"port,omitempty"`
	Database string   `json:"database"`
	// SystemIdentifier is pg_control_system().system_identifier (empty if
	// DataPulse's own login may not read it) and DatabaseOID the database's
	// OID in pg_database.
	SystemIdentifier string `json:"system_identifier,omitempty"`
	DatabaseOID      uint32 `json:"database_oid,omitempty"`
	// ServerAddr and ServerPort are inet_server_addr() and
	// inet_server_port() on DataPulse's own connection (empty over a Unix
	// socket).
	ServerAddr string `json:"server_addr,omitempty"`
	ServerPort int    `json:"server_port,omitempty"`
}

// PostgresIdentity identifies the PostgreSQL database that db (opened from
// url, DataPulse's DATAPULSE_DATABASE_URL) is connected to, for
// Options.ForbiddenDatabases.
func PostgresIdentity(ctx context.Context, db *sql.DB, url string) (ForbiddenDatabase, error) {
	id := ForbiddenDatabase{Kind: "postgres"}
	pc, err := pgconn.ParseConfig(url)
	if err != nil {
		// The message of a parse error can carry the URL (and its password).
		return id, errors.New("plugins host: cannot parse the metadata database URL")
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seen := map[string]bool{}
	addHost := func(h string) {
		if h == "" || strings.HasPrefix(h, "/") || seen[strings.ToLower(h)] {
			return
		}
		seen[strings.ToLower(h)] = true
		id.Hosts = append(id.Hosts, strings.ToLower(h))
		if net.ParseIP(h) == nil {
			if addrs, err := net.DefaultResolver.LookupHost(rctx, h); err == nil {
				for _, a := range addrs {
					if !seen[a] {
						seen[a] = true
						id.Hosts = append(id.Hosts, a)
					}
				}
			}
		}
	}
	addHost(pc.Host)
	id.Port = int(pc.Port)
	for _, f := range pc.Fallbacks {
		addHost(f.Host)
	}
	var addr sql.NullString
	var port sql.NullInt64
	var oid int64
	if err := db.QueryRowContext(rctx, `SELECT current_database(), d.oid::int8, host(inet_server_addr()), inet_server_port()
		FROM pg_database d WHERE d.datname = current_database()`).Scan(&id.Database, &oid, &addr, &port); err != nil {
		return id, fmt.Errorf("plugins host: identify the metadata database: %w", err)
	}
	id.DatabaseOID, id.ServerAddr, id.ServerPort = uint32(oid), addr.String, int(port.Int64)
	// pg_control_system() is executable by every role unless an
	// administrator revoked it; without it the other fields must do.
	var sysid sql.NullString
	if err := db.QueryRowContext(rctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&sysid); err == nil {
		id.SystemIdentifier = sysid.String
	}
	return id, nil
}

func (f ForbiddenDatabase) flag() (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	return ForbiddenDatabaseFlag + "=" + string(b), nil
}

// String names the database in messages.
func (f ForbiddenDatabase) String() string {
	return f.Kind + " database " + strconv.Quote(f.Database)
}
