package queries

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/ent/schema/types"
)

// Date is a bound calendar date (a date parameter), as opposed to a
// timestamp (a datetime parameter).
type Date struct{ time.Time }

// Parameter types.
const (
	TypeText     = "text"
	TypeNumber   = "number"
	TypeDate     = "date"
	TypeDatetime = "datetime"
	TypeBoolean  = "boolean"
	TypeEnum     = "enum"
	TypeList     = "list"
)

var scalarTypes = []string{TypeText, TypeNumber, TypeDate, TypeDatetime, TypeBoolean, TypeEnum}

// Limits on parameters.
const (
	MaxParameters = 64
	MaxTextLen    = 10_000
	MaxListItems  = 1_000
)

// CheckDefinitions validates parameter declarations and that every
// placeholder in sql is declared (and every declaration used).
func CheckDefinitions(sql string, defs []types.QueryParameter) error {
	if len(defs) > MaxParameters {
		return errs.Invalid("parameters", fmt.Sprintf("at most %d parameters", MaxParameters))
	}
	declared := map[string]bool{}
	for i, d := range defs {
		field := fmt.Sprintf("parameters[%d]", i)
		if !paramName.MatchString(d.Name) {
			return errs.Invalid(field+".name", "parameter names are letters, digits and _, starting with a letter or _")
		}
		if declared[d.Name] {
			return errs.Invalid(field+".name", "parameter "+d.Name+" is declared twice")
		}
		declared[d.Name] = true
		switch d.Type {
		case TypeEnum:
			if len(d.Options) == 0 || len(d.Options) > 1000 {
				return errs.Invalid(field+".options", "an enum needs between 1 and 1000 options")
			}
		case TypeList:
			if !slices.Contains(scalarTypes, d.ItemType) || d.ItemType == TypeBoolean {
				return errs.Invalid(field+".item_type", "item_type must be text, number, date, datetime or enum")
			}
			if d.ItemType == TypeEnum && len(d.Options) == 0 {
				return errs.Invalid(field+".options", "a list of enum items needs options")
			}
		default:
			if !slices.Contains(scalarTypes, d.Type) {
				return errs.Invalid(field+".type", "type must be text, number, date, datetime, boolean, enum or list")
			}
		}
		if d.Default != nil {
			if _, err := convert(d, d.Default); err != nil {
				return errs.Invalid(field+".default", "default: "+err.Error())
			}
		}
	}
	used := Placeholders(sql)
	for _, name := range used {
		if !declared[name] {
			return errs.Invalid("parameters", "placeholder {{"+name+"}} has no parameter declaration")
		}
	}
	for _, d := range defs {
		if !slices.Contains(used, d.Name) {
			return errs.Invalid("parameters", "parameter "+d.Name+" is not used in the SQL")
		}
	}
	return nil
}

// Bind checks the given values against the declarations (applying defaults)
// and returns the typed values to bind: string, int64, float64, bool,
// time.Time, or []any of those for lists.
func Bind(defs []types.QueryParameter, given map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(defs))
	for name := range given {
		if !slices.ContainsFunc(defs, func(d types.QueryParameter) bool { return d.Name == name }) {
			return nil, errs.Invalid("parameters."+truncate(name, 64), "unknown parameter")
		}
	}
	for _, d := range defs {
		v, ok := given[d.Name]
		if !ok || v == nil {
			// Without a value or a default there is nothing to bind: every
			// placeholder needs one, required or not.
			if d.Default == nil {
				return nil, errs.Invalid("parameters."+d.Name, "a value is required")
			}
			v = d.Default
		}
		typed, err := convert(d, v)
		if err != nil {
			return nil, errs.Invalid("parameters."+d.Name, err.Error())
		}
		out[d.Name] = typed
	}
	return out, nil
}

func convert(d types.QueryParameter, v any) (any, error) {
	if d.Type == TypeList {
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("want a list")
		}
		if len(items) == 0 || len(items) > MaxListItems {
			return nil, fmt.Errorf("want between 1 and %d items", MaxListItems)
		}
		out := make([]any, len(items))
		item := types.QueryParameter{Name: d.Name, Type: d.ItemType, Options: d.Options}
		for i, it := range items {
			c, err := convertScalar(item, it)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	}
	return convertScalar(d, v)
}

func convertScalar(d types.QueryParameter, v any) (any, error) {
	switch d.Type {
	case TypeText:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want text")
		}
		if len(s) > MaxTextLen || strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("text must be at most %d bytes without NUL", MaxTextLen)
		}
		return s, nil
	case TypeEnum:
		s, ok := v.(string)
		if !ok || !slices.Contains(d.Options, s) {
			return nil, fmt.Errorf("want one of %s", strings.Join(d.Options, ", "))
		}
		return s, nil
	case TypeNumber:
		var f float64
		switch n := v.(type) {
		case float64:
			f = n
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		case json.Number:
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
			var err error
			if f, err = n.Float64(); err != nil {
				return nil, fmt.Errorf("want a number")
			}
		default:
			return nil, fmt.Errorf("want a number")
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("want a finite number")
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want true or false")
		}
		return b, nil
	case TypeDate:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a date YYYY-MM-DD")
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, fmt.Errorf("want a date YYYY-MM-DD")
		}
		return Date{t}, nil
	case TypeDatetime:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want an RFC 3339 date-time")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("want an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z")
		}
		return t.UTC(), nil
	}
	return nil, fmt.Errorf("unknown type %q", d.Type)
}
