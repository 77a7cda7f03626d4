package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/datapulse/datapulse/core/config"
)

func load(t *testing.T, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	return config.Load(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	c, err := load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != config.DefaultAddr || c.DataDir != dir || c.AccessTokenTTL != 15*time.Minute || c.BodyLimit != 1<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = load(t, []string{"--addr", "127.0.0.1:9999"}, map[string]string{"DATAPULSE_DATA_DIR": dir, "DATAPULSE_ADDR": "127.0.0.1:7777", "DATAPULSE_BODY_LIMIT": "4MiB"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" {
		t.Errorf("flag must beat env: %s", c.Addr)
	}
	if c.BodyLimit != 4<<20 {
		t.Errorf("env must beat default: %d", c.BodyLimit)
	}
}

func TestValidation(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad addr", []string{"--addr", "nonsense"}, nil, "addr"},
		{"bad port", []string{"--addr", "127.0.0.1:99999"}, nil, "port"},
		{"bad url", []string{"--database-url", "mysql://x"}, nil, "database-url"},
		{"bad level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"bad ttl env", nil, map[string]string{"DATAPULSE_ACCESS_TOKEN_TTL": "forever"}, "DATAPULSE_ACCESS_TOKEN_TTL"},
		{"ttl too long", []string{"--access-token-ttl", "48h"}, nil, "access-token-ttl"},
		{"bad size", []string{"--body-limit", "lots"}, nil, "body-limit"},
		{"admin email alone", nil, map[string]string{"DATAPULSE_ADMIN_EMAIL": "a@example.com"}, "go together"},
		{"empty signing key", nil, map[string]string{"DATAPULSE_TOKEN_SIGNING_KEY": ""}, "DATAPULSE_TOKEN_SIGNING_KEY"},
		{"short encryption key", nil, map[string]string{"DATAPULSE_ENCRYPTION_KEY": "short"}, "DATAPULSE_ENCRYPTION_KEY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"DATAPULSE_DATA_DIR": dir}
			for k, v := range c.env {
				env[k] = v
			}
			_, err := load(t, c.args, env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v does not mention %q", err, c.want)
			}
		})
	}
}

func TestKeysGeneratedOnceWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c1, err := load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(c1.TokenSigningKey) < config.MinKeyLen || len(c1.EncryptionKey) < config.MinKeyLen || string(c1.TokenSigningKey) == string(c1.EncryptionKey) {
		t.Fatal("keys missing, short or equal")
	}
	for _, f := range []string{"token-signing.key", "encryption.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, st.Mode())
		}
	}
	c2, err := load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir})
	if err != nil || string(c2.TokenSigningKey) != string(c1.TokenSigningKey) {
		t.Fatal("keys not stable across starts")
	}
	// A provided key wins over the file.
	c3, err := load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir, "DATAPULSE_TOKEN_SIGNING_KEY": strings.Repeat("k", 32)})
	if err != nil || string(c3.TokenSigningKey) != strings.Repeat("k", 32) {
		t.Fatalf("provided key ignored: %v", err)
	}
	// A key file others can read is refused.
	os.Chmod(filepath.Join(dir, "encryption.key"), 0o644)
	if _, err := load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir}); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "512KiB": 512 << 10, "4MiB": 4 << 20, "1gib": 1 << 30, "2 MB": 2 << 20} {
		if got, err := config.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1e9", "12abc"} {
		if _, err := config.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	f.Add("4MiB")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := config.ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("negative size %d from %q", n, s)
		}
	})
}
