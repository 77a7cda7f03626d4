// Package lograte keeps repeated failures from flooding the log: the first
// occurrence of a kind of failure is logged at once, the ones after it within
// an interval are only counted, and when the interval ends one line says how
// many more there were ("more_like_this": N, "in_last": "10s", with the
// attributes of the last of them). A kind that
// keeps failing is thus logged about once per interval, however many requests
// fail; a kind that stops failing costs nothing after its interval.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a kind that keeps failing is logged.
const DefaultInterval = 10 * time.Second

// maxKinds bounds the kinds tracked at once; further kinds share one.
const maxKinds = 512

// overflowKey collects the kinds beyond maxKinds.
const overflowKey = "\x00overflow"

// Limiter logs through log, at most one line per kind per interval plus the
// first occurrence. The zero value is not usable; see New.
type Limiter struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time
	// after runs f once d has passed (time.AfterFunc; tests run it by hand).
	after func(d time.Duration, f func())

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	since time.Time // start of the current interval
	held  int       // occurrences counted, not logged, in it
	level slog.Level
	msg   string
	attrs []slog.Attr // of the last occurrence held back
}

// New returns a limiter over log with the given interval (DefaultInterval
// when 0).
func New(log *slog.Logger, interval time.Duration) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Limiter{log: log, interval: interval, now: time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }, kinds: map[string]*kind{}}
}

// WithClock replaces the clock and the timer (for tests): now tells the
// time, after is asked to run a function once d has passed.
func (l *Limiter) WithClock(now func() time.Time, after func(d time.Duration, f func())) *Limiter {
	l.now, l.after = now, after
	return l
}

// Interval is the interval the limiter counts over.
func (l *Limiter) Interval() time.Duration { return l.interval }

// Log logs msg with attrs at level unless key was already logged in the
// current interval, in which case the occurrence is only counted: when the
// interval ends one line reports the count (attribute more_like_this, over
// in_last), with the attributes of the last occurrence. It reports whether
// this occurrence was logged now.
func (l *Limiter) Log(ctx context.Context, level slog.Level, key, msg string, attrs ...slog.Attr) bool {
	if ctx == nil {
		ctx = context.Background()
	}
	now := l.now()
	l.mu.Lock()
	k := l.kinds[key]
	if k == nil && len(l.kinds) >= maxKinds {
		key = overflowKey
		k = l.kinds[key]
	}
	if k == nil || k.held == 0 && now.Sub(k.since) >= l.interval {
		// New, or quiet for a whole interval: log it at once.
		arm := k == nil
		if k == nil {
			k = &kind{}
			l.kinds[key] = k
		}
		k.since, k.level, k.msg = now, level, msg
		l.mu.Unlock()
		if arm {
			l.after(l.interval, func() { l.flush(key) })
		}
		l.log.LogAttrs(ctx, level, msg, attrs...)
		return true
	}
	k.held++
	k.level, k.msg, k.attrs = max(k.level, level), msg, attrs
	l.mu.Unlock()
	return false
}

// flush ends key's interval: it logs the count of the occurrences held back
// and starts the next interval, or forgets a kind with nothing held (its next
// occurrence is logged at once). A kind that keeps failing is thus reported
// once per interval.
func (l *Limiter) flush(key string) {
	now := l.now()
	l.mu.Lock()
	k := l.kinds[key]
	if k == nil {
		l.mu.Unlock()
		return
	}
	if wait := k.since.Add(l.interval).Sub(now); wait > 0 {
		// The interval was restarted meanwhile: wait for its end.
		l.mu.Unlock()
		l.after(wait, func() { l.flush(key) })
		return
	}
	if k.held == 0 {
		delete(l.kinds, key)
		l.mu.Unlock()
		return
	}
	held, level, msg, attrs := k.held, k.level, k.msg, k.attrs
	k.held, k.attrs, k.since = 0, nil, now
	l.mu.Unlock()
	l.after(l.interval, func() { l.flush(key) })
	out := make([]slog.Attr, 0, len(attrs)+2)
	out = append(out, slog.Int("more_like_this", held), slog.Duration("in_last", l.interval))
	out = append(out, attrs...)
	l.log.LogAttrs(context.Background(), level, msg, out...)
}

// Flush reports every count held back now, without waiting for the ends of
// the intervals (at shutdown, so that no count is lost).
func (l *Limiter) Flush() {
	l.mu.Lock()
	type summary struct {
		held  int
		level slog.Level
		msg   string
		attrs []slog.Attr
	}
	var out []summary
	for _, k := range l.kinds {
		if k.held > 0 {
			out = append(out, summary{k.held, k.level, k.msg, k.attrs})
			k.held, k.attrs = 0, nil
		}
	}
	l.mu.Unlock()
	for _, s := range out {
		attrs := append([]slog.Attr{slog.Int("more_like_this", s.held), slog.Duration("in_last", l.interval)}, s.attrs...)
		l.log.LogAttrs(context.Background(), s.level, s.msg, attrs...)
	}
}

// Pending is the number of occurrences held back and not yet reported, over
// every kind (for tests and diagnostics).
func (l *Limiter) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, k := range l.kinds {
		n += k.held
	}
	return n
}
