package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/plugins/host"
)

// installFake installs the fake connector's executable as a third-party
// connector named name (its behaviour follows its name: crashstart dies at
// start saying why on stderr).
func installFake(t *testing.T, plugins, name string) {
	t.Helper()
	dir := filepath.Join(plugins, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(fakeExe)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, name)
	if err := os.WriteFile(exe, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	sum, err := host.Checksum(exe)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]any{"name": name, "version": "0.0.1", "executable": name, "sha256": sum, "protocol_version": 1})
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue 14 (items 1, 4, 7, 8): the listing shows each connector's state with
// its SDK version and the reason of a failure; creating a data source on a
// connector that cannot start says why; an admin reloads a connector; the
// connectors' counters are on /metrics; elapsed_ms counts the whole query.
func TestConnectorStatusReloadMetrics(t *testing.T) {
	tg := storetest.Targets()[0]
	fake := withFakeConnector(t)
	plugins := t.TempDir()
	installFake(t, plugins, "crashstart")
	e := newEnv(t, tg, fake, func(o *host.Options) {
		o.PluginDir = plugins
		o.RestartBackoff = time.Hour // the failure stays what it is during the test
	})
	_, userTok := e.createUser("ivy@example.com", "user")

	type view struct {
		Name, Status, SDKVersion, StatusReason, LastError string
	}
	list := func() map[string]view {
		r := e.want(e.do("GET", "/api/v1/connectors", userTok, nil), 200, "list")
		out := map[string]view{}
		for _, it := range r.body["items"].([]any) {
			m := it.(map[string]any)
			s := func(k string) string { v, _ := m[k].(string); return v }
			out[s("name")] = view{Name: s("name"), Status: s("status"), SDKVersion: s("sdk_version"),
				StatusReason: s("status_reason"), LastError: s("last_error")}
		}
		return out
	}
	if v := list()["fake"]; v.Status != "ready" || v.SDKVersion != "test" {
		t.Fatalf("fake: %+v", v)
	}
	deadline := time.Now().Add(20 * time.Second)
	for list()["crashstart"].Status != "crashed" {
		if time.Now().After(deadline) {
			t.Fatalf("crashstart never failed: %+v", list()["crashstart"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	v := list()["crashstart"]
	if !strings.Contains(v.LastError, "fatal: cannot read license file") || !strings.Contains(v.StatusReason, "fatal: cannot read license file") {
		t.Fatalf("crashstart does not say why: %+v", v)
	}

	// A data source on it: the reason, not a schema parsing error.
	r := e.do("POST", "/api/v1/data-sources", e.admin, map[string]any{"name": "broken", "type": "crashstart", "config": map[string]any{}})
	if r.status < 500 || !strings.Contains(string(r.raw), "fatal: cannot read license file") || strings.Contains(string(r.raw), "not JSON") {
		t.Fatalf("create on a connector that cannot start: %d %s", r.status, r.raw)
	}

	// elapsed_ms of an ad-hoc JSON query includes the wait for the schema.
	src := e.want(e.do("POST", "/api/v1/data-sources", e.admin, map[string]any{"name": "fake", "type": "fake",
		"config": map[string]any{"path": "x", "password": "right-password"}}), 201, "create fake source")
	q := e.want(e.do("POST", "/api/v1/data-sources/"+src.str("id")+"/query", e.admin, map[string]any{"sql": "delay 300"}), 200, "ad-hoc query")
	if ms, _ := q.body["elapsed_ms"].(float64); ms < 300 {
		t.Fatalf("elapsed_ms = %v for a query whose schema came after 300 ms: %s", q.body["elapsed_ms"], q.raw)
	}

	// Reload: administrators only.
	e.want(e.do("POST", "/api/v1/connectors/fake/reload", userTok, nil), 403, "reload as user")
	e.want(e.do("POST", "/api/v1/connectors/nope/reload", e.admin, nil), 404, "reload unknown")
	rl := e.want(e.do("POST", "/api/v1/connectors/fake/reload", e.admin, nil), 200, "reload fake")
	if rl.str("status") != "ready" {
		t.Fatalf("after reload: %s", rl.raw)
	}
	rl = e.want(e.do("POST", "/api/v1/connectors/crashstart/reload", e.admin, nil), 200, "reload crashstart")
	if rl.str("status") != "crashed" || !strings.Contains(rl.str("last_error"), "fatal: cannot read license file") {
		t.Fatalf("reload of a connector that cannot start: %s", rl.raw)
	}

	m := string(e.want(e.do("GET", "/metrics", e.admin, nil), 200, "metrics").raw)
	for _, want := range []string{
		`datapulse_connector_starts_total{connector="fake"} 2`,
		`datapulse_connector_restarts_total{connector="fake"} 1`,
		`datapulse_connector_calls_total{connector="fake"}`,
		`datapulse_connector_call_duration_seconds_bucket{connector="fake",le="0.5"}`,
		`datapulse_connector_start_failures_total{connector="crashstart"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
