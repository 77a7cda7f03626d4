package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/plugins/host"
)

// withJSONFiles installs the example third-party connector
// plugins/examples/jsonfiles (SQL dialect "jsonfiles", a language of its
// own) in a plugin directory, with its manifest and checksum.
func withJSONFiles(t *testing.T) envOption {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugins")
	conn := filepath.Join(dir, "jsonfiles")
	if err := os.MkdirAll(conn, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(conn, "jsonfiles")
	cmd := exec.Command("go", "build", "-o", exe, "github.com/datapulse/datapulse/plugins/examples/jsonfiles")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building jsonfiles: %v\n%s", err, out)
	}
	sum, err := host.Checksum(exe)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]any{"name": "jsonfiles", "version": "0.1.0", "executable": "jsonfiles", "sha256": sum, "protocol_version": 1})
	if err := os.WriteFile(filepath.Join(conn, "manifest.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	return func(o *host.Options) { o.PluginDir = dir }
}

// Issue 14.3: a data model on a connector whose dialect the model compiler
// does not know was saved (201), /check said ok, and every query failed.
// It is refused on save, naming data_source_id and the dialect; saved
// queries in the connector's own language still work.
func TestModelOnUnknownDialectRefusedOnSave(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a connector")
	}
	opt := withJSONFiles(t)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "people.jsonl"), []byte(`{"id": 1, "name": "ada"}`+"\n"+`{"id": 2, "name": "grace"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		e := newEnv(t, tg, opt)
		r := e.want(e.do("POST", "/api/v1/data-sources", e.admin, map[string]any{
			"name": "files", "type": "jsonfiles", "config": map[string]any{"directory": data}}), 201, "create data source")
		ds := r.str("id")
		e.want(e.do("POST", "/api/v1/data-sources/"+ds+"/query", e.admin, map[string]any{"sql": "SELECT name FROM people WHERE id = 2"}), 200, "query in the connector's language")

		r = e.want(e.do("POST", "/api/v1/data-models", e.admin, map[string]any{"name": "People", "config": map[string]any{
			"data_source_id": ds,
			"table":          map[string]any{"name": "people"},
			"dimensions":     []map[string]any{{"name": "name", "column": "name", "type": "string"}},
			"measures":       []map[string]any{{"name": "people", "agg": "count"}},
		}}), 400, "model on the jsonfiles dialect")
		if r.str("error", "code") != "validation_failed" || !strings.Contains(string(r.raw), `"field":"data_source_id"`) ||
			!strings.Contains(string(r.raw), `the \"jsonfiles\" SQL dialect`) {
			t.Errorf("refusal does not name data_source_id and the dialect: %s", r.raw)
		}
	})
}
