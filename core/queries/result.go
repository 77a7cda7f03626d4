package queries

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Column describes one result column.
type Column struct {
	Name string `json:"name"`
	// Type is integer, number, decimal, text, boolean, timestamp, date,
	// time, binary or other.
	Type string `json:"type"`
	// ArrowType is the exact Arrow type the connector sent.
	ArrowType string `json:"arrow_type"`
}

// Batches is a stream of result batches (plugins/host.Result implements it).
type Batches interface {
	Schema() *arrow.Schema
	// Next returns the next batch, or io.EOF after the last.
	Next() (arrow.RecordBatch, error)
	Truncated() bool
	Close()
}

func columnsOf(s *arrow.Schema) []Column {
	cols := make([]Column, s.NumFields())
	for i, f := range s.Fields() {
		cols[i] = Column{Name: f.Name, Type: friendlyType(f.Type), ArrowType: f.Type.String()}
	}
	return cols
}

func friendlyType(t arrow.DataType) string {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return "integer"
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return "number"
	case arrow.DECIMAL128, arrow.DECIMAL256, arrow.DECIMAL32, arrow.DECIMAL64:
		return "decimal"
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return "text"
	case arrow.BOOL:
		return "boolean"
	case arrow.TIMESTAMP:
		return "timestamp"
	case arrow.DATE32, arrow.DATE64:
		return "date"
	case arrow.TIME32, arrow.TIME64:
		return "time"
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY, arrow.BINARY_VIEW:
		return "binary"
	}
	return "other"
}

// value returns row i of column a as a JSON-friendly Go value.
func value(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch c := a.(type) {
	case *array.Int8:
		return int64(c.Value(i))
	case *array.Int16:
		return int64(c.Value(i))
	case *array.Int32:
		return int64(c.Value(i))
	case *array.Int64:
		return c.Value(i)
	case *array.Uint8:
		return uint64(c.Value(i))
	case *array.Uint16:
		return uint64(c.Value(i))
	case *array.Uint32:
		return uint64(c.Value(i))
	case *array.Uint64:
		return c.Value(i)
	case *array.Float32:
		return finite(float64(c.Value(i)))
	case *array.Float64:
		return finite(c.Value(i))
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		return c.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano)
	case *array.Date32:
		return c.Value(i).ToTime().Format(time.DateOnly)
	case *array.Date64:
		return c.Value(i).ToTime().Format(time.DateOnly)
	case *array.Binary:
		return base64.StdEncoding.EncodeToString(c.Value(i))
	}
	return a.ValueStr(i)
}

// finite: JSON has no NaN or infinity; they become null.
func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// Prefetch reads the first batch before anything is written to the client,
// so that errors the source reports at once (bad SQL, refused statement,
// connector down) still become a proper error status. The batch is replayed
// by the returned stream.
func Prefetch(b Batches) (Batches, error) {
	rec, err := b.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		b.Close()
		return nil, err
	}
	return &prefetched{Batches: b, first: rec, eof: errors.Is(err, io.EOF)}, nil
}

type prefetched struct {
	Batches
	first arrow.RecordBatch
	eof   bool
	used  bool
}

func (p *prefetched) Next() (arrow.RecordBatch, error) {
	if !p.used {
		p.used = true
		if p.eof {
			return nil, io.EOF
		}
		return p.first, nil
	}
	if p.eof {
		return nil, io.EOF
	}
	return p.Batches.Next()
}

// Result is a finished, buffered query result (the JSON output).
type Result struct {
	Columns   []Column `json:"columns"`
	Rows      [][]any  `json:"rows"`
	RowCount  int      `json:"row_count"`
	Truncated bool     `json:"truncated"`
	ElapsedMS int64    `json:"elapsed_ms"`
}

// Collect reads every batch into a Result.
func Collect(b Batches, started time.Time) (Result, error) {
	defer b.Close()
	r := Result{Columns: columnsOf(b.Schema()), Rows: [][]any{}}
	err := each(b, func(rec arrow.RecordBatch, i int) error {
		row := make([]any, rec.NumCols())
		for c := range row {
			row[c] = value(rec.Column(c), i)
		}
		r.Rows = append(r.Rows, row)
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	r.RowCount = len(r.Rows)
	r.Truncated = b.Truncated()
	r.ElapsedMS = time.Since(started).Milliseconds()
	return r, nil
}

func each(b Batches, fn func(rec arrow.RecordBatch, row int) error) error {
	for {
		rec, err := b.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if err := fn(rec, i); err != nil {
				rec.Release()
				return err
			}
		}
		rec.Release()
	}
}

// WriteNDJSON streams one JSON object per row ({"column": value, …}); the
// last line is {"_meta": {"row_count", "truncated", "columns"}}.
func WriteNDJSON(w io.Writer, b Batches, started time.Time) error {
	defer b.Close()
	cols := columnsOf(b.Schema())
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	keys := make([][]byte, len(cols))
	for c, col := range cols {
		keys[c], _ = json.Marshal(col.Name)
	}
	n := 0
	// Each row is built whole before it goes to bw, so bw only ever holds
	// complete lines: after a failure they are flushed and the caller's
	// error line starts on a line of its own.
	var row bytes.Buffer
	err := each(b, func(rec arrow.RecordBatch, i int) error {
		// Written by hand to keep the columns in result order.
		row.Reset()
		row.WriteByte('{')
		for c := range cols {
			if c > 0 {
				row.WriteByte(',')
			}
			row.Write(keys[c])
			row.WriteByte(':')
			v, err := json.Marshal(value(rec.Column(c), i))
			if err != nil {
				return err
			}
			row.Write(v)
		}
		n++
		row.WriteString("}\n")
		_, err := bw.Write(row.Bytes())
		return err
	})
	if err != nil {
		bw.Flush() //nolint:errcheck // the first error is the one to report
		return err
	}
	if err := enc.Encode(map[string]any{"_meta": map[string]any{
		"row_count": n, "truncated": b.Truncated(), "columns": cols, "elapsed_ms": time.Since(started).Milliseconds(),
	}}); err != nil {
		return err
	}
	return bw.Flush()
}

// WriteCSV streams a header and one line per row. Text cells that a
// spreadsheet would run as a formula (starting with = + - @, tab or CR) are
// prefixed with a quote, so an export can never execute in Excel.
func WriteCSV(w io.Writer, b Batches) error {
	defer b.Close()
	cols := columnsOf(b.Schema())
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = safeCell(c.Name)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(cols))
	err := each(b, func(batch arrow.RecordBatch, i int) error {
		for c, col := range cols {
			v := value(batch.Column(c), i)
			switch x := v.(type) {
			case nil:
				rec[c] = ""
			case string:
				if col.Type == "text" || col.Type == "other" || col.Type == "binary" {
					rec[c] = safeCell(x)
				} else {
					rec[c] = x
				}
			default:
				j, _ := json.Marshal(x)
				rec[c] = string(j)
			}
		}
		return cw.Write(rec)
	})
	if err != nil {
		// The complete lines so far go out; the caller then breaks the
		// stream (CSV has no in-band error marker).
		cw.Flush()
		bw.Flush() //nolint:errcheck // the first error is the one to report
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
