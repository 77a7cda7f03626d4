package queries_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/datapulse/datapulse/core/queries"
)

// batches is an in-memory result stream.
type batches struct {
	schema    *arrow.Schema
	recs      []arrow.RecordBatch
	truncated bool
	closed    bool
}

func (b *batches) Schema() *arrow.Schema { return b.schema }
func (b *batches) Truncated() bool       { return b.truncated }
func (b *batches) Close()                { b.closed = true }
func (b *batches) Next() (arrow.RecordBatch, error) {
	if len(b.recs) == 0 {
		return nil, io.EOF
	}
	r := b.recs[0]
	b.recs = b.recs[1:]
	return r, nil
}

func sample(t *testing.T) *batches {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	add := func(id int64, name *string, amount float64, ok bool) {
		b.Field(0).(*array.Int64Builder).Append(id)
		if name == nil {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(*name)
		}
		b.Field(2).(*array.Float64Builder).Append(amount)
		b.Field(3).(*array.BooleanBuilder).Append(ok)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(at))
	}
	s := func(v string) *string { return &v }
	add(1, s("=HYPERLINK(\"http://evil\")"), -5.5, true)
	add(2, nil, math.NaN(), false)
	r1 := b.NewRecordBatch()
	add(3, s("plain, with comma"), 2, true)
	r2 := b.NewRecordBatch()
	return &batches{schema: schema, recs: []arrow.RecordBatch{r1, r2}, truncated: true}
}

func TestCollect(t *testing.T) {
	b := sample(t)
	r, err := queries.Collect(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !b.closed || r.RowCount != 3 || !r.Truncated || len(r.Columns) != 6 {
		t.Fatalf("result: %+v", r)
	}
	want := []string{"integer", "text", "number", "boolean", "timestamp", "date"}
	for i, c := range r.Columns {
		if c.Type != want[i] {
			t.Errorf("column %s type %s, want %s", c.Name, c.Type, want[i])
		}
	}
	j, _ := json.Marshal(r.Rows)
	if got := string(j); got != `[[1,"=HYPERLINK(\"http://evil\")",-5.5,true,"2026-11-27T10:00:00Z","2026-11-27"],[2,null,null,false,"2026-11-27T10:00:00Z","2026-11-27"],[3,"plain, with comma",2,true,"2026-11-27T10:00:00Z","2026-11-27"]]` {
		t.Fatalf("rows: %s", got)
	}
}

func TestCSVIsSafeForSpreadsheets(t *testing.T) {
	var buf bytes.Buffer
	if err := queries.WriteCSV(&buf, sample(t)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] != "id,name,amount,ok,at,day" {
		t.Fatalf("header %q", lines[0])
	}
	if !strings.Contains(lines[1], `"'=HYPERLINK(""http://evil"")"`) || !strings.Contains(lines[1], ",-5.5,") {
		t.Errorf("formula not neutralised or number mangled: %q", lines[1])
	}
	if lines[2] != "2,,,false,2026-11-27T10:00:00Z,2026-11-27" || lines[3] != `3,"plain, with comma",2,true,2026-11-27T10:00:00Z,2026-11-27` {
		t.Errorf("rows: %q %q", lines[2], lines[3])
	}
}

func TestNDJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := queries.WriteNDJSON(&buf, sample(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	var row map[string]any
	if !strings.HasPrefix(lines[0], `{"id":1,"name":`) {
		t.Errorf("columns out of order: %s", lines[0])
	}
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil || row["id"].(float64) != 1 {
		t.Fatalf("row: %s %v", lines[0], err)
	}
	var meta map[string]map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &meta); err != nil || meta["_meta"]["row_count"].(float64) != 3 || meta["_meta"]["truncated"] != true {
		t.Fatalf("meta: %s", lines[3])
	}
}
