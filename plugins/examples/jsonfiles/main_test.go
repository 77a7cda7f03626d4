package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	lines := []string{
		`{"id": 1, "name": "ada", "score": 1.5, "tags": ["x"]}`,
		`{"id": 2, "name": "grace", "score": null}`,
		``,
		`{"id": 3, "name": "o'brien", "score": -2, "extra": true}`,
	}
	write(t, filepath.Join(dir, "people.jsonl"), strings.Join(lines, "\n")+"\n")
	var b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&b, `{"id": %d, "label": "row %d"}`+"\n", i, i)
	}
	write(t, filepath.Join(dir, "events.ndjson"), b.String())
	write(t, filepath.Join(dir, "README.txt"), "not a table")
	write(t, filepath.Join(dir, ".token"), "tok-123456\n")
	return dir
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func suiteConfig(dir string) sdktest.Config {
	cfg, _ := json.Marshal(map[string]string{"directory": dir})
	return sdktest.Config{
		ValidConfig:   string(cfg),
		ValidSecrets:  map[string]string{"api_token": "tok-123456"},
		InvalidConfig: `{"directory": "not/absolute"}`,
		KnownQuery:    "SELECT id, name, score FROM people",
		KnownRows: [][]any{
			{1, "ada", 1.5},
			{2, "grace", nil},
			{3, "o'brien", -2.0},
		},
		EchoQuery:     "SELECT ?",
		ManyRowsQuery: "SELECT * FROM events",
		SlowQuery:     "SELECT sleep(60)",
		WriteStatements: []string{
			"DELETE FROM people",
			"SELECT * FROM people; DELETE FROM people",
			"INSERT INTO people VALUES (4)",
			"DROP TABLE people",
		},
		Tables: []sdk.TableRef{{Name: "people"}, {Name: "events"}},
	}
}

func TestConformanceInProcess(t *testing.T) {
	dir := fixture(t)
	sdktest.Run(t, newConnector(), suiteConfig(dir))
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// build compiles the connector once per test binary, as an author would.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jsonfiles-build-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "jsonfiles")
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(goTool, "build", "-trimpath", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// The built binary passes the suite as a real subprocess, started the way
// the host starts it (handshake, gRPC only, AutoMTLS, no environment).
func TestConformanceBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the connector")
	}
	bin := build(t)
	sdktest.RunExecutable(t, bin, suiteConfig(fixture(t)))
}

// A manifest as the host expects it, with the binary's sha256: go-plugin's
// SecureConfig accepts the right checksum and refuses a wrong one.
func TestManifestChecksum(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the connector")
	}
	bin := build(t)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	pluginDir := filepath.Join(t.TempDir(), "plugins", "jsonfiles")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(pluginDir, "jsonfiles")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := map[string]any{
		"name": "jsonfiles", "version": version, "executable": "jsonfiles",
		"sha256": hex.EncodeToString(sum[:]), "protocol_version": sdk.ProtocolVersion,
	}
	mb, _ := json.MarshalIndent(manifest, "", "  ")
	write(t, filepath.Join(pluginDir, "manifest.json"), string(mb))

	start := func(checksum []byte) error {
		c := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {sdk.PluginName: &sdk.GRPCPlugin{}}},
			Cmd:              exec.Command(exe),
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			AutoMTLS:         true,
			SkipHostEnv:      true,
			SecureConfig:     &plugin.SecureConfig{Checksum: checksum, Hash: sha256.New()},
		})
		defer c.Kill()
		rpc, err := c.Client()
		if err != nil {
			return err
		}
		_, err = rpc.Dispense(sdk.PluginName)
		return err
	}
	var m struct {
		SHA256 string `json:"sha256"`
	}
	_ = json.Unmarshal(mb, &m)
	good, _ := hex.DecodeString(m.SHA256)
	if err := start(good); err != nil {
		t.Fatalf("the manifest's checksum was refused: %v", err)
	}
	bad := append([]byte(nil), good...)
	bad[0] ^= 1
	if err := start(bad); err == nil {
		t.Fatal("a wrong checksum was accepted")
	}
}

// Run by hand, the binary says it is a plugin and exits.
func TestRunByHand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the connector")
	}
	out, err := exec.Command(build(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "This binary is a plugin") {
		t.Fatalf("%v: %s", err, out)
	}
}

// When the host dies (SIGKILL: no chance to stop its plugins) the connector
// exits by itself.
func TestExitsWhenHostDies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the connector")
	}
	if runtime.GOOS != "linux" {
		t.Skip("uses /proc")
	}
	bin := build(t)
	// A stand-in host: a shell that starts the connector and waits.
	host := exec.Command("/bin/sh", "-c", `"$0" >/dev/null 2>&1 & echo $!; wait`, bin)
	host.Env = []string{
		sdk.Handshake.MagicCookieKey + "=" + sdk.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1",
	}
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	alive := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// "pid (comm) state ...": a zombie has exited.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && f[0] != "Z"
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	// Let it start and arm its parent watch.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "jsonfiles") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if !alive() {
		t.Fatal("the connector did not start")
	}
	if err := host.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	killed := time.Now()
	for alive() {
		if time.Since(killed) > 3*time.Second {
			t.Fatal("the connector outlived its host by 3 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the connector exited %v after its host was killed", time.Since(killed).Round(time.Millisecond))
}

// Filters and parameters of the query language, and errors.
func TestQueryLanguage(t *testing.T) {
	ctx := context.Background()
	dir := fixture(t)
	cfg := suiteConfig(dir)
	h := sdktest.Start(t, newConnector(), cfg.ValidConfig, cfg.ValidSecrets)
	res, err := h.Query(ctx, "SELECT name, ? FROM people WHERE score < ? AND name != 'o''brien'", "p", 10.0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := sdktest.SameRows(res.Rows, [][]any{{"ada", "p"}}); !ok {
		t.Fatalf("%s: %v", diff, res.Rows)
	}
	res, err = h.Query(ctx, "SELECT * FROM people WHERE extra = true")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || res.Schema.NumFields() != 5 || res.Rows[0][3] != nil || res.Rows[0][4] != true {
		t.Fatalf("%v %s", res.Rows, res.Schema)
	}
	if res, err := h.Query(ctx, "SELECT id FROM events LIMIT 5"); err != nil || len(res.Rows) != 5 {
		t.Fatalf("limit: %v %v", res, err)
	}
	for _, q := range []string{"SELECT nope FROM people", "SELECT * FROM nope", "SELECT ?", "UPDATE people SET x = 1"} {
		if _, err := h.Query(ctx, q); err == nil {
			t.Errorf("%q succeeded", q)
		}
	}
	if _, err := h.With(cfg.ValidConfig, map[string]string{"api_token": "wrong"}).ValidateConfig(ctx); err != nil {
		t.Fatal(err)
	}
	fes, _ := h.With(cfg.ValidConfig, map[string]string{"api_token": "wrong"}).ValidateConfig(ctx)
	if len(fes) != 1 || fes[0].Field != "/api_token" {
		t.Fatalf("wrong token: %v", fes)
	}
}
