package sdk

import (
	"fmt"
	"math"
	"time"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
)

// Bounds on what a request may carry.
const (
	// MaxParams is the most positional parameters a query may have.
	MaxParams = 10000
	// MaxListParamLen is the most values in one list parameter.
	MaxListParamLen = 100000
)

// decodeParams turns the protocol's parameters into the Go values Query.Params
// documents. Lists hold scalars only.
func decodeParams(ps []*connectorv1.Parameter) ([]any, error) {
	if len(ps) > MaxParams {
		return nil, Errorf(CodeInvalidArgument, "too many parameters: %d (at most %d)", len(ps), MaxParams)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	out := make([]any, len(ps))
	for i, p := range ps {
		v, err := decodeParam(p, true)
		if err != nil {
			return nil, Errorf(CodeInvalidArgument, "parameter %d: %v", i+1, err)
		}
		out[i] = v
	}
	return out, nil
}

func decodeParam(p *connectorv1.Parameter, listOK bool) (any, error) {
	if p == nil {
		return nil, fmt.Errorf("missing")
	}
	switch v := p.GetValue().(type) {
	case *connectorv1.Parameter_Null:
		return nil, nil
	case *connectorv1.Parameter_Bool:
		return v.Bool, nil
	case *connectorv1.Parameter_Int:
		return v.Int, nil
	case *connectorv1.Parameter_Float:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return nil, fmt.Errorf("not a finite number")
		}
		return v.Float, nil
	case *connectorv1.Parameter_Text:
		return v.Text, nil
	case *connectorv1.Parameter_TimestampUs:
		return time.UnixMicro(v.TimestampUs).UTC(), nil
	case *connectorv1.Parameter_DateDays:
		return DateFromDays(v.DateDays), nil
	case *connectorv1.Parameter_List:
		if !listOK {
			return nil, fmt.Errorf("a list cannot contain a list")
		}
		vals := v.List.GetValues()
		if len(vals) > MaxListParamLen {
			return nil, fmt.Errorf("list of %d values (at most %d)", len(vals), MaxListParamLen)
		}
		list := make([]any, len(vals))
		for j, e := range vals {
			x, err := decodeParam(e, false)
			if err != nil {
				return nil, fmt.Errorf("list value %d: %v", j+1, err)
			}
			list[j] = x
		}
		return list, nil
	case nil:
		return nil, fmt.Errorf("no value")
	default:
		return nil, fmt.Errorf("unsupported value type %T", v)
	}
}
