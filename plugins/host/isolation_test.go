package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datapulse/datapulse/plugins/host"
)

// Issue 14, item 1: three broken third-party connectors — one that never
// completes its handshake, one that dies at start, one whose queries hang
// ignoring cancellation — never make a call on another connector wait.
// Asserted on counts (no call waited for a start of theirs), not on time;
// each broken connector's status then says why.
func TestBrokenConnectorsNeverBlockOthers(t *testing.T) {
	plugins := t.TempDir()
	install(t, plugins, "nohandshake", nil)
	install(t, plugins, "crashstart", nil)
	install(t, plugins, "hangs", nil)
	th := newHost(t, host.Options{
		Builtins: []string{"fake"}, PluginDir: plugins,
		StartTimeout: 3 * time.Second, HangGrace: 300 * time.Millisecond,
		RestartBackoff: 50 * time.Millisecond,
	})
	ctx := ctxT(t)

	// The listing starts every connector in the background and waits for
	// none of the third-party ones.
	for _, c := range th.Connectors(ctx) {
		if c.Name == "fake" && c.Status != host.StatusReady {
			t.Fatalf("fake: %+v", c)
		}
	}
	// "hangs" is holding a query that ignores cancellation…
	hangDone := make(chan result, 1)
	go func() {
		res, err := th.Query(ctx, "hangs", ds, host.Query{SQL: "hang", Timeout: 700 * time.Millisecond})
		if err != nil {
			hangDone <- result{err: err}
			return
		}
		defer res.Close()
		hangDone <- drain(res)
	}()
	// …and another call is in flight on the same process.
	inflight := make(chan result, 1)
	go func() {
		res, err := th.Query(ctx, "hangs", ds, host.Query{SQL: "hang", Timeout: 20 * time.Second})
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer res.Close()
		inflight <- drain(res)
	}()

	// Meanwhile: queries, listings and lookups on the healthy connector.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				res, err := th.Query(ctx, "fake", ds, host.Query{SQL: "rows 3"})
				if err != nil {
					errs <- err
					continue
				}
				if r := drain(res); r.err != nil || r.rows != 3 {
					errs <- errors.Join(r.err, errors.New("wrong row count"))
				}
				res.Close()
				th.Connectors(ctx)
				if _, err := th.Connector(ctx, "fake"); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call on the healthy connector: %v", err)
	}
	// Nothing ever waited for a broken connector to start: only the two
	// "hangs" queries waited for their own connector.
	for _, s := range th.Stats() {
		want := int64(0)
		if s.Name == "hangs" {
			if s.StartWaits > 2 {
				t.Errorf("hangs: %d calls waited for its start, want at most its own 2", s.StartWaits)
			}
			continue
		}
		if s.StartWaits != want {
			t.Errorf("%s: %d calls waited for its start, want %d", s.Name, s.StartWaits, want)
		}
	}
	if s := stats(th, "fake"); s.Calls != 20 || s.Errors != 0 { // lookups and listings are not calls
		t.Errorf("fake stats %+v", s)
	}

	// The hung query fails at its deadline; past the grace period the
	// process, still running it, is killed: the other call in flight on it
	// fails cleanly, naming the reason, and the connector comes back.
	r := <-hangDone
	wantErr(t, r.err, host.ErrConnectorTimeout)
	r = <-inflight
	wantErr(t, r.err, host.ErrConnectorCrashed, `"hangs"`, "ignores cancellation")
	waitFor(t, 10*time.Second, "hangs to be restarted", func() bool {
		return th.info("hangs").Status == host.StatusReady
	})
	if s := stats(th, "hangs"); s.HungKills != 1 || s.Restarts != 1 {
		t.Errorf("hangs stats %+v", s)
	}
	if c := th.info("hangs"); !strings.Contains(c.LastError, "ignores cancellation") {
		t.Errorf("hangs: %+v", c)
	}

	// Each broken connector's status says why.
	waitFor(t, 10*time.Second, "the broken connectors' first starts to fail", func() bool {
		return th.info("nohandshake").Status != host.StatusStarting && th.info("crashstart").Status != host.StatusStarting
	})
	c := th.info("crashstart")
	if c.Status != host.StatusCrashed || !strings.Contains(c.Reason, "fatal: cannot read license file") ||
		!strings.Contains(c.LastError, "exit status 3") {
		t.Errorf("crashstart: %+v", c)
	}
	c = th.info("nohandshake")
	if c.Status != host.StatusCrashed || !strings.Contains(c.LastError, "timeout while waiting for plugin to start") ||
		!strings.Contains(c.LastError, "waiting for a license server") {
		t.Errorf("nohandshake: %+v", c)
	}
	// The first call on a connector that cannot start reports why.
	_, err := th.Connector(ctx, "crashstart")
	wantErr(t, err, host.ErrConnectorStart, "fatal: cannot read license file")
}

// The host's version reaches the connector in Describe; a manifest's
// "datapulse" range outside it refuses the connector with a clear reason,
// and Reload picks up a fixed manifest without a server restart.
func TestHostVersionRangeAndReload(t *testing.T) {
	plugins := t.TempDir()
	install(t, plugins, "future", map[string]any{"datapulse": ">=9.0.0"})
	install(t, plugins, "current", map[string]any{"datapulse": ">=1.0.0 <2.0.0"})
	th := newHost(t, host.Options{Builtins: []string{"fake"}, PluginDir: plugins, HostVersion: "1.4.2"})
	ctx := ctxT(t)
	if r := th.mustQuery("current", host.Query{SQL: "host-version"}); len(r.text) != 1 || r.text[0] != "1.4.2" {
		t.Fatalf("host version seen by the connector: %q", r.text)
	}
	c := th.info("future")
	if c.Status != host.StatusDisabled || !strings.Contains(c.Reason, "requires DataPulse >=9.0.0; this is 1.4.2") {
		t.Fatalf("future: %+v", c)
	}
	_, err := th.CheckHealth(ctx, "future", ds)
	wantErr(t, err, host.ErrConnectorDisabled, "requires DataPulse")

	// Reloading a running builtin restarts it.
	pid := th.pid("fake")
	in, err := th.Reload(ctx, "fake")
	if err != nil || in.Status != host.StatusReady || in.PID == pid || in.PID == 0 {
		t.Fatalf("reload fake: %+v, %v", in, err)
	}
	// Reloading the refused one after fixing its manifest enables it.
	install(t, plugins, "future", map[string]any{"datapulse": ">=1.0.0"})
	in, err = th.Reload(ctx, "future")
	if err != nil || in.Status != host.StatusReady || in.Reason != "" {
		t.Fatalf("reload future: %+v, %v", in, err)
	}
	if _, err := th.Reload(ctx, "nope"); !errors.Is(err, host.ErrUnknownConnector) {
		t.Fatalf("reload unknown: %v", err)
	}
	// A reload that finds a broken manifest says why.
	writeManifest(t, filepath.Join(plugins, "current"), map[string]any{"name": "current"})
	in, err = th.Reload(ctx, "current")
	if err != nil || in.Status != host.StatusDisabled || !strings.Contains(in.Reason, "manifest has no version") {
		t.Fatalf("reload broken current: %+v, %v", in, err)
	}
}

// An executable tampered with after installation is refused at its next
// start; once restored, the next start attempt hashes it again and it runs:
// no server restart needed.
func TestTamperedThenRestoredBinaryRecovers(t *testing.T) {
	plugins := t.TempDir()
	exe := install(t, plugins, "tamper", nil)
	th := newHost(t, host.Options{PluginDir: plugins, RestartBackoff: 20 * time.Millisecond})
	th.mustQuery("tamper", host.Query{SQL: "rows 1"})

	orig, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	// Replaced as upgrades do it (the running file is busy): new file, rename.
	if err := os.WriteFile(exe+".new", append(append([]byte(nil), orig...), "tampered"...), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	r := th.query("tamper", host.Query{SQL: "crash 1"}) // the process goes away
	wantErr(t, r.err, host.ErrConnectorCrashed)
	waitFor(t, 5*time.Second, "the restart attempt to refuse the file", func() bool {
		_, err := th.CheckHealth(ctxT(t), "tamper", ds)
		return errors.Is(err, host.ErrConnectorDisabled) && strings.Contains(err.Error(), "checksum mismatch")
	})
	if c := th.info("tamper"); c.Status != host.StatusDisabled || !strings.Contains(c.Reason, "checksum mismatch") {
		t.Fatalf("tampered: %+v", c)
	}
	copyFile(t, fakeconn, exe+".new", 0o755) // restored, byte for byte
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the restored executable to run again", func() bool {
		_, err := th.CheckHealth(context.Background(), "tamper", ds)
		return err == nil
	})
	if c := th.info("tamper"); c.Status != host.StatusReady {
		t.Fatalf("restored: %+v", c)
	}
}

// Calls are counted per connector, with their failures and durations.
func TestStatsCountCalls(t *testing.T) {
	th := newHost(t, host.Options{Builtins: []string{"fake"}})
	th.mustQuery("fake", host.Query{SQL: "rows 5"})
	_ = th.query("fake", host.Query{SQL: "error"})
	if _, err := th.CheckHealth(ctxT(t), "fake", ds); err != nil {
		t.Fatal(err)
	}
	s := stats(th, "fake")
	if s.Starts != 1 || s.Restarts != 0 || s.Calls != 3 || s.Errors != 1 || s.DurationCount != 3 ||
		s.DurationBuckets[len(s.DurationBuckets)-1] != 3 || s.DurationSum <= 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Through the SDK: a Query method that ignores its context keeps the call
// past the deadline; the SDK lists it as running, and the host restarts the
// process after the grace period.
func TestSDKConnectorHangIsReclaimed(t *testing.T) {
	th := newHost(t, host.Options{Executable: sdkconn, Builtins: []string{"sdkconn"}, HangGrace: 200 * time.Millisecond,
		RestartBackoff: 10 * time.Millisecond})
	pid := th.pid2("sdkconn")
	r := th.query("sdkconn", host.Query{SQL: "hang", Timeout: 300 * time.Millisecond})
	wantErr(t, r.err, host.ErrConnectorTimeout)
	waitFor(t, 10*time.Second, "the hung process to be replaced", func() bool {
		c := th.info("sdkconn")
		return c.Status == host.StatusReady && c.PID != pid
	})
	if s := stats(th, "sdkconn"); s.HungKills != 1 {
		t.Fatalf("stats %+v", s)
	}
	if c := th.info("sdkconn"); !strings.Contains(c.LastError, "ignores cancellation") {
		t.Fatalf("%+v", c)
	}
}

// pid2 is the pid of a running connector, from its status.
func (th *testHost) pid2(name string) int {
	th.t.Helper()
	th.mustQuery(name, host.Query{SQL: "select", MaxRows: 1})
	return th.info(name).PID
}
