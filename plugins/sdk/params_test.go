package sdk_test

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/wire"
)

var ts = time.Date(2025, 3, 4, 5, 6, 7, 891234000, time.FixedZone("x", 3600))

// Go values go to the protocol and come back as the documented Go types.
func TestParamsRoundTrip(t *testing.T) {
	in := []any{nil, true, 42, int64(-7), uint32(9), 3.5, float32(0.25), "it's \"quoted\" '; DROP TABLE x; --", []byte("b"), ts,
		sdk.Date{Year: 1969, Month: 12, Day: 31}, []any{int64(1), "two", nil}, []string{"a", "b"}, []int64{}}
	want := []any{nil, true, int64(42), int64(-7), int64(9), 3.5, 0.25, "it's \"quoted\" '; DROP TABLE x; --", "b", ts.UTC().Truncate(time.Microsecond),
		sdk.Date{Year: 1969, Month: 12, Day: 31}, []any{int64(1), "two", nil}, []any{"a", "b"}, []any{}}
	ps, err := wire.EncodeParams(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sdk.DecodeParams(ps)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\ngot  %#v\nwant %#v", got, want)
	}

	// And through a real call.
	g := newGen()
	cc := startGen(t, g)
	res, err := runQuery(t, context.Background(), cc, "echo", nil, in...)
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	seen := g.lastParams
	g.mu.Unlock()
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("connector saw %#v", seen)
	}
	if res.rows[7][0] != "it's \"quoted\" '; DROP TABLE x; --" || res.rows[0][0] != nil || res.rows[9][1] != "time.Time" || res.rows[10][0] != "1969-12-31" {
		t.Fatalf("rows %v", res.rows)
	}
}

func TestParamsRejected(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), []any{[]any{1}}, struct{}{}, uint64(math.MaxUint64)} {
		if _, err := wire.EncodeParams([]any{v}); err == nil {
			t.Errorf("%#v encoded", v)
		}
	}
	for name, p := range map[string]*connectorv1.Parameter{
		"empty":       {},
		"nested list": {Value: &connectorv1.Parameter_List{List: &connectorv1.ParameterList{Values: []*connectorv1.Parameter{{Value: &connectorv1.Parameter_List{List: &connectorv1.ParameterList{}}}}}}},
		"nan":         {Value: &connectorv1.Parameter_Float{Float: math.NaN()}},
		"nil in list": {Value: &connectorv1.Parameter_List{List: &connectorv1.ParameterList{Values: []*connectorv1.Parameter{nil}}}},
	} {
		if _, err := sdk.DecodeParams([]*connectorv1.Parameter{p}); sdk.CodeOf(err) != sdk.CodeInvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Over the wire, a bad parameter is InvalidArgument before the
	// connector runs.
	cc := startGen(t, newGen())
	stream, err := cc.Query(context.Background(), &connectorv1.QueryRequest{Ds: dsCtx(), Sql: "echo", Params: []*connectorv1.Parameter{{}}})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v", err)
	}
}

// FuzzDecodeParams feeds arbitrary protocol bytes to the server's parameter
// decoding: it must never panic, and whatever it accepts must survive
// another trip through the host's encoder unchanged.
func FuzzDecodeParams(f *testing.F) {
	seeds := [][]any{
		{nil, true, int64(1), 1.5, "x", ts, sdk.Date{Year: 2024, Month: 2, Day: 29}},
		{[]any{int64(1), int64(2)}, "'; DROP TABLE x; --"},
		{math.MaxInt64, math.MinInt64, -0.0, math.SmallestNonzeroFloat64},
	}
	for _, s := range seeds {
		ps, err := wire.EncodeParams(s)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.Marshal(&connectorv1.QueryRequest{Params: ps})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x1a, 0x02, 0x4a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req connectorv1.QueryRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return
		}
		vals, err := sdk.DecodeParams(req.GetParams())
		if err != nil {
			if sdk.CodeOf(err) != sdk.CodeInvalidArgument {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if len(vals) != len(req.GetParams()) {
			t.Fatalf("%d values for %d parameters", len(vals), len(req.GetParams()))
		}
		ps, err := wire.EncodeParams(vals)
		if err != nil {
			t.Fatalf("decoded values do not encode: %v (%#v)", err, vals)
		}
		again, err := sdk.DecodeParams(ps)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(vals, again) {
			t.Fatalf("round trip changed\n%#v\n%#v", vals, again)
		}
	})
}

// FuzzParamsRoundTrip: typed Go values survive host encoding and connector
// decoding.
func FuzzParamsRoundTrip(f *testing.F) {
	f.Add(int64(0), 0.0, "", false, int64(0), int32(0))
	f.Add(int64(math.MinInt64), -1e308, "'; DROP TABLE x; --\x00é", true, int64(-62135596800000000), int32(-719162))
	f.Fuzz(func(t *testing.T, i int64, fl float64, s string, b bool, us int64, days int32) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) || !utf8.ValidString(s) {
			return
		}
		tm := time.UnixMicro(us).UTC()
		d := sdk.DateFromDays(days)
		in := []any{i, fl, s, b, tm, d, []any{i, s}}
		ps, err := wire.EncodeParams(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := sdk.DecodeParams(ps)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("\nin  %#v\nout %#v", in, out)
		}
		if d.DaysSinceEpoch() != days {
			t.Fatalf("date %d -> %v -> %d", days, d, d.DaysSinceEpoch())
		}
	})
}
