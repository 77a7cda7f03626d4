package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ErrLimitReached is returned by ResultWriter.Write (and RowBuilder) once the
// query's row or byte cap is reached: the rows that fit were kept, the result
// is marked truncated, and the connector should stop producing rows and
// return (nil or this error; both end the query normally).
var ErrLimitReached = errors.New("sdk: result limit reached")

// ResultWriter receives a query's result. It is not safe for concurrent use.
//
// The SDK encodes what it receives as one Arrow IPC stream (the schema once,
// then record batches), cut into messages of at most Limits.BatchMaxRows rows
// and about Limits.BatchMaxBytes bytes. Batches are sent as they fill, so
// memory stays bounded whatever the result size, and a slow host slows the
// connector down (Write blocks).
type ResultWriter interface {
	// SetSchema declares the result's columns. Call it once, before writing
	// rows; a query that returns no rows still declares its schema.
	SetSchema(schema *arrow.Schema) error
	// Schema returns the declared schema (nil before SetSchema).
	Schema() *arrow.Schema
	// Write sends rec's rows. rec must have the declared schema (the first
	// Write declares it when SetSchema was not called). Write does not keep
	// rec: the caller still releases it. It returns ErrLimitReached when a
	// cap was reached, and the context's error once the host has gone.
	Write(rec arrow.RecordBatch) error
	// Rows returns a builder that appends rows one at a time and writes a
	// batch whenever one is full. SetSchema must have been called. Rows
	// still in the builder when Query returns are written then.
	Rows() *RowBuilder
	// Limits returns the caps in force (with defaults filled in).
	Limits() Limits
	// Allocator is the memory allocator for building records.
	Allocator() memory.Allocator
	// Truncated reports whether a cap was reached.
	Truncated() bool
}

// eosLen is the size of the Arrow IPC end-of-stream marker.
const eosLen = 8

// resultWriter implements ResultWriter over a send function that delivers
// one message of IPC stream bytes.
type resultWriter struct {
	ctx  context.Context
	send func([]byte) error
	lim  Limits
	mem  memory.Allocator

	schema    *arrow.Schema
	ipcw      *ipc.Writer
	buf       bytes.Buffer
	started   bool // the schema message has been encoded
	schemaLen int  // size of the encoded schema message
	hasDict   bool // dictionary fields: batches cannot be re-encoded
	overhead  int64

	rows        int64 // rows accepted
	sentBytes   int64 // bytes handed to send
	messages    int
	pendingRows int
	truncated   bool
	finished    bool
	rb          *RowBuilder
}

func normalizeLimits(l Limits) Limits {
	if l.BatchMaxRows <= 0 || l.BatchMaxRows > 1<<24 {
		l.BatchMaxRows = DefaultBatchMaxRows
	}
	if l.BatchMaxBytes <= 0 {
		l.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if l.BatchMaxBytes > MaxBatchBytes {
		l.BatchMaxBytes = MaxBatchBytes
	}
	if l.MaxRows < 0 {
		l.MaxRows = 0
	}
	if l.MaxBytes < 0 {
		l.MaxBytes = 0
	}
	return l
}

func newResultWriter(ctx context.Context, lim Limits, mem memory.Allocator, send func([]byte) error) *resultWriter {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &resultWriter{ctx: ctx, send: send, lim: normalizeLimits(lim), mem: mem}
}

func (w *resultWriter) Limits() Limits              { return w.lim }
func (w *resultWriter) Allocator() memory.Allocator { return w.mem }
func (w *resultWriter) Schema() *arrow.Schema       { return w.schema }
func (w *resultWriter) Truncated() bool             { return w.truncated }

func (w *resultWriter) SetSchema(schema *arrow.Schema) error {
	if w.finished {
		return errors.New("sdk: ResultWriter used after Query returned")
	}
	if schema == nil {
		return errors.New("sdk: SetSchema(nil)")
	}
	if w.schema != nil {
		if w.schema.Equal(schema) {
			return nil
		}
		return errors.New("sdk: SetSchema called twice with different schemas")
	}
	n, err := encodedSchemaLen(schema, w.mem)
	if err != nil {
		return Errorf(CodeInternal, "sdk: cannot encode schema: %v", err)
	}
	w.schema = schema
	w.schemaLen = n
	w.hasDict = schemaHasDict(schema)
	w.overhead = batchOverhead(schema)
	w.ipcw = ipc.NewWriter(&w.buf, ipc.WithSchema(schema), ipc.WithAllocator(w.mem))
	return nil
}

// encodedSchemaLen measures the schema message the IPC writer will emit.
func encodedSchemaLen(schema *arrow.Schema, mem memory.Allocator) (int, error) {
	var b bytes.Buffer
	iw := ipc.NewWriter(&b, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := iw.Close(); err != nil {
		return 0, err
	}
	return b.Len() - eosLen, nil
}

func schemaHasDict(s *arrow.Schema) bool {
	var walk func(dt arrow.DataType) bool
	walk = func(dt arrow.DataType) bool {
		if dt.ID() == arrow.DICTIONARY {
			return true
		}
		if n, ok := dt.(arrow.NestedType); ok {
			for _, f := range n.Fields() {
				if walk(f.Type) {
					return true
				}
			}
		}
		return false
	}
	for _, f := range s.Fields() {
		if walk(f.Type) {
			return true
		}
	}
	return false
}

// batchOverhead estimates the metadata of one record batch message.
func batchOverhead(s *arrow.Schema) int64 {
	var cols int64
	var walk func(dt arrow.DataType)
	walk = func(dt arrow.DataType) {
		cols++
		if n, ok := dt.(arrow.NestedType); ok {
			for _, f := range n.Fields() {
				walk(f.Type)
			}
		}
	}
	for _, f := range s.Fields() {
		walk(f.Type)
	}
	// Message header, field nodes (16 B), buffer descriptors (16 B each, up
	// to three per column) and the padding of each buffer (up to 7 B).
	return 256 + cols*(16+3*16+3*8)
}

func (w *resultWriter) Rows() *RowBuilder {
	if w.schema == nil {
		panic("sdk: ResultWriter.Rows called before SetSchema")
	}
	if w.rb == nil {
		w.rb = newRowBuilder(w)
	}
	return w.rb
}

func (w *resultWriter) Write(rec arrow.RecordBatch) error {
	if w.finished {
		return errors.New("sdk: ResultWriter used after Query returned")
	}
	if rec == nil {
		return errors.New("sdk: Write(nil)")
	}
	if w.truncated {
		return ErrLimitReached
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.schema == nil {
		if err := w.SetSchema(rec.Schema()); err != nil {
			return err
		}
	} else if !rec.Schema().Equal(w.schema) {
		return Errorf(CodeInternal, "sdk: record schema %s differs from the declared schema %s", rec.Schema(), w.schema)
	}
	n := rec.NumRows()
	for off := int64(0); off < n; {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		k := min(n-off, int64(w.lim.BatchMaxRows))
		if w.lim.MaxRows > 0 {
			left := w.lim.MaxRows - w.rows
			if left <= 0 {
				w.truncated = true
				return ErrLimitReached
			}
			k = min(k, left)
		}
		// The largest chunk within the batch byte bound (at least one row:
		// a single row larger than a batch is sent on its own).
		k = max(1, fitRows(rec, off, k, int64(w.lim.BatchMaxBytes)-w.overhead-w.unsentSchema()))
		est := estimateRange(rec, off, off+k) + w.overhead + w.unsentSchema()
		// A message holds whole batches: send what is pending first when this
		// chunk would overflow it.
		if w.pendingRows > 0 && (w.pendingRows+int(k) > w.lim.BatchMaxRows || int64(w.buf.Len())+est > int64(w.lim.BatchMaxBytes)) {
			if err := w.flush(); err != nil {
				return err
			}
		}
		if w.lim.MaxBytes > 0 {
			avail := w.byteBudget()
			if est > avail {
				k = fitRows(rec, off, k, avail-w.overhead)
				if k <= 0 {
					w.truncated = true
					return ErrLimitReached
				}
			}
		}
		accepted, err := w.encode(rec, off, k)
		if err != nil {
			return err
		}
		if accepted == 0 {
			w.truncated = true
			return ErrLimitReached
		}
		off += accepted
	}
	// Send once a good part of a batch is waiting; smaller writes coalesce.
	if w.pendingRows*4 >= w.lim.BatchMaxRows || w.buf.Len()*4 >= w.lim.BatchMaxBytes {
		return w.flush()
	}
	return nil
}

// unsentSchema is the size of the schema message if it is still to be
// encoded (it goes out with the first batch).
func (w *resultWriter) unsentSchema() int64 {
	if w.started {
		return 0
	}
	return int64(w.schemaLen)
}

// byteBudget is how many more bytes the result may take under MaxBytes,
// keeping room for the schema (if not yet encoded) and the end marker.
func (w *resultWriter) byteBudget() int64 {
	return w.lim.MaxBytes - w.sentBytes - int64(w.buf.Len()) - eosLen - w.unsentSchema()
}

// encode appends rows [off, off+k) of rec to the buffer as one record batch,
// re-encoding fewer rows when the estimate was too low. It returns the number
// of rows accepted: 0 when not even one row fits under MaxBytes.
func (w *resultWriter) encode(rec arrow.RecordBatch, off, k int64) (int64, error) {
	for {
		before := w.buf.Len()
		first := !w.started
		slice := rec.NewSlice(off, off+k)
		err := w.ipcw.Write(slice)
		slice.Release()
		if err != nil {
			return 0, Errorf(CodeInternal, "sdk: encoding a record batch: %v", err)
		}
		w.started = true
		mark := before
		if first {
			mark += w.schemaLen
		}
		size := int64(w.buf.Len() - mark)
		// The message this batch lands in: what was pending plus the batch.
		overBatch := w.buf.Len() > w.lim.BatchMaxBytes && (k > 1 || w.pendingRows > 0)
		overTotal := w.lim.MaxBytes > 0 && w.sentBytes+int64(w.buf.Len())+eosLen > w.lim.MaxBytes
		if (!overBatch && !overTotal) || w.hasDict {
			w.rows += k
			w.pendingRows += int(k)
			return k, nil
		}
		// Too big: drop the batch (the schema message stays) and retry.
		w.buf.Truncate(mark)
		if overBatch && !overTotal && w.pendingRows > 0 {
			// Send what was pending, then try the same rows alone.
			if err := w.flush(); err != nil {
				return 0, err
			}
			continue
		}
		// Fewer rows, in proportion to how far off the estimate was.
		if overTotal && k == 1 {
			return 0, nil
		}
		target := int64(w.lim.BatchMaxBytes) - int64(mark)
		if overTotal {
			target = min(target, w.byteBudget())
		}
		next := int64(float64(k) * float64(target) / float64(size) * 0.9)
		if next >= k {
			next = k - 1
		}
		if next < 1 {
			next = 1
		}
		k = next
	}
}

// flush sends the buffered bytes as one message.
func (w *resultWriter) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	if err := w.send(w.buf.Bytes()); err != nil {
		return err
	}
	w.sentBytes += int64(w.buf.Len())
	w.messages++
	w.buf.Reset()
	w.pendingRows = 0
	return nil
}

// finish writes what is left (rows in the row builder, the schema of an
// empty result, the end-of-stream marker) and sends it.
func (w *resultWriter) finish() error {
	if w.finished {
		return nil
	}
	if w.rb != nil {
		err := w.rb.Flush()
		w.rb.release()
		if err != nil && !errors.Is(err, ErrLimitReached) {
			return err
		}
	}
	if w.schema == nil {
		if err := w.SetSchema(arrow.NewSchema(nil, nil)); err != nil {
			return err
		}
	}
	w.finished = true
	if err := w.ipcw.Close(); err != nil {
		return Errorf(CodeInternal, "sdk: closing the result stream: %v", err)
	}
	return w.flush()
}

// release drops buffers after a failed query.
func (w *resultWriter) release() {
	if w.rb != nil {
		w.rb.release()
	}
	w.finished = true
	w.buf = bytes.Buffer{}
}

// fitRows returns the largest n <= k such that rows [off, off+n) are
// estimated to take at most budget bytes (0 if not even one row fits).
func fitRows(rec arrow.RecordBatch, off, k, budget int64) int64 {
	if budget <= 0 {
		return 0
	}
	if estimateRange(rec, off, off+k) <= budget {
		return k
	}
	lo, hi := int64(0), k // estimate(lo) <= budget < estimate(hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if estimateRange(rec, off, off+mid) <= budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// estimateRange estimates the IPC body size of rows [i, j) of rec.
func estimateRange(rec arrow.RecordBatch, i, j int64) int64 {
	var total int64
	for _, col := range rec.Columns() {
		total += estimateArray(col, i, j)
	}
	return total
}

func estimateArray(a arrow.Array, i, j int64) int64 {
	n := j - i
	if n <= 0 {
		return 0
	}
	var size int64
	if a.NullN() > 0 {
		size += (n + 7) / 8
	}
	var offs32 []int32
	var offs64 []int64
	switch x := a.(type) {
	case *array.String:
		offs32 = x.ValueOffsets()
	case *array.Binary:
		offs32 = x.ValueOffsets()
	case *array.LargeString:
		offs64 = x.ValueOffsets()
	case *array.LargeBinary:
		offs64 = x.ValueOffsets()
	}
	if int(j) < len(offs32) {
		return size + int64(offs32[j]-offs32[i]) + 4*(n+1)
	}
	if int(j) < len(offs64) {
		return size + offs64[j] - offs64[i] + 8*(n+1)
	}
	if fw, ok := a.DataType().(arrow.FixedWidthDataType); ok && a.DataType().ID() != arrow.DICTIONARY {
		return size + (int64(fw.BitWidth())*n+7)/8
	}
	// Anything else: the array's average bytes per row.
	if a.Len() == 0 {
		return size
	}
	return size + dataBytes(a.Data())*n/int64(a.Len())
}

func dataBytes(d arrow.ArrayData) int64 {
	var total int64
	for _, b := range d.Buffers() {
		if b != nil {
			total += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		total += dataBytes(c)
	}
	if dict := d.Dictionary(); dict != nil {
		total += dataBytes(dict)
	}
	return total
}

// trailerStats is what the trailer reports.
func (w *resultWriter) trailerStats(start time.Time) (rows, bytes int64, truncated bool, elapsed time.Duration) {
	return w.rows, w.sentBytes, w.truncated, time.Since(start)
}

func (w *resultWriter) String() string {
	return fmt.Sprintf("resultWriter{rows=%d bytes=%d messages=%d truncated=%v}", w.rows, w.sentBytes, w.messages, w.truncated)
}
