package lograte

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves; timers fire when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), f: f})
}

// Advance moves the clock and runs the timers due, in order, including those
// the timers themselves start.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		idx := -1
		for i, t := range c.timers {
			if !t.at.After(end) && (idx < 0 || t.at.Before(c.timers[idx].at)) {
				idx = i
			}
		}
		if idx < 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[idx]
		c.timers = append(c.timers[:idx], c.timers[idx+1:]...)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

type record struct {
	Level        string `json:"level"`
	Msg          string `json:"msg"`
	MoreLikeThis int    `json:"more_like_this"`
	InLast       string `json:"in_last"`
	Error        string `json:"error"`
}

func newTest(t *testing.T) (*Limiter, *fakeClock, func() []record) {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	h := slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == "in_last" {
			return slog.String("in_last", a.Value.Duration().String())
		}
		return a
	}})
	clock := &fakeClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	l := New(slog.New(h), 10*time.Second).WithClock(clock.Now, clock.After)
	records := func() []record {
		mu.Lock()
		defer mu.Unlock()
		var out []record
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			var r record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			out = append(out, r)
		}
		buf.Reset()
		return out
	}
	return l, clock, records
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestFirstAtOnceThenOneCountPerInterval(t *testing.T) {
	l, clock, records := newTest(t)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		logged := l.Log(ctx, slog.LevelWarn, "db", "database unavailable", slog.String("error", fmt.Sprint("refused #", i)))
		if logged != (i == 0) {
			t.Fatalf("occurrence %d: logged=%v, want only the first logged at once", i, logged)
		}
		clock.Advance(50 * time.Millisecond) // 100 occurrences over 5 s
	}
	got := records()
	if len(got) != 1 || got[0].Msg != "database unavailable" || got[0].MoreLikeThis != 0 || got[0].Error != "refused #0" {
		t.Fatalf("during the first interval: %+v, want the first occurrence only", got)
	}
	if l.Pending() != 99 {
		t.Fatalf("pending %d, want 99", l.Pending())
	}
	clock.Advance(5 * time.Second) // the interval ends
	got = records()
	if len(got) != 1 || got[0].MoreLikeThis != 99 || got[0].InLast != "10s" || got[0].Error != "refused #99" || got[0].Level != "WARN" {
		t.Fatalf("at the end of the interval: %+v, want one line counting 99 more, with the last error", got)
	}

	// Still failing: one summary line per interval, however many occur.
	for i := 0; i < 3; i++ {
		for j := 0; j < 40; j++ {
			if l.Log(ctx, slog.LevelWarn, "db", "database unavailable") {
				t.Fatalf("interval %d occurrence %d was logged at once inside a busy interval", i, j)
			}
			clock.Advance(250 * time.Millisecond)
		}
		got = records()
		if len(got) != 1 || got[0].MoreLikeThis != 40 {
			t.Fatalf("interval %d: %+v, want one line counting 40", i, got)
		}
	}

	// Quiet for an interval: nothing is logged, the kind is forgotten, and
	// the next occurrence is logged at once again.
	clock.Advance(30 * time.Second)
	if got = records(); len(got) != 0 {
		t.Fatalf("quiet intervals logged %+v", got)
	}
	if l.Pending() != 0 {
		t.Fatalf("pending %d after quiet intervals", l.Pending())
	}
	if !l.Log(ctx, slog.LevelWarn, "db", "database unavailable") {
		t.Fatal("the first occurrence after a quiet interval was held back")
	}
	if got = records(); len(got) != 1 || got[0].MoreLikeThis != 0 {
		t.Fatalf("after the quiet interval: %+v", got)
	}
}

func TestKindsAreCountedSeparately(t *testing.T) {
	l, clock, records := newTest(t)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		l.Log(ctx, slog.LevelWarn, "a", "a failed")
		if i%2 == 0 {
			l.Log(ctx, slog.LevelError, "b", "b failed")
		}
	}
	if got := records(); len(got) != 2 {
		t.Fatalf("first occurrences: %+v, want one line per kind", got)
	}
	clock.Advance(10 * time.Second)
	byMsg := map[string]record{}
	for _, r := range records() {
		byMsg[r.Msg] = r
	}
	if len(byMsg) != 2 || byMsg["a failed"].MoreLikeThis != 9 || byMsg["b failed"].MoreLikeThis != 4 || byMsg["b failed"].Level != "ERROR" {
		t.Fatalf("summaries: %+v, want a: 9 more (warn), b: 4 more (error)", byMsg)
	}
}

func TestSingleOccurrenceHasNoSummary(t *testing.T) {
	l, clock, records := newTest(t)
	l.Log(context.Background(), slog.LevelWarn, "once", "once")
	clock.Advance(time.Minute)
	if got := records(); len(got) != 1 {
		t.Fatalf("one occurrence logged %d lines: %+v", len(got), got)
	}
}

func TestKindsAreBounded(t *testing.T) {
	l, clock, records := newTest(t)
	ctx := context.Background()
	for i := 0; i < maxKinds+100; i++ {
		l.Log(ctx, slog.LevelWarn, fmt.Sprint("k", i), "distinct")
	}
	// maxKinds first lines, then the overflow kind's first one; 99 held.
	if got := records(); len(got) != maxKinds+1 {
		t.Fatalf("%d lines for %d kinds, want %d", len(got), maxKinds+100, maxKinds+1)
	}
	if l.Pending() != 99 {
		t.Fatalf("pending %d, want 99 held by the overflow kind", l.Pending())
	}
	clock.Advance(10 * time.Second)
	got := records()
	if len(got) != 1 || got[0].MoreLikeThis != 99 {
		t.Fatalf("overflow summary: %+v", got)
	}
	clock.Advance(time.Minute)
	l.mu.Lock()
	n := len(l.kinds)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d kinds still tracked after they went quiet", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	l, clock, records := newTest(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.Log(context.Background(), slog.LevelWarn, "db", "down")
			}
		}()
	}
	wg.Wait()
	clock.Advance(10 * time.Second)
	total := 0
	got := records()
	for _, r := range got {
		if r.MoreLikeThis == 0 {
			total++ // an occurrence logged at once
		}
		total += r.MoreLikeThis
	}
	if len(got) != 2 || total != 4000 {
		t.Fatalf("%d lines accounting for %d occurrences, want 2 lines accounting for 4000", len(got), total)
	}
}

func TestFlushReportsWhatIsHeld(t *testing.T) {
	l, clock, records := newTest(t)
	for i := 0; i < 7; i++ {
		l.Log(context.Background(), slog.LevelWarn, "db", "down")
	}
	records()
	l.Flush()
	got := records()
	if len(got) != 1 || got[0].MoreLikeThis != 6 {
		t.Fatalf("flush: %+v, want one line counting 6", got)
	}
	if l.Pending() != 0 {
		t.Fatalf("pending %d after flush", l.Pending())
	}
	clock.Advance(time.Minute) // nothing is reported twice
	if got := records(); len(got) != 0 {
		t.Fatalf("after flush and the interval: %+v", got)
	}
}
