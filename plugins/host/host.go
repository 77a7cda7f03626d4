// Package host runs DataPulse connectors as go-plugin subprocesses and is the
// only thing the rest of DataPulse talks to about them.
//
// One process per connector serves every data source of that connector.
// Builtins are the running binary re-executed as `<exe> plugin serve <name>`;
// third-party connectors are executables under <PluginDir>/<name>/ pinned by
// a manifest's sha256. Processes start lazily on first use (or on the first
// Connectors call), are restarted with exponential backoff after a crash, and
// are paused by a crash-loop breaker. The host enforces every deadline, the
// row and byte caps of a query, and validates everything a connector sends:
// a connector is untrusted input.
//
// The host depends only on the protocol (plugins/proto/connector/v1) and the
// handshake (plugins/sdk); it never imports core.
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
)

// ForbiddenPathFlag is appended to a builtin's command line once per
// forbidden path: `<exe> plugin serve sqlite --forbidden-path=/data/datapulse.db`.
// The `plugin serve` command hands the list to the builtin connectors that
// open files (sqlite, csv).
const ForbiddenPathFlag = "--forbidden-path"

// Options configure a Host. Zero values take the documented defaults.
type Options struct {
	// Executable is the binary whose `plugin serve <name>` serves a builtin.
	// Default: the running binary (/proc/self/exe on Linux).
	Executable string
	// Builtins are the builtin connector names.
	Builtins []string
	// PluginDir (<data-dir>/plugins) holds third-party connectors, one
	// directory each with a manifest.json. Empty or missing: none.
	PluginDir string
	// Logger receives the host's records and every connector's log output
	// (hclog JSON on its stderr, stray stdout/stderr), with connector=<name>.
	Logger *slog.Logger
	// CallTimeout is the deadline of non-query calls (default 15s).
	CallTimeout time.Duration
	// QueryTimeout is the default deadline of a query, from the Query call
	// until the last batch is read (default 30s).
	QueryTimeout time.Duration
	// MaxRows is the default row cap of a query (default 100000).
	MaxRows int64
	// MaxBytes is the default cap on the Arrow IPC bytes received for a
	// query (default 256 MiB).
	MaxBytes int64
	// ForbiddenPaths are files builtins must never open (DataPulse's own
	// database). Passed to builtins on their command line (ForbiddenPathFlag),
	// absolute and with symlinks resolved; not passed to third-party
	// connectors, which are untrusted anyway.
	ForbiddenPaths []string
	// ForbiddenDatabases are databases builtins must never connect to
	// (DataPulse's own metadata database on PostgreSQL; see
	// PostgresIdentity). Passed like ForbiddenPaths (ForbiddenDatabaseFlag).
	ForbiddenDatabases []ForbiddenDatabase

	// StartTimeout bounds process start plus handshake (default 15s).
	StartTimeout time.Duration
	// RestartBackoff is the delay before the first restart after a crash,
	// doubling per consecutive failure up to MaxRestartBackoff
	// (defaults 100ms and 30s).
	RestartBackoff, MaxRestartBackoff time.Duration
	// CrashLoopThreshold failures within CrashLoopWindow open the breaker:
	// the connector is unavailable for CrashLoopCooldown
	// (defaults 5, 1m, 1m).
	CrashLoopThreshold int
	CrashLoopWindow    time.Duration
	CrashLoopCooldown  time.Duration
	// HostVersion is sent to connectors in Describe and checked against a
	// manifest's "datapulse" range (not checked when it is not a semantic
	// version, e.g. "dev").
	HostVersion string
	// LogLevel is given to connectors (LogLevelEnv): trace, debug, info,
	// warn or error. Default: the lowest level Logger accepts.
	LogLevel string
	// HangGrace is how long after a query's deadline a connector may still
	// run it (it should stop at the deadline): past it, the process is
	// killed and started again (default 5s).
	HangGrace time.Duration
	// ListWait bounds how long Connectors waits for builtin connectors
	// starting for the first time (default 5s; negative: never waits).
	// Third-party connectors are never waited for: Connectors starts them
	// in the background and reports them as starting.
	ListWait time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, 15*time.Second)
	def(&o.QueryTimeout, 30*time.Second)
	def(&o.StartTimeout, 15*time.Second)
	def(&o.RestartBackoff, 100*time.Millisecond)
	def(&o.MaxRestartBackoff, 30*time.Second)
	def(&o.CrashLoopWindow, time.Minute)
	def(&o.CrashLoopCooldown, time.Minute)
	def(&o.HangGrace, 5*time.Second)
	if o.ListWait == 0 {
		o.ListWait = 5 * time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = logLevelOf(o.Logger)
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 100_000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	if o.CrashLoopThreshold <= 0 {
		o.CrashLoopThreshold = 5
	}
}

// Host supervises the connector processes.
type Host struct {
	o      Options
	log    *slog.Logger
	exe    string
	argv0  string
	home   string // private HOME/TMPDIR root for connectors
	forbid []string
	// forbidDB are the ForbiddenDatabaseFlag arguments.
	forbidDB []string
	order    []string
	conns    map[string]*connector
	// pluginDir is Options.PluginDir resolved ("" when there is none).
	pluginDir string
	logLevel  string

	certOnce sync.Once
	cert     *hostCert
	certErr  error

	ctx    context.Context // cancelled by Close: every call derives from it
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup // background goroutines (starts, watchers, probes)
}

// ConnectorInfo is what Connectors reports for one connector. Identity fields
// come from the connector's Describe answer (empty until it first started).
type ConnectorInfo struct {
	Name         string
	DisplayName  string
	Version      string
	SDKVersion   string
	Builtin      bool
	ConfigSchema json.RawMessage // JSON Schema; secret properties carry "x-secret": true
	Capabilities []string
	SQLDialect   string
	Status       string // StatusReady, StatusStarting, StatusCrashed, StatusUnavailable, StatusDisabled, StatusStopped
	// Reason explains a status other than ready: why it is disabled,
	// failing or paused, and when it is tried again.
	Reason    string
	LastError string // the last start failure, crash or refusal (kept after recovery)
	Crashes   int    // failures since the host started
	RetryAt   time.Time
	PID       int // of the running process, 0 if none
}

// DataSource is what a connector receives with every call. Version must
// change on every edit: connectors cache connections keyed by (ID, Version).
type DataSource struct {
	ID      string
	Version int64
	Config  json.RawMessage
	Secrets map[string]string
}

// FieldError is a configuration problem reported by ValidateConfig.
type FieldError struct {
	Field   string // JSON pointer, e.g. "/port"
	Message string
}

// Health is the answer of CheckHealth.
type Health struct {
	OK            bool
	Message       string
	ServerVersion string
	Latency       time.Duration // probe latency measured by the connector
}

// Table kinds.
const (
	KindTable = "table"
	KindView  = "view"
	KindFile  = "file"
)

// TableRef names a table.
type TableRef struct {
	Namespace string
	Name      string
	Kind      string // KindTable, KindView, KindFile or ""
}

// Column describes a column of a table.
type Column struct {
	Name       string
	NativeType string // the database's type name
	ArrowType  string // the Arrow type Query emits for it
	Nullable   bool
}

// TableInfo describes a table.
type TableInfo struct {
	Ref     TableRef
	Columns []Column
}

// New discovers the builtins and the installed connectors (validating every
// manifest and checksum now, so a refused connector shows up as disabled in
// Connectors). It starts no process: processes start on first use. That
// keeps server start fast and spends no memory on connectors nobody uses;
// a cold start costs ~10–20 ms, paid once.
func New(ctx context.Context, o Options) (*Host, error) {
	o.defaults()
	h := &Host{o: o, log: o.Logger, conns: map[string]*connector{}, logLevel: strings.ToLower(o.LogLevel)}
	if len(o.Builtins) > 0 {
		h.exe = o.Executable
		if h.exe == "" {
			exe, err := selfExecutable()
			if err != nil {
				return nil, fmt.Errorf("plugins host: find own executable: %w", err)
			}
			h.exe = exe
		}
		h.argv0 = filepath.Base(h.exe)
		if self, err := os.Executable(); err == nil && o.Executable == "" {
			h.argv0 = filepath.Base(self)
		}
		if _, err := os.Stat(h.exe); err != nil {
			return nil, fmt.Errorf("plugins host: executable for builtins: %w", err)
		}
	}
	for _, p := range o.ForbiddenPaths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("plugins host: forbidden path %q: %w", p, err)
		}
		h.forbid = append(h.forbid, abs)
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			h.forbid = append(h.forbid, real)
		}
	}
	for _, d := range o.ForbiddenDatabases {
		arg, err := d.flag()
		if err != nil {
			return nil, fmt.Errorf("plugins host: forbidden database: %w", err)
		}
		h.forbidDB = append(h.forbidDB, arg)
	}
	for _, name := range o.Builtins {
		if !nameRE.MatchString(name) {
			return nil, fmt.Errorf("plugins host: invalid builtin connector name %q", name)
		}
		if _, dup := h.conns[name]; dup {
			return nil, fmt.Errorf("plugins host: builtin connector %q listed twice", name)
		}
		h.conns[name] = &connector{h: h, name: name, idx: len(h.order), builtin: true}
		h.order = append(h.order, name)
	}
	if err := h.discover(); err != nil {
		return nil, err
	}
	removeStaleHomes()
	home, err := os.MkdirTemp("", homePrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("plugins host: %w", err)
	}
	h.home = home
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return h, nil
}

const homePrefix = "datapulse-connectors-"

// removeStaleHomes deletes the connector home directories of servers that
// were killed (and so never ran Close): they are named after the pid of the
// server that made them.
func removeStaleHomes() {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), homePrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() || processExists(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
	}
}

// discover loads <PluginDir>/*/manifest.json.
func (h *Host) discover() error {
	if h.o.PluginDir == "" {
		return nil
	}
	dir, err := filepath.EvalSymlinks(h.o.PluginDir)
	if errors.Is(err, os.ErrNotExist) {
		h.log.Debug("no plugin directory", "dir", h.o.PluginDir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("plugins host: plugin directory: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return fmt.Errorf("plugins host: plugin directory: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("plugins host: plugin directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("plugins host: plugin directory %s is not a directory", dir)
	}
	h.pluginDir = dir
	worldWritable := st.Mode().Perm()&0o002 != 0
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("plugins host: plugin directory: %w", err)
	}
	var third []string
	for _, e := range entries {
		name := e.Name()
		if name[0] == '.' {
			continue
		}
		if !nameRE.MatchString(name) {
			h.log.Warn("plugin directory entry ignored: not a valid connector name", "entry", name)
			continue
		}
		if c, ok := h.conns[name]; ok && c.builtin {
			h.log.Warn("third-party connector ignored: a builtin has the same name", "connector", name)
			continue
		}
		c := &connector{h: h, name: name}
		if worldWritable {
			c.disabledErr = fmt.Errorf("%w: connector %q: plugin directory %s is world-writable", ErrConnectorDisabled, name, dir)
		} else if _, inst, err := loadManifest(dir, name); err != nil {
			c.disabledErr = fmt.Errorf("%w: connector %q: %v", ErrConnectorDisabled, name, err)
		} else if err := h.checkHostRange(inst.manifest); err != nil {
			c.disabledErr = fmt.Errorf("%w: connector %q: %v", ErrConnectorDisabled, name, err)
			c.inst = inst
		} else {
			c.inst = inst
		}
		if c.disabledErr != nil {
			c.lastErr = c.disabledErr.Error()
			h.log.Error("connector refused", "connector", name, "error", c.disabledErr)
		} else {
			h.log.Info("connector installed", "connector", name, "version", c.inst.manifest.Version, "executable", c.inst.exe)
		}
		h.conns[name] = c
		third = append(third, name)
	}
	sort.Strings(third)
	for _, name := range third {
		h.conns[name].idx = len(h.order)
		h.order = append(h.order, name)
	}
	return nil
}

func (h *Host) builtinArgs(name string) []string {
	args := []string{"plugin", "serve", name}
	for _, p := range h.forbid {
		args = append(args, ForbiddenPathFlag+"="+p)
	}
	args = append(args, h.forbidDB...)
	return args
}

// Close stops every connector process (graceful shutdown, then SIGKILL to
// its process group) and waits for them. In-flight calls fail with
// ErrConnectorUnavailable. If the server itself is killed, Linux kills the
// connectors (parent-death signal) and the SDK's parent watch covers the rest.
func (h *Host) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	h.cancel()
	var wg sync.WaitGroup
	for _, name := range h.order {
		c := h.conns[name]
		c.mu.Lock()
		inst, op := c.cur, c.starting
		if inst != nil {
			inst.expected.Store(true)
		}
		c.mu.Unlock()
		if op != nil {
			op.kill()
		}
		if inst != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.stopInstance(inst)
			}()
		}
	}
	wg.Wait()
	h.wg.Wait()
	return os.RemoveAll(h.home)
}

// Connectors lists every connector with its description and status,
// answered from each connector's state. A connector never described is
// started in the background; the listing waits (at most ListWait) only for
// builtins starting for the first time, never for a third-party connector
// nor for one that failed before: one broken connector cannot slow it.
func (h *Host) Connectors(ctx context.Context) []ConnectorInfo {
	var waits []*startOp
	for _, name := range h.order {
		c := h.conns[name]
		c.mu.Lock()
		// Only a connector never tried: one that failed is retried by its
		// next call (or Reload), not by every listing.
		need := c.desc == nil && c.crashes == 0
		c.mu.Unlock()
		if !need {
			continue
		}
		if op := c.kick(); op != nil && op.first && c.builtin && h.o.ListWait > 0 {
			waits = append(waits, op)
		}
	}
	if len(waits) > 0 {
		t := time.NewTimer(h.o.ListWait)
	wait:
		for _, op := range waits {
			select {
			case <-op.done:
			case <-t.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		t.Stop()
	}
	out := make([]ConnectorInfo, 0, len(h.order))
	for _, name := range h.order {
		out = append(out, h.conns[name].info())
	}
	return out
}

// Warm starts every connector not running yet in the background (a server
// calls it once at start so that the first listing finds them described).
// It never blocks.
func (h *Host) Warm() {
	for _, name := range h.order {
		h.conns[name].kick()
	}
}

// Connector returns one connector's description and status. A connector
// never described is started first (waiting for it alone, within ctx and
// StartTimeout): the error then says why it cannot start. A connector that
// was described once answers from that description at once, whatever its
// state now (its calls report the state).
func (h *Host) Connector(ctx context.Context, name string) (ConnectorInfo, error) {
	c, err := h.lookup(name)
	if err != nil {
		return ConnectorInfo{}, err
	}
	c.mu.Lock()
	described := c.desc != nil
	wait, last, disabled := time.Until(c.nextStart), c.lastErr, c.disabledErr != nil
	c.mu.Unlock()
	if described {
		return c.info(), nil
	}
	if wait > 0 && !disabled {
		// It failed before: say why now rather than wait for its backoff.
		return c.info(), fmt.Errorf("%w: connector %q cannot start (next attempt in %s): %s",
			ErrConnectorUnavailable, name, wait.Round(time.Millisecond), last)
	}
	cctx, cancel := h.callCtx(ctx, h.o.StartTimeout+h.o.CallTimeout)
	defer cancel()
	_, err = c.acquire(cctx)
	return c.info(), err
}

// Info returns one connector's description and status as they are now,
// without waiting; a connector never tried is started in the background.
func (h *Host) Info(name string) (ConnectorInfo, error) {
	c, err := h.lookup(name)
	if err != nil {
		return ConnectorInfo{}, err
	}
	c.mu.Lock()
	never := c.desc == nil && c.crashes == 0
	c.mu.Unlock()
	if never {
		c.kick()
	}
	return c.info(), nil
}

// Reload stops a connector's process, forgets its failures (backoff,
// crash-loop pause, refusal), reads a third-party connector's manifest
// again (checking its checksum and version range) and starts it, waiting
// for that start within ctx. Calls in flight on the old process fail with
// ErrConnectorCrashed. The returned info says how it went: a refused
// manifest is StatusDisabled with its reason, a failed start
// StatusCrashed with LastError (and the error of the start).
func (h *Host) Reload(ctx context.Context, name string) (ConnectorInfo, error) {
	c, err := h.lookup(name)
	if err != nil {
		return ConnectorInfo{}, err
	}
	if h.closed.Load() {
		return c.info(), fmt.Errorf("%w: connector %q: the host is shutting down", ErrConnectorUnavailable, name)
	}
	var old *instance
	for {
		c.mu.Lock()
		op := c.starting
		if op == nil {
			old = c.cur
			c.cur = nil
			if old != nil {
				old.expected.Store(true)
				old.handled = true
			}
			c.disabledErr, c.checksumRetry = nil, false
			c.openUntil, c.nextStart = time.Time{}, time.Time{}
			c.consecutive, c.crashTimes = 0, nil
			if !c.builtin {
				c.reloadManifestLocked()
			}
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		op.kill() // a start in progress runs the old executable
		select {
		case <-op.done:
		case <-ctx.Done():
			return c.info(), c.ctxErr(ctx, "waiting for a start in progress to end")
		}
	}
	if old != nil {
		reason := fmt.Sprintf("process %d stopped: the connector was reloaded", old.pid)
		old.reason.Store(&reason)
		h.stopInstance(old)
	}
	h.log.Info("connector reloaded", "connector", name)
	c.mu.Lock()
	disabled := c.disabledErr
	c.mu.Unlock()
	if disabled != nil {
		return c.info(), nil
	}
	cctx, cancel := h.callCtx(ctx, h.o.StartTimeout+h.o.CallTimeout)
	defer cancel()
	_, err = c.acquire(cctx)
	return c.info(), err
}

// reloadManifestLocked validates a third-party connector's directory,
// manifest, checksum and version range again.
func (c *connector) reloadManifestLocked() {
	h := c.h
	var err error
	if h.pluginDir == "" {
		err = errors.New("the plugin directory is gone")
	} else if st, serr := os.Stat(h.pluginDir); serr != nil {
		err = fmt.Errorf("plugin directory: %v", serr)
	} else if st.Mode().Perm()&0o002 != 0 {
		err = fmt.Errorf("plugin directory %s is world-writable", h.pluginDir)
	} else {
		var inst *installed
		if _, inst, err = loadManifest(h.pluginDir, c.name); err == nil {
			c.inst = inst
			err = h.checkHostRange(inst.manifest)
		}
	}
	if err != nil {
		c.disabledErr = fmt.Errorf("%w: connector %q: %v", ErrConnectorDisabled, c.name, err)
		c.lastErr = c.disabledErr.Error()
		c.desc = nil
		h.log.Error("connector refused", "connector", c.name, "error", c.disabledErr)
	}
}

func (c *connector) info() ConnectorInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := ConnectorInfo{Name: c.name, Builtin: c.builtin, LastError: c.lastErr, Crashes: c.crashes}
	if d := c.desc; d != nil {
		in.DisplayName = d.GetDisplayName()
		in.Version = d.GetVersion()
		in.SDKVersion = d.GetSdkVersion()
		in.Capabilities = slices.Clone(d.GetCapabilities())
		in.SQLDialect = d.GetSqlDialect()
		if s := d.GetConfigSchemaJson(); s != "" {
			in.ConfigSchema = json.RawMessage(s)
		}
	} else if c.inst != nil {
		in.Version = c.inst.manifest.Version
	}
	now := time.Now()
	switch {
	case c.disabledErr != nil:
		in.Status = StatusDisabled
		in.Reason = c.disabledErr.Error()
		if c.checksumRetry {
			in.RetryAt = c.nextStart
		}
	case c.cur != nil && !c.cur.hasExited():
		in.Status = StatusReady
		in.PID = c.cur.pid
	case c.starting != nil:
		in.Status = StatusStarting
		in.Reason = "the process is starting"
		if c.lastErr != "" && c.consecutive > 0 {
			in.Reason += " (after a failure: " + c.lastErr + ")"
		}
	case now.Before(c.openUntil):
		in.Status = StatusUnavailable
		in.RetryAt = c.openUntil
		in.Reason = fmt.Sprintf("paused after repeated failures until %s; last error: %s", c.openUntil.UTC().Format(time.RFC3339), c.lastErr)
	case c.h.closed.Load():
		in.Status = StatusStopped
		in.Reason = "the server is shutting down"
	case c.consecutive > 0 || (c.cur != nil && c.cur.hasExited()):
		in.Status = StatusCrashed
		in.RetryAt = c.nextStart
		in.Reason = "failing: " + c.lastErr
	default:
		in.Status = StatusStopped
		in.Reason = "not started yet (it starts on first use)"
	}
	return in
}

type requestIDKey struct{}

// WithRequestID returns a context whose calls carry id to the connector
// (DataSourceContext.request_id) for log correlation.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func dsContext(ctx context.Context, ds DataSource) *connectorv1.DataSourceContext {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return &connectorv1.DataSourceContext{
		DatasourceId:  ds.ID,
		ConfigVersion: ds.Version,
		ConfigJson:    ds.Config,
		Secrets:       ds.Secrets,
		RequestId:     id,
	}
}

func (h *Host) lookup(name string) (*connector, error) {
	if c, ok := h.conns[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownConnector, name)
}

// callCtx bounds a call by d and by the host's lifetime.
func (h *Host) callCtx(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d)
	stop := context.AfterFunc(h.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// unary runs one non-query call with the call deadline and error mapping.
func (h *Host) unary(ctx context.Context, name, op string, secrets map[string]string,
	fn func(context.Context, connectorv1.ConnectorClient) error) error {
	c, err := h.lookup(name)
	if err != nil {
		return err
	}
	ctx, cancel := h.callCtx(ctx, h.o.CallTimeout)
	defer cancel()
	start := time.Now()
	err = h.unaryOn(ctx, c, op, secrets, fn)
	c.stats.observe(time.Since(start), err)
	return err
}

func (h *Host) unaryOn(ctx context.Context, c *connector, op string, secrets map[string]string,
	fn func(context.Context, connectorv1.ConnectorClient) error) error {
	inst, err := c.acquire(ctx)
	if err != nil {
		return err
	}
	if err := fn(ctx, inst.rpc); err != nil {
		return c.classify(ctx, inst, op, err, secrets)
	}
	return nil
}

// ValidateConfig asks the connector to check a configuration without
// connecting. Schema validation against ConfigSchema is the caller's job.
func (h *Host) ValidateConfig(ctx context.Context, connector string, ds DataSource) ([]FieldError, error) {
	var out []FieldError
	err := h.unary(ctx, connector, "validate_config", ds.Secrets, func(ctx context.Context, rpc connectorv1.ConnectorClient) error {
		resp, err := rpc.ValidateConfig(ctx, &connectorv1.ValidateConfigRequest{Ds: dsContext(ctx, ds)})
		if err != nil {
			return err
		}
		for _, fe := range resp.GetErrors() {
			out = append(out, FieldError{Field: redact(fe.GetField(), ds.Secrets), Message: redact(fe.GetMessage(), ds.Secrets)})
		}
		return nil
	})
	return out, err
}

// CheckHealth connects to the data source and runs a trivial probe. A
// failed probe is Health{OK: false} with the connector's message (secrets
// redacted), not an error; errors are about the connector itself.
func (h *Host) CheckHealth(ctx context.Context, connector string, ds DataSource) (Health, error) {
	var out Health
	err := h.unary(ctx, connector, "check_health", ds.Secrets, func(ctx context.Context, rpc connectorv1.ConnectorClient) error {
		resp, err := rpc.CheckHealth(ctx, &connectorv1.CheckHealthRequest{Ds: dsContext(ctx, ds)})
		if err != nil {
			return err
		}
		out = Health{
			OK:            resp.GetOk(),
			Message:       redact(resp.GetMessage(), ds.Secrets),
			ServerVersion: redact(resp.GetServerVersion(), ds.Secrets),
			Latency:       time.Duration(resp.GetProbeLatencyMs()) * time.Millisecond,
		}
		return nil
	})
	return out, err
}

func clampPage(n int) int32 {
	if n < 0 {
		return 0
	}
	if n > 1<<20 {
		return 1 << 20
	}
	return int32(n)
}

// ListNamespaces returns one page of namespaces (schemas) and the token of
// the next page ("" at the end). pageSize 0 lets the connector choose.
func (h *Host) ListNamespaces(ctx context.Context, connector string, ds DataSource, pageSize int, token string) ([]string, string, error) {
	var names []string
	var next string
	err := h.unary(ctx, connector, "list_namespaces", ds.Secrets, func(ctx context.Context, rpc connectorv1.ConnectorClient) error {
		resp, err := rpc.ListNamespaces(ctx, &connectorv1.ListNamespacesRequest{Ds: dsContext(ctx, ds), PageSize: clampPage(pageSize), PageToken: token})
		if err != nil {
			return err
		}
		names, next = resp.GetNamespaces(), resp.GetNextPageToken()
		return nil
	})
	return names, next, err
}

// ListTables returns one page of the tables of a namespace.
func (h *Host) ListTables(ctx context.Context, connector string, ds DataSource, namespace string, pageSize int, token string) ([]TableRef, string, error) {
	var tables []TableRef
	var next string
	err := h.unary(ctx, connector, "list_tables", ds.Secrets, func(ctx context.Context, rpc connectorv1.ConnectorClient) error {
		resp, err := rpc.ListTables(ctx, &connectorv1.ListTablesRequest{Ds: dsContext(ctx, ds), Namespace: namespace, PageSize: clampPage(pageSize), PageToken: token})
		if err != nil {
			return err
		}
		for _, t := range resp.GetTables() {
			tables = append(tables, fromRef(t))
		}
		next = resp.GetNextPageToken()
		return nil
	})
	return tables, next, err
}

// DescribeTables returns the columns of the given tables.
func (h *Host) DescribeTables(ctx context.Context, connector string, ds DataSource, tables []TableRef) ([]TableInfo, error) {
	var out []TableInfo
	err := h.unary(ctx, connector, "describe_tables", ds.Secrets, func(ctx context.Context, rpc connectorv1.ConnectorClient) error {
		req := &connectorv1.DescribeTablesRequest{Ds: dsContext(ctx, ds)}
		for _, t := range tables {
			req.Tables = append(req.Tables, toRef(t))
		}
		resp, err := rpc.DescribeTables(ctx, req)
		if err != nil {
			return err
		}
		for _, ti := range resp.GetTables() {
			info := TableInfo{Ref: fromRef(ti.GetRef())}
			for _, col := range ti.GetColumns() {
				info.Columns = append(info.Columns, Column{
					Name: col.GetName(), NativeType: col.GetNativeType(), ArrowType: col.GetArrowType(), Nullable: col.GetNullable(),
				})
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

func fromRef(t *connectorv1.TableRef) TableRef {
	r := TableRef{Namespace: t.GetNamespace(), Name: t.GetName()}
	switch t.GetKind() {
	case connectorv1.TableKind_TABLE_KIND_TABLE:
		r.Kind = KindTable
	case connectorv1.TableKind_TABLE_KIND_VIEW:
		r.Kind = KindView
	case connectorv1.TableKind_TABLE_KIND_FILE:
		r.Kind = KindFile
	}
	return r
}

func toRef(t TableRef) *connectorv1.TableRef {
	r := &connectorv1.TableRef{Namespace: t.Namespace, Name: t.Name}
	switch t.Kind {
	case KindTable:
		r.Kind = connectorv1.TableKind_TABLE_KIND_TABLE
	case KindView:
		r.Kind = connectorv1.TableKind_TABLE_KIND_VIEW
	case KindFile:
		r.Kind = connectorv1.TableKind_TABLE_KIND_FILE
	}
	return r
}

// Dispose tells a running connector to drop what it caches for a data
// source (after an edit or delete). It does not start a stopped connector
// (nothing is cached there) and only logs failures.
func (h *Host) Dispose(ctx context.Context, connector, dsID string) {
	c, err := h.lookup(connector)
	if err != nil {
		return
	}
	c.mu.Lock()
	inst := c.cur
	c.mu.Unlock()
	if inst == nil || inst.hasExited() || h.closed.Load() {
		return
	}
	ctx, cancel := h.callCtx(ctx, h.o.CallTimeout)
	defer cancel()
	if _, err := inst.rpc.DisposeInstance(ctx, &connectorv1.DisposeInstanceRequest{DatasourceId: dsID}); err != nil {
		h.log.Warn("connector dispose failed", "connector", connector, "datasource", dsID,
			"error", c.classify(ctx, inst, "dispose", err, nil))
	}
}
