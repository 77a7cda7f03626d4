package host_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/datapulse/datapulse/plugins/host"
)

// Real executables, built once per test run by TestMain.
var (
	fakeconn string // plugins/host/internal/testconnectors/fakeconn
	sdkconn  string // …/sdkconn (built on plugins/sdk)
	hostproc string // …/hostproc
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hosttest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-o", dir+string(os.PathSeparator), "./internal/testconnectors/...")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building test connectors:", err)
		os.Exit(1)
	}
	fakeconn = filepath.Join(dir, "fakeconn")
	sdkconn = filepath.Join(dir, "sdkconn")
	hostproc = filepath.Join(dir, "hostproc")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logSink records every slog record for assertions.
type logSink struct {
	mu      sync.Mutex
	records []logRecord
	attrs   []slog.Attr
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

type sinkHandler struct {
	s     *logSink
	attrs []slog.Attr
}

func (h sinkHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h sinkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.s.mu.Lock()
	h.s.records = append(h.s.records, rec)
	h.s.mu.Unlock()
	return nil
}
func (h sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sinkHandler{s: h.s, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h sinkHandler) WithGroup(string) slog.Handler { return h }

func (s *logSink) find(pred func(logRecord) bool) (logRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if pred(r) {
			return r, true
		}
	}
	return logRecord{}, false
}

// openHosts counts the hosts not yet closed: the no-children check runs when
// the last one closes.
var openHosts atomic.Int32

type testHost struct {
	*host.Host
	t    *testing.T
	logs *logSink
}

// newHost starts a host whose builtins are served by fakeconn (unless
// o.Executable is set). It is closed at the end of the test, and the test
// then checks that no child process is left.
func newHost(t *testing.T, o host.Options) *testHost {
	t.Helper()
	if o.Executable == "" {
		o.Executable = fakeconn
	}
	sink := &logSink{}
	o.Logger = slog.New(sinkHandler{s: sink})
	h, err := host.New(context.Background(), o)
	if err != nil {
		t.Fatalf("host.New: %v", err)
	}
	openHosts.Add(1)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if openHosts.Add(-1) == 0 {
			if kids := children(); len(kids) > 0 {
				t.Errorf("child processes left after Close: %v", kids)
			}
		}
	})
	return &testHost{Host: h, t: t, logs: sink}
}

var ds = host.DataSource{ID: "ds-1", Version: 1, Config: []byte(`{"path":"x"}`),
	Secrets: map[string]string{"password": "right-password"}}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// result is a fully read query.
type result struct {
	rows      int64
	batches   int
	ids       []int64
	text      []string
	truncated bool
	err       error // the error that ended the stream (nil at io.EOF)
}

func (th *testHost) query(conn string, q host.Query) result {
	th.t.Helper()
	res, err := th.Query(ctxT(th.t), conn, ds, q)
	if err != nil {
		return result{err: err}
	}
	defer res.Close()
	return drain(res)
}

func drain(res *host.Result) result {
	var out result
	for {
		rec, err := res.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			out.err = err
			break
		}
		out.batches++
		switch col := rec.Column(0).(type) {
		case *array.Int64:
			out.ids = append(out.ids, col.Int64Values()...)
		case *array.String:
			for i := 0; i < col.Len(); i++ {
				out.text = append(out.text, strings.Clone(col.Value(i)))
			}
		}
		rec.Release()
	}
	out.rows = res.Rows()
	out.truncated = res.Truncated()
	return out
}

// next reads and releases one batch.
func next(res *host.Result) error {
	rec, err := res.Next()
	if rec != nil {
		rec.Release()
	}
	return err
}

func (th *testHost) mustQuery(conn string, q host.Query) result {
	th.t.Helper()
	r := th.query(conn, q)
	if r.err != nil {
		th.t.Fatalf("query %q on %s: %v", q.SQL, conn, r.err)
	}
	return r
}

// pid asks the connector process for its own pid.
func (th *testHost) pid(conn string) int {
	th.t.Helper()
	r := th.mustQuery(conn, host.Query{SQL: "pid"})
	n, err := strconv.Atoi(r.text[0])
	if err != nil {
		th.t.Fatalf("pid: %v", err)
	}
	return n
}

func (th *testHost) info(conn string) host.ConnectorInfo {
	th.t.Helper()
	for _, c := range th.Connectors(ctxT(th.t)) {
		if c.Name == conn {
			return c
		}
	}
	th.t.Fatalf("connector %q not listed", conn)
	return host.ConnectorInfo{}
}

func wantErr(t *testing.T, err, target error, contains ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// children lists the live child processes of the test process (/proc).
func children() []string {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, comm, ok := procStat(pid)
		if ok && ppid == self && state != "Z" {
			out = append(out, fmt.Sprintf("%d(%s)", pid, comm))
		}
	}
	return out
}

// procStat reads ppid, state and command name of pid.
func procStat(pid int) (ppid int, state, comm string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", false
	}
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < 0 {
		return 0, "", "", false
	}
	f := strings.Fields(s[close+1:])
	if len(f) < 2 {
		return 0, "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0], s[open+1 : close], true
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	_, state, _, ok := procStat(pid)
	return ok && state != "Z"
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (%q)", err, line)
	}
	return strings.TrimSpace(line)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
