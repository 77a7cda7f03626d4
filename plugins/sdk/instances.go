package sdk

import (
	"context"
	"sync"
)

// Instances caches one value per data source (a connection pool, an opened
// file) and rebuilds it when the data source's configuration version
// changes. It is safe for concurrent use; the zero value is not: set New
// (and Close, if the value holds resources).
//
//	type conn struct{ insts sdk.Instances[*pgxpool.Pool] }
//	pool, err := c.insts.Get(ctx, cfg)
type Instances[T any] struct {
	// New builds the value for a configuration.
	New func(ctx context.Context, cfg Config) (T, error)
	// Close releases a value that is replaced or disposed. It runs in its
	// own goroutine, so it may wait for calls still using the value.
	Close func(T)

	mu sync.Mutex
	m  map[string]*instance[T]
}

type instance[T any] struct {
	version int64
	ready   chan struct{}
	val     T
	err     error
}

// Get returns the value for cfg, building it on first use and whenever
// cfg.Version differs from the cached one. Concurrent callers share one
// build. A failed build is not cached.
func (c *Instances[T]) Get(ctx context.Context, cfg Config) (T, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*instance[T]{}
	}
	in := c.m[cfg.DataSourceID]
	if in != nil && in.version != cfg.Version {
		c.dropLocked(cfg.DataSourceID, in)
		in = nil
	}
	if in == nil {
		in = &instance[T]{version: cfg.Version, ready: make(chan struct{})}
		c.m[cfg.DataSourceID] = in
		c.mu.Unlock()
		// Build without the caller's cancellation: the value outlives this
		// call. The caller still stops waiting when its context ends.
		go func() {
			in.val, in.err = c.New(context.WithoutCancel(ctx), cfg)
			if in.err != nil {
				c.mu.Lock()
				if c.m[cfg.DataSourceID] == in {
					delete(c.m, cfg.DataSourceID)
				}
				c.mu.Unlock()
			}
			close(in.ready)
		}()
	} else {
		c.mu.Unlock()
	}
	select {
	case <-in.ready:
		return in.val, in.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// dropLocked removes in and closes its value once it is built.
func (c *Instances[T]) dropLocked(id string, in *instance[T]) {
	delete(c.m, id)
	if c.Close == nil {
		return
	}
	go func() {
		<-in.ready
		if in.err == nil {
			c.Close(in.val)
		}
	}()
}

// Dispose drops (and closes) the value of a data source.
func (c *Instances[T]) Dispose(datasourceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in := c.m[datasourceID]; in != nil {
		c.dropLocked(datasourceID, in)
	}
}

// DisposeAll drops every value.
func (c *Instances[T]) DisposeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, in := range c.m {
		c.dropLocked(id, in)
	}
}
