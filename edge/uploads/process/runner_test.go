package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testProc is a Processor made of functions.
type testProc struct {
	name    string
	accepts func(Job) bool // nil: accepts every job
	process func(context.Context, Job) (Result, error)
}

func (p *testProc) Name() string { return p.name }

func (p *testProc) Accepts(j Job) bool { return p.accepts == nil || p.accepts(j) }

func (p *testProc) Process(ctx context.Context, j Job) (Result, error) { return p.process(ctx, j) }

// outcome is one call of a done callback.
type outcome struct {
	job Job
	res Result
	err error
}

// collector gathers done calls.
type collector struct {
	mu  sync.Mutex
	got []outcome
}

func (c *collector) done(j Job, r Result, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, outcome{j, r, err})
}

func (c *collector) outcomes() []outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]outcome(nil), c.got...)
}

func (c *collector) count() int { return len(c.outcomes()) }

// waitFor fails the test unless cond becomes true within ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var quiet = slog.New(slog.DiscardHandler)

// startRunner runs r until the test ends and returns a channel closed when
// Run has returned.
func startRunner(t *testing.T, ctx context.Context, r *Runner) <-chan struct{} {
	t.Helper()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		r.Run(ctx)
	}()
	t.Cleanup(func() { <-ended })
	return ended
}

// TestRunnerTimeout: a processor that blocks is cancelled at the timeout,
// and done gets context.DeadlineExceeded even when the processor returns
// an error of its own (as a killed tool does).
func TestRunnerTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ret  func(ctx context.Context) error
	}{
		{"returns ctx.Err", func(ctx context.Context) error { return ctx.Err() }},
		{"returns its own error", func(context.Context) error { return errors.New("signal: killed") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const timeout = 50 * time.Millisecond
			block := &testProc{name: "block", process: func(ctx context.Context, j Job) (Result, error) {
				<-ctx.Done()
				return Result{}, tc.ret(ctx)
			}}
			r := NewRunner([]Processor{block}, RunnerOptions{Timeout: timeout, Logger: quiet})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			startRunner(t, ctx, r)

			var c collector
			start := time.Now()
			if !r.Submit(Job{ID: "u1"}, c.done) {
				t.Fatal("Submit = false")
			}
			waitFor(t, "done", func() bool { return c.count() == 1 })
			if d := time.Since(start); d < timeout {
				t.Errorf("done after %v, before the %v timeout", d, timeout)
			}
			o := c.outcomes()[0]
			if !errors.Is(o.err, context.DeadlineExceeded) || errors.Is(o.err, ErrStopped) {
				t.Errorf("err = %v, want context.DeadlineExceeded and not ErrStopped", o.err)
			}
			if o.res.Processor != "block" || o.job.ID != "u1" {
				t.Errorf("done(%+v, %+v), want job u1 and processor block", o.job, o.res)
			}
		})
	}
}

// TestRunnerConcurrency: no more than Concurrency jobs run at once, and
// that many do.
func TestRunnerConcurrency(t *testing.T) {
	t.Parallel()
	const workers, jobs = 3, 12
	var inflight, most atomic.Int32
	gate := make(chan struct{})
	p := &testProc{name: "count", process: func(ctx context.Context, j Job) (Result, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-gate:
			return Result{Text: j.ID}, nil
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}}
	r := NewRunner([]Processor{p}, RunnerOptions{Concurrency: workers, Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	startRunner(t, ctx, r)

	var c collector
	for i := range jobs {
		if !r.Submit(Job{ID: fmt.Sprint(i)}, c.done) {
			t.Fatalf("Submit %d = false", i)
		}
	}
	waitFor(t, "the workers to fill", func() bool { return inflight.Load() == workers })
	// Let the jobs finish one at a time: each release lets a queued job
	// start while the others still run.
	for range jobs {
		gate <- struct{}{}
	}
	waitFor(t, "every job", func() bool { return c.count() == jobs })
	if m := most.Load(); m != workers {
		t.Errorf("at most %d jobs ran at once, want %d", m, workers)
	}
	for _, o := range c.outcomes() {
		if o.err != nil || o.res.Text != o.job.ID {
			t.Errorf("job %s: %+v, %v", o.job.ID, o.res, o.err)
		}
	}
}

// TestRunnerQueueFullAndStop: Submit refuses when the queue is full and
// after Run has ended; Run returns when ctx ends, after the job in flight
// has ended, and reports the queued jobs as stopped.
func TestRunnerQueueFullAndStop(t *testing.T) {
	t.Parallel()
	var started atomic.Int32
	block := &testProc{name: "block", process: func(ctx context.Context, j Job) (Result, error) {
		started.Add(1)
		<-ctx.Done()
		return Result{}, ctx.Err()
	}}
	r := NewRunner([]Processor{block}, RunnerOptions{Concurrency: 1, Queue: 2, Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ended := startRunner(t, ctx, r)

	var c collector
	if !r.Submit(Job{ID: "running"}, c.done) {
		t.Fatal("Submit running = false")
	}
	waitFor(t, "the first job to start", func() bool { return started.Load() == 1 })
	for _, id := range []string{"queued1", "queued2"} {
		if !r.Submit(Job{ID: id}, c.done) {
			t.Fatalf("Submit %s = false with room in the queue", id)
		}
	}
	if r.Submit(Job{ID: "refused"}, c.done) {
		t.Fatal("Submit = true with the queue full")
	}

	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	// Run has returned, so every done call has been made.
	got := map[string]error{}
	for _, o := range c.outcomes() {
		got[o.job.ID] = o.err
	}
	if len(got) != 3 || c.count() != 3 {
		t.Fatalf("done calls %v, want one for each of running, queued1 and queued2", c.outcomes())
	}
	for id, err := range got {
		if !errors.Is(err, ErrStopped) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want ErrStopped and context.Canceled", id, err)
		}
	}
	if started.Load() != 1 {
		t.Errorf("%d jobs started, want 1: queued jobs must not start after the stop", started.Load())
	}
	if r.Submit(Job{ID: "late"}, c.done) {
		t.Error("Submit = true after Run returned")
	}
}

// TestRunnerDispatch: done is called once per accepting processor, in
// order, or once with ErrNotAccepted; a panicking processor fails its job
// and the runner goes on.
func TestRunnerDispatch(t *testing.T) {
	t.Parallel()
	ok := func(name string) *testProc {
		return &testProc{name: name, process: func(context.Context, Job) (Result, error) {
			return Result{Text: name}, nil
		}}
	}
	none := &testProc{name: "none", accepts: func(Job) bool { return false }}
	onlyPanic := &testProc{name: "panic",
		accepts: func(j Job) bool { return j.ID == "panics" },
		process: func(context.Context, Job) (Result, error) { panic("bad file") }}
	r := NewRunner([]Processor{ok("a"), none, onlyPanic, ok("b")}, RunnerOptions{Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	startRunner(t, ctx, r)

	none2 := NewRunner([]Processor{none}, RunnerOptions{Logger: quiet})
	startRunner(t, ctx, none2)

	var c, cNone collector
	r.Submit(Job{ID: "plain"}, c.done)
	waitFor(t, "plain", func() bool { return c.count() == 2 })
	r.Submit(Job{ID: "panics"}, c.done)
	waitFor(t, "panics", func() bool { return c.count() == 5 })
	none2.Submit(Job{ID: "other"}, cNone.done)
	waitFor(t, "other", func() bool { return cNone.count() == 1 })

	got := c.outcomes()
	for i, want := range []struct {
		id, proc string
		failed   bool
	}{
		{"plain", "a", false}, {"plain", "b", false},
		{"panics", "a", false}, {"panics", "panic", true}, {"panics", "b", false},
	} {
		o := got[i]
		if o.job.ID != want.id || o.res.Processor != want.proc || (o.err != nil) != want.failed {
			t.Errorf("done #%d = (%s, %q, %v), want (%s, %q, failed %v)",
				i, o.job.ID, o.res.Processor, o.err, want.id, want.proc, want.failed)
		}
	}
	if o := cNone.outcomes()[0]; !errors.Is(o.err, ErrNotAccepted) {
		t.Errorf("err = %v, want ErrNotAccepted", o.err)
	}
}

// TestRunnerFetch: a job without a Path is judged by its Head, fetched
// only when a processor takes it, processed from the fetched copy, which is
// released afterwards; a failed fetch is the job's one outcome.
func TestRunnerFetch(t *testing.T) {
	t.Parallel()
	var fetched, released atomic.Int32
	fetch := func(fail bool) func(context.Context) (string, func(), error) {
		return func(context.Context) (string, func(), error) {
			fetched.Add(1)
			if fail {
				return "", nil, errors.New("no such object")
			}
			return "/local/copy", func() { released.Add(1) }, nil
		}
	}
	proc := &testProc{name: "png",
		accepts: func(j Job) bool { return string(j.Head) == "PNG" || j.Path != "" },
		process: func(_ context.Context, j Job) (Result, error) { return Result{Text: j.Path}, nil }}
	r := NewRunner([]Processor{proc}, RunnerOptions{Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	startRunner(t, ctx, r)

	var c collector
	r.Submit(Job{ID: "zip", Head: []byte("PK"), Fetch: fetch(false)}, c.done)
	waitFor(t, "zip", func() bool { return c.count() == 1 })
	if o := c.outcomes()[0]; !errors.Is(o.err, ErrNotAccepted) || fetched.Load() != 0 {
		t.Fatalf("a job no processor takes: err %v, fetched %d times", o.err, fetched.Load())
	}
	r.Submit(Job{ID: "png", Head: []byte("PNG"), Fetch: fetch(false)}, c.done)
	waitFor(t, "png", func() bool { return c.count() == 2 })
	if o := c.outcomes()[1]; o.err != nil || o.res.Text != "/local/copy" || released.Load() != 1 {
		t.Fatalf("processed %q, %v; released %d times", o.res.Text, o.err, released.Load())
	}
	r.Submit(Job{ID: "gone", Head: []byte("PNG"), Fetch: fetch(true)}, c.done)
	waitFor(t, "gone", func() bool { return c.count() == 3 })
	if o := c.outcomes()[2]; o.err == nil || errors.Is(o.err, ErrNotAccepted) {
		t.Errorf("a failed fetch: err %v", o.err)
	}
}

// TestRunnerOCR runs the real OCR processor through a Runner, as the
// upload handler does.
func TestRunnerOCR(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := textImage(t, dir, "in.png", page1Words)
	r := NewRunner([]Processor{newOCR(t, OCROptions{})}, RunnerOptions{Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	startRunner(t, ctx, r)

	var c collector
	r.Submit(Job{ID: "u1", Path: img}, c.done)
	waitFor(t, "OCR", func() bool { return c.count() == 1 })
	o := c.outcomes()[0]
	if o.err != nil {
		t.Fatal(o.err)
	}
	wantWords(t, o.res.Text, page1Words)
}
