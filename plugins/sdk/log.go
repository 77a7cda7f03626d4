package sdk

import (
	"context"
	"os"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
)

var (
	loggerMu      sync.Mutex
	processLogger hclog.Logger
)

// Logger returns the connector process's logger. Under Serve it writes JSON
// lines to stderr, which the host reads and files under the connector's name
// in its own log. Never log secrets or result data.
func Logger() hclog.Logger {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	if processLogger == nil {
		processLogger = hclog.New(&hclog.LoggerOptions{
			Name:   "connector",
			Level:  logLevel(),
			Output: os.Stderr,
		})
	}
	return processLogger
}

func setLogger(l hclog.Logger) {
	loggerMu.Lock()
	processLogger = l
	loggerMu.Unlock()
}

// logLevel reads DATAPULSE_CONNECTOR_LOG_LEVEL (trace, debug, info, warn,
// error); info by default.
func logLevel() hclog.Level {
	if l := hclog.LevelFromString(os.Getenv("DATAPULSE_CONNECTOR_LOG_LEVEL")); l != hclog.NoLevel {
		return l
	}
	return hclog.Info
}

type loggerKey struct{}

func withLogger(ctx context.Context, l hclog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger of a call: the process logger with the
// method, data source and request ids attached.
func LoggerFrom(ctx context.Context) hclog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(hclog.Logger); ok {
		return l
	}
	return Logger()
}
