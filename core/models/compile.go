package models

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/datapulse/datapulse/core/errs"
)

// Dialects Compile knows.
const (
	DialectPostgres = "postgres"
	DialectMySQL    = "mysql"
	DialectSQLite   = "sqlite"
	// DialectANSI is a small ANSI SQL subset for connectors with a query
	// engine of their own: double-quoted identifiers, ? placeholders bound
	// in textual order (times bound as timestamps, never spliced), GROUP BY
	// select-list positions (GROUP BY 1, 2), CASE WHEN inside aggregates for
	// filtered measures, LIKE … ESCAPE '!' for contains, || and COALESCE,
	// NULLS FIRST / LAST, FETCH FIRST n ROWS ONLY. It has no date
	// truncation: time grains are refused.
	DialectANSI = "ansi"
)

// Dialects lists the dialects Compile knows.
var Dialects = []string{DialectPostgres, DialectMySQL, DialectSQLite, DialectANSI}

// Request limits.
const (
	MaxRequestFields = 200
)

// Request is a model query: POST /api/v1/data-models/{id}/query.
type Request struct {
	Measures []string `json:"measures"`
	// Dimensions name dimensions; a time dimension may carry its grain,
	// "created_at.month", or take TimeGrain.
	Dimensions []string `json:"dimensions"`
	Filters    []Filter `json:"filters,omitempty"`
	// Where holds more filters in their text form, e.g. "region = 'EU'",
	// "amount between 10 and 20", "created_at last 7 days" (ParseFilter).
	Where []string `json:"where,omitempty"`
	// Sort names selected fields (as requested), "-" prefix for descending.
	Sort []string `json:"sort,omitempty"`
	// Limit caps the rows: 0 means MaxLimit; more than MaxLimit is an error.
	Limit int `json:"limit,omitempty"`
	// TimeGrain applies to time dimensions requested without a grain.
	TimeGrain string `json:"time_grain,omitempty"`
}

// DerivedTable is a saved query resolved for a model whose base is a saved
// query: its SQL in the target dialect and its bound values. For postgres its
// placeholders are $1…$len(Args); for mysql and sqlite they are ?.
type DerivedTable struct {
	SQL  string
	Args []any
}

// Options for CompileWith.
type Options struct {
	Dialect string
	// Now anchors relative dates; its location decides day boundaries.
	Now time.Time
	// Derived is required when the config's base is a saved query.
	Derived *DerivedTable
}

// Compile turns a request on a model into SQL for dialect (postgres, mysql,
// sqlite) and the values to bind. Every identifier is quoted and must come
// from the config; every value is bound. Errors are *errs.Error of kind
// errs.ErrInvalid naming the field at fault.
func Compile(cfg Config, req Request, dialect string, now time.Time) (string, []any, error) {
	return CompileWith(cfg, req, Options{Dialect: dialect, Now: now})
}

// CompileWith is Compile with a resolved derived table.
func CompileWith(cfg Config, req Request, opt Options) (string, []any, error) {
	switch opt.Dialect {
	case DialectPostgres, DialectMySQL, DialectSQLite, DialectANSI:
	default:
		return "", nil, errs.Invalid("dialect", fmt.Sprintf("unknown dialect %q (want postgres, mysql, sqlite or ansi)", trunc(opt.Dialect)))
	}
	if err := Validate(cfg); err != nil {
		return "", nil, err
	}
	c := &compiler{cfg: cfg, d: opt.Dialect, now: opt.Now, dims: map[string]*Dimension{}, meas: map[string]*Measure{}}
	for i := range cfg.Joins {
		c.aliases = append(c.aliases, cfg.Joins[i].Alias)
	}
	c.sc = scope{aliases: map[string]bool{}}
	for _, a := range c.aliases {
		c.sc.aliases[a] = true
	}
	for i := range cfg.Dimensions {
		c.dims[cfg.Dimensions[i].Name] = &cfg.Dimensions[i]
	}
	for i := range cfg.Measures {
		c.meas[cfg.Measures[i].Name] = &cfg.Measures[i]
	}
	if cfg.SavedQueryID != "" {
		if opt.Derived == nil || strings.TrimSpace(opt.Derived.SQL) == "" {
			return "", nil, errs.Invalid("saved_query_id", "the model's saved query was not resolved")
		}
		if c.d == DialectPostgres {
			c.args = append(c.args, opt.Derived.Args...) // $1…$k belong to the derived SQL
		}
	}
	if len(req.Where) > 0 {
		if len(req.Where) > MaxFilters {
			return "", nil, errs.Invalid("where", fmt.Sprintf("more than %d filters", MaxFilters))
		}
		fs := append(make([]Filter, 0, len(req.Filters)+len(req.Where)), req.Filters...)
		for i, w := range req.Where {
			f, err := ParseFilter(w)
			if err != nil {
				return "", nil, errs.Invalid(fmt.Sprintf("where[%d]", i), err.Error())
			}
			fs = append(fs, f)
		}
		req.Filters, req.Where = fs, nil
	}
	sql, err := c.compile(req, opt.Derived)
	if err != nil {
		return "", nil, err
	}
	return sql, c.args, nil
}

type compiler struct {
	cfg     Config
	d       string
	now     time.Time
	dims    map[string]*Dimension
	meas    map[string]*Measure
	aliases []string
	sc      scope
	args    []any
}

func (c *compiler) quote(id string) string {
	if c.d == DialectMySQL {
		return "`" + strings.ReplaceAll(id, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
}

// timeLayout is how mysql and sqlite get time values: wall-clock text in
// the location of the value (relative dates use now's location), the same
// shape their truncation expressions produce, so text comparisons order.
// Fractional seconds (to the microsecond, as postgres keeps them) follow
// when there are any, so a bound like now compares as on postgres: stored
// 15:04:05 is before now at 15:04:05.5.
const timeLayout = "2006-01-02 15:04:05.999999"

func (c *compiler) bind(v any) string {
	if t, ok := v.(time.Time); ok && (c.d == DialectMySQL || c.d == DialectSQLite) {
		v = t.Format(timeLayout)
	}
	c.args = append(c.args, v)
	if c.d == DialectPostgres {
		return "$" + strconv.Itoa(len(c.args))
	}
	return "?"
}

// bindTyped binds an expression literal; postgres gets a cast so functions
// over it resolve.
func (c *compiler) bindTyped(v any) string {
	p := c.bind(v)
	if c.d != DialectPostgres {
		return p
	}
	switch v.(type) {
	case string:
		return p + "::text"
	case int64:
		return p + "::bigint"
	case float64:
		return p + "::double precision"
	case bool:
		return p + "::boolean"
	case time.Time:
		return p + "::timestamp"
	}
	return p
}

// bindValue binds a filter value compared with a field of type typ. Postgres
// infers an untyped parameter's type from the other operand, so a fraction
// compared with an integer column or aggregate would be encoded as that
// integer type (2.5 turning into 2); numbers get a cast instead, so the
// comparison is numeric as on the other databases.
func (c *compiler) bindValue(v any, typ string) string {
	p := c.bind(v)
	if c.d != DialectPostgres || typ != TypeNumber {
		return p
	}
	switch v.(type) {
	case int64:
		return p + "::bigint"
	case float64:
		return p + "::numeric"
	}
	return p
}

func (c *compiler) table(t TableRef) string {
	if t.Namespace != "" {
		return c.quote(t.Namespace) + "." + c.quote(t.Name)
	}
	return c.quote(t.Name)
}

func (c *compiler) column(ref string) string {
	alias, col := c.sc.splitColumn(ref)
	return c.quote(alias) + "." + c.quote(col)
}

// truncTime truncates x() to grain. x is called once per textual occurrence,
// in order, so bound values inside it line up with ? placeholders.
func (c *compiler) truncTime(grain string, x func() string) string {
	switch c.d {
	case DialectPostgres:
		return "date_trunc('" + grain + "', " + x() + ")" // grain is from Grains
	case DialectMySQL:
		switch grain {
		case "hour":
			return "DATE_FORMAT(" + x() + ", '%Y-%m-%d %H:00:00')"
		case "day":
			return "DATE_FORMAT(" + x() + ", '%Y-%m-%d 00:00:00')"
		case "week":
			return "DATE_FORMAT(DATE_SUB(" + x() + ", INTERVAL WEEKDAY(" + x() + ") DAY), '%Y-%m-%d 00:00:00')"
		case "month":
			return "DATE_FORMAT(" + x() + ", '%Y-%m-01 00:00:00')"
		case "quarter":
			return "DATE_FORMAT(MAKEDATE(YEAR(" + x() + "), 1) + INTERVAL (QUARTER(" + x() + ") - 1) QUARTER, '%Y-%m-%d 00:00:00')"
		case "year":
			return "DATE_FORMAT(" + x() + ", '%Y-01-01 00:00:00')"
		}
	case DialectSQLite:
		switch grain {
		case "hour":
			return "strftime('%Y-%m-%d %H:00:00', " + x() + ")"
		case "day":
			return "strftime('%Y-%m-%d 00:00:00', " + x() + ")"
		case "week":
			return "strftime('%Y-%m-%d 00:00:00', " + x() + ", 'weekday 0', '-6 days')"
		case "month":
			return "strftime('%Y-%m-01 00:00:00', " + x() + ")"
		case "quarter":
			return "printf('%s-%02d-01 00:00:00', strftime('%Y', " + x() + "), ((CAST(strftime('%m', " + x() + ") AS INTEGER) - 1) / 3) * 3 + 1)"
		case "year":
			return "strftime('%Y-01-01 00:00:00', " + x() + ")"
		}
	}
	panic("models: unknown grain " + grain) // Validate and resolve check grains
}

func (c *compiler) arg(a ExprArg) string {
	if a.Column != "" {
		return c.column(a.Column)
	}
	v, _ := normLiteral(a.Literal)
	return c.bindTyped(v)
}

// dimExpr is a dimension's SQL before any time grain.
func (c *compiler) dimExpr(d *Dimension) string {
	if d.Expr == nil {
		return c.column(d.Column)
	}
	e := d.Expr
	if e.Fn == FnDateTrunc {
		return c.truncTime(e.Args[0].Literal.(string), func() string { return c.column(e.Args[1].Column) })
	}
	parts := make([]string, len(e.Args))
	for i, a := range e.Args {
		if e.Fn == FnCoalesce && d.Type == TypeTime && a.Column == "" {
			// A date literal standing in for a time column binds as a
			// time: postgres cannot coalesce a timestamp with text, and
			// mysql and sqlite compare it as text of timeLayout's shape.
			if v, err := typedValue(a.Literal, TypeTime); err == nil {
				parts[i] = c.bindTyped(v)
				continue
			}
		}
		parts[i] = c.arg(a)
	}
	switch e.Fn {
	case FnLower:
		return "LOWER(" + parts[0] + ")"
	case FnUpper:
		return "UPPER(" + parts[0] + ")"
	case FnCoalesce:
		return "COALESCE(" + strings.Join(parts, ", ") + ")"
	case FnConcat:
		switch c.d {
		case DialectPostgres:
			return "concat(" + strings.Join(parts, ", ") + ")"
		case DialectMySQL:
			return "CONCAT_WS(''" + ", " + strings.Join(parts, ", ") + ")"
		default:
			for i := range parts {
				parts[i] = "COALESCE(" + parts[i] + ", '')"
			}
			return "(" + strings.Join(parts, " || ") + ")"
		}
	}
	panic("models: unknown fn " + e.Fn)
}

// field is a resolved reference to a dimension (with grain) or a measure.
type field struct {
	name  string // as requested
	dim   *Dimension
	grain string
	meas  *Measure
}

func (c *compiler) typ(f field) string {
	if f.dim != nil {
		return f.dim.Type
	}
	return TypeNumber
}

// resolveDim resolves "name" or "name.grain"; defGrain applies to time
// dimensions without one.
func (c *compiler) resolveDim(where, ref, defGrain string) (field, error) {
	name, grain, hasGrain := strings.Cut(ref, ".")
	d, ok := c.dims[name]
	if !ok {
		return field{}, errs.Invalid(where, fmt.Sprintf("%s: %q is not a dimension of this model", where, trunc(ref)))
	}
	if hasGrain && d.Type != TypeTime {
		return field{}, errs.Invalid(where, fmt.Sprintf("%s: %q is not a time dimension, so it takes no grain", where, name))
	}
	if !hasGrain && d.Type == TypeTime {
		grain = defGrain
	}
	if c.d == DialectANSI && (grain != "" || (d.Expr != nil && d.Expr.Fn == FnDateTrunc)) {
		return field{}, errs.Invalid(where, fmt.Sprintf("%s: %q needs date truncation, which the ansi SQL dialect of this data source does not have (request the dimension without a time grain)", where, trunc(ref)))
	}
	if grain != "" && !d.allows(grain) {
		return field{}, errs.Invalid(where, fmt.Sprintf("%s: dimension %q does not allow grain %q", where, name, trunc(grain)))
	}
	return field{name: ref, dim: d, grain: grain}, nil
}

// fieldSQL is the SQL of a field: the (truncated) dimension or aggregate.
func (c *compiler) fieldSQL(f field) (string, error) {
	if f.meas != nil {
		return c.measureSQL(f.meas)
	}
	if f.grain != "" {
		return c.truncTime(f.grain, func() string { return c.dimExpr(f.dim) }), nil
	}
	return c.dimExpr(f.dim), nil
}

func (c *compiler) measureSQL(m *Measure) (string, error) {
	cond := ""
	if len(m.Filter) > 0 {
		conds := make([]string, 0, len(m.Filter))
		for i, f := range m.Filter {
			where := fmt.Sprintf("measure %q filter[%d]", m.Name, i)
			fd, err := c.resolveDim(where, f.Field, "")
			if err != nil {
				return "", err
			}
			s, err := c.condition(where, fd, f)
			if err != nil {
				return "", err
			}
			conds = append(conds, s)
		}
		cond = strings.Join(conds, " AND ")
	}
	var col string
	if m.Column != "" {
		col = c.column(m.Column)
	}
	fn := strings.ToUpper(m.Agg)
	distinct := ""
	switch m.Agg {
	case AggCountDistinct:
		fn, distinct = "COUNT", "DISTINCT "
	case AggCount:
		if col == "" {
			col = "*"
		}
	}
	switch {
	case cond == "":
		return fn + "(" + distinct + col + ")", nil
	case c.d == DialectPostgres:
		return fn + "(" + distinct + col + ") FILTER (WHERE " + cond + ")", nil
	default:
		if col == "*" {
			col = "1"
		}
		return fn + "(" + distinct + "CASE WHEN " + cond + " THEN " + col + " END)", nil
	}
}

// condition renders one filter on a resolved field, binding its values.
func (c *compiler) condition(where string, fd field, f Filter) (string, error) {
	typ := c.typ(fd)
	vals, err := boundValues(f, typ)
	if err != nil {
		return "", errs.Invalid(where, fmt.Sprintf("%s on %q: %s", where, trunc(f.Field), err.Error()))
	}
	x, err := c.fieldSQL(fd)
	if err != nil {
		return "", err
	}
	switch f.Op {
	case OpEq, OpNe, OpGt, OpGe, OpLt, OpLe:
		op := f.Op
		if op == OpNe {
			op = "<>"
		}
		return x + " " + op + " " + c.bindValue(vals[0], typ), nil
	case OpIn, OpNotIn:
		ph := make([]string, len(vals))
		for i, v := range vals {
			ph[i] = c.bindValue(v, typ)
		}
		op := " IN ("
		if f.Op == OpNotIn {
			op = " NOT IN ("
		}
		return x + op + strings.Join(ph, ", ") + ")", nil
	case OpBetween:
		return x + " BETWEEN " + c.bindValue(vals[0], typ) + " AND " + c.bindValue(vals[1], typ), nil
	case OpContains:
		switch c.d {
		case DialectPostgres:
			return "strpos(" + x + ", " + c.bind(vals[0]) + ") > 0", nil
		case DialectMySQL:
			return "INSTR(" + x + ", " + c.bind(vals[0]) + ") > 0", nil
		case DialectANSI:
			return x + " LIKE " + c.bind("%"+likeEscape(fmt.Sprint(vals[0]))+"%") + " ESCAPE '!'", nil
		default:
			return "instr(" + x + ", " + c.bind(vals[0]) + ") > 0", nil
		}
	case OpIsNull:
		return x + " IS NULL", nil
	case OpIsNotNull:
		return x + " IS NOT NULL", nil
	case OpLast, OpThis, OpToday, OpYesterday:
		from, to, err := relativeRange(f, c.now)
		if err != nil {
			return "", errs.Invalid(where, fmt.Sprintf("%s on %q: %s", where, f.Field, err.Error()))
		}
		lo := x + " >= " + c.bind(from)
		x2, err := c.fieldSQL(fd) // again: its own binds, in textual order
		if err != nil {
			return "", err
		}
		return lo + " AND " + x2 + " < " + c.bind(to), nil
	}
	return "", errs.Invalid(where, fmt.Sprintf("%s on %q: unknown operator %q", where, f.Field, trunc(f.Op)))
}

func (c *compiler) compile(req Request, derived *DerivedTable) (string, error) {
	if len(req.Measures)+len(req.Dimensions) == 0 {
		return "", errs.Invalid("measures", "request at least one measure or dimension")
	}
	if len(req.Measures)+len(req.Dimensions) > MaxRequestFields {
		return "", errs.Invalid("dimensions", fmt.Sprintf("more than %d fields requested", MaxRequestFields))
	}
	if len(req.Filters) > MaxFilters {
		return "", errs.Invalid("filters", fmt.Sprintf("more than %d filters", MaxFilters))
	}
	if len(req.Sort) > MaxSortFields {
		return "", errs.Invalid("sort", fmt.Sprintf("more than %d sort fields", MaxSortFields))
	}
	if req.TimeGrain != "" && !validGrain(req.TimeGrain) {
		return "", errs.Invalid("time_grain", fmt.Sprintf("time_grain %q is not one of %s", trunc(req.TimeGrain), strings.Join(Grains, ", ")))
	}
	if req.Limit < 0 || req.Limit > MaxLimit {
		return "", errs.Invalid("limit", fmt.Sprintf("limit %d is outside 0…%d", req.Limit, MaxLimit))
	}
	limit := req.Limit
	if limit == 0 {
		limit = MaxLimit
	}

	var selected []field
	seen := map[string]string{}
	for i, ref := range req.Dimensions {
		where := fmt.Sprintf("dimensions[%d]", i)
		f, err := c.resolveDim(where, ref, req.TimeGrain)
		if err != nil {
			return "", err
		}
		if prev, dup := seen[ref]; dup {
			return "", errs.Invalid(where, fmt.Sprintf("%s: %q is already requested by %s", where, ref, prev))
		}
		seen[ref] = where
		selected = append(selected, f)
	}
	nDims := len(selected)
	for i, name := range req.Measures {
		where := fmt.Sprintf("measures[%d]", i)
		m, ok := c.meas[name]
		if !ok {
			return "", errs.Invalid(where, fmt.Sprintf("%s: %q is not a measure of this model", where, trunc(name)))
		}
		if prev, dup := seen[name]; dup {
			return "", errs.Invalid(where, fmt.Sprintf("%s: %q is already requested by %s", where, name, prev))
		}
		seen[name] = where
		selected = append(selected, field{name: name, meas: m})
	}

	var b strings.Builder
	b.WriteString("SELECT ")
	for i, f := range selected {
		if i > 0 {
			b.WriteString(", ")
		}
		x, err := c.fieldSQL(f)
		if err != nil {
			return "", err
		}
		b.WriteString(x + " AS " + c.quote(f.name))
	}
	b.WriteString(" FROM ")
	if c.cfg.Table != nil {
		b.WriteString(c.table(*c.cfg.Table))
	} else {
		if c.d != DialectPostgres {
			c.args = append(c.args, derived.Args...)
		}
		b.WriteString("(" + derived.SQL + ")")
	}
	b.WriteString(" AS " + c.quote(BaseAlias))
	for _, j := range c.cfg.Joins {
		kind := " LEFT JOIN "
		if j.Type == "inner" {
			kind = " INNER JOIN "
		}
		b.WriteString(kind + c.table(j.Table) + " AS " + c.quote(j.Alias) + " ON ")
		for k, key := range j.On {
			if k > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(c.column(key.Left) + " = " + c.quote(j.Alias) + "." + c.quote(key.Right))
		}
	}

	// Resolve every filter first, then render WHERE before HAVING so that
	// ? placeholders bind in textual order.
	type resolved struct {
		where string
		fd    field
		f     Filter
	}
	var dimFilters, measFilters []resolved
	for i, f := range req.Filters {
		where := fmt.Sprintf("filters[%d]", i)
		if m, ok := c.meas[f.Field]; ok {
			measFilters = append(measFilters, resolved{where, field{name: f.Field, meas: m}, f})
			continue
		}
		fd, err := c.resolveDim(where+".field", f.Field, "")
		if err != nil {
			return "", errs.Invalid(where+".field", fmt.Sprintf("%s: %q is not a field of this model", where, trunc(f.Field)))
		}
		dimFilters = append(dimFilters, resolved{where, fd, f})
	}
	var wheres, havings []string
	for _, r := range dimFilters {
		s, err := c.condition(r.where, r.fd, r.f)
		if err != nil {
			return "", err
		}
		wheres = append(wheres, "("+s+")")
	}
	if len(wheres) > 0 {
		b.WriteString(" WHERE " + strings.Join(wheres, " AND "))
	}
	if nDims > 0 {
		b.WriteString(" GROUP BY ")
		for i := 0; i < nDims; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(i + 1))
		}
	}
	for _, r := range measFilters {
		s, err := c.condition(r.where, r.fd, r.f)
		if err != nil {
			return "", err
		}
		havings = append(havings, "("+s+")")
	}
	if len(havings) > 0 {
		b.WriteString(" HAVING " + strings.Join(havings, " AND "))
	}

	sort, where := req.Sort, "sort"
	if len(sort) == 0 {
		where = "default_sort"
		for _, s := range c.cfg.DefaultSort {
			if _, ok := seen[strings.TrimPrefix(s, "-")]; ok {
				sort = append(sort, s)
			}
		}
	}
	var order []string
	sorted := map[string]bool{}
	for i, s := range sort {
		name, desc := strings.CutPrefix(s, "-")
		if _, ok := seen[name]; !ok {
			return "", errs.Invalid(where, fmt.Sprintf("%s[%d]: %q is not a requested field", where, i, trunc(s)))
		}
		if sorted[name] {
			return "", errs.Invalid(where, fmt.Sprintf("%s[%d]: %q is sorted twice", where, i, name))
		}
		sorted[name] = true
		// NULL sorts as the smallest value, as on mysql and sqlite (postgres
		// puts NULL last when ascending, first when descending).
		dir := " ASC"
		if desc {
			dir = " DESC"
		}
		if c.d == DialectPostgres || c.d == DialectANSI {
			if desc {
				dir += " NULLS LAST"
			} else {
				dir += " NULLS FIRST"
			}
		}
		order = append(order, c.quote(name)+dir)
	}
	if len(order) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(order, ", "))
	}
	if c.d == DialectANSI {
		b.WriteString(" FETCH FIRST " + strconv.Itoa(limit) + " ROWS ONLY")
	} else {
		b.WriteString(" LIMIT " + strconv.Itoa(limit))
	}
	return b.String(), nil
}

// likeEscape escapes LIKE's wildcards (and its escape character, '!') so
// that s matches itself.
func likeEscape(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}
