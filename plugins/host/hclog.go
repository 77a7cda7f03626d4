package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// slogHclog adapts go-plugin's hclog.Logger to a *slog.Logger. go-plugin
// writes through it both its own client messages (start, exit) and every
// line the connector writes to stderr (hclog JSON lines are parsed into
// message + key/values by go-plugin, other lines become Debug, panics Error).
// Every record carries connector=<name>.
type slogHclog struct {
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*slogHclog)(nil)

func newHclog(l *slog.Logger, connector string) hclog.Logger {
	return &slogHclog{l: l.With("connector", connector)}
}

// levelTrace is below slog.LevelDebug: enabled only by handlers set to log it.
const levelTrace = slog.LevelDebug - 4

func toSlog(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug, hclog.NoLevel:
		return slog.LevelDebug
	case hclog.Info:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (a *slogHclog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := toSlog(level)
	ctx := context.Background()
	if !a.l.Enabled(ctx, lv) {
		return
	}
	attrs := make([]any, 0, len(a.implied)+len(args)+2)
	if a.name != "" {
		attrs = append(attrs, "logger", a.name)
	}
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, cleanArgs(args)...)
	a.l.Log(ctx, lv, msg, attrs...)
}

// cleanArgs drops the "timestamp" go-plugin adds to lines parsed from the
// connector's stderr (the slog record has its own time) and fixes odd-length
// argument lists.
func cleanArgs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			out = append(out, "EXTRA_VALUE", args[i])
			break
		}
		k, ok := args[i].(string)
		if !ok {
			k = fmt.Sprint(args[i])
		}
		if k == "timestamp" {
			continue
		}
		out = append(out, k, args[i+1])
	}
	return out
}

func (a *slogHclog) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogHclog) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogHclog) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogHclog) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogHclog) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *slogHclog) enabled(l slog.Level) bool { return a.l.Enabled(context.Background(), l) }
func (a *slogHclog) IsTrace() bool             { return a.enabled(levelTrace) }
func (a *slogHclog) IsDebug() bool             { return a.enabled(slog.LevelDebug) }
func (a *slogHclog) IsInfo() bool              { return a.enabled(slog.LevelInfo) }
func (a *slogHclog) IsWarn() bool              { return a.enabled(slog.LevelWarn) }
func (a *slogHclog) IsError() bool             { return a.enabled(slog.LevelError) }

func (a *slogHclog) ImpliedArgs() []any { return a.implied }

func (a *slogHclog) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), cleanArgs(args)...)
	return &c
}

func (a *slogHclog) Name() string { return a.name }

func (a *slogHclog) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (a *slogHclog) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is a no-op: the slog handler decides what is logged.
func (a *slogHclog) SetLevel(hclog.Level) {}

// GetLevel reports the lowest level the slog handler accepts, so go-plugin
// skips parsing stderr lines that would be dropped anyway.
func (a *slogHclog) GetLevel() hclog.Level {
	switch {
	case a.IsTrace():
		return hclog.Trace
	case a.IsDebug():
		return hclog.Debug
	case a.IsInfo():
		return hclog.Info
	case a.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (a *slogHclog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogHclog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return lineWriter(func(line string) { a.Log(level, line) })
}

// lineWriter calls fn for every complete line written to it (a partial last
// line is emitted as is; connectors' stray output is line-oriented anyway).
type lineWriter func(string)

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte{'\n'}) {
		if s := strings.TrimSpace(string(line)); s != "" {
			w(s)
		}
	}
	return len(p), nil
}
