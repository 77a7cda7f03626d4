package host

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LogLevelEnv is the variable through which the host gives a connector its
// log level (trace, debug, info, warn, error): the connector's environment
// is otherwise empty. Options.LogLevel, else the level the host's logger
// accepts.
const LogLevelEnv = "DATAPULSE_CONNECTOR_LOG_LEVEL"

// errChecksumMismatch is wrapped (with ErrConnectorDisabled) by the error
// of a start refused because the executable no longer matches its manifest.
var errChecksumMismatch = errors.New("checksum mismatch: the executable changed since it was installed (its sha256 no longer matches the manifest); it is hashed again at the next start attempt")

// logLevelOf is the lowest level l logs, as the SDK spells it.
func logLevelOf(l *slog.Logger) string {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, levelTrace):
		return "trace"
	case l.Enabled(ctx, slog.LevelDebug):
		return "debug"
	case l.Enabled(ctx, slog.LevelInfo):
		return "info"
	case l.Enabled(ctx, slog.LevelWarn):
		return "warn"
	default:
		return "error"
	}
}

// stderrTail receives a connector's raw stderr (go-plugin copies every
// line to it). Before the handshake completes, lines that are not the
// SDK's JSON log records are logged at warn with the connector's name: that
// is where a connector that dies at start says why (a log.Fatal). The last
// lines are kept for the error of a failed start or a crash.
type stderrTail struct {
	log       *slog.Logger
	mu        sync.Mutex
	partial   []byte
	lines     []string
	handshake atomic.Bool
}

const (
	tailLines   = 5
	tailLineMax = 300
)

func newStderrTail(l *slog.Logger, name string) *stderrTail {
	return &stderrTail{log: l.With("connector", name)}
}

func (t *stderrTail) handshakeDone() { t.handshake.Store(true) }

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.partial = append(t.partial, p...)
	var done []string
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
		if line == "" {
			continue
		}
		line, keep := readable(line)
		if !keep {
			continue
		}
		if len(line) > tailLineMax {
			line = line[:tailLineMax] + "…"
		}
		t.lines = append(t.lines, line)
		if len(t.lines) > tailLines {
			t.lines = t.lines[len(t.lines)-tailLines:]
		}
		done = append(done, line)
	}
	if len(t.partial) > 64<<10 {
		t.partial = t.partial[:0]
	}
	t.mu.Unlock()
	if !t.handshake.Load() {
		for i, line := range done {
			if len(line) > 0 && strings.HasPrefix(done[i], "{") {
				continue // an hclog record: go-plugin logs it at its own level
			}
			t.log.Warn(line, "stream", "stderr", "phase", "start")
		}
	}
	return len(p), nil
}

// readable turns an hclog JSON line into "{level: message}" (and drops
// debug and trace records: go-plugin's own chatter); other lines stay as
// they are.
func readable(line string) (string, bool) {
	if !strings.HasPrefix(line, "{") {
		return line, true
	}
	var rec map[string]any
	if json.Unmarshal([]byte(line), &rec) != nil {
		return line, true
	}
	msg, _ := rec["@message"].(string)
	if msg == "" {
		return line, true
	}
	lv, _ := rec["@level"].(string)
	if lv == "debug" || lv == "trace" {
		return "", false
	}
	if lv != "" {
		msg = lv + ": " + msg
	}
	if e, ok := rec["error"].(string); ok {
		msg += " (error: " + e + ")"
	}
	return "{" + msg + "}", true
}

// String is the last lines, oldest first ("" if none or t is nil).
func (t *stderrTail) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.partial) > 0 {
		lines = append(slicesClone(lines), strings.TrimSpace(string(t.partial)))
	}
	return strings.Join(lines, " | ")
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// hostCert is the host's TLS identity towards its connectors, made once per
// Host (P-256). The private key never leaves the host process; connectors
// get the certificate (PLUGIN_CLIENT_CERT) and pin it.
type hostCert struct {
	pem  string
	cert tls.Certificate
}

func (c *hostCert) config() *tls.Config {
	// A new tls.Config per client: go-plugin adds the connector's
	// certificate to it (RootCAs, ClientCAs) after the handshake.
	return &tls.Config{
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
	}
}

func (h *Host) clientCert() (*hostCert, error) {
	h.certOnce.Do(func() { h.cert, h.certErr = newHostCert() })
	return h.cert, h.certErr
}

func newHostCert() (*hostCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"DataPulse"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		SerialNumber:          sn,
		NotBefore:             time.Now().Add(-30 * time.Second),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, err
	}
	return &hostCert{pem: string(certPEM), cert: cert}, nil
}

// CallDurationBuckets are the upper bounds (seconds) of the call duration
// histogram in ConnectorStats.
var CallDurationBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// ConnectorStats are one connector's counters since the host started
// (exported on /metrics by the API).
type ConnectorStats struct {
	Name string
	// Starts counts processes started and described; Restarts those after
	// the first; StartFailures starts that failed; Crashes unexpected exits
	// of running processes; HungKills processes the host killed because
	// they hung (wedged, or holding a call past its deadline).
	Starts, Restarts, StartFailures, Crashes, HungKills int64
	// Calls counts calls through the host (queries and metadata calls),
	// Errors those that failed, for whatever reason.
	Calls, Errors int64
	// StartWaits counts calls that had to wait for this connector's
	// process to start (or its restart backoff).
	StartWaits int64
	// Duration histogram of calls: cumulative counts per CallDurationBuckets
	// bound, total count and sum in seconds.
	DurationBuckets []uint64
	DurationCount   uint64
	DurationSum     float64
}

type connStats struct {
	starts, restarts, startFailures, crashes, hungKills atomic.Int64
	calls, errors, startWaits                           atomic.Int64

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative
	n      uint64
	sum    float64
}

// observe records a finished call.
func (s *connStats) observe(d time.Duration, err error) {
	s.calls.Add(1)
	if err != nil {
		s.errors.Add(1)
	}
	sec := d.Seconds()
	s.mu.Lock()
	if s.counts == nil {
		s.counts = make([]uint64, len(CallDurationBuckets))
	}
	for i, b := range CallDurationBuckets {
		if sec <= b {
			s.counts[i]++
			break
		}
	}
	s.n++
	s.sum += sec
	s.mu.Unlock()
}

// Stats returns every connector's counters, in listing order.
func (h *Host) Stats() []ConnectorStats {
	out := make([]ConnectorStats, 0, len(h.order))
	for _, name := range h.order {
		c := h.conns[name]
		s := &c.stats
		cs := ConnectorStats{
			Name: name, Starts: s.starts.Load(), Restarts: s.restarts.Load(), StartFailures: s.startFailures.Load(),
			Crashes: s.crashes.Load(), HungKills: s.hungKills.Load(), Calls: s.calls.Load(), Errors: s.errors.Load(),
			StartWaits: s.startWaits.Load(), DurationBuckets: make([]uint64, len(CallDurationBuckets)),
		}
		s.mu.Lock()
		var cum uint64
		for i := range CallDurationBuckets {
			if s.counts != nil {
				cum += s.counts[i]
			}
			cs.DurationBuckets[i] = cum
		}
		cs.DurationCount, cs.DurationSum = s.n, s.sum
		s.mu.Unlock()
		out = append(out, cs)
	}
	return out
}

// versionRange is a manifest's "datapulse" constraint: space-separated
// comparisons of semantic versions, all of which must hold
// (">=0.9.0 <2.0.0", "=1.2.3", "1.2.3").
type versionRange []constraint

type constraint struct {
	op string
	v  [3]int
}

func parseRange(s string) (versionRange, error) {
	var out versionRange
	for _, f := range strings.Fields(s) {
		op := ""
		for _, o := range []string{">=", "<=", "!=", ">", "<", "="} {
			if strings.HasPrefix(f, o) {
				op = o
				break
			}
		}
		v, ok := parseSemver(strings.TrimPrefix(f, op))
		if !ok {
			return nil, fmt.Errorf("%q is not a version constraint (want e.g. \">=0.9.0 <2.0.0\")", f)
		}
		if op == "" {
			op = "="
		}
		out = append(out, constraint{op: op, v: v})
	}
	if len(out) == 0 {
		return nil, errors.New("empty version constraint")
	}
	return out, nil
}

// parseSemver reads MAJOR[.MINOR[.PATCH]] with an optional leading v and
// ignores pre-release and build suffixes.
func parseSemver(s string) ([3]int, bool) {
	var v [3]int
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func cmpVersion(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (r versionRange) allows(v [3]int) bool {
	for _, c := range r {
		d := cmpVersion(v, c.v)
		ok := map[string]bool{">=": d >= 0, "<=": d <= 0, ">": d > 0, "<": d < 0, "=": d == 0, "!=": d != 0}[c.op]
		if !ok {
			return false
		}
	}
	return true
}

// checkHostRange refuses a manifest whose "datapulse" range excludes this
// host's version. A host without a release version (a development build)
// accepts every range.
func (h *Host) checkHostRange(m Manifest) error {
	if m.Datapulse == "" {
		return nil
	}
	r, err := parseRange(m.Datapulse)
	if err != nil {
		return fmt.Errorf("manifest datapulse: %v", err)
	}
	hv, ok := parseSemver(h.o.HostVersion)
	if !ok {
		h.log.Warn("connector's DataPulse version range not checked: this build has no release version",
			"connector", m.Name, "datapulse", m.Datapulse, "host_version", h.o.HostVersion)
		return nil
	}
	if !r.allows(hv) {
		return fmt.Errorf("it requires DataPulse %s; this is %s", m.Datapulse, h.o.HostVersion)
	}
	return nil
}
