package host_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datapulse/datapulse/plugins/host"
)

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
}

func writeManifest(t *testing.T, dir string, m map[string]any) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// install puts fakeconn under <plugins>/<name>/<name> with a manifest whose
// fields can be overridden.
func install(t *testing.T, plugins, name string, override map[string]any) string {
	t.Helper()
	dir := filepath.Join(plugins, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, name)
	copyFile(t, fakeconn, exe, 0o755)
	sum, err := host.Checksum(exe)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"name": name, "version": "2.0.0", "executable": name, "sha256": sum, "protocol_version": 1}
	for k, v := range override {
		m[k] = v
	}
	writeManifest(t, dir, m)
	return exe
}

func TestChecksum(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := host.Checksum(p)
	want := sha256.Sum256([]byte("hello"))
	if err != nil || got != hex.EncodeToString(want[:]) {
		t.Fatalf("Checksum = %s, %v", got, err)
	}
	if _, err := host.Checksum(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("no error for a missing file")
	}
}

// Third-party connectors load from a plugins directory, pinned by their
// manifest's sha256; every unsafe or inconsistent install is refused with a
// clear reason.
func TestInstalledConnectors(t *testing.T) {
	plugins := t.TempDir()
	outside := t.TempDir()

	install(t, plugins, "good", nil)
	install(t, plugins, "badsum", map[string]any{"sha256": strings.Repeat("ab", 32)})
	install(t, plugins, "proto2", map[string]any{"protocol_version": 2})
	install(t, plugins, "misnamed-dir", map[string]any{"name": "other"})
	install(t, plugins, "escape", map[string]any{"executable": "../good/good"})
	install(t, plugins, "abs", map[string]any{"executable": "/bin/true"})
	worldw := install(t, plugins, "worldw", nil)
	if err := os.Chmod(worldw, 0o777); err != nil {
		t.Fatal(err)
	}
	// An executable that is a symlink leading outside its directory.
	copyFile(t, fakeconn, filepath.Join(outside, "evil"), 0o755)
	sdir := filepath.Join(plugins, "symlinked")
	os.MkdirAll(sdir, 0o755)
	if err := os.Symlink(filepath.Join(outside, "evil"), filepath.Join(sdir, "symlinked")); err != nil {
		t.Fatal(err)
	}
	sum, _ := host.Checksum(filepath.Join(outside, "evil"))
	writeManifest(t, sdir, map[string]any{"name": "symlinked", "version": "1", "executable": "symlinked", "sha256": sum, "protocol_version": 1})
	// A whole connector directory that is a symlink out of the plugins directory.
	install(t, outside, "elsewhere", nil)
	if err := os.Symlink(filepath.Join(outside, "elsewhere"), filepath.Join(plugins, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	// Valid when the host starts, modified on disk before first use.
	changed := install(t, plugins, "changed", nil)
	// Not valid JSON.
	os.MkdirAll(filepath.Join(plugins, "broken"), 0o755)
	os.WriteFile(filepath.Join(plugins, "broken", "manifest.json"), []byte("{"), 0o644)

	th := newHost(t, host.Options{Builtins: []string{"fake"}, PluginDir: plugins})

	f, err := os.OpenFile(changed, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()

	// The good one works and is listed as third-party with its version.
	if r := th.mustQuery("good", host.Query{SQL: "rows 7"}); r.rows != 7 {
		t.Fatalf("good: %d rows", r.rows)
	}
	refused := map[string]string{
		"badsum":       "checksum mismatch",
		"proto2":       "protocol_version 2 is not supported",
		"misnamed-dir": `manifest name "other" does not match its directory`,
		"escape":       "escapes the connector directory",
		"abs":          "must be relative",
		"worldw":       "world-writable",
		"symlinked":    "symlink leading outside the connector directory",
		"elsewhere":    "symlink leading outside",
		"broken":       "not valid JSON",
		"changed":      "changed since it was installed",
	}
	for name, msg := range refused {
		_, err := th.CheckHealth(ctxT(t), name, ds)
		wantErr(t, err, host.ErrConnectorDisabled, msg, `"`+name+`"`)
	}
	infos := map[string]host.ConnectorInfo{}
	var order []string
	for _, c := range th.Connectors(ctxT(t)) {
		infos[c.Name] = c
		order = append(order, c.Name)
	}
	if order[0] != "fake" || len(order) != 1+1+len(refused) {
		t.Fatalf("listed %v", order)
	}
	if g := infos["good"]; g.Builtin || g.Status != host.StatusReady || g.Version != "1.2.3" || g.PID == 0 {
		t.Fatalf("good: %+v", g)
	}
	for name, msg := range refused {
		if c := infos[name]; c.Status != host.StatusDisabled || !strings.Contains(c.LastError, msg) {
			t.Errorf("%s: %+v", name, c)
		}
	}
	// A refused connector is never started again.
	_, err = th.CheckHealth(ctxT(t), "changed", ds)
	wantErr(t, err, host.ErrConnectorDisabled)
}

// A world-writable plugins directory disables everything in it.
func TestWorldWritablePluginDir(t *testing.T) {
	plugins := t.TempDir()
	install(t, plugins, "good", nil)
	if err := os.Chmod(plugins, 0o777); err != nil {
		t.Fatal(err)
	}
	th := newHost(t, host.Options{PluginDir: plugins})
	_, err := th.CheckHealth(ctxT(t), "good", ds)
	wantErr(t, err, host.ErrConnectorDisabled, "world-writable")
	// A missing plugins directory is simply empty.
	th2 := newHost(t, host.Options{PluginDir: filepath.Join(plugins, "nope")})
	if len(th2.Connectors(ctxT(t))) != 0 {
		t.Fatal("connectors from a missing directory")
	}
}
