package sdk

import "regexp"

// NamePattern is the rule for a connector's name, shared by the host (the
// manifest's "name", the plugin directory's name, builtin names) and by
// sdktest: lower case letters, digits, '-' and '_', starting with a letter
// or a digit, at most 63 characters.
const NamePattern = `^[a-z0-9][a-z0-9_-]{0,62}$`

var nameRE = regexp.MustCompile(NamePattern)

// ValidName reports whether name is a valid connector name (NamePattern).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// SQL dialects DataPulse's data-model compiler writes SQL for. A connector
// whose query language is (a superset of) one of them declares it as its
// Description.SQLDialect, and data models work on its data sources; any
// other value (a language of your own) works for saved queries, written by
// users in your language, but data models refuse it when saved.
const (
	DialectPostgres = "postgres"
	DialectMySQL    = "mysql"
	DialectSQLite   = "sqlite"
	// DialectANSI is the small ANSI SQL subset described in
	// docs/plugins.md ("Data models and SQL dialects"), for connectors with
	// an engine of their own.
	DialectANSI = "ansi"
)

// ModelDialects lists the dialects data models compile to.
var ModelDialects = []string{DialectPostgres, DialectMySQL, DialectSQLite, DialectANSI}
