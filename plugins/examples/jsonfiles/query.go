package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// statement is a parsed query.
type statement struct {
	items  []item
	table  string
	where  []condition
	limit  int64 // -1: none
	params int   // number of '?'
}

type item struct {
	star   bool
	column string
	param  int // index of the parameter, or -1
	sleep  float64
}

type condition struct {
	column string
	op     string
	param  int // index of the parameter, or -1
	value  any // literal when param < 0
}

type compiled struct {
	col   string
	op    string
	value any
}

type tokenizer struct {
	toks []string
	pos  int
}

// tokenize splits a query into words, symbols and quoted strings (kept with
// their quotes).
func tokenize(s string) ([]string, error) {
	var toks []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '\'':
			var b strings.Builder
			b.WriteRune('\'')
			j := i + 1
			for ; j < len(rs); j++ {
				if rs[j] == '\'' {
					if j+1 < len(rs) && rs[j+1] == '\'' {
						b.WriteRune('\'')
						j++
						continue
					}
					break
				}
				b.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New("unterminated string")
			}
			toks = append(toks, b.String())
			i = j + 1
		case strings.ContainsRune("*,?()", r):
			toks = append(toks, string(r))
			i++
		case strings.ContainsRune("=<>!", r):
			if i+1 < len(rs) && rs[i+1] == '=' {
				toks = append(toks, string(rs[i:i+2]))
				i += 2
			} else {
				toks = append(toks, string(r))
				i++
			}
		case r == '"':
			j := i + 1
			for j < len(rs) && rs[j] != '"' {
				j++
			}
			if j >= len(rs) {
				return nil, errors.New("unterminated quoted name")
			}
			toks = append(toks, `"`+string(rs[i+1:j]))
			i = j + 1
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.':
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_' || rs[j] == '-' || rs[j] == '.') {
				j++
			}
			toks = append(toks, string(rs[i:j]))
			i = j
		case r == ';':
			return nil, errors.New("one statement only")
		default:
			return nil, fmt.Errorf("unexpected %q", r)
		}
	}
	return toks, nil
}

func (t *tokenizer) peek() string {
	if t.pos < len(t.toks) {
		return t.toks[t.pos]
	}
	return ""
}

func (t *tokenizer) next() string {
	s := t.peek()
	t.pos++
	return s
}

func (t *tokenizer) keyword(k string) bool {
	if strings.EqualFold(t.peek(), k) {
		t.pos++
		return true
	}
	return false
}

// name reads an identifier (bare or "quoted").
func (t *tokenizer) name() (string, error) {
	s := t.next()
	if strings.HasPrefix(s, `"`) {
		return s[1:], nil
	}
	if s == "" || strings.ContainsAny(s[:1], "*,?()=<>!'") {
		return "", fmt.Errorf("expected a name, got %q", s)
	}
	return s, nil
}

func parse(q string) (*statement, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	t := &tokenizer{toks: toks}
	st := &statement{limit: -1}
	if !t.keyword("SELECT") {
		return nil, errors.New("only SELECT queries are supported: the connector is read-only")
	}
	for {
		switch {
		case t.peek() == "*":
			t.next()
			st.items = append(st.items, item{star: true, param: -1})
		case t.peek() == "?":
			t.next()
			st.items = append(st.items, item{param: st.params})
			st.params++
		case strings.EqualFold(t.peek(), "sleep"):
			t.next()
			if t.next() != "(" {
				return nil, errors.New("sleep takes (seconds)")
			}
			secs, err := strconv.ParseFloat(t.next(), 64)
			if err != nil || secs <= 0 || secs > 300 {
				return nil, errors.New("sleep takes 0 < seconds <= 300")
			}
			if t.next() != ")" {
				return nil, errors.New("sleep takes (seconds)")
			}
			st.items = append(st.items, item{sleep: secs, param: -1})
		default:
			n, err := t.name()
			if err != nil {
				return nil, err
			}
			st.items = append(st.items, item{column: n, param: -1})
		}
		if t.peek() != "," {
			break
		}
		t.next()
	}
	if t.keyword("FROM") {
		if st.table, err = t.name(); err != nil {
			return nil, err
		}
		if t.keyword("WHERE") {
			for {
				col, err := t.name()
				if err != nil {
					return nil, err
				}
				op := t.next()
				switch op {
				case "=", "!=", "<", "<=", ">", ">=":
				default:
					return nil, fmt.Errorf("unknown operator %q", op)
				}
				c := condition{column: col, op: op, param: -1}
				v := t.next()
				switch {
				case v == "?":
					c.param = st.params
					st.params++
				case strings.HasPrefix(v, "'"):
					c.value = v[1:]
				case strings.EqualFold(v, "true"), strings.EqualFold(v, "false"):
					c.value = strings.EqualFold(v, "true")
				case strings.EqualFold(v, "null"):
					c.value = nil
				default:
					f, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return nil, fmt.Errorf("bad value %q", v)
					}
					c.value = f
				}
				st.where = append(st.where, c)
				if !t.keyword("AND") {
					break
				}
			}
		}
	}
	if t.keyword("LIMIT") {
		n, err := strconv.ParseInt(t.next(), 10, 64)
		if err != nil || n < 0 {
			return nil, errors.New("LIMIT takes a non-negative integer")
		}
		st.limit = n
	}
	if t.pos < len(t.toks) {
		return nil, fmt.Errorf("unexpected %q", t.peek())
	}
	for _, it := range st.items {
		if st.table == "" && (it.star || it.column != "") {
			return nil, errors.New("columns need FROM")
		}
	}
	return st, nil
}

// matches evaluates the WHERE conditions on one object.
func matches(obj map[string]any, conds []compiled) bool {
	for _, c := range conds {
		if !compare(obj[c.col], c.op, c.value) {
			return false
		}
	}
	return true
}

func compare(a any, op string, b any) bool {
	if a == nil || b == nil {
		eq := a == nil && b == nil
		return (op == "=" && eq) || (op == "!=" && !eq)
	}
	var cmp int
	switch x := a.(type) {
	case json.Number:
		f, err := x.Float64()
		g, ok := toFloat(b)
		if err != nil || !ok {
			return op == "!="
		}
		cmp = compareOrdered(f, g)
	case string:
		y, ok := b.(string)
		if !ok {
			return op == "!="
		}
		cmp = strings.Compare(x, y)
	case bool:
		y, ok := b.(bool)
		if !ok {
			return op == "!="
		}
		if x == y {
			cmp = 0
		} else if !x {
			cmp = -1
		} else {
			cmp = 1
		}
	default:
		return op == "!="
	}
	switch op {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	}
	return cmp >= 0
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func compareOrdered(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
