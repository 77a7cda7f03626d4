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
		// Every column of a table, in this connector's language: the suite
		// compares what it returns with DescribeTables.
		TableQuery: func(t sdk.TableRef) string { return "SELECT * FROM " + t.Name },
	}
}

func TestConformanceInProcess(t *testing.T) {
	dir := fixture(t)
	sdktest.Run(t, newConnector(), suiteConfig(dir))
}

var (
	buildOnce sync.Once
	binPath   string
	modDir    string // the third-party module the binary was built in
	buildErr  error
)

// build compiles the connector once per test binary as a third party
// would: its files copied into a directory outside this repository, with a
// go.mod of its own requiring the SDK module, which is replaced by this
// checkout's plugins/sdk and plugins/proto (docs/plugins.md, "Depending on
// the SDK"). Nothing of the server's module is in reach.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath, modDir, buildErr = buildThirdParty()
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func buildThirdParty() (bin, dir string, err error) {
	sdkDir, err := filepath.Abs("../../sdk")
	if err != nil {
		return "", "", err
	}
	protoDir := filepath.Join(filepath.Dir(sdkDir), "proto")
	dir, err = os.MkdirTemp("", "jsonfiles-thirdparty-")
	if err != nil {
		return "", "", err
	}
	srcs, err := filepath.Glob("*.go")
	if err != nil {
		return "", dir, err
	}
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", dir, err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", dir, err
		}
	}
	gomod := "module example.com/acme/jsonfiles\n\ngo 1.26.0\n\n" +
		"require github.com/datapulse/datapulse/plugins/sdk v" + sdk.SDKVersion + "\n\n" +
		"replace github.com/datapulse/datapulse/plugins/sdk => " + sdkDir + "\n\n" +
		"replace github.com/datapulse/datapulse/plugins/proto => " + protoDir + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", dir, err
	}
	// The SDK's checksums: the build then needs no checksum database (only
	// the module cache, or the proxy when the cache lacks something).
	sums, err := os.ReadFile(filepath.Join(sdkDir, "go.sum"))
	if err != nil {
		return "", dir, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		return "", dir, err
	}
	bin = filepath.Join(dir, "jsonfiles")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-trimpath", "-o", bin, "."}} {
		if out, err := goCmd(dir, args...).CombinedOutput(); err != nil {
			return "", dir, fmt.Errorf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
		}
	}
	return bin, dir, nil
}

// goCmd runs the go tool in dir outside any workspace, as in a third
// party's checkout.
func goCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	return cmd
}

// A connector depending on the SDK module gets the SDK, Arrow, gRPC and
// go-plugin, and nothing of the server: no server module is required by the
// SDK, its protocol module or the connector (Arrow's own go.mod requires
// modernc.org/sqlite for its tests: that one stays in the graph, never in
// the binary), and the binary links none.
func TestThirdPartyModuleGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the connector")
	}
	build(t)
	out, err := goCmd(modDir, "list", "-m", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	mods := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, want := range []string{"github.com/datapulse/datapulse/plugins/sdk ", "github.com/datapulse/datapulse/plugins/proto ", "github.com/apache/arrow-go/v18 ", "github.com/hashicorp/go-plugin "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s is not in the module graph:\n%s", want, out)
		}
	}
	graph, err := goCmd(modDir, "mod", "graph").CombinedOutput()
	if err != nil {
		t.Fatalf("go mod graph: %v\n%s", err, graph)
	}
	ours := func(m string) bool {
		return strings.HasPrefix(m, "example.com/acme/") || strings.HasPrefix(m, "github.com/datapulse/")
	}
	for _, l := range strings.Split(strings.TrimSpace(string(graph)), "\n") {
		from, to, _ := strings.Cut(l, " ")
		if isServerModule(to) && (ours(from) || strings.HasPrefix(to, "github.com/datapulse/datapulse@")) {
			t.Errorf("the connector's module graph holds a server module: %s", l)
		} else if isServerModule(to) {
			t.Logf("in the graph through a dependency, not linked: %s", l)
		}
	}
	linked, err := goCmd(modDir, "version", "-m", binPath).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, linked)
	}
	deps := 0
	for _, l := range strings.Split(string(linked), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "dep" {
			deps++
			if isServerModule(f[1] + "@" + f[2]) {
				t.Errorf("the binary links a server module: %s", l)
			}
		}
	}
	if deps == 0 {
		t.Fatalf("no linked modules in:\n%s", linked)
	}
	t.Logf("go list -m all: %d modules; go version -m: %d linked modules", len(mods), deps)
}

// isServerModule reports whether path@version is one of the server's
// modules (none may reach a connector through the SDK).
func isServerModule(pathVersion string) bool {
	path, _, _ := strings.Cut(pathVersion, "@")
	if path == "github.com/datapulse/datapulse" {
		return true
	}
	for _, p := range []string{
		"github.com/gofiber/", "entgo.io/", "ariga.io/", "github.com/casbin/", "github.com/jackc/",
		"modernc.org/sqlite", "github.com/prometheus/", "github.com/danielgtaylor/huma", "github.com/spf13/cobra",
		"github.com/go-sql-driver/mysql", "github.com/golang-jwt/", "github.com/valyala/fasthttp",
	} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func TestMain(m *testing.M) {
	code := m.Run()
	if modDir != "" {
		os.RemoveAll(modDir)
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
