// Package models is the database-free heart of DataPulse's semantic layer:
// a data model's validated Config (base table or derived saved query,
// dimensions, measures, joins, default sort), the model Request and Filter
// language, and Compile, which turns a request into dialect SQL with every
// identifier quoted and every value bound.
package models

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
)

// Limits on a model's config.
const (
	MaxFields     = 200 // dimensions + measures
	MaxJoins      = 10
	MaxJoinKeys   = 8
	MaxExprArgs   = 16
	MaxSortFields = 16
	MaxFilters    = 50
	MaxInValues   = 1000
	MaxLimit      = 100000
	maxIdentLen   = 128 // table, namespace and column names
)

// Dimension types.
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeTime    = "time"
)

// Measure aggregations.
const (
	AggCount         = "count"
	AggCountDistinct = "count_distinct"
	AggSum           = "sum"
	AggAvg           = "avg"
	AggMin           = "min"
	AggMax           = "max"
)

// Grains are the time grains, finest first.
var Grains = []string{"hour", "day", "week", "month", "quarter", "year"}

// BaseAlias is the alias of the base (or derived) table in compiled SQL; a
// column "x" of a dimension or measure means base.x, "alias.x" means the
// joined table's column.
const BaseAlias = "base"

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Config is a data model's config (data_models.config).
type Config struct {
	DataSourceID string `json:"data_source_id"`
	// Exactly one of Table and SavedQueryID is set.
	Table        *TableRef   `json:"table,omitempty"`
	SavedQueryID string      `json:"saved_query_id,omitempty"`
	Dimensions   []Dimension `json:"dimensions"`
	Measures     []Measure   `json:"measures"`
	Joins        []Join      `json:"joins,omitempty"`
	// DefaultSort lists field names, "-" prefix for descending; used when a
	// request has no sort (entries not selected by the request are skipped).
	DefaultSort []string `json:"default_sort,omitempty"`
}

// TableRef names a table; Namespace (schema/database) may be empty.
type TableRef struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Dimension is a field to group by.
type Dimension struct {
	Name string `json:"name"`
	// Exactly one of Column and Expr is set.
	Column string `json:"column,omitempty"`
	Expr   *Expr  `json:"expr,omitempty"`
	Type   string `json:"type"`
	// Grains allowed for a time dimension; empty means all of Grains.
	Grains []string `json:"grains,omitempty"`
}

// Expression functions allowed in a dimension.
const (
	FnLower     = "lower"
	FnUpper     = "upper"
	FnCoalesce  = "coalesce"
	FnConcat    = "concat"
	FnDateTrunc = "date_trunc"
)

// Expr is a SQL-free expression: a function from a small set over columns
// and literals. date_trunc takes a grain literal then a column.
type Expr struct {
	Fn   string    `json:"fn"`
	Args []ExprArg `json:"args"`
}

// ExprArg is a column or a literal (string, number or boolean; bound when
// compiled, except date_trunc's grain). A coalesce in a time dimension takes
// date or time strings as literals.
type ExprArg struct {
	Column  string `json:"column,omitempty"`
	Literal any    `json:"literal,omitempty"`
}

// Measure is an aggregate.
type Measure struct {
	Name   string `json:"name"`
	Agg    string `json:"agg"`
	Column string `json:"column,omitempty"` // optional for count
	// Filter restricts the rows aggregated; fields name dimensions.
	Filter []Filter `json:"filter,omitempty"`
}

// Join joins another table by declared keys.
type Join struct {
	Table TableRef  `json:"table"`
	Alias string    `json:"alias"`
	Type  string    `json:"type"` // left | inner
	On    []JoinKey `json:"on"`
}

// JoinKey equates a column already in scope (Left: "col" of the base table or
// "alias.col" of an earlier join) with a column of the joined table (Right).
type JoinKey struct {
	Left  string `json:"left"`
	Right string `json:"right"`
}

// fieldErrs collects per-field problems.
type fieldErrs []errs.FieldError

func (f *fieldErrs) add(field, format string, a ...any) {
	*f = append(*f, errs.FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
}

func (f fieldErrs) err(msg string) error {
	if len(f) == 0 {
		return nil
	}
	parts := make([]string, 0, len(f))
	for i, e := range f {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(f)-10))
			break
		}
		parts = append(parts, e.Field+": "+e.Message)
	}
	return &errs.Error{Kind: errs.ErrInvalid, Message: msg + ": " + strings.Join(parts, "; "), Field: f[0].Field, Fields: f}
}

// IsName reports whether s is a valid field or alias name.
func IsName(s string) bool { return nameRE.MatchString(s) }

func checkSQLName(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > maxIdentLen:
		return fmt.Sprintf("is longer than %d bytes", maxIdentLen)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.ContainsRune(s, 0):
		return "contains a NUL byte"
	case strings.ContainsRune(s, '?'):
		return "contains '?', which clashes with placeholders"
	}
	return ""
}

func validGrain(g string) bool {
	for _, x := range Grains {
		if x == g {
			return true
		}
	}
	return false
}

// scope resolves column references of a config.
type scope struct{ aliases map[string]bool }

// splitColumn returns the table alias and column of a reference.
func (s scope) splitColumn(ref string) (alias, col string) {
	if i := strings.IndexByte(ref, '.'); i > 0 && s.aliases[ref[:i]] {
		return ref[:i], ref[i+1:]
	}
	return BaseAlias, ref
}

func (s scope) checkColumn(fe *fieldErrs, field, ref string) {
	_, col := s.splitColumn(ref)
	if m := checkSQLName(col); m != "" {
		fe.add(field, "column %s", m)
	}
}

// Validate checks a config; the error is an *errs.Error of kind
// errs.ErrInvalid listing every field at fault.
func Validate(cfg Config) error {
	var fe fieldErrs
	if cfg.DataSourceID == "" {
		fe.add("data_source_id", "is required")
	} else if _, err := uuid.Parse(cfg.DataSourceID); err != nil {
		fe.add("data_source_id", "is not a UUID")
	}
	switch {
	case cfg.Table != nil && cfg.SavedQueryID != "":
		fe.add("table", "set either table or saved_query_id, not both")
	case cfg.Table == nil && cfg.SavedQueryID == "":
		fe.add("table", "a base table or a saved_query_id is required")
	case cfg.Table != nil:
		checkTable(&fe, "table", *cfg.Table)
	default:
		if _, err := uuid.Parse(cfg.SavedQueryID); err != nil {
			fe.add("saved_query_id", "is not a UUID")
		}
	}
	if n := len(cfg.Dimensions) + len(cfg.Measures); n == 0 {
		fe.add("measures", "a model needs at least one dimension or measure")
	} else if n > MaxFields {
		fe.add("dimensions", "%d dimensions and measures, more than the limit of %d", n, MaxFields)
		return fe.err("invalid model config")
	}
	if len(cfg.Joins) > MaxJoins {
		fe.add("joins", "%d joins, more than the limit of %d", len(cfg.Joins), MaxJoins)
		return fe.err("invalid model config")
	}

	sc := scope{aliases: map[string]bool{}}
	for i, j := range cfg.Joins {
		p := fmt.Sprintf("joins[%d]", i)
		checkTable(&fe, p+".table", j.Table)
		switch {
		case !IsName(j.Alias):
			fe.add(p+".alias", "%q is not a valid alias ([A-Za-z_][A-Za-z0-9_]{0,62})", trunc(j.Alias))
		case strings.EqualFold(j.Alias, BaseAlias):
			fe.add(p+".alias", "%q is reserved for the base table", j.Alias)
		case sc.aliases[j.Alias]:
			fe.add(p+".alias", "alias %q is used twice", j.Alias)
		}
		if j.Type != "left" && j.Type != "inner" {
			fe.add(p+".type", "must be left or inner, not %q", trunc(j.Type))
		}
		if len(j.On) == 0 {
			fe.add(p+".on", "at least one key pair is required")
		} else if len(j.On) > MaxJoinKeys {
			fe.add(p+".on", "more than %d key pairs", MaxJoinKeys)
		}
		for k, key := range j.On {
			sc.checkColumn(&fe, fmt.Sprintf("%s.on[%d].left", p, k), key.Left)
			if m := checkSQLName(key.Right); m != "" {
				fe.add(fmt.Sprintf("%s.on[%d].right", p, k), "column %s", m)
			}
		}
		if IsName(j.Alias) {
			sc.aliases[j.Alias] = true
		}
	}

	names := map[string]string{}
	claim := func(field, name string) {
		if !IsName(name) {
			fe.add(field, "%q is not a valid name ([A-Za-z_][A-Za-z0-9_]{0,62})", trunc(name))
			return
		}
		if prev, ok := names[name]; ok {
			fe.add(field, "name %q is already used by %s", name, prev)
			return
		}
		names[name] = field
	}
	dims := map[string]*Dimension{}
	for i := range cfg.Dimensions {
		d := &cfg.Dimensions[i]
		p := fmt.Sprintf("dimensions[%d]", i)
		claim(p+".name", d.Name)
		dims[d.Name] = d
		switch {
		case d.Column != "" && d.Expr != nil:
			fe.add(p, "set either column or expr, not both")
		case d.Column == "" && d.Expr == nil:
			fe.add(p+".column", "a column or an expr is required")
		case d.Column != "":
			sc.checkColumn(&fe, p+".column", d.Column)
		default:
			checkExpr(&fe, sc, p+".expr", d)
		}
		switch d.Type {
		case TypeString, TypeNumber, TypeBoolean:
			if len(d.Grains) > 0 {
				fe.add(p+".grains", "only time dimensions have grains")
			}
		case TypeTime:
			seen := map[string]bool{}
			for k, g := range d.Grains {
				if !validGrain(g) {
					fe.add(fmt.Sprintf("%s.grains[%d]", p, k), "unknown grain %q (want one of %s)", trunc(g), strings.Join(Grains, ", "))
				} else if seen[g] {
					fe.add(fmt.Sprintf("%s.grains[%d]", p, k), "grain %q is listed twice", g)
				}
				seen[g] = true
			}
		default:
			fe.add(p+".type", "must be string, number, boolean or time, not %q", trunc(d.Type))
		}
	}
	for i, m := range cfg.Measures {
		p := fmt.Sprintf("measures[%d]", i)
		claim(p+".name", m.Name)
		switch m.Agg {
		case AggCount:
			if m.Column != "" {
				sc.checkColumn(&fe, p+".column", m.Column)
			}
		case AggCountDistinct, AggSum, AggAvg, AggMin, AggMax:
			if m.Column == "" {
				fe.add(p+".column", "is required for %s", m.Agg)
			} else {
				sc.checkColumn(&fe, p+".column", m.Column)
			}
		default:
			fe.add(p+".agg", "must be one of count, count_distinct, sum, avg, min, max, not %q", trunc(m.Agg))
		}
		if len(m.Filter) > MaxFilters {
			fe.add(p+".filter", "more than %d filters", MaxFilters)
			continue
		}
		for k, f := range m.Filter {
			fp := fmt.Sprintf("%s.filter[%d]", p, k)
			d, ok := dims[f.Field]
			if !ok {
				fe.add(fp+".field", "%q is not a dimension of this model", trunc(f.Field))
				continue
			}
			if err := checkFilterValue(f, d.Type); err != nil {
				fe.add(fp, "%s", err.Error())
			}
		}
	}
	if len(cfg.DefaultSort) > MaxSortFields {
		fe.add("default_sort", "more than %d sort fields", MaxSortFields)
	}
	for i, s := range cfg.DefaultSort {
		name, _ := strings.CutPrefix(s, "-")
		if base, grain, ok := strings.Cut(name, "."); ok {
			d := dims[base]
			if d == nil || d.Type != TypeTime || !d.allows(grain) {
				fe.add(fmt.Sprintf("default_sort[%d]", i), "%q is not a field of this model", trunc(s))
			}
			continue
		}
		if _, ok := names[name]; !ok {
			fe.add(fmt.Sprintf("default_sort[%d]", i), "%q is not a field of this model", trunc(s))
		}
	}
	return fe.err("invalid model config")
}

func (d *Dimension) allows(grain string) bool {
	if !validGrain(grain) {
		return false
	}
	if len(d.Grains) == 0 {
		return true
	}
	for _, g := range d.Grains {
		if g == grain {
			return true
		}
	}
	return false
}

func checkTable(fe *fieldErrs, p string, t TableRef) {
	if m := checkSQLName(t.Name); m != "" {
		fe.add(p+".name", "%s", m)
	}
	if t.Namespace != "" {
		if m := checkSQLName(t.Namespace); m != "" {
			fe.add(p+".namespace", "%s", m)
		}
	}
}

func checkExpr(fe *fieldErrs, sc scope, p string, d *Dimension) {
	e := d.Expr
	if len(e.Args) > MaxExprArgs {
		fe.add(p+".args", "more than %d arguments", MaxExprArgs)
		return
	}
	for k, a := range e.Args {
		ap := fmt.Sprintf("%s.args[%d]", p, k)
		switch {
		case a.Column != "" && a.Literal != nil:
			fe.add(ap, "set either column or literal, not both")
		case a.Column != "":
			sc.checkColumn(fe, ap+".column", a.Column)
		case a.Literal == nil:
			fe.add(ap, "a column or a literal is required")
		default:
			if _, ok := normLiteral(a.Literal); !ok {
				fe.add(ap+".literal", "must be a string, number or boolean")
			}
		}
	}
	switch e.Fn {
	case FnLower, FnUpper:
		if len(e.Args) != 1 {
			fe.add(p+".args", "%s takes one argument", e.Fn)
		}
		if d.Type != TypeString {
			fe.add(p, "%s gives a string; the dimension's type is %q", e.Fn, d.Type)
		}
	case FnCoalesce:
		if len(e.Args) < 2 {
			fe.add(p+".args", "coalesce takes at least two arguments")
		}
		if d.Type == TypeTime {
			for k, a := range e.Args {
				if a.Column != "" || a.Literal == nil {
					continue
				}
				if _, err := typedValue(a.Literal, TypeTime); err != nil {
					fe.add(fmt.Sprintf("%s.args[%d].literal", p, k), "must be a date (2006-01-02) or time (RFC 3339) in a time dimension")
				}
			}
		}
	case FnConcat:
		if len(e.Args) < 2 {
			fe.add(p+".args", "concat takes at least two arguments")
		}
		if d.Type != TypeString {
			fe.add(p, "concat gives a string; the dimension's type is %q", d.Type)
		}
	case FnDateTrunc:
		if len(e.Args) != 2 || e.Args[1].Column == "" {
			fe.add(p+".args", "date_trunc takes a grain literal and a column")
			return
		}
		if g, ok := e.Args[0].Literal.(string); !ok || !validGrain(g) {
			fe.add(p+".args[0]", "must be a grain literal (%s)", strings.Join(Grains, ", "))
		}
		if d.Type != TypeTime {
			fe.add(p, "date_trunc gives a time; the dimension's type is %q", d.Type)
		}
	default:
		fe.add(p+".fn", "must be one of lower, upper, coalesce, concat, date_trunc, not %q", trunc(e.Fn))
	}
}

func trunc(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return s
}
