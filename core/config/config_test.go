package config_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
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
		{"smtp scheme", []string{"--smtp-url", "http://mail.example.com", "--smtp-from", "a@example.com"}, nil, "smtp-url must start with smtp://"},
		{"smtp no host", []string{"--smtp-url", "smtp://", "--smtp-from", "a@example.com"}, nil, "smtp-url needs a host"},
		{"smtp port", nil, map[string]string{"DATAPULSE_SMTP_URL": "smtp://mail.example.com:0", "DATAPULSE_SMTP_FROM": "a@example.com"}, "smtp-url has a bad port"},
		{"smtp path", []string{"--smtp-url", "smtp://mail.example.com/x", "--smtp-from", "a@example.com"}, nil, "no path"},
		{"smtp loopback not allowed", []string{"--smtp-url", "smtp://127.0.0.1:25", "--smtp-from", "a@example.com"}, nil, "smtp-url host 127.0.0.1 is a loopback address: add it to --egress-allow"},
		{"smtp localhost not allowed", []string{"--smtp-url", "smtp://localhost:25", "--smtp-from", "a@example.com"}, nil, "--egress-allow"},
		{"smtp private not allowed", []string{"--smtp-url", "smtp://u:SECRET@10.1.2.3", "--smtp-from", "a@example.com", "--egress-allow", "10.2.0.0/16"}, nil, "10.1.2.3 is a private address"},
		{"smtp without from", []string{"--smtp-url", "smtp://mail.example.com"}, nil, "smtp-from is required"},
		{"bad from", []string{"--smtp-from", "not an address"}, nil, "smtp-from"},
		{"from header injection", []string{"--smtp-from", "a@example.com\r\nBcc: x@example.com"}, nil, "smtp-from"},
		{"public url scheme", []string{"--public-url", "ftp://bi.example.com"}, nil, "public-url"},
		{"public url relative", nil, map[string]string{"DATAPULSE_PUBLIC_URL": "bi.example.com"}, "public-url"},
		{"public url query", []string{"--public-url", "https://bi.example.com/?a=1"}, nil, "public-url"},
		{"egress allow", []string{"--egress-allow", "10.0.0.0/8,host:25"}, nil, "egress-allow"},
		{"egress allow env", nil, map[string]string{"DATAPULSE_EGRESS_ALLOW": "10.0.0.0/99"}, "egress-allow"},
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

func TestNotificationFlags(t *testing.T) {
	dir := t.TempDir()
	const pass = "p@ss:w0rd/SECRET"
	smtpURL := "smtp://alerts:" + url.QueryEscape(pass) + "@mail.example.com:587"
	c, err := load(t, []string{"--public-url", "https://bi.example.com/", "--egress-allow", "10.0.0.0/8, mail.internal"}, map[string]string{
		"DATAPULSE_DATA_DIR":     dir,
		"DATAPULSE_SMTP_URL":     smtpURL,
		"DATAPULSE_SMTP_FROM":    "DataPulse <alerts@example.com>",
		"DATAPULSE_EGRESS_ALLOW": "ignored.example", // the flag wins
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPURL != smtpURL || c.SMTPFrom != "DataPulse <alerts@example.com>" || c.PublicURL != "https://bi.example.com" || c.EgressAllow.String() != "10.0.0.0/8,mail.internal" {
		t.Fatalf("loaded %s", c)
	}
	// An internal SMTP relay is fine once listed.
	for _, allow := range []string{"localhost", "127.0.0.1", "127.0.0.0/8"} {
		host := "localhost"
		if allow != "localhost" {
			host = "127.0.0.1"
		}
		if _, err := load(t, []string{"--smtp-url", "smtp://" + host + ":25", "--smtp-from", "a@example.com", "--egress-allow", allow}, map[string]string{"DATAPULSE_DATA_DIR": dir}); err != nil {
			t.Fatalf("relay %s allowed by %s: %v", host, allow, err)
		}
	}
	// Defaults: email off, no links, nothing internal allowed.
	d, err := load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir})
	if err != nil || d.SMTPURL != "" || d.PublicURL != "" || !d.EgressAllow.Empty() {
		t.Fatalf("defaults: %s %v", d, err)
	}

	// The SMTP password is never printed: %v, %+v, %#v, slog text and JSON.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", c)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c)
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c) + buf.String()
	for _, leak := range []string{"SECRET", url.QueryEscape(pass), string(c.EncryptionKey), string(c.TokenSigningKey)} {
		if strings.Contains(out, leak) {
			t.Fatalf("printed config leaks %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "smtp://alerts:xxxxx@mail.example.com:587") || !strings.Contains(out, "egress_allow=10.0.0.0/8,mail.internal") {
		t.Fatalf("printed config lacks the redacted SMTP URL or allow list:\n%s", out)
	}

	// A bad SMTP URL's error does not repeat its password either.
	_, err = load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir, "DATAPULSE_SMTP_URL": "smtp://alerts:SECRET@mail.example.com:99999", "DATAPULSE_SMTP_FROM": "a@example.com"})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error %v", err)
	}
	_, err = load(t, nil, map[string]string{"DATAPULSE_DATA_DIR": dir, "DATAPULSE_SMTP_URL": "smtp://alerts:SECRET%zz@mail.example.com", "DATAPULSE_SMTP_FROM": "a@example.com"})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error %v", err)
	}
	if got := config.RedactURL("postgres://u:SECRET@db/x"); strings.Contains(got, "SECRET") {
		t.Fatal(got)
	}
}

func TestEnvNamesOfNotificationFlags(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(fs)
	for flag, env := range map[string]string{"smtp-url": "DATAPULSE_SMTP_URL", "smtp-from": "DATAPULSE_SMTP_FROM", "public-url": "DATAPULSE_PUBLIC_URL", "egress-allow": "DATAPULSE_EGRESS_ALLOW"} {
		if fs.Lookup(flag) == nil || config.EnvName(flag) != env {
			t.Errorf("flag %s / %s missing", flag, env)
		}
	}
}
