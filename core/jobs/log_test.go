package jobs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// River's error lines about an unreachable database become one warn line
// per kind and interval; its other error lines stay errors.
func TestRiverLoggerDowngradesOutages(t *testing.T) {
	var buf bytes.Buffer
	log := riverLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	ctx := context.Background()
	outage := io.ErrUnexpectedEOF // the store classifies a cut connection as unavailable
	for range 5 {
		log.ErrorContext(ctx, "notifier.Notifier: Error running listener", "err", outage)
	}
	for range 3 { // River logs most errors as text
		log.ErrorContext(ctx, "producer: Error fetching jobs", slog.String("err", "failed to connect to `user=postgres database=x`: dial tcp 127.0.0.1:5432: connect: connection refused"))
	}
	log.ErrorContext(ctx, "job failed", "err", errors.New("division by zero"))

	out := buf.String()
	if n := strings.Count(out, "background jobs: database unavailable"); n != 1 {
		t.Errorf("outage line logged %d times, want once (the rest counted):\n%s", n, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.Contains(line, "database unavailable") && !strings.Contains(line, "level=WARN"):
			t.Errorf("outage line not at warn: %s", line)
		case strings.Contains(line, "job failed") && !strings.Contains(line, "level=ERROR"):
			t.Errorf("an ordinary failure lost its error level: %s", line)
		}
	}
	if !strings.Contains(out, "job failed") {
		t.Errorf("ordinary error line missing:\n%s", out)
	}
}
