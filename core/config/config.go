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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
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
