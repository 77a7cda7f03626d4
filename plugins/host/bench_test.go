package host_test

// Benchmarks of the connector path. Run them the same way everywhere:
//
//	go test ./plugins/host -run '^$' -bench . -benchtime 2000x   (small query)
//	go test ./plugins/host -run '^$' -bench Large -benchtime 10x
//
// BenchmarkSmallQuery reports the per-call latency of a 1-row query through
// a connector subprocess (p50/p99 in µs; target ≤ 500 µs p50) next to the
// same 1-row stream encoded and decoded in-process. BenchmarkLargeResult
// reports rows/s of a 1,000,000-row × 5-column result through the
// subprocess (gRPC over a Unix socket with AutoMTLS, host-side validation)
// versus decoding and validating the same IPC stream in-process.

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/datapulse/datapulse/plugins/host"
)

func benchHost(b *testing.B) *host.Host {
	b.Helper()
	h, err := host.New(context.Background(), host.Options{
		Executable: fakeconn, Builtins: []string{"fake"}, MaxRows: 10_000_000, MaxBytes: 1 << 30,
		Logger: discardLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	// Warm up: start the process, establish the connection.
	for i := 0; i < 50; i++ {
		runQuery(b, h, "rows 1")
	}
	return h
}

func runQuery(b *testing.B, h *host.Host, sql string) int64 {
	res, err := h.Query(context.Background(), "fake", ds, host.Query{SQL: sql})
	if err != nil {
		b.Fatal(err)
	}
	defer res.Close()
	for {
		err := next(res)
		if err == io.EOF {
			return res.Rows()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func percentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	p := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkSmallQuery(b *testing.B) {
	b.Run("subprocess", func(b *testing.B) {
		h := benchHost(b)
		d := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t := time.Now()
			if n := runQuery(b, h, "rows 1"); n != 1 {
				b.Fatalf("%d rows", n)
			}
			d = append(d, time.Since(t))
		}
		percentiles(b, d)
	})
	b.Run("in-process", func(b *testing.B) {
		// The same 1-row result built, encoded and decoded without a process
		// boundary: the part of the latency the connector path does not add.
		d := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t := time.Now()
			rec := benchBatch(0, 1)
			var buf bytes.Buffer
			w := ipc.NewWriter(&buf, ipc.WithSchema(benchSchema))
			_ = w.Write(rec)
			_ = w.Close()
			rec.Release()
			if n := decodeAll(b, buf.Bytes()); n != 1 {
				b.Fatalf("%d rows", n)
			}
			d = append(d, time.Since(t))
		}
		percentiles(b, d)
	})
}

const largeRows = 1_000_000

func BenchmarkLargeResult(b *testing.B) {
	b.Run("subprocess", func(b *testing.B) {
		h := benchHost(b)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if n := runQuery(b, h, "rows "+strconv.Itoa(largeRows)+" batch 65536 fixed"); n != largeRows {
				b.Fatalf("%d rows", n)
			}
		}
		b.ReportMetric(float64(largeRows*b.N)/time.Since(start).Seconds(), "rows/s")
	})
	b.Run("in-process-decode", func(b *testing.B) {
		stream := encodeLarge(b)
		b.SetBytes(int64(len(stream)))
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if n := decodeAll(b, stream); n != largeRows {
				b.Fatalf("%d rows", n)
			}
		}
		b.ReportMetric(float64(largeRows*b.N)/time.Since(start).Seconds(), "rows/s")
	})
}

// encodeLarge encodes the stream the connector sends for
// "rows 1000000 batch 65536 fixed": the same 65,536-row batch repeated,
// then the remainder.
func encodeLarge(b *testing.B) []byte {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(benchSchema))
	full := benchBatch(0, 65536)
	defer full.Release()
	for from := int64(0); from < largeRows; from += 65536 {
		k := min(65536, largeRows-from)
		rec := full
		if k < 65536 {
			rec = benchBatch(from, k)
			defer rec.Release()
		}
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// decodeAll does what the host does with each batch: decode and validate.
func decodeAll(b *testing.B, stream []byte) int64 {
	rd, err := ipc.NewReader(bytes.NewReader(stream))
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Release()
	var n int64
	for rd.Next() {
		rec := rd.RecordBatch()
		if err := array.ValidateRecordFull(rec); err != nil {
			b.Fatal(err)
		}
		n += rec.NumRows()
	}
	if rd.Err() != nil {
		b.Fatal(rd.Err())
	}
	return n
}

// benchSchema and benchBatch mirror fakeconn's result.
var benchSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

func benchBatch(from, n int64) arrow.RecordBatch {
	bld := array.NewRecordBuilder(memory.DefaultAllocator, benchSchema)
	defer bld.Release()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := from; i < from+n; i++ {
		bld.Field(0).(*array.Int64Builder).Append(i)
		if i%10 == 9 {
			bld.Field(1).(*array.StringBuilder).AppendNull()
		} else {
			bld.Field(1).(*array.StringBuilder).Append("row-" + strconv.FormatInt(i, 10) + strings.Repeat("x", 0))
		}
		bld.Field(2).(*array.Float64Builder).Append(float64(i) * 0.5)
		bld.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(base + i*1_000_000))
		bld.Field(4).(*array.BooleanBuilder).Append(i%2 == 0)
	}
	return bld.NewRecordBatch()
}
