package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
)

// Query is one read-only SQL query. Params bind positionally, in the
// connector's placeholder syntax; values are never spliced into the text.
// Supported parameter types: nil, bool, every Go integer type, float32,
// float64, string, json.Number, time.Time (a timestamp), Date, and []any
// (or []string, []int64, []float64) of those for list parameters.
type Query struct {
	SQL    string
	Params []any
	// Zero means the host default (Options.MaxRows, MaxBytes, QueryTimeout).
	MaxRows  int64
	MaxBytes int64
	Timeout  time.Duration
}

// Date is a calendar-date parameter (the date of Time in its location).
type Date struct{ time.Time }

const (
	batchMaxRows  = 65536
	batchMaxBytes = 4 << 20
	// pipeDepth is how many received payloads may wait for the reader: host
	// memory per query stays at about pipeDepth × batch size whatever the
	// result size.
	pipeDepth = 4
)

// Result streams the batches of a query as the connector produces them.
// It is not safe for concurrent use: to abort it from another goroutine,
// cancel the context given to Query. Always Close it.
type Result struct {
	c       *connector
	inst    *instance
	ctx     context.Context
	cancel  context.CancelFunc
	secrets map[string]string
	maxRows int64

	// receiver → reader. Fields below ch are written by the receiver before
	// it closes ch / recvDone.
	ch       chan []byte
	recvDone chan struct{}
	recvErr  error
	trailer  *connectorv1.Trailer
	bytesCut bool
	ipcBytes int64
	stopMu   sync.Mutex
	stopped  bool // the host ended the stream on purpose (cap, Close)

	pending   []byte // unread part of the current payload
	rd        *ipc.Reader
	cur       arrow.RecordBatch
	rows      int64
	trunc     bool
	connTrunc bool // the connector's trailer said truncated
	done      bool
	err       error
	closed    bool
	start     time.Time
	queryID   string
	callStart time.Time // for the call duration metric, observed by Close
}

// Query runs q on the connector and returns once the result schema has
// arrived. Batches are then pulled with Next while the connector produces
// them (bounded buffering in between). Timeout covers the whole query,
// including the time the caller takes to consume it. Cancelling ctx or
// closing the Result cancels the gRPC stream and so the query at the source.
func (h *Host) Query(ctx context.Context, connector string, ds DataSource, q Query) (*Result, error) {
	c, err := h.lookup(connector)
	if err != nil {
		return nil, err
	}
	callStart := time.Now()
	r, err := h.query(ctx, c, ds, q, callStart)
	if err != nil {
		c.stats.observe(time.Since(callStart), err)
	}
	return r, err
}

func (h *Host) query(ctx context.Context, c *connector, ds DataSource, q Query, callStart time.Time) (*Result, error) {
	params, err := toParams(q.Params)
	if err != nil {
		return nil, err
	}
	maxRows, maxBytes, timeout := q.MaxRows, q.MaxBytes, q.Timeout
	if maxRows <= 0 {
		maxRows = h.o.MaxRows
	}
	if maxBytes <= 0 {
		maxBytes = h.o.MaxBytes
	}
	if timeout <= 0 {
		timeout = h.o.QueryTimeout
	}
	qctx, cancel := h.callCtx(ctx, timeout)
	inst, err := c.acquire(qctx)
	if err != nil {
		cancel()
		return nil, err
	}
	req := &connectorv1.QueryRequest{
		Ds:     dsContext(ctx, ds),
		Sql:    q.SQL,
		Params: params,
		Limits: &connectorv1.Limits{
			MaxRows: maxRows, MaxBytes: maxBytes,
			BatchMaxRows: batchMaxRows, BatchMaxBytes: batchMaxBytes,
		},
		QueryId: newQueryID(),
	}
	stream, err := inst.rpc.Query(qctx, req, grpc.MaxCallRecvMsgSize(maxMsgSize))
	if err != nil {
		err = c.classify(qctx, inst, "query", err, ds.Secrets)
		cancel()
		return nil, err
	}
	r := &Result{
		c: c, inst: inst, ctx: qctx, cancel: cancel, secrets: ds.Secrets, maxRows: maxRows,
		ch: make(chan []byte, pipeDepth), recvDone: make(chan struct{}), start: time.Now(),
		queryID: req.QueryId, callStart: callStart,
	}
	go r.receive(stream, maxBytes)

	rd, err := ipc.NewReader(r.pipe(),
		ipc.WithAllocator(newBudget(2*maxBytes+64<<20)),
		ipc.WithMetadataSizeLimit(min(maxBytes, 16<<20)),
		ipc.WithBodySizeLimit(min(maxBytes, 256<<20)))
	if err != nil {
		err = r.fail(err, "reading the result schema")
		if r.bytesCut && !errors.Is(err, ErrConnectorCrashed) && !errors.Is(err, ErrConnectorTimeout) {
			err = fmt.Errorf("%w: connector %q: the first batch alone exceeds the %d-byte cap", ErrResultTooLarge, c.name, maxBytes)
		}
		r.closeQuiet()
		return nil, err
	}
	r.rd = rd
	return r, nil
}

// Schema is the schema of every batch.
func (r *Result) Schema() *arrow.Schema { return r.rd.Schema() }

// Truncated reports whether rows are missing: the host cut the result at
// the row or byte cap, or the connector reported it stopped early.
func (r *Result) Truncated() bool { return r.trunc || r.connTrunc }

// Rows is the number of rows returned by Next so far.
func (r *Result) Rows() int64 { return r.rows }

// Next returns the next batch, io.EOF after the last one, or an error. The
// caller owns the batch and must Release it (unreleased batches count
// against the query's memory budget of 2×MaxBytes + 64 MiB). Every batch has
// been validated: layout, offsets, UTF-8, column lengths.
func (r *Result) Next() (arrow.RecordBatch, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done || r.closed {
		return nil, io.EOF
	}
	if r.rows >= r.maxRows {
		return nil, r.finishAtCap()
	}
	if !r.rd.Next() {
		if err := r.rd.Err(); err != nil {
			return nil, r.setErr(r.fail(err, "reading a batch"))
		}
		return nil, r.finish()
	}
	rec := r.rd.RecordBatch()
	if err := validate(rec); err != nil {
		r.stop()
		<-r.recvDone
		return nil, r.setErr(protoErr(r.c.name, "batch does not match its schema: %v", err))
	}
	n := rec.NumRows()
	if r.rows+n > r.maxRows {
		keep := r.maxRows - r.rows
		r.rows += keep
		r.trunc = true
		r.stop()
		r.done = true
		return rec.NewSlice(0, keep), nil
	}
	rec.Retain() // the reader drops its own reference at its next Next
	r.rows += n
	return rec, nil
}

func validate(rec arrow.RecordBatch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("invalid batch: %v", p)
		}
	}()
	n := rec.NumRows()
	if n < 0 {
		return errors.New("negative row count")
	}
	for i, col := range rec.Columns() {
		if int64(col.Len()) != n {
			return fmt.Errorf("column %d has %d rows, the batch %d", i, col.Len(), n)
		}
	}
	return array.ValidateRecordFull(rec)
}

// finishAtCap ends a result whose row cap was reached exactly: it peeks
// whether the connector had more rows.
func (r *Result) finishAtCap() error {
	for r.rd.Next() {
		if r.rd.RecordBatch().NumRows() > 0 {
			r.trunc = true
			r.done = true
			r.stop()
			return io.EOF
		}
	}
	if err := r.rd.Err(); err != nil {
		return r.setErr(r.fail(err, "reading a batch"))
	}
	return r.finish()
}

// finish handles the end of the IPC stream: the trailer must follow and be
// the last message.
func (r *Result) finish() error {
	extra := false
	for p := range r.ch { // drain until the receiver ends
		if len(p) > 0 {
			extra = true
			r.stop()
		}
	}
	<-r.recvDone // the receiver's fields are settled from here on
	r.cancel()   // the stream is over: release the call context
	if r.trailer != nil && r.trailer.GetTruncated() {
		r.connTrunc = true
	}
	switch {
	case extra:
		return r.setErr(protoErr(r.c.name, "data after the end of the Arrow stream"))
	case r.bytesCut:
		r.trunc = true
	case r.recvErr != nil:
		return r.setErr(r.recvErr)
	case r.trailer == nil:
		return r.setErr(protoErr(r.c.name, "the result stream ended without a trailer"))
	case r.trailer.GetRows() != r.rows:
		r.c.h.log.Warn("connector trailer row count differs from the rows received",
			"connector", r.c.name, "trailer_rows", r.trailer.GetRows(), "rows", r.rows)
	}
	r.done = true
	r.c.h.log.Debug("query done", "connector", r.c.name, "rows", r.rows, "ipc_bytes", r.ipcBytes,
		"truncated", r.Truncated(), "elapsed", time.Since(r.start))
	return io.EOF
}

func (r *Result) setErr(err error) error {
	r.err = err
	r.stop()
	return err
}

// fail explains a reader error: the receiver's error if the stream broke
// (crash, timeout, cancel), else malformed IPC from the connector.
func (r *Result) fail(readErr error, what string) error {
	select {
	case <-r.recvDone:
	default:
		if !errors.Is(readErr, errPipeBroken) {
			r.stop() // the connector sent bad data: stop receiving
		}
		<-r.recvDone
	}
	if r.recvErr != nil {
		return r.recvErr
	}
	if r.bytesCut {
		r.trunc = true
		return io.EOF
	}
	if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) {
		if r.ipcBytes == 0 {
			return protoErr(r.c.name, "the result has no Arrow schema (no data before the end of the stream)")
		}
		return protoErr(r.c.name, "the Arrow stream ended early while %s", what)
	}
	return protoErr(r.c.name, "malformed Arrow IPC while %s: %v", what, readErr)
}

// stop ends the gRPC stream on the host's initiative (cap, error, Close).
func (r *Result) stop() {
	r.stopMu.Lock()
	r.stopped = true
	r.stopMu.Unlock()
	r.cancel()
}

func (r *Result) wasStopped() bool {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	return r.stopped
}

// Close releases the result and cancels the query if it is still running.
// It waits for the receiving goroutine to end.
func (r *Result) Close() {
	if r.closed {
		return
	}
	r.closeQuiet()
	r.c.stats.observe(time.Since(r.callStart), r.err)
}

// closeQuiet closes without recording the call (Query records a failed one).
func (r *Result) closeQuiet() {
	if r.closed {
		return
	}
	r.closed = true
	r.stop()
	for range r.ch {
	}
	<-r.recvDone
	if r.rd != nil {
		r.rd.Release()
	}
}

// receive moves payloads from the gRPC stream into the bounded pipe and
// checks the message order: arrow_ipc…, then exactly one trailer, last.
func (r *Result) receive(stream grpc.ServerStreamingClient[connectorv1.QueryResponse], maxBytes int64) {
	defer close(r.recvDone)
	defer close(r.ch)
	name := r.c.name
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return // trailer presence is checked by finish
		}
		if err != nil {
			if !r.wasStopped() {
				r.recvErr = r.c.classify(r.ctx, r.inst, "query", err, r.secrets)
				if errors.Is(r.ctx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
					// The connector should stop now; if it still runs
					// the query after the grace period, it is restarted.
					r.c.checkOverdue(r.inst, r.queryID)
				}
			}
			return
		}
		switch m := msg.GetMsg().(type) {
		case *connectorv1.QueryResponse_ArrowIpc:
			if r.trailer != nil {
				r.recvErr = protoErr(name, "Arrow data after the trailer")
				r.stop()
				return
			}
			p := m.ArrowIpc
			if len(p) == 0 {
				continue
			}
			if r.ipcBytes+int64(len(p)) > maxBytes {
				r.bytesCut = true
				r.stop()
				return
			}
			r.ipcBytes += int64(len(p))
			select {
			case r.ch <- p:
			case <-r.ctx.Done():
				if !r.wasStopped() {
					r.recvErr = r.c.classify(r.ctx, r.inst, "query", r.ctx.Err(), r.secrets)
				}
				return
			}
		case *connectorv1.QueryResponse_Trailer:
			if r.trailer != nil {
				r.recvErr = protoErr(name, "a second trailer")
				r.stop()
				return
			}
			if m.Trailer == nil {
				r.recvErr = protoErr(name, "an empty trailer")
				r.stop()
				return
			}
			r.trailer = m.Trailer
		default:
			r.recvErr = protoErr(name, "an empty or unknown result message")
			r.stop()
			return
		}
	}
}

var errPipeBroken = errors.New("result stream failed")

// budget is the allocator of a query's decoded batches. It bounds what a
// connector can make the host allocate: a compressed IPC body announces its
// uncompressed size, and a hostile one could announce gigabytes. Going over
// panics, which arrow's reader recovers into an error.
type budget struct {
	mem  memory.Allocator
	max  int64
	live atomic.Int64
}

func newBudget(max int64) *budget {
	return &budget{mem: memory.NewGoAllocator(), max: max}
}

func (b *budget) take(n int64) {
	if n > 0 && b.live.Add(n) > b.max {
		b.live.Add(-n)
		panic(fmt.Sprintf("connector result needs more than the %d-byte memory budget of a query", b.max))
	}
}

func (b *budget) Allocate(size int) []byte {
	b.take(int64(size))
	return b.mem.Allocate(size)
}

func (b *budget) Reallocate(size int, old []byte) []byte {
	b.take(int64(size - len(old)))
	if size < len(old) {
		b.live.Add(int64(size - len(old)))
	}
	return b.mem.Reallocate(size, old)
}

func (b *budget) Free(buf []byte) {
	b.live.Add(-int64(len(buf)))
	b.mem.Free(buf)
}

// pipe chains the received payloads into one io.Reader for ipc.NewReader
// (the framing rule: payload boundaries carry no meaning).
func (r *Result) pipe() io.Reader { return pipeReader{r} }

type pipeReader struct{ r *Result }

func (p pipeReader) Read(b []byte) (int, error) {
	r := p.r
	for len(r.pending) == 0 {
		next, ok := <-r.ch
		if !ok {
			if r.recvErr != nil {
				return 0, fmt.Errorf("%w: %w", errPipeBroken, r.recvErr)
			}
			return 0, io.EOF
		}
		r.pending = next
	}
	n := copy(b, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// classify maps a call's error to the host's errors.
func (c *connector) classify(ctx context.Context, inst *instance, op string, err error, secrets map[string]string) error {
	if err == nil {
		return nil
	}
	if c.h.closed.Load() {
		return fmt.Errorf("%w: connector %q: the host is shutting down", ErrConnectorUnavailable, c.name)
	}
	for _, s := range []error{ErrProtocol, ErrResultTooLarge, ErrConnectorCrashed, ErrConnectorTimeout, ErrConnectorUnavailable} {
		if errors.Is(err, s) {
			return err
		}
	}
	crashed := func() error {
		return fmt.Errorf("%w: connector %q %s: %s; it will be restarted on the next call",
			ErrConnectorCrashed, c.name, opDesc(op), inst.exitStatus())
	}
	if inst.hasExited() {
		return crashed()
	}
	st, _ := status.FromError(err)
	code := st.Code()
	if errors.Is(err, context.DeadlineExceeded) || code == codes.DeadlineExceeded ||
		errors.Is(ctx.Err(), context.DeadlineExceeded) {
		c.probe(inst)
		return fmt.Errorf("%w: connector %q %s: no answer within the deadline: %w",
			ErrConnectorTimeout, c.name, opDesc(op), context.DeadlineExceeded)
	}
	if ctx.Err() != nil {
		return c.ctxErr(ctx, opDesc(op))
	}
	switch code {
	case codes.Unavailable, codes.Canceled:
		// A broken connection: was it the process dying? (A connector may
		// answer Unavailable itself, "database unreachable": no wait then.)
		if transportError(st.Message()) && inst.waitExit(crashGrace) {
			return crashed()
		}
	case codes.ResourceExhausted:
		if strings.Contains(st.Message(), "received message larger than max") {
			return fmt.Errorf("%w: connector %q sent a message above the %d MiB limit", ErrResultTooLarge, c.name, maxMsgSize>>20)
		}
	}
	return &ConnectorError{Connector: c.name, Op: op, Code: code, Message: redact(st.Message(), secrets)}
}

// transportError recognises the messages grpc-go gives a call whose
// connection broke (as opposed to a status the connector chose).
func transportError(msg string) bool {
	for _, s := range []string{
		"error reading from server", "connection reset", "connection closed", "connection error",
		"transport is closing", "client connection is closing", "connection refused", "broken pipe", "EOF",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func opDesc(op string) string {
	switch op {
	case "query":
		return "during the query"
	case "":
		return ""
	default:
		return "during " + strings.ReplaceAll(op, "_", " ")
	}
}

func newQueryID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func toParams(vals []any) ([]*connectorv1.Parameter, error) {
	out := make([]*connectorv1.Parameter, 0, len(vals))
	for i, v := range vals {
		p, err := toParam(v, true)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter %d: %v", ErrInvalidParameter, i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func toParam(v any, allowList bool) (*connectorv1.Parameter, error) {
	p := &connectorv1.Parameter{}
	switch x := v.(type) {
	case nil:
		p.Value = &connectorv1.Parameter_Null{Null: true}
	case bool:
		p.Value = &connectorv1.Parameter_Bool{Bool: x}
	case int:
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case int8:
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case int16:
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case int32:
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case int64:
		p.Value = &connectorv1.Parameter_Int{Int: x}
	case uint8:
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case uint16:
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case uint32:
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, errors.New("integer out of range")
		}
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case uint64:
		if x > math.MaxInt64 {
			return nil, errors.New("integer out of range")
		}
		p.Value = &connectorv1.Parameter_Int{Int: int64(x)}
	case float32:
		p.Value = &connectorv1.Parameter_Float{Float: float64(x)}
	case float64:
		p.Value = &connectorv1.Parameter_Float{Float: x}
	case string:
		if !utf8.ValidString(x) {
			return nil, errors.New("text is not valid UTF-8")
		}
		p.Value = &connectorv1.Parameter_Text{Text: x}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			p.Value = &connectorv1.Parameter_Int{Int: n}
		} else if f, err := x.Float64(); err == nil {
			p.Value = &connectorv1.Parameter_Float{Float: f}
		} else {
			return nil, fmt.Errorf("invalid number %q", x.String())
		}
	case time.Time:
		p.Value = &connectorv1.Parameter_TimestampUs{TimestampUs: x.UnixMicro()}
	case Date:
		y, m, d := x.Date()
		days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
		p.Value = &connectorv1.Parameter_DateDays{DateDays: int32(days)}
	case []any, []string, []int64, []float64:
		if !allowList {
			return nil, errors.New("nested lists are not supported")
		}
		var items []any
		switch l := x.(type) {
		case []any:
			items = l
		case []string:
			for _, s := range l {
				items = append(items, s)
			}
		case []int64:
			for _, n := range l {
				items = append(items, n)
			}
		case []float64:
			for _, f := range l {
				items = append(items, f)
			}
		}
		list := &connectorv1.ParameterList{}
		for j, it := range items {
			q, err := toParam(it, false)
			if err != nil {
				return nil, fmt.Errorf("list item %d: %v", j+1, err)
			}
			list.Values = append(list.Values, q)
		}
		p.Value = &connectorv1.Parameter_List{List: list}
	default:
		return nil, fmt.Errorf("unsupported type %T", v)
	}
	return p, nil
}
