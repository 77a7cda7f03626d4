// Package resultcache is DataPulse's query result cache: a memory-bounded
// (LRU by bytes) map from Key to result with per-entry TTL, per-data-source
// invalidation and single-flight computation of misses.
package resultcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultComputeTimeout bounds a shared computation started by Do when
// Options.ComputeTimeout is zero.
const DefaultComputeTimeout = 5 * time.Minute

// Options configures a Cache.
type Options struct {
	// MaxBytes is the memory bound: the sum of the sizes reported by callers
	// for all live entries never exceeds it. Entries larger than MaxBytes/4
	// are not stored. Must be > 0.
	MaxBytes int64
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// ComputeTimeout bounds every computation run by Do, independent of the
	// callers' contexts (see Do). Zero means DefaultComputeTimeout; negative
	// means no timeout (computation still ends when every waiter has left).
	ComputeTimeout time.Duration
}

// Stats is a snapshot of cache counters.
type Stats struct {
	Hits         uint64 // Get / Do lookups answered from the cache
	Misses       uint64 // lookups that found nothing (or an expired entry)
	Evictions    uint64 // entries dropped to respect MaxBytes
	Expired      uint64 // entries dropped because their TTL passed
	Invalidated  uint64 // entries dropped by Invalidate
	Rejected     uint64 // Set calls refused (too large, bad size/ttl)
	Bypasses     uint64 // Do calls with bypass=true
	Coalesced    uint64 // Do calls that joined an in-flight computation
	Computations uint64 // fn executions started by Do
	Bytes        int64  // current total size of live entries
	Entries      int    // current number of entries
	MaxBytes     int64  // configured bound
	InFlight     int    // computations currently running
}

type entry[V any] struct {
	key        Key
	val        V
	size       int64
	expires    time.Time
	prev, next *entry[V]
}

// Cache is a concurrency-safe, memory-bounded result cache. V is the cached
// value type (e.g. []byte of an encoded response, or a decoded result); the
// cache never inspects it, sizes are reported by the caller.
type Cache[V any] struct {
	maxBytes       int64
	maxEntry       int64
	now            func() time.Time
	computeTimeout time.Duration

	mu       sync.Mutex
	items    map[Key]*entry[V]
	bySource map[string]map[Key]*entry[V]
	gen      map[string]uint64 // bumped by Invalidate; guards in-flight stores
	epoch    uint64            // bumped by InvalidateAll; guards them too
	lru      entry[V]          // sentinel: lru.next = most recent, lru.prev = least recent
	bytes    int64
	flights  map[Key]*call[V]
	st       Stats
}

// New returns an empty cache. It panics if opts.MaxBytes <= 0.
func New[V any](opts Options) *Cache[V] {
	if opts.MaxBytes <= 0 {
		panic("resultcache: MaxBytes must be > 0")
	}
	c := &Cache[V]{
		maxBytes:       opts.MaxBytes,
		maxEntry:       opts.MaxBytes / 4,
		now:            opts.Now,
		computeTimeout: opts.ComputeTimeout,
		items:          make(map[Key]*entry[V]),
		bySource:       make(map[string]map[Key]*entry[V]),
		gen:            make(map[string]uint64),
		flights:        make(map[Key]*call[V]),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.computeTimeout == 0 {
		c.computeTimeout = DefaultComputeTimeout
	}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// Get returns the live value for key and marks it most recently used.
// An expired entry is removed and reported as a miss.
func (c *Cache[V]) Get(key Key) (V, bool) {
	c.mu.Lock()
	v, ok := c.getLocked(key)
	c.mu.Unlock()
	return v, ok
}

func (c *Cache[V]) getLocked(key Key) (V, bool) {
	e := c.items[key]
	if e == nil {
		c.st.Misses++
		var zero V
		return zero, false
	}
	if !c.now().Before(e.expires) {
		c.removeLocked(e)
		c.st.Expired++
		c.st.Misses++
		var zero V
		return zero, false
	}
	c.st.Hits++
	if c.lru.next != e {
		unlink(e)
		c.pushFront(e)
	}
	return e.val, true
}

// Set stores value under key for ttl and reports whether it was stored.
// size is the caller's estimate of the entry's memory in bytes (it should
// include any per-entry overhead the caller cares about). It is not stored
// when ttl <= 0, size < 0, or size > MaxBytes/4; in that case any previous
// entry for key is removed so a stale value cannot outlive a fresh one.
// Least recently used entries are evicted until the new entry fits.
func (c *Cache[V]) Set(key Key, value V, size int64, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setLocked(key, value, size, ttl)
}

func (c *Cache[V]) setLocked(key Key, value V, size int64, ttl time.Duration) bool {
	if old := c.items[key]; old != nil {
		c.removeLocked(old)
	}
	if ttl <= 0 || size < 0 || size > c.maxEntry {
		c.st.Rejected++
		return false
	}
	for c.bytes+size > c.maxBytes && c.lru.prev != &c.lru {
		c.removeLocked(c.lru.prev)
		c.st.Evictions++
	}
	e := &entry[V]{key: key, val: value, size: size, expires: c.now().Add(ttl)}
	c.items[key] = e
	src := c.bySource[key.DataSource]
	if src == nil {
		src = make(map[Key]*entry[V])
		c.bySource[key.DataSource] = src
	}
	src[key] = e
	c.pushFront(e)
	c.bytes += size
	return true
}

// Delete removes key if present.
func (c *Cache[V]) Delete(key Key) {
	c.mu.Lock()
	if e := c.items[key]; e != nil {
		c.removeLocked(e)
	}
	c.mu.Unlock()
}

// Invalidate drops every entry of dataSource and returns how many were
// dropped. Computations for that source already in flight still answer
// their waiters but do not store their (possibly stale) result.
func (c *Cache[V]) Invalidate(dataSource string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[dataSource]++
	src := c.bySource[dataSource]
	n := len(src)
	for _, e := range src {
		c.removeLocked(e)
	}
	c.st.Invalidated += uint64(n)
	return n
}

// PurgeExpired removes every expired entry and returns how many were
// removed. Expired entries are otherwise dropped lazily (on Get, or as LRU
// victims); a janitor may call this periodically to release memory sooner.
func (c *Cache[V]) PurgeExpired() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	n := 0
	for e := c.lru.prev; e != &c.lru; {
		prev := e.prev
		if !now.Before(e.expires) {
			c.removeLocked(e)
			n++
		}
		e = prev
	}
	c.st.Expired += uint64(n)
	return n
}

// Stats returns a snapshot of the counters.
func (c *Cache[V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Bytes = c.bytes
	s.Entries = len(c.items)
	s.MaxBytes = c.maxBytes
	s.InFlight = len(c.flights)
	return s
}

func (c *Cache[V]) removeLocked(e *entry[V]) {
	unlink(e)
	delete(c.items, e.key)
	if src := c.bySource[e.key.DataSource]; src != nil {
		delete(src, e.key)
		if len(src) == 0 {
			delete(c.bySource, e.key.DataSource)
		}
	}
	c.bytes -= e.size
}

func (c *Cache[V]) pushFront(e *entry[V]) {
	e.prev = &c.lru
	e.next = c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

func unlink[V any](e *entry[V]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

// ---- single flight ----

type call[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int                // guarded by Cache.mu
	cancel  context.CancelFunc // cancels the detached computation context
	// registered reports whether this call is the one in Cache.flights
	// (a bypass call started while another flight exists is not).
	registered bool
}

// ErrPanic wraps a panic raised by a Do computation; it is returned to every
// waiter instead of crashing the process or leaving them blocked.
var ErrPanic = errors.New("resultcache: computation panicked")

// Do returns the cached value for key, or computes it with fn, stores it for
// ttl and returns it. hit reports whether the value came from the cache.
//
// Single flight: concurrent Do calls for the same key run fn once and all
// receive its result (hit=false for all of them; Stats.Coalesced counts the
// joiners). Errors are returned to every waiter and never cached.
//
// Contexts: fn runs in its own goroutine with a context detached from the
// callers' cancellation (context.WithoutCancel of the first caller's ctx, so
// values such as trace ids survive). A caller whose ctx ends stops waiting and
// gets ctx.Err(); the computation continues for the others. The computation
// is cancelled when the last waiter has left (bounded by the longest waiter)
// and in any case after Options.ComputeTimeout (DefaultComputeTimeout, 5 min).
// An abandoned computation is unregistered immediately, so a later request
// starts a fresh one instead of joining a cancelled one.
//
// Bypass (client sent Cache-Control: no-cache): the lookup is skipped and the
// fresh value is still stored. A bypass request does NOT join a computation
// already in flight: that computation started before the request arrived and
// so may predate a write the client expects to see, which is exactly what
// no-cache asks us to rule out. It runs its own fn instead. If no flight is
// running for key, the bypass computation registers itself, so ordinary
// requests arriving meanwhile join it (they would accept any fresh value).
// The cost is that a burst of no-cache requests is not coalesced; rate
// limiting such clients is the HTTP layer's job.
//
// If Invalidate(key.DataSource) runs while fn is in flight, the result is
// still returned but not stored.
func (c *Cache[V]) Do(ctx context.Context, key Key, ttl time.Duration, bypass bool,
	fn func(ctx context.Context) (V, int64, error)) (value V, hit bool, err error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, false, err
	}
	c.mu.Lock()
	if bypass {
		c.st.Bypasses++
	} else {
		if v, ok := c.getLocked(key); ok {
			c.mu.Unlock()
			return v, true, nil
		}
	}
	cl := c.flights[key]
	if cl != nil && !bypass {
		cl.waiters++
		c.st.Coalesced++
	} else {
		cl = c.startLocked(ctx, key, ttl, fn, cl == nil)
	}
	c.mu.Unlock()
	return c.wait(ctx, key, cl)
}

func (c *Cache[V]) startLocked(ctx context.Context, key Key, ttl time.Duration,
	fn func(ctx context.Context) (V, int64, error), register bool) *call[V] {
	base := context.WithoutCancel(ctx)
	var fctx context.Context
	var cancel context.CancelFunc
	if c.computeTimeout > 0 {
		fctx, cancel = context.WithTimeout(base, c.computeTimeout)
	} else {
		fctx, cancel = context.WithCancel(base)
	}
	cl := &call[V]{done: make(chan struct{}), waiters: 1, cancel: cancel, registered: register}
	if register {
		c.flights[key] = cl
	}
	c.st.Computations++
	gen := c.gen[key.DataSource]
	go c.run(fctx, key, ttl, gen, c.epoch, cl, fn)
	return cl
}

func (c *Cache[V]) run(ctx context.Context, key Key, ttl time.Duration, gen, epoch uint64,
	cl *call[V], fn func(ctx context.Context) (V, int64, error)) {
	var (
		val  V
		size int64
		err  error
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: %v", ErrPanic, r)
			}
		}()
		val, size, err = fn(ctx)
	}()
	cl.cancel()

	c.mu.Lock()
	if cl.registered && c.flights[key] == cl {
		delete(c.flights, key)
	}
	if err == nil && c.gen[key.DataSource] == gen && c.epoch == epoch {
		c.setLocked(key, val, size, ttl)
	}
	if err == nil {
		cl.val = val
	}
	cl.err = err
	c.mu.Unlock()
	close(cl.done)
}

func (c *Cache[V]) wait(ctx context.Context, key Key, cl *call[V]) (V, bool, error) {
	select {
	case <-cl.done:
		return cl.val, false, cl.err
	case <-ctx.Done():
	}
	// Prefer a result that is already there over the cancellation.
	select {
	case <-cl.done:
		return cl.val, false, cl.err
	default:
	}
	c.mu.Lock()
	cl.waiters--
	if cl.waiters == 0 {
		// Nobody wants the result any more: stop the computation and make
		// sure later requests do not join it.
		if cl.registered && c.flights[key] == cl {
			delete(c.flights, key)
		}
		cl.registered = false
		cl.cancel()
	}
	c.mu.Unlock()
	var zero V
	return zero, false, ctx.Err()
}

// InvalidateAll drops every entry (as Invalidate does for each source) and
// returns how many were dropped.
func (c *Cache[V]) InvalidateAll() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	n := 0
	for _, entries := range c.bySource {
		for _, e := range entries {
			c.removeLocked(e)
			n++
		}
	}
	c.st.Invalidated += uint64(n)
	return n
}
