package sdk_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

func checkIDs(t *testing.T, ids []int64, n int) {
	t.Helper()
	if len(ids) != n {
		t.Fatalf("got %d rows, want %d", len(ids), n)
	}
	for i, id := range ids {
		if id != int64(i) {
			t.Fatalf("row %d has id %d", i, id)
		}
	}
}

// A 200k-row result arrives as several bounded messages that, concatenated,
// are one Arrow IPC stream; the trailer's counts match what arrived.
func TestQueryBatching(t *testing.T) {
	cc := startGen(t, newGen())
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		sql  string
	}{
		{"row builder", "rows 200000"},
		{"one big record", "write 200000 200000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runQuery(t, ctx, cc, tc.sql, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkIDs(t, res.ids, 200000)
			t.Logf("%d messages, largest %d bytes, batches %v", res.stream.Messages, res.stream.MaxMessage, res.batches)
			if !res.schema.Equal(genSchema) {
				t.Fatalf("schema %s", res.schema)
			}
			for i, n := range res.batches {
				if n > sdk.DefaultBatchMaxRows {
					t.Fatalf("batch %d has %d rows", i, n)
				}
			}
			if res.stream.Messages < 4 {
				t.Fatalf("only %d messages for 200k rows", res.stream.Messages)
			}
			if res.stream.MaxMessage > sdk.DefaultBatchMaxBytes {
				t.Fatalf("a message of %d bytes", res.stream.MaxMessage)
			}
			tr := res.trailer
			if tr == nil || tr.Rows != 200000 || tr.Truncated || tr.IpcBytes != res.stream.Bytes {
				t.Fatalf("trailer %v, stream bytes %d", tr, res.stream.Bytes)
			}
			// The first row's values survive the trip.
			r0 := res.rows[0]
			if r0[1] != "name-0" || r0[2] != 0.0 || r0[4] != true {
				t.Fatalf("row 0 = %v", r0)
			}
		})
	}

	t.Run("byte bound", func(t *testing.T) {
		// 1 KiB rows, 64 KiB messages: about 60 rows per message.
		const limit = 64 << 10
		res, err := runQuery(t, ctx, cc, "big 3000", &connectorv1.Limits{BatchMaxBytes: limit})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, res.ids, 3000)
		for i, size := range res.stream.Sizes {
			if size > limit {
				t.Fatalf("message %d is %d bytes, over %d", i, size, limit)
			}
		}
		if res.stream.Messages < 3000*1024/limit {
			t.Fatalf("%d messages", res.stream.Messages)
		}
	})

	t.Run("row bound", func(t *testing.T) {
		res, err := runQuery(t, ctx, cc, "write 1000 1000", &connectorv1.Limits{BatchMaxRows: 7})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, res.ids, 1000)
		for _, n := range res.batches {
			if n > 7 {
				t.Fatalf("batch of %d rows", n)
			}
		}
	})

	t.Run("small writes coalesce", func(t *testing.T) {
		// 20,000 one-row records must not become 20,000 messages.
		res, err := runQuery(t, ctx, cc, "write 20000 1", &connectorv1.Limits{BatchMaxRows: 4096})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, res.ids, 20000)
		if res.stream.Messages > 20 {
			t.Fatalf("%d messages for 20,000 rows written one by one", res.stream.Messages)
		}
	})

	t.Run("empty result", func(t *testing.T) {
		res, err := runQuery(t, ctx, cc, "empty", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.schema.Equal(genSchema) || len(res.ids) != 0 || res.trailer.Rows != 0 {
			t.Fatalf("schema %s, %d rows, trailer %v", res.schema, len(res.ids), res.trailer)
		}
		if res.stream.Messages != 1 {
			t.Fatalf("%d messages", res.stream.Messages)
		}
	})
}

func TestQueryLimits(t *testing.T) {
	ctx := context.Background()

	t.Run("max rows", func(t *testing.T) {
		g := newGen()
		cc := startGen(t, g)
		res, err := runQuery(t, ctx, cc, "rows 1000", &connectorv1.Limits{MaxRows: 150})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, res.ids, 150)
		if !res.trailer.Truncated || res.trailer.Rows != 150 {
			t.Fatalf("trailer %v", res.trailer)
		}
		g.mu.Lock()
		seen := g.limitSeen
		g.mu.Unlock()
		if !seen {
			t.Fatal("the connector was not told to stop")
		}
	})

	t.Run("max rows through Write", func(t *testing.T) {
		cc := startGen(t, newGen())
		res, err := runQuery(t, ctx, cc, "write 1000 64", &connectorv1.Limits{MaxRows: 150})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, res.ids, 150)
		if !res.trailer.Truncated {
			t.Fatalf("trailer %v", res.trailer)
		}
	})

	t.Run("exactly max rows is not truncated", func(t *testing.T) {
		cc := startGen(t, newGen())
		res, err := runQuery(t, ctx, cc, "rows 150", &connectorv1.Limits{MaxRows: 150})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, res.ids, 150)
		if res.trailer.Truncated {
			t.Fatalf("trailer %v", res.trailer)
		}
	})

	t.Run("max bytes", func(t *testing.T) {
		cc := startGen(t, newGen())
		for _, maxBytes := range []int64{2_000, 100_000, 1_000_000} {
			res, err := runQuery(t, ctx, cc, "big 5000", &connectorv1.Limits{MaxBytes: maxBytes, BatchMaxBytes: 256 << 10})
			if err != nil {
				t.Fatal(err)
			}
			tr := res.trailer
			if !tr.Truncated || tr.IpcBytes > maxBytes || tr.IpcBytes != res.stream.Bytes {
				t.Fatalf("max %d: trailer %v", maxBytes, tr)
			}
			checkIDs(t, res.ids, int(tr.Rows))
			// Not wildly under the cap either: at least half used.
			if maxBytes >= 100_000 && tr.IpcBytes < maxBytes/2 {
				t.Fatalf("max %d: only %d bytes used", maxBytes, tr.IpcBytes)
			}
		}
	})
}

// Cancelling the call on the host side ends the connector's context, and
// the host sees Canceled; a deadline gives DeadlineExceeded.
func TestQueryCancellation(t *testing.T) {
	g := newGen()
	cc := startGen(t, g)

	ctx, cancel := context.WithCancel(context.Background())
	stream, err := cc.Query(ctx, &connectorv1.QueryRequest{Ds: dsCtx(), Sql: "block", Limits: &connectorv1.Limits{BatchMaxRows: 64}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the connector is now blocked
		t.Fatal(err)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-g.stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("connector saw %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the connector's context was not cancelled")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if status.Code(err) != codes.Canceled {
		t.Fatalf("host saw %v", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer dcancel()
	_, err = runQuery(t, dctx, cc, "block", &connectorv1.Limits{BatchMaxRows: 64})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("deadline: %v", err)
	}
	select {
	case err := <-g.stopped:
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Fatalf("connector saw %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the connector's context did not end at the deadline")
	}

	// The connector still serves.
	if _, err := runQuery(t, context.Background(), cc, "rows 10", nil); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	cc := startGen(t, newGen())
	ctx := context.Background()

	_, err := runQuery(t, ctx, cc, "fail", nil)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v", err)
	}
	msg := status.Convert(err).Message()
	if strings.Contains(msg, testSecret) || !strings.Contains(msg, "syntax error") || !strings.Contains(msg, "[redacted]") {
		t.Fatalf("message %q", msg)
	}

	_, err = runQuery(t, ctx, cc, "panic", nil)
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic: %v", err)
	}
	// Still alive after a panic.
	if _, err := runQuery(t, ctx, cc, "rows 3", nil); err != nil {
		t.Fatal(err)
	}

	_, err = cc.DescribeTables(ctx, &connectorv1.DescribeTablesRequest{Ds: dsCtx(), Tables: []*connectorv1.TableRef{{Name: "missing"}}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("describe missing: %v", err)
	}

	// A config that is not an object.
	bad := dsCtx()
	bad.ConfigJson = []byte(`[1]`)
	if _, err := cc.CheckHealth(ctx, &connectorv1.CheckHealthRequest{Ds: bad}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad config: %v", err)
	}
	vr, err := cc.ValidateConfig(ctx, &connectorv1.ValidateConfigRequest{Ds: bad})
	if err != nil || len(vr.Errors) != 1 {
		t.Fatalf("validate bad config: %v %v", vr, err)
	}

	// Health failures are answers, not errors, and carry no secret.
	down := dsCtx()
	down.ConfigJson = []byte(`{"down":true}`)
	hr, err := cc.CheckHealth(ctx, &connectorv1.CheckHealthRequest{Ds: down})
	if err != nil || hr.Ok || strings.Contains(hr.Message, testSecret) || !strings.Contains(hr.Message, "cannot log in") {
		t.Fatalf("health: %v %v", hr, err)
	}
	hr, err = cc.CheckHealth(ctx, &connectorv1.CheckHealthRequest{Ds: dsCtx()})
	if err != nil || !hr.Ok || hr.ServerVersion != "gen 1" {
		t.Fatalf("health: %v %v", hr, err)
	}
}

func TestValidateConfig(t *testing.T) {
	cc := startGen(t, newGen())
	ctx := context.Background()
	for _, tc := range []struct {
		json  string
		field string
	}{
		{`{"port": 5432}`, ""},
		{`{"port": -1}`, "/port"},
		{`{"port": "x"}`, "/port"},
		{`{"sslrootcert": "/etc/passwd"}`, "/sslrootcert"},
	} {
		ds := dsCtx()
		ds.ConfigJson = []byte(tc.json)
		resp, err := cc.ValidateConfig(ctx, &connectorv1.ValidateConfigRequest{Ds: ds})
		if err != nil {
			t.Fatal(err)
		}
		if tc.field == "" {
			if len(resp.Errors) != 0 {
				t.Fatalf("%s: %v", tc.json, resp.Errors)
			}
			continue
		}
		if len(resp.Errors) != 1 || resp.Errors[0].Field != tc.field {
			t.Fatalf("%s: %v", tc.json, resp.Errors)
		}
		if strings.Contains(resp.Errors[0].Message, testSecret) {
			t.Fatalf("secret in %q", resp.Errors[0].Message)
		}
	}
}

func TestIntrospectionPaging(t *testing.T) {
	cc := startGen(t, newGen())
	ctx := context.Background()

	var got []string
	tok := ""
	for i := 0; ; i++ {
		if i > 10 {
			t.Fatal("paging does not end")
		}
		r, err := cc.ListNamespaces(ctx, &connectorv1.ListNamespacesRequest{Ds: dsCtx(), PageSize: 1, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Namespaces...)
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("namespaces %v", got)
	}

	// Page sizes are clamped: 0 means the default, huge means the maximum.
	for size, want := range map[int32]int{0: sdk.DefaultPageSize, 5000: sdk.MaxPageSize, 7: 7} {
		r, err := cc.ListTables(ctx, &connectorv1.ListTablesRequest{Ds: dsCtx(), Namespace: "a", PageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Tables) != want || r.NextPageToken == "" || r.Tables[0].Kind != connectorv1.TableKind_TABLE_KIND_TABLE {
			t.Fatalf("page size %d: %d tables", size, len(r.Tables))
		}
	}
	if _, err := cc.ListTables(ctx, &connectorv1.ListTablesRequest{Ds: dsCtx(), PageToken: "garbage"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad token: %v", err)
	}

	dr, err := cc.DescribeTables(ctx, &connectorv1.DescribeTablesRequest{Ds: dsCtx(), Tables: []*connectorv1.TableRef{{Namespace: "a", Name: "t0001"}}})
	if err != nil {
		t.Fatal(err)
	}
	cols := dr.Tables[0].Columns
	if len(cols) != 5 || cols[0].ArrowType != "int64" || cols[3].ArrowType != "timestamp[us, tz=UTC]" || !cols[1].Nullable {
		t.Fatalf("columns %v", cols)
	}
}

func TestDescribeAndDispose(t *testing.T) {
	g := newGen()
	cc := startGen(t, g)
	ctx := context.Background()
	d, err := cc.Describe(ctx, &connectorv1.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "gen" || d.Version != "0.1.0" || d.SdkVersion != sdk.SDKVersion || !strings.Contains(d.ConfigSchemaJson, "x-secret") {
		t.Fatalf("describe %v", d)
	}
	if _, err := cc.DisposeInstance(ctx, &connectorv1.DisposeInstanceRequest{DatasourceId: "ds9"}); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.disposed) != 1 || g.disposed[0] != "ds9" {
		t.Fatalf("disposed %v", g.disposed)
	}
}

func TestConfigDecode(t *testing.T) {
	cfg := sdk.Config{JSON: []byte(`{"host":"db","port":5432}`), Secrets: map[string]string{"password": "pw"}}
	var c struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Password string `json:"password"`
	}
	if err := cfg.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Host != "db" || c.Port != 5432 || c.Password != "pw" {
		t.Fatalf("%+v", c)
	}
	cfg.JSON = []byte(`{"host":"db","options":"-c x=y"}`)
	fes := sdk.AsFieldErrors(cfg.Decode(&c))
	if len(fes) != 1 || fes[0].Field != "/options" {
		t.Fatalf("%v", fes)
	}
}

func TestInstances(t *testing.T) {
	var built, closed atomic.Int32
	insts := sdk.Instances[int64]{
		New: func(ctx context.Context, cfg sdk.Config) (int64, error) {
			built.Add(1)
			time.Sleep(10 * time.Millisecond)
			if cfg.Version < 0 {
				return 0, errors.New("bad")
			}
			return cfg.Version, nil
		},
		Close: func(int64) { closed.Add(1) },
	}
	ctx := context.Background()
	done := make(chan int64)
	for range 8 {
		go func() {
			v, _ := insts.Get(ctx, sdk.Config{DataSourceID: "a", Version: 1})
			done <- v
		}()
	}
	for range 8 {
		if v := <-done; v != 1 {
			t.Fatalf("got %d", v)
		}
	}
	if built.Load() != 1 {
		t.Fatalf("built %d times", built.Load())
	}
	if v, _ := insts.Get(ctx, sdk.Config{DataSourceID: "a", Version: 2}); v != 2 {
		t.Fatalf("got %d", v)
	}
	if _, err := insts.Get(ctx, sdk.Config{DataSourceID: "b", Version: -1}); err == nil {
		t.Fatal("no error")
	}
	if _, err := insts.Get(ctx, sdk.Config{DataSourceID: "b", Version: -1}); err == nil || built.Load() != 4 {
		t.Fatalf("a failed build was cached (%d builds)", built.Load())
	}
	insts.Dispose("a")
	deadline := time.Now().Add(2 * time.Second)
	for closed.Load() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if closed.Load() != 2 {
		t.Fatalf("closed %d", closed.Load())
	}
}

func TestPageOf(t *testing.T) {
	items := []int{1, 2, 3, 4, 5}
	var got []int
	tok := ""
	for range 10 {
		page, next, err := sdk.PageOf(items, sdk.Page{Size: 2, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if tok = next; tok == "" {
			break
		}
	}
	if len(got) != 5 || tok != "" {
		t.Fatalf("%v %q", got, tok)
	}
	if _, _, err := sdk.PageOf(items, sdk.Page{Size: 2, Token: sdk.EncodeOffsetToken(99)}); sdk.CodeOf(err) != sdk.CodeInvalidArgument {
		t.Fatalf("%v", err)
	}
}

func TestParentWatch(t *testing.T) {
	var ppid atomic.Int32
	ppid.Store(100)
	exited := make(chan int, 1)
	stop := make(chan struct{})
	go sdk.PollParent(100, func() int { return int(ppid.Load()) }, 5*time.Millisecond, func(code int) { exited <- code }, stop)
	select {
	case <-exited:
		t.Fatal("exited while the parent lives")
	case <-time.After(50 * time.Millisecond):
	}
	ppid.Store(1) // re-parented to init: the host died
	select {
	case code := <-exited:
		if code == 0 {
			t.Fatal("exit code 0")
		}
	case <-time.After(time.Second):
		t.Fatal("did not exit after the parent died")
	}
	close(stop)
}

func TestScrub(t *testing.T) {
	got := sdk.Scrub("dial postgres://u:p%40ss%2Fword@h and p@ss/word", []string{"p@ss/word"})
	if strings.Contains(got, "p@ss/word") || strings.Contains(got, "p%40ss%2Fword") {
		t.Fatalf("%q", got)
	}
}

// The row builder converts Go values to each column type, and a value that
// does not fit fails the query instead of producing a broken batch.
func TestRowBuilderTypes(t *testing.T) {
	cc := startGen(t, newGen())
	res, err := runQuery(t, context.Background(), cc, "types", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{{int64(-1), int64(300), int64(70000), uint64(1 << 63), 1.5, []byte{1, 2}, "large",
		sdk.Date{Year: 2024, Month: 2, Day: 29}, "12.34", epoch, "ptr"}}
	if ok, diff := sdktest.SameRows(res.rows[:1], want); !ok {
		t.Fatalf("%s: %#v", diff, res.rows[0])
	}
	for i, v := range res.rows[1] {
		if v != nil {
			t.Errorf("row 2 column %d: %#v, want NULL", i, v)
		}
	}
	_, err = runQuery(t, context.Background(), cc, "types bad", nil)
	if err == nil || !strings.Contains(err.Error(), "out of range for int8") {
		t.Fatalf("bad row: %v", err)
	}
}
