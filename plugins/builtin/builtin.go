// Package builtin registers DataPulse's first-party connectors. The binary
// serves one of them with `datapulse plugin serve <name>`:
//
//	factory, ok := builtin.Connectors[name]
//	if !ok { ... }
//	sdk.Serve(factory())
//
// Each connector is written only against plugins/sdk, like a third-party one.
//
// Environment the host should set for built-in connectors (go-plugin passes
// no other environment when SkipHostEnv is set):
//
//	DATAPULSE_FORBIDDEN_PATHS  files and directories the file-based
//	                           connectors (sqlite, csv) must never read:
//	                           DataPulse's data directory at least
//	                           (':'-separated on Unix).
//	DATAPULSE_FORBIDDEN_DATABASES  databases the database connectors
//	                           (postgres) must never connect to: DataPulse's
//	                           own metadata database on PostgreSQL (a JSON
//	                           array of plugins/host.ForbiddenDatabase).
//
// `datapulse plugin serve` sets both from its --forbidden-path and
// --forbidden-database flags, which the host passes.
package builtin

import (
	"sort"

	"github.com/datapulse/datapulse/plugins/builtin/csv"
	"github.com/datapulse/datapulse/plugins/builtin/mysql"
	"github.com/datapulse/datapulse/plugins/builtin/postgres"
	"github.com/datapulse/datapulse/plugins/builtin/sqlite"
	"github.com/datapulse/datapulse/plugins/sdk"
)

// Connectors maps a connector name to its constructor.
var Connectors = map[string]func() sdk.Connector{
	"postgres": postgres.New,
	"mysql":    mysql.New,
	"sqlite":   sqlite.New,
	"csv":      csv.New,
}

// Names returns the registered connector names, sorted.
func Names() []string {
	out := make([]string, 0, len(Connectors))
	for n := range Connectors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
