package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/host"
)

// A normal query streams its batches and they decode to the rows sent.
func TestQueryStreamsAndDecodes(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	res, err := th.Query(ctxT(t), "fake", ds, host.Query{SQL: "rows 25000 batch 1000"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	want := []string{"id", "name", "value", "ts", "flag"}
	for i, f := range res.Schema().Fields() {
		if f.Name != want[i] {
			t.Fatalf("field %d = %s, want %s", i, f.Name, want[i])
		}
	}
	var next int64
	batches := 0
	for {
		rec, err := res.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		batches++
		ids := rec.Column(0).(*array.Int64)
		names := rec.Column(1).(*array.String)
		ts := rec.Column(3).(*array.Timestamp)
		for i := 0; i < int(rec.NumRows()); i++ {
			if ids.Value(i) != next {
				t.Fatalf("id %d, want %d", ids.Value(i), next)
			}
			if next%10 == 9 != names.IsNull(i) {
				t.Fatalf("row %d: null pattern broken", next)
			}
			wantTS := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(next) * time.Second)
			if got := ts.Value(i).ToTime(arrow.Microsecond); !got.Equal(wantTS) {
				t.Fatalf("row %d: ts %v, want %v", next, got, wantTS)
			}
			next++
		}
		rec.Release()
	}
	if next != 25000 || res.Rows() != 25000 || batches != 25 || res.Truncated() {
		t.Fatalf("rows %d (Rows %d) in %d batches, truncated %v; want 25000 in 25, not truncated",
			next, res.Rows(), batches, res.Truncated())
	}
	// An empty result still has its schema.
	r := th.mustQuery("fake", host.Query{SQL: "rows 0"})
	if r.rows != 0 || r.batches != 0 {
		t.Fatalf("empty result: %+v", r)
	}
}

// Metadata calls, Connectors, secrets redaction, parameters, request id, dispose.
func TestCallsAndConnectors(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	ctx := ctxT(t)

	infos := th.Connectors(ctx)
	if len(infos) != 1 {
		t.Fatalf("Connectors: %+v", infos)
	}
	c := infos[0]
	if c.Name != "fake" || c.DisplayName != "Fake fake" || c.Version != "1.2.3" || !c.Builtin ||
		c.Status != host.StatusReady || c.SQLDialect != "sqlite" || c.PID == 0 ||
		!slices.Equal(c.Capabilities, []string{"sql", "parameters"}) || !json.Valid(c.ConfigSchema) {
		t.Fatalf("Connectors()[0] = %+v", c)
	}

	bad := ds
	bad.Config = []byte(`{"bad":true}`)
	fe, err := th.ValidateConfig(ctx, "fake", bad)
	if err != nil || len(fe) != 1 || fe[0].Field != "/bad" {
		t.Fatalf("ValidateConfig = %+v, %v", fe, err)
	}
	if strings.Contains(fe[0].Message, "right-password") || !strings.Contains(fe[0].Message, "[redacted]") {
		t.Fatalf("secret not redacted: %q", fe[0].Message)
	}
	if fe, err := th.ValidateConfig(ctx, "fake", ds); err != nil || len(fe) != 0 {
		t.Fatalf("ValidateConfig(good) = %+v, %v", fe, err)
	}

	hl, err := th.CheckHealth(ctx, "fake", ds)
	if err != nil || !hl.OK || hl.ServerVersion != "Fake 1.0" || hl.Latency != 3*time.Millisecond {
		t.Fatalf("CheckHealth = %+v, %v", hl, err)
	}
	wrong := ds
	wrong.Secrets = map[string]string{"password": "hunter2-wrong"}
	hl, err = th.CheckHealth(ctx, "fake", wrong)
	if err != nil || hl.OK || strings.Contains(hl.Message, "hunter2") {
		t.Fatalf("CheckHealth(wrong) = %+v, %v", hl, err)
	}
	// A connector that itself answers Unavailable is not mistaken for a crash.
	unreach := ds
	unreach.Config = []byte(`{"unreachable":true}`)
	_, err = th.CheckHealth(ctx, "fake", unreach)
	var ce *host.ConnectorError
	if !errors.As(err, &ce) || ce.Code != codes.Unavailable || strings.Contains(err.Error(), "right-password") {
		t.Fatalf("CheckHealth(unreachable) = %v", err)
	}

	var all []string
	token := ""
	for {
		page, next, err := th.ListNamespaces(ctx, "fake", ds, 2, token)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		token = next
	}
	if !slices.Equal(all, []string{"alpha", "beta", "gamma", "delta", "epsilon"}) {
		t.Fatalf("namespaces %v", all)
	}
	tables, _, err := th.ListTables(ctx, "fake", ds, "alpha", 0, "")
	if err != nil || len(tables) != 2 || tables[1] != (host.TableRef{Namespace: "alpha", Name: "v1", Kind: host.KindView}) {
		t.Fatalf("ListTables = %+v, %v", tables, err)
	}
	ti, err := th.DescribeTables(ctx, "fake", ds, tables[:1])
	if err != nil || len(ti) != 1 || ti[0].Ref.Name != "t1" || len(ti[0].Columns) != 2 || ti[0].Columns[1].ArrowType != "utf8" {
		t.Fatalf("DescribeTables = %+v, %v", ti, err)
	}

	// A connector error keeps its code and loses the secret.
	r := th.query("fake", host.Query{SQL: "error"})
	if !errors.As(r.err, &ce) || ce.Code != codes.InvalidArgument || strings.Contains(r.err.Error(), "right-password") ||
		!strings.Contains(ce.Message, "syntax error") {
		t.Fatalf("query error = %v", r.err)
	}

	// Parameters travel typed.
	day := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	r = th.mustQuery("fake", host.Query{SQL: "params", Params: []any{
		nil, true, int64(7), 2.5, "text", day, host.Date{Time: day}, []any{int64(1), "two"}, json.Number("12"),
	}})
	want := []string{
		"*connectorv1.Parameter_Null=&{true}", "*connectorv1.Parameter_Bool=&{true}", "*connectorv1.Parameter_Int=&{7}",
		"*connectorv1.Parameter_Float=&{2.5}", "*connectorv1.Parameter_Text=&{text}",
		"*connectorv1.Parameter_TimestampUs=&{1772636400000000}", "*connectorv1.Parameter_DateDays=&{20516}",
	}
	if len(r.text) != 9 || !slices.Equal(r.text[:7], want) || !strings.HasPrefix(r.text[7], "*connectorv1.Parameter_List=") ||
		r.text[8] != "*connectorv1.Parameter_Int=&{12}" {
		t.Fatalf("params echoed as %q", r.text)
	}
	if _, err := th.Query(ctx, "fake", ds, host.Query{SQL: "params", Params: []any{struct{}{}}}); !errors.Is(err, host.ErrInvalidParameter) {
		t.Fatalf("unsupported parameter: %v", err)
	}

	// The request id reaches the connector.
	res, err := th.Query(host.WithRequestID(ctx, "req-42"), "fake", ds, host.Query{SQL: "request-id"})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(res); len(got.text) != 1 || got.text[0] != "req-42" {
		t.Fatalf("request id %q", got.text)
	}
	res.Close()

	th.Dispose(ctx, "fake", "ds-gone")
	if r := th.mustQuery("fake", host.Query{SQL: "disposed"}); !slices.Equal(r.text, []string{"ds-gone"}) {
		t.Fatalf("disposed %q", r.text)
	}

	if _, err := th.CheckHealth(ctx, "nope", ds); !errors.Is(err, host.ErrUnknownConnector) {
		t.Fatalf("unknown connector: %v", err)
	}
}

// The process dies in the middle of a stream (os.Exit after 3 batches): that
// request fails with ErrConnectorCrashed and the next call restarts it.
func TestCrashMidStream(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	before := th.pid("fake")
	r := th.query("fake", host.Query{SQL: "crash 3"})
	wantErr(t, r.err, host.ErrConnectorCrashed, `"fake"`, "exit status 3", "restarted")
	if r.rows != 300 {
		t.Fatalf("rows before the crash: %d, want 300", r.rows)
	}
	if after := th.pid("fake"); after == before {
		t.Fatalf("not restarted: pid %d", after)
	}
	if c := th.info("fake"); c.Status != host.StatusReady || c.Crashes != 1 || !strings.Contains(c.LastError, "exit status 3") {
		t.Fatalf("after restart: %+v", c)
	}
}

// The connector process is SIGKILLed from outside while the host reads its
// stream.
func TestKillMidStream(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	pid := th.pid("fake")
	res, err := th.Query(ctxT(t), "fake", ds, host.Query{SQL: "rows 100000 batch 100 sleep 20"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for i := 0; i < 2; i++ {
		if err := next(res); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var rerr error
	for rerr == nil {
		rerr = next(res)
	}
	wantErr(t, rerr, host.ErrConnectorCrashed, "signal: killed")
	r := th.mustQuery("fake", host.Query{SQL: "rows 10"})
	if r.rows != 10 {
		t.Fatalf("after restart: %d rows", r.rows)
	}
}

// A query that reaches its deadline and that the connector stops (as it
// must) leaves the process alone, also after the grace period. (One that
// ignores cancellation is restarted: TestBrokenConnectorsNeverBlockOthers.)
func TestDeadlineRespectedKeepsConnector(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}, HangGrace: 200 * time.Millisecond})
	pid := th.pid("fake")
	r := th.query("fake", host.Query{SQL: "slowcancel", Timeout: 300 * time.Millisecond})
	wantErr(t, r.err, host.ErrConnectorTimeout)
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("timeout does not wrap DeadlineExceeded: %v", r.err)
	}
	time.Sleep(600 * time.Millisecond) // past the grace period: the check ran
	if got := th.pid("fake"); got != pid {
		t.Fatalf("a connector that stopped its query was restarted: %d -> %d", pid, got)
	}
	if s := stats(th, "fake"); s.HungKills != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func stats(th *testHost, name string) host.ConnectorStats {
	for _, s := range th.Stats() {
		if s.Name == name {
			return s
		}
	}
	th.t.Fatalf("no stats for %s", name)
	return host.ConnectorStats{}
}

// A wedged connector (every call blocks) hits the deadline, fails the health
// check, is killed and restarted: the host recovers.
func TestWedgedConnectorIsRestarted(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}, CallTimeout: 500 * time.Millisecond})
	pid := th.pid("fake")
	_, err := th.Query(ctxT(t), "fake", ds, host.Query{SQL: "hanglock", Timeout: 300 * time.Millisecond})
	wantErr(t, err, host.ErrConnectorTimeout)
	_, err = th.CheckHealth(ctxT(t), "fake", ds)
	wantErr(t, err, host.ErrConnectorTimeout)
	waitFor(t, 5*time.Second, "the wedged process to be killed", func() bool { return !alive(pid) })
	hl, err := th.CheckHealth(ctxT(t), "fake", ds)
	if err != nil || !hl.OK {
		t.Fatalf("after recovery: %+v, %v", hl, err)
	}
	if c := th.info("fake"); c.PID == pid || !strings.Contains(c.LastError, "did not answer a health check") {
		t.Fatalf("after recovery: %+v", c)
	}
}

// Start failures: garbage on the handshake, exit before the handshake,
// a protocol version we do not speak, a wrong name, a start timeout.
func TestStartFailures(t *testing.T) {
	th := newHost(t, host.Options{
		Builtins:     []string{"garbage", "crashstart", "v2", "misnamed", "slowstart"},
		StartTimeout: 700 * time.Millisecond,
	})
	cases := map[string][]string{
		"garbage": {"Unrecognized remote plugin message: hello, I am not a connector", "did not complete the go-plugin handshake"},
		// What the process said on stderr before dying is the reason.
		"crashstart": {"exited before the handshake", "exit status 3", "fatal: cannot read license file /etc/fake.lic: permission denied"},
		"v2":         {"incompatible API version with plugin. Plugin version: 2"},
		"misnamed":   {`describes itself as "something-else"`},
		"slowstart":  {"timeout while waiting for plugin to start"},
	}
	for name, msgs := range cases {
		_, err := th.CheckHealth(ctxT(t), name, ds)
		wantErr(t, err, host.ErrConnectorStart, append(msgs, `"`+name+`"`)...)
	}
	for _, c := range th.Connectors(ctxT(t)) {
		if c.Status != host.StatusCrashed || c.LastError == "" || c.PID != 0 {
			t.Errorf("%s: %+v", c.Name, c)
		}
	}
	if _, ok := th.logs.find(func(r logRecord) bool {
		return r.msg == "connector failed to start" && r.attrs["connector"] == "garbage"
	}); !ok {
		t.Errorf("start failure not logged")
	}
	// Plain stderr before the handshake is logged at warn under the
	// connector's name (not at debug, where a log.Fatal went unseen).
	if _, ok := th.logs.find(func(r logRecord) bool {
		return r.level == slog.LevelWarn && r.attrs["connector"] == "crashstart" &&
			strings.Contains(r.msg, "fatal: cannot read license file")
	}); !ok {
		t.Errorf("pre-handshake stderr not logged at warn")
	}
}

// A slow start is shared: concurrent first calls wait for one process.
func TestSlowStartSharedByConcurrentCalls(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"slowstart"}})
	var wg sync.WaitGroup
	pids := make([]string, 4)
	errs := make([]error, 4)
	for i := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := th.query("slowstart", host.Query{SQL: "pid"})
			errs[i] = r.err
			if r.err == nil {
				pids[i] = r.text[0]
			}
		}()
	}
	wg.Wait()
	for i := range pids {
		if errs[i] != nil || pids[i] != pids[0] {
			t.Fatalf("call %d: pid %q err %v (first %q)", i, pids[i], errs[i], pids[0])
		}
	}
}

// The host, not the connector, enforces the row and byte caps.
func TestCapsCutOversizedResults(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})

	// Ignores max_rows: the host slices the batch that crosses the cap.
	r := th.mustQuery("fake", host.Query{SQL: "rows 5000 batch 1000 ignore-limits", MaxRows: 2500})
	if !r.truncated || r.rows != 2500 || len(r.ids) != 2500 || r.ids[2499] != 2499 {
		t.Fatalf("row cap: rows %d ids %d truncated %v", r.rows, len(r.ids), r.truncated)
	}
	// The cap falls on a batch boundary: more rows behind it is truncation…
	r = th.mustQuery("fake", host.Query{SQL: "rows 3000 batch 1000 ignore-limits", MaxRows: 2000})
	if !r.truncated || r.rows != 2000 {
		t.Fatalf("cap on boundary: rows %d truncated %v", r.rows, r.truncated)
	}
	// …exactly the cap is not.
	r = th.mustQuery("fake", host.Query{SQL: "rows 2000 batch 1000 ignore-limits", MaxRows: 2000})
	if r.truncated || r.rows != 2000 {
		t.Fatalf("exact cap: rows %d truncated %v", r.rows, r.truncated)
	}
	// A well-behaved connector truncates itself and says so in the trailer.
	r = th.mustQuery("fake", host.Query{SQL: "rows 5000 batch 1000", MaxRows: 1234})
	if !r.truncated || r.rows != 1234 {
		t.Fatalf("connector-side cap: rows %d truncated %v", r.rows, r.truncated)
	}
	// The default cap applies when the query sets none.
	th2 := newHost(t, host.Options{Builtins: []string{"fake"}, MaxRows: 700})
	r = th2.mustQuery("fake", host.Query{SQL: "rows 5000 batch 1000 ignore-limits"})
	if !r.truncated || r.rows != 700 {
		t.Fatalf("default cap: rows %d truncated %v", r.rows, r.truncated)
	}

	// Byte cap: ~128 KiB per 1000-row batch; 1 MiB lets 7 batches through.
	r = th.mustQuery("fake", host.Query{SQL: "rows 100000 batch 1000 strlen 100 ignore-limits", MaxBytes: 1 << 20})
	if !r.truncated || r.rows == 0 || r.rows > 8000 || r.rows%1000 != 0 {
		t.Fatalf("byte cap: rows %d truncated %v", r.rows, r.truncated)
	}
	// The first batch alone above the byte cap: nothing usable.
	_, err := th.Query(ctxT(t), "fake", ds, host.Query{SQL: "rows 1000 batch 1000 strlen 100", MaxBytes: 1000})
	wantErr(t, err, host.ErrResultTooLarge)

	// A single message above 64 MiB is refused by gRPC.
	r = th.query("fake", host.Query{SQL: "huge 65"})
	wantErr(t, r.err, host.ErrResultTooLarge, "64 MiB")
	// A compressed batch cannot make the host allocate without bound.
	r = th.query("fake", host.Query{SQL: "bomb", MaxBytes: 1 << 20})
	wantErr(t, r.err, host.ErrProtocol, "memory budget")
	if r := th.query("fake", host.Query{SQL: "bomb", MaxRows: 20_000_000}); r.err != nil || r.rows != 10_000_000 {
		t.Fatalf("bomb within budget: %d rows, %v", r.rows, r.err)
	}
	// None of this hurt the connector.
	if r := th.mustQuery("fake", host.Query{SQL: "rows 3"}); r.rows != 3 {
		t.Fatalf("after caps: %d rows", r.rows)
	}
	if c := th.info("fake"); c.Crashes != 0 {
		t.Fatalf("caps caused crashes: %+v", c)
	}
}

// Whatever a connector sends is validated: protocol violations are errors,
// never panics, and the connector stays usable.
func TestMalformedResultsAreRejected(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	cases := map[string]string{
		"schema-switch": "malformed Arrow IPC",
		"bad-batch":     "",
		"garbage-ipc":   "",
		"no-schema":     "",
		"trailer-only":  "",
		"no-trailer":    "without a trailer",
		"after-trailer": "after the trailer",
	}
	for sql, msg := range cases {
		r := th.query("fake", host.Query{SQL: sql})
		if !errors.Is(r.err, host.ErrProtocol) {
			t.Errorf("%s: error %v (rows %d), want ErrProtocol", sql, r.err, r.rows)
			continue
		}
		if msg != "" && !strings.Contains(r.err.Error(), msg) {
			t.Errorf("%s: %v does not mention %q", sql, r.err, msg)
		}
		t.Logf("%s: %v", sql, r.err)
	}
	if r := th.mustQuery("fake", host.Query{SQL: "rows 3"}); r.rows != 3 {
		t.Fatalf("after malformed results: %d rows", r.rows)
	}
	if c := th.info("fake"); c.Crashes != 0 {
		t.Fatalf("crashes: %+v", c)
	}
}

// Repeated crashes open the breaker; it closes after the cool-down.
func TestCrashLoopBreaker(t *testing.T) {
	th := newHost(t, host.Options{
		Builtins: []string{"fake"}, RestartBackoff: 10 * time.Millisecond,
		CrashLoopThreshold: 3, CrashLoopWindow: time.Minute, CrashLoopCooldown: 1500 * time.Millisecond,
	})
	for i := 0; i < 3; i++ {
		r := th.query("fake", host.Query{SQL: "crash 1"})
		wantErr(t, r.err, host.ErrConnectorCrashed)
	}
	r := th.query("fake", host.Query{SQL: "rows 1"})
	wantErr(t, r.err, host.ErrConnectorUnavailable, "crashed repeatedly", "exit status 3")
	c := th.info("fake")
	if c.Status != host.StatusUnavailable || c.RetryAt.IsZero() || c.Crashes != 3 {
		t.Fatalf("breaker open: %+v", c)
	}
	waitFor(t, 5*time.Second, "the cool-down", func() bool { return time.Now().After(c.RetryAt) })
	if r := th.mustQuery("fake", host.Query{SQL: "rows 5"}); r.rows != 5 {
		t.Fatalf("after cool-down: %d rows", r.rows)
	}
	if c := th.info("fake"); c.Status != host.StatusReady {
		t.Fatalf("after cool-down: %+v", c)
	}
}

// Failed starts back off exponentially and also trip the breaker.
func TestStartCrashLoop(t *testing.T) {
	th := newHost(t, host.Options{
		Builtins: []string{"crashstart"}, RestartBackoff: 50 * time.Millisecond,
		CrashLoopThreshold: 3, CrashLoopCooldown: time.Minute,
	})
	for i := 0; i < 3; i++ {
		_, err := th.CheckHealth(ctxT(t), "crashstart", ds)
		wantErr(t, err, host.ErrConnectorStart)
	}
	_, err := th.CheckHealth(ctxT(t), "crashstart", ds)
	wantErr(t, err, host.ErrConnectorUnavailable)
	if c := th.info("crashstart"); c.Status != host.StatusUnavailable {
		t.Fatalf("%+v", c)
	}
	// A caller whose deadline ends before the backoff does is told so at once.
	th2 := newHost(t, host.Options{Builtins: []string{"crashstart"}, RestartBackoff: 10 * time.Second})
	_, _ = th2.CheckHealth(ctxT(t), "crashstart", ds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = th2.CheckHealth(ctx, "crashstart", ds)
	wantErr(t, err, host.ErrConnectorUnavailable, "next attempt in")
	if time.Since(start) > 200*time.Millisecond {
		t.Fatalf("waited %s", time.Since(start))
	}
}

// Closing a Result or cancelling the context cancels the query in the
// connector.
func TestCancelReachesConnector(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	res, err := th.Query(ctxT(t), "fake", ds, host.Query{SQL: "slowcancel"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := next(res); err != nil {
			t.Fatal(err)
		}
	}
	res.Close()

	ctx, cancel := context.WithCancel(ctxT(t))
	res, err = th.Query(ctx, "fake", ds, host.Query{SQL: "slowcancel"})
	if err != nil {
		t.Fatal(err)
	}
	if err := next(res); err != nil {
		t.Fatal(err)
	}
	cancel()
	var rerr error
	for rerr == nil {
		rerr = next(res)
	}
	if !errors.Is(rerr, context.Canceled) {
		t.Fatalf("after cancel: %v", rerr)
	}
	res.Close()
	waitFor(t, 3*time.Second, "both cancellations to reach the connector", func() bool {
		r := th.mustQuery("fake", host.Query{SQL: "cancelled"})
		return r.text[0] == "2"
	})
}

// The connector's environment is scrubbed; builtins get the forbidden paths.
func TestEnvironmentScrubbed(t *testing.T) {
	t.Setenv("DATAPULSE_DATA_KEY", "top-secret-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("TZ", "Europe/Paris")
	dir := t.TempDir()
	db := filepath.Join(dir, "datapulse.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(db, link); err != nil {
		t.Fatal(err)
	}
	th := newHost(t, host.Options{Builtins: []string{"fake"}, ForbiddenPaths: []string{link}})
	r := th.mustQuery("fake", host.Query{SQL: "env"})
	env := map[string]string{}
	var args []string
	for _, l := range r.text {
		if a, ok := strings.CutPrefix(l, "arg:"); ok {
			args = append(args, a)
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	for k := range env {
		switch {
		case k == "PATH", k == "HOME", k == "TMPDIR", k == "TZ", k == "LANG":
		case k == host.LogLevelEnv:
			// the host's level, passed on explicitly
		case strings.HasPrefix(k, "PLUGIN_"), k == "DATAPULSE_CONNECTOR":
			// go-plugin's handshake variables (the magic cookie is not a secret)
		case strings.HasPrefix(k, "cwd:"):
		default:
			t.Errorf("unexpected variable in the connector's environment: %s", k)
		}
	}
	// newHost's logger accepts everything: the connector logs at trace.
	if env[host.LogLevelEnv] != "trace" {
		t.Errorf("%s = %q, want trace", host.LogLevelEnv, env[host.LogLevelEnv])
	}
	if env["TZ"] != "Europe/Paris" || env["HOME"] == "" || env["HOME"] != env["TMPDIR"] || env["PATH"] == "" {
		t.Errorf("environment: %v", env)
	}
	if fi, err := os.Stat(env["HOME"]); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("HOME %s: %v %v", env["HOME"], fi, err)
	}
	wantArgs := []string{"fakeconn", "plugin", "serve", "fake", "--forbidden-path=" + link, "--forbidden-path=" + db}
	if !slices.Equal(args, wantArgs) {
		t.Errorf("args %q, want %q", args, wantArgs)
	}
}

// Connector logs (hclog JSON on stderr) and stray stdout reach the slog
// logger as structured records tagged with the connector.
func TestLogsRouted(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	th.mustQuery("fake", host.Query{SQL: "log"})
	th.mustQuery("fake", host.Query{SQL: "stdout"})
	waitFor(t, 3*time.Second, "the connector's log records", func() bool {
		_, a := th.logs.find(func(r logRecord) bool {
			return r.msg == "hello from the connector" && r.level.String() == "WARN" &&
				r.attrs["connector"] == "fake" && r.attrs["answer"] == "42"
		})
		_, b := th.logs.find(func(r logRecord) bool {
			return r.msg == "stray stdout line" && r.attrs["stream"] == "stdout" && r.attrs["connector"] == "fake"
		})
		return a && b
	})
}

// A connector built on plugins/sdk works through the host.
func TestSDKConnector(t *testing.T) {
	th := newHost(t, host.Options{Executable: sdkconn, Builtins: []string{"sdkconn"}})
	r := th.mustQuery("sdkconn", host.Query{SQL: "select", MaxRows: 600})
	if r.rows != 600 || !r.truncated {
		t.Fatalf("rows %d truncated %v", r.rows, r.truncated)
	}
	if c := th.info("sdkconn"); c.DisplayName != "SDK test connector" || c.Status != host.StatusReady {
		t.Fatalf("%+v", c)
	}
}

// Close stops every process (no child left, checked by newHost's cleanup),
// fails in-flight streams and refuses later calls.
func TestCloseStopsEverything(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake", "other"}})
	p1, p2 := th.pid("fake"), th.pid("other")
	res, err := th.Query(ctxT(t), "fake", ds, host.Query{SQL: "slowcancel"})
	if err != nil {
		t.Fatal(err)
	}
	if len(children()) != 2 {
		t.Fatalf("children before Close: %v", children())
	}
	if err := th.Close(); err != nil {
		t.Fatal(err)
	}
	if kids := children(); len(kids) != 0 {
		t.Fatalf("children after Close: %v", kids)
	}
	if alive(p1) || alive(p2) {
		t.Fatalf("connectors still alive")
	}
	var rerr error
	for rerr == nil {
		rerr = next(res)
	}
	wantErr(t, rerr, host.ErrConnectorUnavailable, "shutting down")
	res.Close()
	_, err = th.CheckHealth(context.Background(), "fake", ds)
	wantErr(t, err, host.ErrConnectorUnavailable)
	if c := th.Connectors(context.Background()); c[0].Status != host.StatusStopped {
		t.Fatalf("%+v", c[0])
	}
}

// No connector outlives a server killed with SIGKILL: through plugins/host
// (parent-death signal set by the host), and with a bare go-plugin client
// (only the SDK's own parent watch can end it).
func TestConnectorDiesWithKilledServer(t *testing.T) {
	cases := []struct{ mode, exe, name string }{
		{"host", fakeconn, "fake"},
		{"raw", sdkconn, "sdkconn"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.Command(hostproc, tc.mode, tc.exe, tc.name)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line := readLine(t, out)
			var pid int
			if _, err := fmt.Sscan(line, &pid); err != nil || pid == 0 {
				t.Fatalf("hostproc said %q", line)
			}
			if ppid, _, _, _ := procStat(pid); ppid != cmd.Process.Pid {
				t.Fatalf("connector %d has parent %d, not hostproc %d", pid, ppid, cmd.Process.Pid)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			start := time.Now()
			waitFor(t, 5*time.Second, "the orphaned connector to exit", func() bool { return !alive(pid) })
			t.Logf("connector %d exited %s after its host was killed", pid, time.Since(start).Round(time.Millisecond))
			if tc.mode == "host" {
				// The killed server's connector home is removed by the next host.
				stale, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("datapulse-connectors-%d-*", cmd.Process.Pid)))
				if len(stale) != 1 {
					t.Fatalf("killed server's home directories: %v", stale)
				}
				newHost(t, host.Options{})
				if _, err := os.Stat(stale[0]); !os.IsNotExist(err) {
					t.Fatalf("stale home %s not removed: %v", stale[0], err)
				}
			}
		})
	}
}
