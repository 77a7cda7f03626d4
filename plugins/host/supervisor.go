package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
	"github.com/datapulse/datapulse/plugins/sdk"
)

// maxMsgSize is the largest single gRPC message the host accepts from a
// connector (research §1.2: go-plugin's default is MaxInt32).
const maxMsgSize = 64 << 20

// pingTimeout bounds the health check sent after a call timed out.
const pingTimeout = 2 * time.Second

// crashGrace is how long a failed call waits for the process-exit signal
// before deciding the failure was not a crash.
const crashGrace = time.Second

// Connector status values reported by Connectors.
const (
	StatusStopped     = "stopped"     // not running (not used yet, or after Close)
	StatusStarting    = "starting"    // process starting / handshake in progress
	StatusReady       = "ready"       // process running and described
	StatusCrashed     = "crashed"     // last process died or failed to start; the next call restarts it after backoff
	StatusUnavailable = "unavailable" // crash-loop breaker open until RetryAt
	StatusDisabled    = "disabled"    // refused (manifest, checksum, protocol, permissions); never started
)

// connector supervises the single process serving one connector.
type connector struct {
	h       *Host
	name    string
	idx     int // position in Host.order
	builtin bool
	inst    *installed // third-party only

	mu          sync.Mutex
	disabledErr error
	cur         *instance
	starting    *startOp
	desc        *connectorv1.DescribeResponse // from the latest successful start
	lastErr     string
	crashTimes  []time.Time // within the breaker window
	consecutive int         // failures since the last successful start
	crashes     int         // total, for ConnectorInfo
	nextStart   time.Time   // backoff
	openUntil   time.Time   // breaker
	// checksumRetry: disabledErr is a checksum mismatch found at a start;
	// the file is hashed again at the next start attempt (after backoff),
	// so a restored executable is usable again without a server restart.
	checksumRetry bool
	tail          *stderrTail // of the latest process

	stats connStats
}

type startOp struct {
	done  chan struct{}
	err   error
	kill  context.CancelFunc // kills the process being started (Close)
	first bool               // the connector never started nor failed before
}

// instance is one running connector process.
type instance struct {
	c        *connector
	client   *plugin.Client
	cmd      *exec.Cmd
	tail     *stderrTail
	kill     context.CancelFunc // SIGKILL to the process group (via exec.CommandContext)
	rpc      connectorv1.ConnectorClient
	exited   <-chan struct{} // closed when the process has exited (go-plugin's doneCtx)
	release  chan struct{}   // lets the forking thread go once the process is gone
	pid      int
	started  time.Time
	desc     *connectorv1.DescribeResponse
	expected atomic.Bool // the host stopped it (Close): not a crash
	reason   atomic.Pointer[string]
	probing  atomic.Bool
	handled  bool // exit accounted (under c.mu)
}

func (i *instance) hasExited() bool {
	select {
	case <-i.exited:
		return true
	default:
		return false
	}
}

func (i *instance) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-i.exited:
		return true
	case <-t.C:
		return false
	}
}

// exitStatus describes how the process ended ("exit status 3", "signal: killed").
// Valid after exited is closed.
func (i *instance) exitStatus() string {
	if r := i.reason.Load(); r != nil {
		return *r
	}
	if ps := i.cmd.ProcessState; ps != nil {
		return ps.String()
	}
	return "exited"
}

// acquire returns the running instance, starting the process if needed. It
// waits for an ongoing start or a short backoff within ctx — of this
// connector only: nothing here ever waits on another connector.
func (c *connector) acquire(ctx context.Context) (*instance, error) {
	waited := false
	wait := func() {
		if !waited {
			waited = true
			c.stats.startWaits.Add(1)
		}
	}
	for {
		c.mu.Lock()
		if c.h.closed.Load() {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: connector %q: the host is shutting down", ErrConnectorUnavailable, c.name)
		}
		if c.disabledErr != nil && !c.retryChecksumLocked(time.Now()) {
			err := c.disabledErr
			c.mu.Unlock()
			return nil, err
		}
		if inst := c.cur; inst != nil {
			if !inst.hasExited() {
				c.mu.Unlock()
				return inst, nil
			}
			c.handleExitLocked(inst)
		}
		if op := c.starting; op != nil {
			c.mu.Unlock()
			wait()
			select {
			case <-op.done:
				if op.err != nil {
					return nil, op.err
				}
				continue
			case <-ctx.Done():
				return nil, c.ctxErr(ctx, "waiting for the connector to start")
			}
		}
		now := time.Now()
		if now.Before(c.openUntil) {
			until, last := c.openUntil, c.lastErr
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: connector %q crashed repeatedly and is paused until %s (last error: %s)",
				ErrConnectorUnavailable, c.name, until.Format(time.RFC3339), last)
		}
		if wait := c.nextStart.Sub(now); wait > 0 {
			last := c.lastErr
			c.mu.Unlock()
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return nil, fmt.Errorf("%w: connector %q is restarting after a failure, next attempt in %s (last error: %s)",
					ErrConnectorUnavailable, c.name, wait.Round(time.Millisecond), last)
			}
			c.stats.startWaits.Add(1)
			waited = true
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, c.ctxErr(ctx, "waiting to restart the connector")
			}
		}
		c.beginStartLocked()
		c.mu.Unlock()
	}
}

// retryChecksumLocked re-enables a connector disabled by a checksum
// mismatch once its backoff has passed: the start about to happen hashes
// the executable again.
func (c *connector) retryChecksumLocked(now time.Time) bool {
	if !c.checksumRetry || now.Before(c.nextStart) || now.Before(c.openUntil) {
		return false
	}
	c.disabledErr = nil
	c.checksumRetry = false
	return true
}

// beginStartLocked starts a process in the background (runStart).
func (c *connector) beginStartLocked() *startOp {
	procCtx, kill := context.WithCancel(context.Background())
	op := &startOp{done: make(chan struct{}), kill: kill, first: c.desc == nil && c.crashes == 0}
	c.starting = op
	// wg.Add happens under c.mu after the closed check: Close sets
	// closed, then locks every connector, then waits.
	c.h.wg.Add(1)
	go c.runStart(op, procCtx, kill)
	return op
}

// kick starts the process in the background unless it is running,
// starting, disabled, or waiting out a backoff or the breaker. It never
// blocks. It returns the start in progress, if any.
func (c *connector) kick() *startOp {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.h.closed.Load() || (c.disabledErr != nil && !c.retryChecksumLocked(now)) {
		return nil
	}
	if inst := c.cur; inst != nil {
		if !inst.hasExited() {
			return nil
		}
		c.handleExitLocked(inst)
	}
	if c.starting != nil {
		return c.starting
	}
	if now.Before(c.openUntil) || now.Before(c.nextStart) {
		return nil
	}
	return c.beginStartLocked()
}

// restartSoon starts the connector again once its backoff has passed (after
// the host killed it), so that it is ready before the next call.
func (c *connector) restartSoon(inst *instance) {
	c.mu.Lock()
	if c.h.closed.Load() {
		c.mu.Unlock()
		return
	}
	c.h.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.h.wg.Done()
		select {
		case <-inst.exited:
		case <-c.h.ctx.Done():
			return
		}
		c.mu.Lock()
		wait := time.Until(c.nextStart)
		c.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-c.h.ctx.Done():
				return
			}
		}
		c.kick()
	}()
}

func (c *connector) ctxErr(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: connector %q: deadline exceeded %s: %w", ErrConnectorTimeout, c.name, what, context.DeadlineExceeded)
	}
	if c.h.closed.Load() {
		return fmt.Errorf("%w: connector %q: the host is shutting down", ErrConnectorUnavailable, c.name)
	}
	return fmt.Errorf("connector %q: %s: %w", c.name, what, context.Canceled)
}

// runStart starts a process in the background: a caller giving up does not
// abort a start other callers may be waiting for.
func (c *connector) runStart(op *startOp, procCtx context.Context, kill context.CancelFunc) {
	defer c.h.wg.Done()
	inst, err := c.launch(procCtx, kill)
	if err == nil {
		c.h.wg.Add(1)
		go c.watch(inst)
	}
	c.mu.Lock()
	c.starting = nil
	if err == nil && c.h.closed.Load() {
		// Close ran while we were starting: it could not see this instance.
		inst.expected.Store(true)
		c.mu.Unlock()
		c.h.stopInstance(inst)
		c.mu.Lock()
		err = fmt.Errorf("%w: connector %q: the host is shutting down", ErrConnectorUnavailable, c.name)
	}
	switch {
	case err == nil:
		if c.stats.starts.Add(1) > 1 {
			c.stats.restarts.Add(1)
		}
		c.cur = inst
		c.desc = inst.desc
		c.consecutive = 0
		c.nextStart = time.Time{}
		c.checksumRetry = false
		c.h.log.Info("connector started", "connector", c.name, "pid", inst.pid,
			"version", inst.desc.GetVersion(), "sdk_version", inst.desc.GetSdkVersion(),
			"elapsed", time.Since(inst.started).Round(time.Microsecond))
	case errors.Is(err, errChecksumMismatch):
		c.stats.startFailures.Add(1)
		c.recordFailureLocked(err.Error())
		c.disabledErr = err
		c.checksumRetry = true
		c.h.log.Error("connector refused", "connector", c.name, "error", err, "retry_at", c.nextStart)
	case errors.Is(err, ErrConnectorDisabled):
		c.disabledErr = err
		c.lastErr = err.Error()
		c.h.log.Error("connector refused", "connector", c.name, "error", err)
	case c.h.closed.Load():
		err = fmt.Errorf("%w: connector %q: the host is shutting down", ErrConnectorUnavailable, c.name)
	default:
		c.stats.startFailures.Add(1)
		c.recordFailureLocked(err.Error())
		c.h.log.Error("connector failed to start", "connector", c.name, "error", err)
	}
	op.err = err
	c.mu.Unlock()
	close(op.done)
}

// recordFailureLocked accounts a crash or failed start: backoff, breaker.
func (c *connector) recordFailureLocked(reason string) {
	o := &c.h.o
	now := time.Now()
	c.lastErr = reason
	c.crashes++
	c.consecutive++
	backoff := o.RestartBackoff
	for i := 1; i < c.consecutive && backoff < o.MaxRestartBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, o.MaxRestartBackoff)
	c.nextStart = now.Add(backoff)
	kept := c.crashTimes[:0]
	for _, t := range c.crashTimes {
		if now.Sub(t) < o.CrashLoopWindow {
			kept = append(kept, t)
		}
	}
	c.crashTimes = append(kept, now)
	if len(c.crashTimes) >= o.CrashLoopThreshold {
		c.openUntil = now.Add(o.CrashLoopCooldown)
		c.nextStart = c.openUntil
		c.crashTimes = nil
		c.consecutive = 0
		c.h.log.Error("connector crash loop: paused", "connector", c.name,
			"failures", o.CrashLoopThreshold, "window", o.CrashLoopWindow, "until", c.openUntil, "last_error", reason)
	}
}

// handleExitLocked accounts the exit of inst once.
func (c *connector) handleExitLocked(inst *instance) {
	if inst.handled {
		return
	}
	inst.handled = true
	if c.cur == inst {
		c.cur = nil
	}
	if inst.expected.Load() || c.h.closed.Load() {
		return
	}
	reason := fmt.Sprintf("process %d exited unexpectedly (%s)", inst.pid, inst.exitStatus())
	if t := inst.tail.String(); t != "" {
		reason += "; last stderr: " + t
	}
	c.stats.crashes.Add(1)
	c.recordFailureLocked(reason)
	c.h.log.Warn("connector exited", "connector", c.name, "pid", inst.pid, "status", inst.exitStatus(),
		"uptime", time.Since(inst.started).Round(time.Millisecond))
}

// watch waits for the process to exit and cleans up after it.
func (c *connector) watch(inst *instance) {
	defer c.h.wg.Done()
	<-inst.exited
	killGroup(inst.pid) // grandchildren, if any
	c.mu.Lock()
	c.handleExitLocked(inst)
	c.mu.Unlock()
	inst.kill()
	inst.client.Kill() // releases go-plugin's goroutines; the process is gone
	close(inst.release)
}

// probe runs after a call on inst timed out: a connector that does not even
// answer Describe (which does no I/O) is wedged and gets killed; the next
// call starts a fresh process.
func (c *connector) probe(inst *instance) {
	c.mu.Lock()
	if c.h.closed.Load() || !inst.probing.CompareAndSwap(false, true) {
		c.mu.Unlock()
		return
	}
	c.h.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.h.wg.Done()
		defer inst.probing.Store(false)
		ctx, cancel := context.WithTimeout(c.h.ctx, pingTimeout)
		_, err := inst.rpc.Describe(ctx, &connectorv1.DescribeRequest{HostVersion: c.h.o.HostVersion})
		cancel()
		if err == nil || inst.hasExited() || c.h.closed.Load() {
			return
		}
		reason := fmt.Sprintf("process %d killed: it did not answer a health check within %s after a call timed out", inst.pid, pingTimeout)
		inst.reason.Store(&reason)
		c.h.log.Warn("connector hung: killing it", "connector", c.name, "pid", inst.pid)
		c.reclaim(inst, reason)
	}()
}

// ActiveQueriesHeader is the gRPC response header of Describe in which a
// connector lists the query ids whose Query handler is still running (the
// SDK sets it). The host asks after a query's deadline plus HangGrace: a
// connector still running that query ignores cancellation and is restarted.
const ActiveQueriesHeader = "datapulse-active-queries"

// checkOverdue runs after a query hit its deadline: once HangGrace has
// passed, a connector that still runs the query (it ignores cancellation)
// is killed and started again; the calls still in flight on that process
// fail with ErrConnectorCrashed naming the reason.
func (c *connector) checkOverdue(inst *instance, queryID string) {
	c.mu.Lock()
	if c.h.closed.Load() || queryID == "" {
		c.mu.Unlock()
		return
	}
	c.h.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.h.wg.Done()
		grace := c.h.o.HangGrace
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-inst.exited:
			return
		case <-c.h.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(c.h.ctx, pingTimeout)
		var md metadata.MD
		_, err := inst.rpc.Describe(ctx, &connectorv1.DescribeRequest{HostVersion: c.h.o.HostVersion}, grpc.Header(&md))
		cancel()
		if inst.hasExited() || c.h.closed.Load() {
			return
		}
		var reason string
		switch {
		case err != nil:
			reason = fmt.Sprintf("process %d killed: it did not answer a health check %s after a query's deadline", inst.pid, grace)
		case slices.Contains(activeQueries(md), queryID):
			reason = fmt.Sprintf("process %d killed: it was still running query %s %s after the query's deadline (the connector ignores cancellation)", inst.pid, queryID, grace)
		default:
			return
		}
		c.h.log.Warn("connector holds a call past its deadline: restarting it", "connector", c.name, "pid", inst.pid, "query_id", queryID)
		c.reclaim(inst, reason)
	}()
}

func activeQueries(md metadata.MD) []string {
	var out []string
	for _, v := range md.Get(ActiveQueriesHeader) {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}

// reclaim kills a hung process (retiring it first, so no new call is handed
// the dying process) and starts the connector again after its backoff.
func (c *connector) reclaim(inst *instance, reason string) {
	inst.reason.Store(&reason)
	c.mu.Lock()
	if !inst.handled {
		inst.handled = true
		if c.cur == inst {
			c.cur = nil
		}
		c.stats.hungKills.Add(1)
		c.recordFailureLocked(reason)
	}
	c.mu.Unlock()
	inst.kill()
	c.restartSoon(inst)
}

// grpcPlugin is the host side of the go-plugin "connector" plugin: it only
// hands out a connectorv1.ConnectorClient. The host depends on the protocol
// and the handshake, not on the SDK's implementation.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

type dispensed struct {
	rpc  connectorv1.ConnectorClient
	done context.Context // go-plugin's doneCtx: cancelled when the process exits
}

func (grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the connector host does not serve connectors")
}

func (grpcPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &dispensed{rpc: connectorv1.NewConnectorClient(cc), done: ctx}, nil
}

// launch starts one process, completes the handshake and describes it.
func (c *connector) launch(procCtx context.Context, kill context.CancelFunc) (inst *instance, err error) {
	h := c.h
	started := time.Now()
	home, err := h.connectorHome(c)
	if err != nil {
		kill()
		return nil, fmt.Errorf("%w: connector %q: %v", ErrConnectorStart, c.name, err)
	}
	var cmd *exec.Cmd
	var secure *plugin.SecureConfig
	if c.builtin {
		cmd = exec.CommandContext(procCtx, h.exe, h.builtinArgs(c.name)...)
		cmd.Args[0] = h.argv0
		cmd.Dir = home
	} else {
		cmd = exec.CommandContext(procCtx, c.inst.exe)
		cmd.Dir = c.inst.dir
		// go-plugin re-hashes the file right before exec.
		secure = &plugin.SecureConfig{Checksum: c.inst.checksum, Hash: sha256.New()}
	}
	cert, err := h.clientCert()
	if err != nil {
		kill()
		return nil, fmt.Errorf("%w: connector %q: %v", ErrConnectorStart, c.name, err)
	}
	cmd.Env = append(h.connectorEnv(home), "PLUGIN_CLIENT_CERT="+cert.pem)
	setSysProcAttr(cmd)
	cmd.Cancel = func() error {
		killGroup(cmd.Process.Pid)
		return cmd.Process.Kill()
	}
	cmd.WaitDelay = 2 * time.Second

	logger := newHclog(h.log, c.name)
	tail := newStderrTail(h.log, c.name)
	c.mu.Lock()
	c.tail = tail
	c.mu.Unlock()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {sdk.PluginName: grpcPlugin{}}},
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		// Mutual TLS as go-plugin's AutoMTLS does it, but with the host's
		// certificate made once (AutoMTLS makes a P-521 key per start):
		// the connector still makes its own key pair and sends its
		// certificate back in the handshake, which go-plugin pins.
		TLSConfig:    cert.config(),
		SkipHostEnv:  true,
		Managed:      false, // Host.Close kills every client
		StartTimeout: h.o.StartTimeout,
		Logger:       logger,
		SyncStdout:   lineWriter(func(s string) { logger.Info(s, "stream", "stdout") }),
		SyncStderr:   lineWriter(func(s string) { logger.Info(s, "stream", "stderr") }),
		Stderr:       tail,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize))},
	})

	release := make(chan struct{})
	startErr := make(chan error, 1)
	go func() {
		if lockStartThread {
			// Never unlocked: when this goroutine returns (after the child
			// is gone) the runtime retires the thread.
			runtime.LockOSThread()
		}
		_, err := client.Start()
		startErr <- err
		if err == nil {
			<-release
		}
	}()
	if err := <-startErr; err != nil {
		kill()
		client.Kill() // waits for go-plugin's goroutines: cmd.ProcessState is set after it
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return nil, fmt.Errorf("%w: connector %q: %w", ErrConnectorDisabled, c.name, errChecksumMismatch)
		}
		msg := startMessage(err)
		if ps := cmd.ProcessState; ps != nil && !strings.Contains(msg, "timeout") {
			msg += " (" + ps.String() + ")"
		}
		if t := tail.String(); t != "" {
			msg += "; stderr: " + t
		}
		return nil, fmt.Errorf("%w: connector %q: %s", ErrConnectorStart, c.name, msg)
	}
	tail.handshakeDone()
	fail := func(format string, args ...any) (*instance, error) {
		kill()
		client.Kill()
		close(release)
		return nil, fmt.Errorf("%w: connector %q: %s", ErrConnectorStart, c.name, fmt.Sprintf(format, args...))
	}
	proto, err := client.Client()
	if err != nil {
		return fail("connect: %v", err)
	}
	raw, err := proto.Dispense(sdk.PluginName)
	if err != nil {
		return fail("dispense: %v", err)
	}
	d := raw.(*dispensed)
	inst = &instance{
		c: c, client: client, cmd: cmd, tail: tail, kill: kill, rpc: d.rpc, exited: d.done.Done(),
		release: release, pid: cmd.Process.Pid, started: started,
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.o.CallTimeout)
	desc, err := inst.rpc.Describe(ctx, &connectorv1.DescribeRequest{HostVersion: h.o.HostVersion})
	cancel()
	if err != nil {
		return fail("describe: %v", err)
	}
	switch {
	case desc.GetName() != c.name:
		return fail("it describes itself as %q", desc.GetName())
	case desc.GetConfigSchemaJson() != "" && !json.Valid([]byte(desc.GetConfigSchemaJson())):
		return fail("its config schema is not valid JSON")
	}
	inst.desc = desc
	return inst, nil
}

// startMessage turns go-plugin's start error into one clear line.
func startMessage(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "Failed to read any lines from plugin's stdout") {
		return "the process exited before the handshake (it wrote nothing on stdout)"
	}
	if i := strings.Index(msg, "\nThis usually means"); i >= 0 {
		msg = msg[:i] + " (the executable did not complete the go-plugin handshake: not a DataPulse connector, wrong architecture, or it wrote to stdout before serving)"
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	return msg
}

// stopInstance stops inst for good (not a crash): go-plugin's graceful
// shutdown (Shutdown RPC, up to 2 s), then SIGKILL to the process group.
func (h *Host) stopInstance(inst *instance) {
	inst.expected.Store(true)
	done := make(chan struct{})
	go func() {
		inst.client.Kill()
		close(done)
	}()
	t := time.NewTimer(3 * time.Second)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	inst.kill()
	killGroup(inst.pid)
}

// connectorHome is the private HOME and TMPDIR of a connector. It is named
// by index, not by name: go-plugin puts the connector's Unix socket in
// TMPDIR, and socket paths are limited to 108 bytes.
func (h *Host) connectorHome(c *connector) (string, error) {
	dir := h.home + string(os.PathSeparator) + strconv.Itoa(c.idx)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create home directory: %w", err)
	}
	return dir, nil
}

// connectorEnv is the whole environment of a connector (SkipHostEnv): no
// DATAPULSE_* variable, no secret, nothing but what a process needs. go-plugin
// adds its handshake variables (magic cookie, protocol versions, mTLS cert).
func (h *Host) connectorEnv(home string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path, "HOME=" + home, "TMPDIR=" + home,
		// The scrubbed environment would lose it: the SDK reads its level here.
		LogLevelEnv + "=" + h.logLevel}
	for _, k := range []string{"LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
