// Package wire holds the host's half of the SDK's conversions: encoding Go
// parameter values into the protocol, and reading a Query stream back as one
// Arrow IPC stream. The host and the SDK's own tests use it; connector
// authors never need it.
package wire

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	"github.com/datapulse/datapulse/plugins/sdk"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
)

// EncodeParams turns Go values into protocol parameters. Accepted: nil,
// bool, any Go integer (within int64), float32/float64 (finite), string,
// []byte (as text; strings must be valid UTF-8), time.Time (sent as UTC
// microseconds), sdk.Date, and []any / []string / []int64 / []float64 of
// scalars (a list parameter).
func EncodeParams(values []any) ([]*connectorv1.Parameter, error) {
	if len(values) > sdk.MaxParams {
		return nil, fmt.Errorf("too many parameters: %d (at most %d)", len(values), sdk.MaxParams)
	}
	out := make([]*connectorv1.Parameter, len(values))
	for i, v := range values {
		p, err := encode(v, true)
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		out[i] = p
	}
	return out, nil
}

func encode(v any, listOK bool) (*connectorv1.Parameter, error) {
	switch x := v.(type) {
	case nil:
		return &connectorv1.Parameter{Value: &connectorv1.Parameter_Null{Null: true}}, nil
	case bool:
		return &connectorv1.Parameter{Value: &connectorv1.Parameter_Bool{Bool: x}}, nil
	case int:
		return intParam(int64(x)), nil
	case int8:
		return intParam(int64(x)), nil
	case int16:
		return intParam(int64(x)), nil
	case int32:
		return intParam(int64(x)), nil
	case int64:
		return intParam(x), nil
	case uint8:
		return intParam(int64(x)), nil
	case uint16:
		return intParam(int64(x)), nil
	case uint32:
		return intParam(int64(x)), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit in int64", x)
		}
		return intParam(int64(x)), nil
	case uint64:
		if x > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit in int64", x)
		}
		return intParam(int64(x)), nil
	case float32:
		return floatParam(float64(x))
	case float64:
		return floatParam(x)
	case string:
		return textParam(x)
	case []byte:
		return textParam(string(x))
	case time.Time:
		return &connectorv1.Parameter{Value: &connectorv1.Parameter_TimestampUs{TimestampUs: x.UnixMicro()}}, nil
	case sdk.Date:
		return &connectorv1.Parameter{Value: &connectorv1.Parameter_DateDays{DateDays: x.DaysSinceEpoch()}}, nil
	case []any:
		return listParam(len(x), listOK, func(i int) any { return x[i] })
	case []string:
		return listParam(len(x), listOK, func(i int) any { return x[i] })
	case []int64:
		return listParam(len(x), listOK, func(i int) any { return x[i] })
	case []float64:
		return listParam(len(x), listOK, func(i int) any { return x[i] })
	}
	return nil, fmt.Errorf("unsupported parameter type %T", v)
}

func textParam(s string) (*connectorv1.Parameter, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("text is not valid UTF-8")
	}
	return &connectorv1.Parameter{Value: &connectorv1.Parameter_Text{Text: s}}, nil
}

func intParam(x int64) *connectorv1.Parameter {
	return &connectorv1.Parameter{Value: &connectorv1.Parameter_Int{Int: x}}
}

func floatParam(x float64) (*connectorv1.Parameter, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil, errors.New("not a finite number")
	}
	return &connectorv1.Parameter{Value: &connectorv1.Parameter_Float{Float: x}}, nil
}

func listParam(n int, listOK bool, at func(int) any) (*connectorv1.Parameter, error) {
	if !listOK {
		return nil, errors.New("a list cannot contain a list")
	}
	if n > sdk.MaxListParamLen {
		return nil, fmt.Errorf("list of %d values (at most %d)", n, sdk.MaxListParamLen)
	}
	vals := make([]*connectorv1.Parameter, n)
	for i := range n {
		p, err := encode(at(i), false)
		if err != nil {
			return nil, fmt.Errorf("list value %d: %w", i+1, err)
		}
		vals[i] = p
	}
	return &connectorv1.Parameter{Value: &connectorv1.Parameter_List{List: &connectorv1.ParameterList{Values: vals}}}, nil
}

// ResultStream reads a Query response stream as one Arrow IPC stream: pass
// it to ipc.NewReader. It checks the framing (IPC bytes, then exactly one
// trailer, then the end of the stream) and counts messages and bytes.
type ResultStream struct {
	recv    func() (*connectorv1.QueryResponse, error)
	cur     []byte
	trailer *connectorv1.Trailer
	err     error

	// Messages is the number of arrow_ipc messages read so far.
	Messages int
	// Bytes is the number of IPC bytes read so far.
	Bytes int64
	// MaxMessage is the largest arrow_ipc message so far.
	MaxMessage int
	// Sizes lists every arrow_ipc message's size, in order.
	Sizes []int
	// First is the first arrow_ipc message (it must begin with the schema).
	First []byte
}

// Receiver is what a Query stream client offers.
type Receiver interface {
	Recv() (*connectorv1.QueryResponse, error)
}

// NewResultStream reads from a Query stream.
func NewResultStream(stream Receiver) *ResultStream {
	return &ResultStream{recv: stream.Recv}
}

// ErrNoTrailer is returned when the stream ends without a trailer.
var ErrNoTrailer = errors.New("connector stream ended without a trailer")

func (r *ResultStream) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		msg, err := r.recv()
		if err == io.EOF {
			if r.trailer == nil {
				r.err = ErrNoTrailer
			} else {
				r.err = io.EOF
			}
			continue
		}
		if err != nil {
			r.err = err
			continue
		}
		switch m := msg.GetMsg().(type) {
		case *connectorv1.QueryResponse_ArrowIpc:
			if r.trailer != nil {
				r.err = errors.New("connector sent data after the trailer")
				continue
			}
			r.Messages++
			r.Bytes += int64(len(m.ArrowIpc))
			r.MaxMessage = max(r.MaxMessage, len(m.ArrowIpc))
			r.Sizes = append(r.Sizes, len(m.ArrowIpc))
			if r.Messages == 1 {
				r.First = m.ArrowIpc
			}
			r.cur = m.ArrowIpc
		case *connectorv1.QueryResponse_Trailer:
			if r.trailer != nil {
				r.err = errors.New("connector sent two trailers")
				continue
			}
			r.trailer = m.Trailer
		default:
			r.err = fmt.Errorf("connector sent an unknown message %T", m)
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Drain reads what is left of the stream, so that the trailer is seen.
func (r *ResultStream) Drain() error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// Trailer returns the trailer once it has been read (nil before).
func (r *ResultStream) Trailer() *connectorv1.Trailer { return r.trailer }

// Err returns the error that ended the stream (io.EOF after a clean end).
func (r *ResultStream) Err() error { return r.err }
