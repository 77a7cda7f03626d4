package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Connector is what a connector author implements. The host may call every
// method concurrently, for many data sources at once: keep per-data-source
// state (connection pools, caches) keyed by Config.DataSourceID and
// Config.Version, for example with Instances.
//
// Every context carries the host's deadline and is cancelled when the host
// gives up on the call; pass it to every I/O call.
type Connector interface {
	// Describe returns the connector's identity and the JSON Schema of its
	// configuration. It must not do I/O.
	Describe() Description
	// ValidateConfig checks a configuration without connecting. A nil or
	// empty result means the configuration is acceptable.
	ValidateConfig(ctx context.Context, cfg Config) []FieldError
	// CheckHealth connects, authenticates and runs a trivial probe. An error
	// means the data source is not healthy; its message is shown to the user.
	CheckHealth(ctx context.Context, cfg Config) (Health, error)
	// ListNamespaces lists schemas (or databases, or directories), one page
	// at a time. Connectors without namespaces return a single "" namespace
	// or an empty page.
	ListNamespaces(ctx context.Context, cfg Config, page Page) (NamespacePage, error)
	// ListTables lists the tables of a namespace, one page at a time.
	ListTables(ctx context.Context, cfg Config, namespace string, page Page) (TablePage, error)
	// DescribeTables returns the columns of the given tables, in the same
	// order. A table that does not exist is an error with CodeNotFound.
	DescribeTables(ctx context.Context, cfg Config, tables []TableRef) ([]TableInfo, error)
	// Query runs a read-only query and writes its result to w: the schema
	// first (w.SetSchema), then the rows. The SDK splits the rows into
	// bounded batches, stops at the row and byte caps (Write returns
	// ErrLimitReached: stop and return) and ends the stream when Query
	// returns. Returning an error after some rows were written fails the
	// whole query.
	Query(ctx context.Context, cfg Config, q Query, w ResultWriter) error
	// Dispose drops whatever the connector caches for a data source: the
	// host calls it after the data source is edited or deleted.
	Dispose(datasourceID string)
}

// Description is a connector's identity and capabilities.
type Description struct {
	// Name is the connector's identifier ("postgres", "jsonfiles"): lower
	// case letters, digits, '-' and '_'. It must match the manifest.
	Name string
	// DisplayName is shown to users ("PostgreSQL").
	DisplayName string
	// Version is the connector's own version, semver ("1.2.0").
	Version string
	// Capabilities lists what the connector supports (Capability* constants
	// or connector-specific strings).
	Capabilities []string
	// ConfigSchema is a JSON Schema (draft 2020-12 or 7) of the
	// configuration object. Properties holding secrets (passwords, tokens)
	// must carry "x-secret": true: the host encrypts them at rest, never
	// returns them, and passes them in Config.Secrets instead of the JSON.
	ConfigSchema json.RawMessage
	// SQLDialect is the SQL Query takes. One of ModelDialects
	// (DialectPostgres, DialectMySQL, DialectSQLite, DialectANSI) when the
	// connector speaks it (or a superset): the host then compiles data
	// models for it. Any other name (a language of your own) or "" works
	// for saved queries, whose {{name}} placeholders become ? parameters
	// ($1… for postgres), but data models refuse it when saved.
	SQLDialect string
}

// Well-known capabilities.
const (
	CapabilitySQL           = "sql"           // Query takes SQL text
	CapabilityParameters    = "parameters"    // positional bound parameters
	CapabilityIntrospection = "introspection" // namespaces, tables and columns
	CapabilityCancel        = "cancel"        // cancelling the context stops the work at the source
)

// FieldError is one problem with a configuration.
type FieldError struct {
	// Field is a JSON pointer into the configuration ("/port"); "" for the
	// configuration as a whole.
	Field   string
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Health is the result of a successful probe.
type Health struct {
	// Message is a short human-readable summary ("connected").
	Message string
	// ServerVersion is the source's own version ("PostgreSQL 16.3").
	ServerVersion string
	// Latency is how long the probe took; measured by the SDK when zero.
	Latency time.Duration
}

// Page asks for one page of a listing.
type Page struct {
	// Size is the maximum number of items to return; the SDK guarantees
	// 1 <= Size <= MaxPageSize.
	Size int
	// Token is "" for the first page, else the NextToken of the previous one.
	// It is opaque to the host: connectors choose its format.
	Token string
}

// Page sizes the SDK passes to connectors.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// NamespacePage is one page of namespaces.
type NamespacePage struct {
	Namespaces []string
	// NextToken is "" on the last page.
	NextToken string
}

// TablePage is one page of tables.
type TablePage struct {
	Tables []TableRef
	// NextToken is "" on the last page.
	NextToken string
}

// TableKind says what a table is.
type TableKind int

const (
	KindUnspecified TableKind = iota
	KindTable
	KindView
	KindFile
)

// TableRef names a table.
type TableRef struct {
	Namespace string
	Name      string
	Kind      TableKind
}

// TableInfo describes one table's columns.
type TableInfo struct {
	Ref     TableRef
	Columns []Column
}

// Column describes one column.
type Column struct {
	Name string
	// NativeType is the source's own type name ("timestamp with time zone").
	NativeType string
	// Type is the Arrow type Query emits for this column.
	Type     arrow.DataType
	Nullable bool
}

// Query is one query to run.
type Query struct {
	// SQL is the statement, in the connector's dialect.
	SQL string
	// Params are positional values for the statement's placeholders. Each is
	// one of: nil, bool, int64, float64, string, time.Time (UTC), Date, or
	// []any of those (a list parameter).
	Params []any
	// Limits are the caps the SDK's ResultWriter enforces.
	Limits Limits
	// ID identifies the query in the host's logs.
	ID string
}

// Limits bound a query's result. Zero means "no cap" for MaxRows and
// MaxBytes, and the default for the batch bounds.
type Limits struct {
	// MaxRows: after this many rows the result is cut and marked truncated.
	MaxRows int64
	// MaxBytes caps the encoded Arrow IPC bytes of the result.
	MaxBytes int64
	// BatchMaxRows: at most this many rows per record batch.
	BatchMaxRows int
	// BatchMaxBytes: about this many encoded bytes per message at most.
	BatchMaxBytes int
}

// Default batch bounds.
const (
	DefaultBatchMaxRows  = 65536
	DefaultBatchMaxBytes = 4 << 20
	// MaxBatchBytes is the largest batch_max_bytes the SDK honours: it
	// keeps every message well below the host's receive limit.
	MaxBatchBytes = 16 << 20
)

// Date is a calendar date without a time zone (a "date" parameter).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// DateFromDays returns the date that is days days after 1970-01-01.
func DateFromDays(days int32) Date {
	return DateOf(time.Unix(int64(days)*86400, 0).UTC())
}

// DaysSinceEpoch returns the number of days from 1970-01-01 to d.
func (d Date) DaysSinceEpoch() int32 {
	return int32(d.In(time.UTC).Unix() / 86400)
}

// In returns midnight of d in loc.
func (d Date) In(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// String returns the ISO 8601 form, "2006-01-02".
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}
