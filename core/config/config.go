// Package config holds DataPulse's one immutable configuration: defaults,
// overridden by DATAPULSE_* environment variables, overridden by flags, and
// validated before anything starts.
package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/datapulse/datapulse/core/egress"
)

// MinKeyLen is the shortest signing or encryption key accepted, in bytes.
const MinKeyLen = 32

// Config is the validated configuration. Treat it as read-only.
type Config struct {
	Addr            string
	DataDir         string
	DatabaseURL     string
	LogLevel        slog.Level
	LogFormat       string // "json" or "text"
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	BodyLimit       int
	ShutdownTimeout time.Duration
	RequestTimeout  time.Duration
	// DefaultRole is the role of users without user_roles rows.
	DefaultRole string
	// QueryMaxRows and QueryTimeout bound every query run through a connector.
	QueryMaxRows int64
	QueryTimeout time.Duration
	// CacheSize bounds the query result cache in bytes; CacheTTL is how long
	// a result stays fresh when neither its data source, query nor dashboard
	// says otherwise (0 disables caching by default).
	CacheSize int64
	CacheTTL  time.Duration
	// RenderConcurrency is how many widgets of one dashboard run at once.
	RenderConcurrency int
	// Builtins are the connector names `plugin serve` can run (set by the
	// binary, not by flags).
	Builtins []string

	// SMTPURL is smtp://user:pass@host:port (STARTTLS when offered) or
	// smtps://… (implicit TLS); empty disables email. It holds a password:
	// never print it (String and LogValue redact it; see RedactURL).
	SMTPURL string
	// SMTPFrom is the sender address of notification emails.
	SMTPFrom string
	// PublicURL is the externally reachable base URL of DataPulse (links in
	// notifications), without a trailing slash; empty: no links.
	PublicURL string
	// EgressAllow lists hosts, IPs and CIDRs that outbound connections
	// (webhooks, Slack, SMTP) may reach although they are internal.
	EgressAllow egress.AllowList

	// AdminEmail and AdminPassword create the first admin when no user exists.
	AdminEmail    string
	AdminPassword string

	// TokenSigningKey signs access tokens; EncryptionKey encrypts secrets at
	// rest. Separate keys: rotating one never forces rotating the other.
	TokenSigningKey []byte
	EncryptionKey   []byte
}

// Defaults.
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultDataDir = "./datapulse-data"
)

// Flags registers every option on fs with its default. Each flag NAME can
// also be given as the environment variable DATAPULSE_NAME (dashes become
// underscores); a flag given on the command line wins.
func Flags(fs *pflag.FlagSet) {
	fs.String("addr", DefaultAddr, "address the API listens on (host:port)")
	fs.String("data-dir", DefaultDataDir, "directory for the embedded database and generated keys")
	fs.String("database-url", "", "postgres://… to use PostgreSQL instead of the embedded SQLite")
	fs.String("log-level", "info", "debug, info, warn or error")
	fs.String("log-format", "json", "json or text")
	fs.Duration("access-token-ttl", 15*time.Minute, "lifetime of access tokens")
	fs.Duration("refresh-token-ttl", 30*24*time.Hour, "lifetime of a login session (refresh tokens)")
	fs.String("body-limit", "1MiB", "largest accepted request body (e.g. 512KiB, 4MiB)")
	fs.Duration("shutdown-timeout", 30*time.Second, "how long in-flight requests may finish on SIGTERM")
	fs.Duration("request-timeout", 60*time.Second, "deadline of one API request")
	fs.String("default-role", "editor", "role of users who have no explicit role assignment")
	fs.Int64("query-max-rows", 100_000, "most rows a query returns (more: truncated)")
	fs.Duration("query-timeout", 30*time.Second, "deadline of a query at its data source")
	fs.String("cache-size", "256MiB", "memory bound of the query result cache")
	fs.Duration("cache-ttl", time.Minute, "default freshness of a cached result (0s: no caching unless a data source, query or dashboard sets a TTL)")
	fs.Int("render-concurrency", 32, "widgets of one dashboard that run at once")
	fs.String("smtp-url", "", "SMTP server for email notifications: smtp://user:pass@host:port (STARTTLS when offered) or smtps://… (implicit TLS)")
	fs.String("smtp-from", "", "sender address of notification emails, e.g. \"DataPulse <alerts@example.com>\"")
	fs.String("public-url", "", "external base URL of DataPulse, for links in notifications (e.g. https://bi.example.com)")
	fs.String("egress-allow", "", "comma-separated hosts, IPs or CIDRs that webhooks, Slack and SMTP may reach although they are internal (loopback, private, link-local, …)")
}

// EnvName is the environment variable that sets flag name.
func EnvName(flag string) string {
	return "DATAPULSE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Load applies the environment to the flags not given on the command line,
// validates everything and resolves the keys (generating them on first start).
func Load(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (Config, error) {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		if v, ok := lookupEnv(EnvName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", EnvName(f.Name), err))
			}
		}
	})
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	dur := func(name string) time.Duration { d, _ := fs.GetDuration(name); return d }

	c := Config{
		Addr:            strings.TrimSpace(get("addr")),
		DataDir:         strings.TrimSpace(get("data-dir")),
		DatabaseURL:     strings.TrimSpace(get("database-url")),
		LogFormat:       get("log-format"),
		AccessTokenTTL:  dur("access-token-ttl"),
		RefreshTokenTTL: dur("refresh-token-ttl"),
		ShutdownTimeout: dur("shutdown-timeout"),
		RequestTimeout:  dur("request-timeout"),
		DefaultRole:     strings.TrimSpace(get("default-role")),
		QueryTimeout:    dur("query-timeout"),
	}
	c.QueryMaxRows, _ = fs.GetInt64("query-max-rows")
	c.CacheTTL = dur("cache-ttl")
	c.RenderConcurrency, _ = fs.GetInt("render-concurrency")
	c.SMTPURL = strings.TrimSpace(get("smtp-url"))
	c.SMTPFrom = strings.TrimSpace(get("smtp-from"))
	c.PublicURL = strings.TrimRight(strings.TrimSpace(get("public-url")), "/")
	c.AdminEmail, _ = lookupEnv("DATAPULSE_ADMIN_EMAIL")
	c.AdminPassword, _ = lookupEnv("DATAPULSE_ADMIN_PASSWORD")

	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: want host:port", c.Addr))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("addr %q: port must be a number from 0 to 65535", c.Addr))
	}
	if c.QueryMaxRows < 1 || c.QueryMaxRows > 10_000_000 {
		errs = append(errs, errors.New("query-max-rows must be between 1 and 10000000"))
	}
	if c.QueryTimeout < time.Second || c.QueryTimeout > 24*time.Hour {
		errs = append(errs, errors.New("query-timeout must be between 1s and 24h"))
	}
	if c.DefaultRole == "" {
		errs = append(errs, errors.New("default-role must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	if u := c.DatabaseURL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") && !strings.HasPrefix(u, "sqlite:") {
		errs = append(errs, errors.New("database-url must start with postgres://, postgresql:// or sqlite:"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("log-level"))); err != nil {
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", get("log-level")))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log-format %q: want json or text", c.LogFormat))
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		errs = append(errs, errors.New("access-token-ttl must be between 1m and 24h"))
	}
	if c.RefreshTokenTTL < c.AccessTokenTTL || c.RefreshTokenTTL > 365*24*time.Hour {
		errs = append(errs, errors.New("refresh-token-ttl must be at least access-token-ttl and at most 365 days"))
	}
	if c.ShutdownTimeout <= 0 || c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("shutdown-timeout and request-timeout must be positive"))
	}
	limit, err := ParseSize(get("body-limit"))
	if err != nil || limit < 1024 || limit > 1<<30 {
		errs = append(errs, fmt.Errorf("body-limit %q: want a size between 1KiB and 1GiB", get("body-limit")))
	}
	c.BodyLimit = int(limit)
	if c.CacheSize, err = ParseSize(get("cache-size")); err != nil || c.CacheSize < 1<<20 || c.CacheSize > 1<<40 {
		errs = append(errs, fmt.Errorf("cache-size %q: want a size between 1MiB and 1TiB", get("cache-size")))
	}
	if c.CacheTTL < 0 || c.CacheTTL > 7*24*time.Hour {
		errs = append(errs, errors.New("cache-ttl must be between 0s and 168h"))
	}
	if c.RenderConcurrency < 1 || c.RenderConcurrency > 256 {
		errs = append(errs, errors.New("render-concurrency must be between 1 and 256"))
	}
	if c.SMTPURL != "" {
		if err := validateSMTPURL(c.SMTPURL); err != nil {
			errs = append(errs, err)
		} else if allow, err := egress.ParseAllowList(get("egress-allow")); err == nil {
			if err := smtpHostReachable(c.SMTPURL, allow); err != nil {
				errs = append(errs, err)
			}
		}
		if c.SMTPFrom == "" {
			errs = append(errs, errors.New("smtp-from is required with smtp-url"))
		}
	}
	if c.SMTPFrom != "" {
		if _, err := mail.ParseAddress(c.SMTPFrom); err != nil || strings.ContainsAny(c.SMTPFrom, "\r\n") {
			errs = append(errs, fmt.Errorf("smtp-from %q: want an email address such as alerts@example.com or \"DataPulse <alerts@example.com>\"", c.SMTPFrom))
		}
	}
	if c.PublicURL != "" {
		if err := validatePublicURL(c.PublicURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.EgressAllow, err = egress.ParseAllowList(get("egress-allow")); err != nil {
		errs = append(errs, err)
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		errs = append(errs, errors.New("DATAPULSE_ADMIN_EMAIL and DATAPULSE_ADMIN_PASSWORD go together"))
	} else if c.AdminEmail != "" {
		if _, err := mail.ParseAddress(c.AdminEmail); err != nil {
			errs = append(errs, errors.New("DATAPULSE_ADMIN_EMAIL is not an email address"))
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	if c.TokenSigningKey, err = resolveKey(lookupEnv, "DATAPULSE_TOKEN_SIGNING_KEY", c.DataDir, "token-signing.key"); err != nil {
		return Config{}, err
	}
	if c.EncryptionKey, err = resolveKey(lookupEnv, "DATAPULSE_ENCRYPTION_KEY", c.DataDir, "encryption.key"); err != nil {
		return Config{}, err
	}
	return c, nil
}

// resolveKey takes the key from the environment when set (refusing a short
// one), else reads it from the data directory, generating it on first start.
func resolveKey(lookupEnv func(string) (string, bool), env, dataDir, file string) ([]byte, error) {
	if v, ok := lookupEnv(env); ok {
		if len(v) < MinKeyLen {
			return nil, fmt.Errorf("%s is set but shorter than %d bytes: refusing a weak key", env, MinKeyLen)
		}
		return []byte(v), nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, file)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) < MinKeyLen {
			return nil, fmt.Errorf("key file %s is shorter than %d bytes: refusing a weak key", path, MinKeyLen)
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("key file %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
		}
		return b, nil
	case errors.Is(err, fs.ErrNotExist):
		b = make([]byte, 64)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		// O_EXCL: two processes starting at once cannot overwrite each other's key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return resolveKey(lookupEnv, env, dataDir, file)
		}
		if err != nil {
			return nil, fmt.Errorf("write key file: %w", err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return nil, fmt.Errorf("write key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return b, nil
	default:
		return nil, fmt.Errorf("read key file: %w", err)
	}
}

// ParseSize reads "1048576", "512KiB", "4MiB", "1GiB" (also KB/MB/GB as powers of 1024).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != s || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// validateSMTPURL checks the form of --smtp-url. Its errors never repeat the
// URL: it holds the SMTP password.
func validateSMTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("smtp-url is not a URL (want smtp://user:pass@host:port or smtps://user:pass@host:port; percent-encode special characters in the password)")
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return errors.New("smtp-url must start with smtp:// or smtps://")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return errors.New("smtp-url needs a host (smtp://user:pass@host:port)")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("smtp-url takes no path, query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("smtp-url has a bad port")
		}
	}
	if u.User != nil && u.User.Username() == "" {
		return errors.New("smtp-url has a password without a user name")
	}
	return nil
}

// smtpHostReachable refuses at startup an SMTP host the egress guard would
// refuse at every send: an internal IP literal or a localhost name that is
// not on --egress-allow.
func smtpHostReachable(s string, allow egress.AllowList) error {
	u, _ := url.Parse(s)
	host := strings.ToLower(u.Hostname())
	if allow.AllowsTarget(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if reason := egress.Classify(ip); reason != "" {
			return fmt.Errorf("smtp-url host %s is %s: add it to --egress-allow to allow it", ip.WithZone(""), reason)
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("smtp-url host %s is a loopback name: add it to --egress-allow to allow it", host)
	}
	return nil
}

// validatePublicURL checks --public-url: an absolute http(s) URL, no user
// info, query or fragment.
func validatePublicURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("public-url %q: want an absolute http(s) URL such as https://bi.example.com", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("public-url %q: no user:password@, query or fragment", RedactURL(s))
	}
	return nil
}

// RedactURL replaces the password of a URL with "xxxxx" (and returns a
// placeholder for text that does not parse, which may still hold one).
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// LogValue renders the configuration for logs without secrets: keys and
// the admin password are left out, URLs lose their passwords.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("data_dir", c.DataDir),
		slog.String("database_url", RedactURL(c.DatabaseURL)),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("log_format", c.LogFormat),
		slog.Duration("access_token_ttl", c.AccessTokenTTL),
		slog.Duration("refresh_token_ttl", c.RefreshTokenTTL),
		slog.Int("body_limit", c.BodyLimit),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Duration("request_timeout", c.RequestTimeout),
		slog.String("default_role", c.DefaultRole),
		slog.Int64("query_max_rows", c.QueryMaxRows),
		slog.Duration("query_timeout", c.QueryTimeout),
		slog.Int64("cache_size", c.CacheSize),
		slog.Duration("cache_ttl", c.CacheTTL),
		slog.Int("render_concurrency", c.RenderConcurrency),
		slog.String("smtp_url", RedactURL(c.SMTPURL)),
		slog.String("smtp_from", c.SMTPFrom),
		slog.String("public_url", c.PublicURL),
		slog.String("egress_allow", c.EgressAllow.String()),
		slog.String("admin_email", c.AdminEmail),
		slog.Bool("admin_password_set", c.AdminPassword != ""),
	)
}

// String is the redacted form of LogValue, so %v and %+v of a Config never
// print a secret.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("{")
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(a.Key + "=" + a.Value.String())
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps %#v from printing the raw fields.
func (c Config) GoString() string { return "config.Config" + c.String() }
