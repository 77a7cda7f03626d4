// Package workers gives the background work of one DataPulse process (the
// LISTEN/NOTIFY syncers today; job runners and schedulers next) one start and
// stop lifecycle, owned by core.App: started in the order they were added,
// stopped in the reverse order, each stop bounded by the caller's context.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Worker is one piece of background work.
type Worker interface {
	// Name identifies the worker in logs and errors.
	Name() string
	// Start begins the work and returns; the work runs until Stop.
	Start(ctx context.Context) error
	// Stop ends the work, waiting for it within ctx. It is called for every
	// worker added to a Group, started or not (a worker may hold resources
	// from its construction), and must be safe to call once in either case.
	Stop(ctx context.Context) error
}

// Func adapts two functions to a Worker; a nil function does nothing.
func Func(name string, start, stop func(context.Context) error) Worker {
	return funcWorker{name: name, start: start, stop: stop}
}

type funcWorker struct {
	name        string
	start, stop func(context.Context) error
}

func (f funcWorker) Name() string { return f.name }

func (f funcWorker) Start(ctx context.Context) error {
	if f.start == nil {
		return nil
	}
	return f.start(ctx)
}

func (f funcWorker) Stop(ctx context.Context) error {
	if f.stop == nil {
		return nil
	}
	return f.stop(ctx)
}

// Group runs a list of workers.
type Group struct {
	log     *slog.Logger
	mu      sync.Mutex
	all     []Worker
	started bool
	stopped bool
}

// NewGroup returns an empty group logging to log (nil: no logs).
func NewGroup(log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{log: log}
}

// Add registers w. Workers added after Start are started at once.
func (g *Group) Add(ctx context.Context, w Worker) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return fmt.Errorf("worker %s: the group is stopped", w.Name())
	}
	g.all = append(g.all, w)
	if g.started {
		if err := w.Start(ctx); err != nil {
			return fmt.Errorf("start worker %s: %w", w.Name(), err)
		}
	}
	return nil
}

// Start starts every worker in the order added. When one fails, the ones
// before it keep running: the caller stops the group.
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return nil
	}
	g.started = true
	for _, w := range g.all {
		if err := w.Start(ctx); err != nil {
			return fmt.Errorf("start worker %s: %w", w.Name(), err)
		}
		g.log.DebugContext(ctx, "worker started", "worker", w.Name())
	}
	return nil
}

// Stop stops every worker in the reverse order, even after an error, and
// returns the errors joined. A second call does nothing.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil
	}
	g.stopped = true
	var all []error
	for i := len(g.all) - 1; i >= 0; i-- {
		w := g.all[i]
		if err := w.Stop(ctx); err != nil {
			g.log.WarnContext(ctx, "worker stop failed", "worker", w.Name(), "error", err)
			all = append(all, fmt.Errorf("stop worker %s: %w", w.Name(), err))
		}
	}
	return errors.Join(all...)
}

// Names lists the workers in the order added.
func (g *Group) Names() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, len(g.all))
	for i, w := range g.all {
		out[i] = w.Name()
	}
	return out
}
