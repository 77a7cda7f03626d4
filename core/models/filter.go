package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Filter operators. OpLast takes a Value "N days|weeks|months"; OpThis takes
// "week|month|quarter|year"; OpToday, OpYesterday, OpIsNull and OpIsNotNull
// take none; OpIn/OpNotIn a non-empty list; OpBetween a list of two.
const (
	OpEq        = "="
	OpNe        = "!="
	OpGt        = ">"
	OpGe        = ">="
	OpLt        = "<"
	OpLe        = "<="
	OpIn        = "in"
	OpNotIn     = "not in"
	OpBetween   = "between"
	OpContains  = "contains"
	OpIsNull    = "is null"
	OpIsNotNull = "is not null"
	OpLast      = "last"
	OpThis      = "this"
	OpToday     = "today"
	OpYesterday = "yesterday"
)

// Filter restricts rows (or, on a measure, aggregated groups) by a field.
type Filter struct {
	Field string `json:"field"`
	Op    string `json:"op"`
	Value any    `json:"value,omitempty"`
}

// normLiteral turns a scalar into string, bool, int64 or float64.
func normLiteral(v any) (any, bool) {
	switch x := v.(type) {
	case string, bool, int64:
		return x, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
		return x, true
	case float32:
		return normLiteral(float64(x))
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		f, err := x.Float64()
		if err != nil {
			return nil, false
		}
		return normLiteral(f)
	}
	return nil, false
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"}

// typedValue checks one value against a dimension type and returns it ready
// to bind (time strings become time.Time).
func typedValue(v any, typ string) (any, error) {
	if t, ok := v.(time.Time); ok {
		if typ != TypeTime {
			return nil, fmt.Errorf("a time value does not fit a %s field", typ)
		}
		return t, nil
	}
	n, ok := normLiteral(v)
	if !ok {
		return nil, fmt.Errorf("value %v is not a string, number or boolean", describe(v))
	}
	switch typ {
	case TypeString:
		if _, ok := n.(string); !ok {
			return nil, fmt.Errorf("want a string value, got %v", describe(v))
		}
	case TypeNumber:
		switch n.(type) {
		case int64, float64:
		default:
			return nil, fmt.Errorf("want a number value, got %v", describe(v))
		}
	case TypeBoolean:
		if _, ok := n.(bool); !ok {
			return nil, fmt.Errorf("want true or false, got %v", describe(v))
		}
	case TypeTime:
		s, ok := n.(string)
		if !ok {
			return nil, fmt.Errorf("want a date or time string, got %v", describe(v))
		}
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, nil
			}
		}
		return nil, fmt.Errorf("%q is not a date (2006-01-02) or time (RFC 3339)", trunc(s))
	}
	return n, nil
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(trunc(x))
	case nil:
		return "null"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// list returns a filter value as a list.
func list(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case []int64:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case []float64:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// boundValues checks a filter's value against the field type and returns
// the values to bind, in order.
func boundValues(f Filter, typ string) ([]any, error) {
	switch f.Op {
	case OpEq, OpNe, OpGt, OpGe, OpLt, OpLe:
		if typ == TypeBoolean && f.Op != OpEq && f.Op != OpNe {
			return nil, fmt.Errorf("operator %q does not apply to a boolean field", f.Op)
		}
		v, err := typedValue(f.Value, typ)
		if err != nil {
			return nil, err
		}
		return []any{v}, nil
	case OpIn, OpNotIn:
		l, ok := list(f.Value)
		if !ok || len(l) == 0 {
			return nil, fmt.Errorf("operator %q wants a non-empty list", f.Op)
		}
		if len(l) > MaxInValues {
			return nil, fmt.Errorf("more than %d values", MaxInValues)
		}
		out := make([]any, len(l))
		for i, x := range l {
			v, err := typedValue(x, typ)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case OpBetween:
		l, ok := list(f.Value)
		if !ok || len(l) != 2 {
			return nil, errors.New("between wants a list of two values")
		}
		if typ == TypeBoolean {
			return nil, errors.New("between does not apply to a boolean field")
		}
		out := make([]any, 2)
		for i, x := range l {
			v, err := typedValue(x, typ)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case OpContains:
		if typ != TypeString {
			return nil, fmt.Errorf("contains applies to string fields, not %s", typ)
		}
		s, ok := f.Value.(string)
		if !ok || s == "" {
			return nil, errors.New("contains wants a non-empty string")
		}
		return []any{s}, nil
	case OpIsNull, OpIsNotNull:
		if f.Value != nil {
			return nil, fmt.Errorf("operator %q takes no value", f.Op)
		}
		return nil, nil
	case OpLast, OpThis, OpToday, OpYesterday:
		if typ != TypeTime {
			return nil, fmt.Errorf("relative date %q applies to time fields only", f.Op)
		}
		if _, _, err := relativeRange(f, time.Unix(0, 0).UTC()); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown operator %q", trunc(f.Op))
}

func checkFilterValue(f Filter, typ string) error {
	_, err := boundValues(f, typ)
	return err
}

// relativeRange returns [from, to) for a relative date filter, in now's
// location. "last N days" is the N×24h before now (to = now); weeks are 7
// days; months are calendar months back from now. Weeks start on Monday.
func relativeRange(f Filter, now time.Time) (from, to time.Time, err error) {
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	switch f.Op {
	case OpToday, OpYesterday:
		if f.Value != nil {
			return from, to, fmt.Errorf("%s takes no value", f.Op)
		}
		if f.Op == OpToday {
			return day, day.AddDate(0, 0, 1), nil
		}
		return day.AddDate(0, 0, -1), day, nil
	case OpThis:
		unit, _ := f.Value.(string)
		switch unit {
		case "week":
			start := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
			return start, start.AddDate(0, 0, 7), nil
		case "month":
			start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
			return start, start.AddDate(0, 1, 0), nil
		case "quarter":
			m := time.Month((int(now.Month())-1)/3*3 + 1)
			start := time.Date(now.Year(), m, 1, 0, 0, 0, 0, now.Location())
			return start, start.AddDate(0, 3, 0), nil
		case "year":
			start := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, now.Location())
			return start, start.AddDate(1, 0, 0), nil
		}
		return from, to, fmt.Errorf("this wants week, month, quarter or year, not %s", describe(f.Value))
	case OpLast:
		s, _ := f.Value.(string)
		ns, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
		n, err := strconv.Atoi(ns)
		if !ok || err != nil || n < 1 || n > 10000 {
			return from, to, fmt.Errorf(`last wants "N days|weeks|months" with 1 ≤ N ≤ 10000, not %s`, describe(f.Value))
		}
		switch strings.TrimSpace(unit) {
		case "day", "days":
			return now.AddDate(0, 0, -n), now, nil
		case "week", "weeks":
			return now.AddDate(0, 0, -7*n), now, nil
		case "month", "months":
			return now.AddDate(0, -n, 0), now, nil
		}
		return from, to, fmt.Errorf(`last wants a unit of days, weeks or months, not %q`, trunc(unit))
	}
	return from, to, fmt.Errorf("%q is not a relative date", trunc(f.Op))
}

// String renders a filter in the compact text form ParseFilter reads.
func (f Filter) String() string {
	var b strings.Builder
	b.WriteString(f.Field)
	b.WriteByte(' ')
	b.WriteString(f.Op)
	switch f.Op {
	case OpIsNull, OpIsNotNull, OpToday, OpYesterday:
	case OpLast, OpThis:
		b.WriteByte(' ')
		b.WriteString(fmt.Sprint(f.Value))
	case OpBetween:
		if l, ok := list(f.Value); ok && len(l) == 2 {
			b.WriteString(" " + literalText(l[0]) + " and " + literalText(l[1]))
		}
	case OpIn, OpNotIn:
		l, _ := list(f.Value)
		parts := make([]string, len(l))
		for i, x := range l {
			parts[i] = literalText(x)
		}
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	default:
		b.WriteString(" " + literalText(f.Value))
	}
	return b.String()
}

func literalText(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case time.Time:
		return "'" + x.Format(time.RFC3339Nano) + "'"
	}
	return fmt.Sprint(v)
}

// ---- parser ----

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tNumber
	tSym
)

type token struct {
	kind tokKind
	text string // words lower-cased except field names (kept in raw)
	raw  string
	val  any
}

const maxFilterText = 64 << 10

func lex(s string) ([]token, error) {
	if len(s) > maxFilterText {
		return nil, fmt.Errorf("filter is longer than %d bytes", maxFilterText)
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("filter is not valid UTF-8")
	}
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated string starting at offset %d", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{kind: tString, raw: s[i : j+1], val: b.String()})
			i = j + 1
		case c >= '0' && c <= '9' || (c == '-' || c == '+' || c == '.') && i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '.'):
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			raw := s[i:j]
			var v any
			if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
				v = n
			} else if f, err := strconv.ParseFloat(raw, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				v = f
			} else {
				return nil, fmt.Errorf("%q is not a number", trunc(raw))
			}
			v, _ = normLiteral(v) // whole floats read as integers, as from JSON
			out = append(out, token{kind: tNumber, raw: raw, val: v})
			i = j
		case c == '_' || c < utf8.RuneSelf && unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] < utf8.RuneSelf && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])))) {
				j++
			}
			out = append(out, token{kind: tWord, raw: s[i:j], text: strings.ToLower(s[i:j])})
			i = j
		default:
			found := false
			for _, sym := range []string{">=", "<=", "!=", "<>", "=", ">", "<", "(", ")", ","} {
				if strings.HasPrefix(s[i:], sym) {
					text := sym
					if sym == "<>" {
						text = "!="
					}
					out = append(out, token{kind: tSym, raw: sym, text: text})
					i += len(sym)
					found = true
					break
				}
			}
			if !found {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, fmt.Errorf("unexpected %q at offset %d", r, i)
			}
		}
	}
	return append(out, token{kind: tEOF}), nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}
func (p *parser) word(w string) bool {
	if t := p.peek(); t.kind == tWord && t.text == w {
		p.pos++
		return true
	}
	return false
}

func (p *parser) literal() (any, error) {
	t := p.next()
	switch t.kind {
	case tString, tNumber:
		return t.val, nil
	case tWord:
		switch t.text {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("want a value ('text', a number, true or false), got %q", trunc(t.raw))
	case tEOF:
		return nil, errors.New("want a value, got the end of the filter")
	}
	return nil, fmt.Errorf("want a value, got %q", t.raw)
}

// ParseFilter reads the compact text form of a filter, e.g.
//
//	region = 'EU'
//	amount between 10 and 20
//	country in ('FR', 'DE')
//	name contains 'acme'
//	closed_at is not null
//	created_at last 7 days | this month | today | yesterday
//
// Strings are single-quoted, a quote inside doubled; keywords are
// case-insensitive.
// It checks syntax only; Compile checks the field and value types.
func ParseFilter(s string) (Filter, error) {
	f, err := parseFilter(s)
	if err != nil {
		return Filter{}, fmt.Errorf("filter %q: %w", trunc(s), err)
	}
	return f, nil
}

func parseFilter(s string) (Filter, error) {
	toks, err := lex(s)
	if err != nil {
		return Filter{}, err
	}
	p := &parser{toks: toks}
	ft := p.next()
	if ft.kind != tWord {
		return Filter{}, errors.New("want a field name first")
	}
	f := Filter{Field: ft.raw}
	if base, grain, ok := strings.Cut(f.Field, "."); !IsName(base) || ok && !validGrain(grain) {
		return Filter{}, fmt.Errorf("%q is not a field name", trunc(f.Field))
	}
	op := p.next()
	switch {
	case op.kind == tSym && isCmp(op.text):
		f.Op = op.text
		if f.Value, err = p.literal(); err != nil {
			return Filter{}, err
		}
	case op.kind == tWord && (op.text == "in" || op.text == "not"):
		f.Op = OpIn
		if op.text == "not" {
			if !p.word("in") {
				return Filter{}, errors.New(`want "in" after "not"`)
			}
			f.Op = OpNotIn
		}
		if t := p.next(); t.kind != tSym || t.text != "(" {
			return Filter{}, fmt.Errorf("want ( after %s", f.Op)
		}
		var vals []any
		for {
			v, err := p.literal()
			if err != nil {
				return Filter{}, err
			}
			vals = append(vals, v)
			if len(vals) > MaxInValues {
				return Filter{}, fmt.Errorf("more than %d values", MaxInValues)
			}
			t := p.next()
			if t.kind == tSym && t.text == ")" {
				break
			}
			if t.kind != tSym || t.text != "," {
				return Filter{}, errors.New("want , or ) in the list")
			}
		}
		f.Value = vals
	case op.kind == tWord && op.text == "between":
		f.Op = OpBetween
		a, err := p.literal()
		if err != nil {
			return Filter{}, err
		}
		if !p.word("and") {
			return Filter{}, errors.New(`want "and" in between`)
		}
		b, err := p.literal()
		if err != nil {
			return Filter{}, err
		}
		f.Value = []any{a, b}
	case op.kind == tWord && op.text == "contains":
		f.Op = OpContains
		t := p.next()
		if t.kind != tString {
			return Filter{}, errors.New("contains wants a 'quoted string'")
		}
		f.Value = t.val
	case op.kind == tWord && op.text == "is":
		f.Op = OpIsNull
		if p.word("not") {
			f.Op = OpIsNotNull
		}
		if !p.word("null") {
			return Filter{}, errors.New(`want "null" after "is"`)
		}
	case op.kind == tWord && op.text == "last":
		f.Op = OpLast
		n := p.next()
		if n.kind != tNumber {
			return Filter{}, errors.New("want a number after last")
		}
		k, ok := n.val.(int64)
		if !ok || k < 1 || k > 10000 {
			return Filter{}, errors.New("last wants a whole number from 1 to 10000")
		}
		u := p.next()
		switch u.text {
		case "day", "days", "week", "weeks", "month", "months":
		default:
			return Filter{}, errors.New("last wants days, weeks or months")
		}
		if u.kind != tWord {
			return Filter{}, errors.New("last wants days, weeks or months")
		}
		f.Value = fmt.Sprintf("%d %s", k, strings.TrimSuffix(u.text, "s")+"s")
	case op.kind == tWord && op.text == "this":
		f.Op = OpThis
		u := p.next()
		if u.kind != tWord || (u.text != "week" && u.text != "month" && u.text != "quarter" && u.text != "year") {
			return Filter{}, errors.New("this wants week, month, quarter or year")
		}
		f.Value = u.text
	case op.kind == tWord && (op.text == "today" || op.text == "yesterday"):
		f.Op = op.text
	case op.kind == tEOF:
		return Filter{}, errors.New("want an operator after the field")
	default:
		return Filter{}, fmt.Errorf("unknown operator %q", trunc(op.raw))
	}
	if t := p.peek(); t.kind != tEOF {
		return Filter{}, fmt.Errorf("unexpected %q after the filter", trunc(t.raw))
	}
	return f, nil
}

func isCmp(s string) bool {
	switch s {
	case OpEq, OpNe, OpGt, OpGe, OpLt, OpLe:
		return true
	}
	return false
}
