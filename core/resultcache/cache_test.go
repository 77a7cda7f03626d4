package resultcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func key(ds string, i int) Key { return NewKey(ds, "SELECT $1", []any{i}, "u") }

func newCache(maxBytes int64, clk *fakeClock) *Cache[string] {
	return New[string](Options{MaxBytes: maxBytes, Now: clk.Now})
}

func TestLRUBytesEvictionOrder(t *testing.T) {
	clk := newClock()
	c := newCache(100, clk)
	for i := range 4 {
		if !c.Set(key("a", i), fmt.Sprint(i), 25, time.Hour) {
			t.Fatalf("set %d refused", i)
		}
	}
	if s := c.Stats(); s.Bytes != 100 || s.Entries != 4 || s.Evictions != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Touch 0 so 1 becomes the least recently used.
	if _, ok := c.Get(key("a", 0)); !ok {
		t.Fatal("0 missing")
	}
	// 20 bytes: must evict exactly one entry (1).
	c.Set(key("a", 4), "4", 20, time.Hour)
	if _, ok := c.Get(key("a", 1)); ok {
		t.Fatal("1 should have been evicted first")
	}
	for _, i := range []int{0, 2, 3, 4} {
		if _, ok := c.Get(key("a", i)); !ok {
			t.Fatalf("%d evicted unexpectedly", i)
		}
	}
	// Recency now: 4,3,2,0 (most recent first) -> LRU is 0, then 2.
	// 25 bytes with 95 used: need 20 freed -> evicts 0 (25 bytes) only.
	c.Set(key("a", 5), "5", 25, time.Hour)
	if _, ok := c.Get(key("a", 0)); ok {
		t.Fatal("0 should be evicted")
	}
	// 25 more with 95 used: evicts 2.
	c.Set(key("a", 6), "6", 25, time.Hour)
	if _, ok := c.Get(key("a", 2)); ok {
		t.Fatal("2 should be evicted")
	}
	s := c.Stats()
	if s.Evictions != 3 || s.Bytes != 95 || s.Entries != 4 {
		t.Fatalf("stats %+v", s)
	}
	if s.Bytes > 100 {
		t.Fatal("bound exceeded")
	}
}

func TestSetReplaceAdjustsBytes(t *testing.T) {
	c := newCache(100, newClock())
	k := key("a", 1)
	c.Set(k, "x", 10, time.Hour)
	c.Set(k, "y", 20, time.Hour)
	if v, _ := c.Get(k); v != "y" {
		t.Fatalf("got %q", v)
	}
	if s := c.Stats(); s.Bytes != 20 || s.Entries != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTooLargeNotStored(t *testing.T) {
	c := newCache(100, newClock())
	if !c.Set(key("a", 1), "ok", 25, time.Hour) {
		t.Fatal("exactly 1/4 should be stored")
	}
	if c.Set(key("a", 2), "big", 26, time.Hour) {
		t.Fatal("over 1/4 stored")
	}
	// A refused Set also drops an older value for the same key.
	if c.Set(key("a", 1), "big", 26, time.Hour) {
		t.Fatal("over 1/4 stored")
	}
	if _, ok := c.Get(key("a", 1)); ok {
		t.Fatal("stale value survived a refused Set")
	}
	if c.Set(key("a", 3), "x", 1, 0) || c.Set(key("a", 3), "x", -1, time.Hour) {
		t.Fatal("ttl<=0 or negative size stored")
	}
	if s := c.Stats(); s.Rejected != 4 || s.Entries != 0 || s.Bytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTTLExpiry(t *testing.T) {
	clk := newClock()
	c := newCache(1000, clk)
	c.Set(key("a", 1), "short", 10, time.Minute)
	c.Set(key("a", 2), "long", 10, time.Hour)
	clk.Advance(time.Minute - time.Nanosecond)
	if _, ok := c.Get(key("a", 1)); !ok {
		t.Fatal("expired too early")
	}
	clk.Advance(time.Nanosecond)
	if _, ok := c.Get(key("a", 1)); ok {
		t.Fatal("not expired at ttl")
	}
	if _, ok := c.Get(key("a", 2)); !ok {
		t.Fatal("long entry gone")
	}
	s := c.Stats()
	if s.Expired != 1 || s.Entries != 1 || s.Bytes != 10 {
		t.Fatalf("stats %+v", s)
	}
	clk.Advance(time.Hour)
	if n := c.PurgeExpired(); n != 1 {
		t.Fatalf("purged %d", n)
	}
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestInvalidatePerSource(t *testing.T) {
	c := newCache(1000, newClock())
	for i := range 3 {
		c.Set(key("a", i), "a", 10, time.Hour)
		c.Set(key("b", i), "b", 10, time.Hour)
	}
	if n := c.Invalidate("a"); n != 3 {
		t.Fatalf("invalidated %d", n)
	}
	for i := range 3 {
		if _, ok := c.Get(key("a", i)); ok {
			t.Fatal("source a entry survived")
		}
		if _, ok := c.Get(key("b", i)); !ok {
			t.Fatal("source b entry dropped")
		}
	}
	if n := c.Invalidate("nope"); n != 0 {
		t.Fatalf("invalidated %d", n)
	}
	s := c.Stats()
	if s.Invalidated != 3 || s.Entries != 3 || s.Bytes != 30 {
		t.Fatalf("stats %+v", s)
	}
	// Index stays consistent after eviction/expiry removal.
	c.Delete(key("b", 0))
	if n := c.Invalidate("b"); n != 2 {
		t.Fatalf("invalidated %d", n)
	}
}

func TestInvalidateDuringFlightDoesNotStore(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		v, _, _ := c.Do(context.Background(), k, time.Hour, false, func(context.Context) (string, int64, error) {
			close(started)
			<-release
			return "stale", 5, nil
		})
		done <- v
	}()
	<-started
	c.Invalidate("a")
	close(release)
	if v := <-done; v != "stale" {
		t.Fatalf("waiter got %q", v)
	}
	if _, ok := c.Get(k); ok {
		t.Fatal("result computed before Invalidate was stored")
	}
}

func TestDoHitAndMiss(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	calls := 0
	fn := func(context.Context) (string, int64, error) { calls++; return "v", 1, nil }
	v, hit, err := c.Do(context.Background(), k, time.Hour, false, fn)
	if v != "v" || hit || err != nil {
		t.Fatalf("first: %q %v %v", v, hit, err)
	}
	v, hit, err = c.Do(context.Background(), k, time.Hour, false, fn)
	if v != "v" || !hit || err != nil || calls != 1 {
		t.Fatalf("second: %q %v %v calls=%d", v, hit, err, calls)
	}
	s := c.Stats()
	if s.Hits != 1 || s.Misses != 1 || s.Computations != 1 || s.Entries != 1 || s.Bytes != 1 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSingleFlight100(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (string, int64, error) {
		calls.Add(1)
		<-release
		return "shared", 6, nil
	}
	const n = 100
	var wg sync.WaitGroup
	results := make(chan string, n)
	for range n {
		wg.Go(func() {
			v, _, err := c.Do(context.Background(), k, time.Hour, false, fn)
			if err != nil {
				t.Error(err)
			}
			results <- v
		})
	}
	// Wait until all 100 are attached (1 computation + 99 coalesced) before releasing.
	waitFor(t, func() bool { s := c.Stats(); return s.Coalesced+s.Computations == n })
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != "shared" {
			t.Fatalf("got %q", v)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("fn ran %d times", calls.Load())
	}
	if s := c.Stats(); s.Computations != 1 || s.Coalesced != n-1 || s.Entries != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCancelledWaiterOthersStillGetValue(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	release := make(chan struct{})
	var fnCtxErr atomic.Value
	fn := func(ctx context.Context) (string, int64, error) {
		<-release
		fnCtxErr.Store(fmt.Sprint(ctx.Err()))
		return "v", 1, nil
	}
	// The first caller (who started the computation) is the one cancelled.
	ctx1, cancel1 := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Do(ctx1, k, time.Hour, false, fn)
		errc <- err
	}()
	waitFor(t, func() bool { return c.Stats().Computations == 1 })
	other := make(chan string, 1)
	go func() {
		v, _, err := c.Do(context.Background(), k, time.Hour, false, fn)
		if err != nil {
			t.Error(err)
		}
		other <- v
	}()
	waitFor(t, func() bool { return c.Stats().Coalesced == 1 })
	cancel1()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	close(release)
	if v := <-other; v != "v" {
		t.Fatalf("other waiter got %q", v)
	}
	if got := fnCtxErr.Load(); got != "<nil>" {
		t.Fatalf("shared computation saw ctx err %v", got)
	}
	if _, ok := c.Get(k); !ok {
		t.Fatal("value not stored")
	}
}

func TestAllWaitersGoneCancelsComputation(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	ctx, cancel := context.WithCancel(context.Background())
	fnDone := make(chan error, 1)
	go func() {
		_, _, err := c.Do(ctx, k, time.Hour, false, func(fctx context.Context) (string, int64, error) {
			<-fctx.Done()
			fnDone <- fctx.Err()
			return "", 0, fctx.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v", err)
		}
	}()
	waitFor(t, func() bool { return c.Stats().Computations == 1 })
	cancel()
	if err := <-fnDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("fn ctx err %v", err)
	}
	// A later request starts afresh rather than joining the abandoned flight.
	v, _, err := c.Do(context.Background(), k, time.Hour, false, func(context.Context) (string, int64, error) {
		return "fresh", 1, nil
	})
	if v != "fresh" || err != nil {
		t.Fatalf("got %q %v", v, err)
	}
}

func TestComputeTimeout(t *testing.T) {
	c := New[string](Options{MaxBytes: 100, ComputeTimeout: time.Millisecond})
	_, _, err := c.Do(context.Background(), key("a", 1), time.Hour, false, func(ctx context.Context) (string, int64, error) {
		<-ctx.Done()
		return "", 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestErrorsNotCached(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	boom := errors.New("boom")
	calls := 0
	fn := func(context.Context) (string, int64, error) {
		calls++
		if calls == 1 {
			return "partial", 1, boom
		}
		return "ok", 1, nil
	}
	if v, _, err := c.Do(context.Background(), k, time.Hour, false, fn); !errors.Is(err, boom) || v != "" {
		t.Fatalf("got %q %v", v, err)
	}
	if _, ok := c.Get(k); ok {
		t.Fatal("error result cached")
	}
	if v, hit, err := c.Do(context.Background(), k, time.Hour, false, fn); v != "ok" || hit || err != nil {
		t.Fatalf("got %q %v %v", v, hit, err)
	}
	if calls != 2 {
		t.Fatalf("calls %d", calls)
	}
}

func TestPanicBecomesError(t *testing.T) {
	c := newCache(1000, newClock())
	_, _, err := c.Do(context.Background(), key("a", 1), time.Hour, false, func(context.Context) (string, int64, error) {
		panic("kaboom")
	})
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("got %v", err)
	}
	if s := c.Stats(); s.Entries != 0 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBypass(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	c.Set(k, "old", 3, time.Hour)
	// Bypass skips the lookup but stores the fresh value.
	v, hit, err := c.Do(context.Background(), k, time.Hour, true, func(context.Context) (string, int64, error) {
		return "new", 3, nil
	})
	if v != "new" || hit || err != nil {
		t.Fatalf("got %q %v %v", v, hit, err)
	}
	if got, _ := c.Get(k); got != "new" {
		t.Fatalf("cache holds %q", got)
	}
	if s := c.Stats(); s.Bypasses != 1 || s.Hits != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBypassDoesNotJoinEarlierFlight(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	release := make(chan struct{})
	var calls atomic.Int32
	first := make(chan string, 1)
	go func() {
		v, _, _ := c.Do(context.Background(), k, time.Hour, false, func(context.Context) (string, int64, error) {
			calls.Add(1)
			<-release
			return "earlier", 1, nil
		})
		first <- v
	}()
	waitFor(t, func() bool { return c.Stats().InFlight == 1 })
	v, _, err := c.Do(context.Background(), k, time.Hour, true, func(context.Context) (string, int64, error) {
		calls.Add(1)
		return "fresh", 1, nil
	})
	if v != "fresh" || err != nil {
		t.Fatalf("bypass got %q %v", v, err)
	}
	close(release)
	if v := <-first; v != "earlier" {
		t.Fatalf("first got %q", v)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls %d", calls.Load())
	}
}

func TestOrdinaryJoinsBypassFlight(t *testing.T) {
	c := newCache(1000, newClock())
	k := key("a", 1)
	c.Set(k, "old", 1, time.Hour)
	release := make(chan struct{})
	var calls atomic.Int32
	bypassDone := make(chan string, 1)
	go func() {
		v, _, _ := c.Do(context.Background(), k, time.Hour, true, func(context.Context) (string, int64, error) {
			calls.Add(1)
			<-release
			return "fresh", 1, nil
		})
		bypassDone <- v
	}()
	waitFor(t, func() bool { return c.Stats().InFlight == 1 })
	// The old entry is still valid, so an ordinary request is a hit meanwhile.
	if v, hit, _ := c.Do(context.Background(), k, time.Hour, false, nil); v != "old" || !hit {
		t.Fatalf("got %q %v", v, hit)
	}
	// Once the entry is gone, ordinary requests join the bypass computation.
	c.Delete(k)
	joined := make(chan string, 1)
	go func() {
		v, _, _ := c.Do(context.Background(), k, time.Hour, false, func(context.Context) (string, int64, error) {
			calls.Add(1)
			return "separate", 1, nil
		})
		joined <- v
	}()
	waitFor(t, func() bool { return c.Stats().Coalesced == 1 })
	close(release)
	if v := <-bypassDone; v != "fresh" {
		t.Fatalf("bypass got %q", v)
	}
	if v := <-joined; v != "fresh" {
		t.Fatalf("joiner got %q", v)
	}
	if calls.Load() != 1 {
		t.Fatalf("calls %d", calls.Load())
	}
}

func TestConcurrentMixedRace(t *testing.T) {
	c := newCache(2000, newClock())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := key(fmt.Sprint("s", i%3), i%50)
				switch (g + i) % 5 {
				case 0:
					c.Set(k, "x", int64(i%40), time.Hour)
				case 1:
					c.Get(k)
				case 2:
					c.Do(context.Background(), k, time.Hour, i%7 == 0, func(context.Context) (string, int64, error) {
						return "d", 10, nil
					})
				case 3:
					if i%50 == 0 {
						c.Invalidate(k.DataSource)
					}
				case 4:
					c.Stats()
				}
			}
		})
	}
	wg.Wait()
	s := c.Stats()
	if s.Bytes > 2000 || s.Bytes < 0 {
		t.Fatalf("bytes %d", s.Bytes)
	}
	var sum int64
	c.mu.Lock()
	n := 0
	for e := c.lru.next; e != &c.lru; e = e.next {
		sum += e.size
		n++
	}
	idx := 0
	for _, m := range c.bySource {
		idx += len(m)
	}
	c.mu.Unlock()
	if sum != s.Bytes || n != s.Entries || idx != n {
		t.Fatalf("inconsistent: list bytes %d entries %d index %d, stats %+v", sum, n, idx, s)
	}
}

// waitFor polls cond (the only sleeping in these tests: waiting for
// goroutines to reach a state, never for time to pass).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New[[]byte](Options{MaxBytes: 1 << 30})
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = key("a", i)
		c.Set(keys[i], make([]byte, 64), 64, time.Hour)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := c.Get(keys[i&1023]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c := New[[]byte](Options{MaxBytes: 1 << 30})
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = key("a", i)
		c.Set(keys[i], make([]byte, 64), 64, time.Hour)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get(keys[i&1023])
			i++
		}
	})
}

func BenchmarkNewKey(b *testing.B) {
	args := []any{42, "north", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), []string{"a", "b"}}
	b.ReportAllocs()
	for b.Loop() {
		NewKey("pg-main", "SELECT region, sum(amount) FROM sales WHERE id > $1 AND region = $2 AND ts >= $3 AND tag = ANY($4) GROUP BY 1", args, "user:42")
	}
}

func TestInvalidateAll(t *testing.T) {
	c := newCache(1000, newClock())
	for _, ds := range []string{"a", "b", "c"} {
		c.Set(key(ds, 1), ds, 5, time.Hour)
	}
	// A computation in flight for a source with no entry yet is not stored.
	k := key("d", 1)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Do(context.Background(), k, time.Hour, false, func(context.Context) (string, int64, error) {
			close(started)
			<-release
			return "stale", 5, nil
		})
	}()
	<-started
	if n := c.InvalidateAll(); n != 3 {
		t.Fatalf("InvalidateAll dropped %d, want 3", n)
	}
	close(release)
	<-done
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 || s.Invalidated != 3 {
		t.Fatalf("stats after InvalidateAll: %+v", s)
	}
	// Later results are stored as usual.
	c.Set(key("a", 2), "fresh", 5, time.Hour)
	if v, ok := c.Get(key("a", 2)); !ok || v != "fresh" {
		t.Fatal("a new entry after InvalidateAll was not kept")
	}
}
