package workers_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/datapulse/datapulse/core/workers"
)

// recorder logs lifecycle calls in order.
type recorder struct{ calls []string }

func (r *recorder) worker(name string, startErr error) workers.Worker {
	return workers.Func(name,
		func(context.Context) error { r.calls = append(r.calls, "start "+name); return startErr },
		func(context.Context) error { r.calls = append(r.calls, "stop "+name); return nil })
}

func TestGroupLifecycle(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name    string
		workers []struct {
			name string
			err  error
		}
		wantStartErr bool
		want         []string
	}{
		{
			name: "start in order, stop in reverse",
			workers: []struct {
				name string
				err  error
			}{{"a", nil}, {"b", nil}, {"c", nil}},
			want: []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"},
		},
		{
			name: "a failed start stops the rest from starting, every worker is still stopped",
			workers: []struct {
				name string
				err  error
			}{{"a", nil}, {"b", boom}, {"c", nil}},
			wantStartErr: true,
			want:         []string{"start a", "start b", "stop c", "stop b", "stop a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			g := workers.NewGroup(nil)
			for _, w := range tt.workers {
				if err := g.Add(ctx, r.worker(w.name, w.err)); err != nil {
					t.Fatal(err)
				}
			}
			err := g.Start(ctx)
			if (err != nil) != tt.wantStartErr {
				t.Fatalf("Start error = %v, want error %v", err, tt.wantStartErr)
			}
			if err != nil && !errors.Is(err, boom) {
				t.Fatalf("Start error %v does not wrap the worker's error", err)
			}
			if err := g.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if err := g.Stop(ctx); err != nil { // second stop: nothing happens
				t.Fatal(err)
			}
			if !slices.Equal(r.calls, tt.want) {
				t.Fatalf("calls = %q, want %q", r.calls, tt.want)
			}
		})
	}
}

func TestGroupAddAfterStartStartsAtOnce(t *testing.T) {
	ctx := context.Background()
	var r recorder
	g := workers.NewGroup(nil)
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(ctx, r.worker("late", nil)); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(ctx, r.worker("after-stop", nil)); err == nil {
		t.Fatal("Add after Stop succeeded")
	}
	if want := []string{"start late", "stop late"}; !slices.Equal(r.calls, want) {
		t.Fatalf("calls = %q, want %q", r.calls, want)
	}
}

func TestGroupStopJoinsErrors(t *testing.T) {
	ctx := context.Background()
	e1, e2 := errors.New("one"), errors.New("two")
	g := workers.NewGroup(nil)
	g.Add(ctx, workers.Func("a", nil, func(context.Context) error { return e1 }))
	g.Add(ctx, workers.Func("b", nil, func(context.Context) error { return e2 }))
	err := g.Stop(ctx)
	if !errors.Is(err, e1) || !errors.Is(err, e2) {
		t.Fatalf("Stop error = %v, want both worker errors", err)
	}
	if got := g.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Names = %q", got)
	}
}
