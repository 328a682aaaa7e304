package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of RunnerOptions.
const (
	DefaultConcurrency = 2
	DefaultTimeout     = 2 * time.Minute
	DefaultQueue       = 100
)

// RunnerOptions configures a Runner. Zero (or negative) means default.
type RunnerOptions struct {
	// Concurrency is how many jobs run at once. Default 2: OCR takes a CPU
	// core per job, and the node has streams to serve.
	Concurrency int
	// Timeout bounds one processor on one job. Default 2m.
	Timeout time.Duration
	// Queue is how many submitted jobs may wait for a worker. Default 100.
	Queue int
	// Logger receives failures (UploadProcessFailed, UploadProcessorPanic)
	// and, at debug level, successes (UploadProcessed). Default
	// slog.Default().
	Logger *slog.Logger
}

// Runner runs processors on submitted jobs with bounded concurrency and a
// timeout each. Submit jobs at any time; Run the workers once.
type Runner struct {
	ps      []Processor
	timeout time.Duration
	workers int
	log     *slog.Logger
	queue   chan task
	started atomic.Bool

	// mu orders Submit against the end of Run: once closed is set no job
	// enters the queue, so the final drain sees every job ever queued and
	// none is left without its done call.
	mu     sync.Mutex
	closed bool
}

type task struct {
	job  Job
	done func(Job, Result, error)
}

// NewRunner returns a Runner of the processors ps, in order.
func NewRunner(ps []Processor, opts RunnerOptions) *Runner {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Runner{
		ps:      append([]Processor(nil), ps...),
		timeout: opts.Timeout,
		workers: opts.Concurrency,
		log:     opts.Logger,
		queue:   make(chan task, opts.Queue),
	}
}

// Submit queues j and never blocks, because it is called on the request
// path. It returns false when the queue is full or the Runner has stopped;
// the caller then reports the upload as failed ("busy").
//
// done is called exactly once for each processor that accepts j (with
// Result.Processor set), or once with ErrNotAccepted when none does, or
// once with ErrStopped when the Runner stops before j starts, or once with
// the error of j.Fetch when the local copy could not be made. It is called
// on one of Run's goroutines, which it holds up, so it should be quick; it
// may be nil.
func (r *Runner) Submit(j Job, done func(Job, Result, error)) bool {
	if done == nil {
		done = func(Job, Result, error) {}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	select {
	case r.queue <- task{job: j, done: done}:
		return true
	default:
		return false
	}
}

// Run runs the workers until ctx ends. It returns after the jobs in flight
// have ended (their contexts are cancelled with ctx) and the jobs still
// queued have been reported with ErrStopped. Run panics if called twice.
func (r *Runner) Run(ctx context.Context) {
	if !r.started.CompareAndSwap(false, true) {
		panic("process: Runner.Run called twice")
	}
	var wg sync.WaitGroup
	for range r.workers {
		wg.Go(func() { r.work(ctx) })
	}
	wg.Wait()

	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	for {
		select {
		case t := <-r.queue:
			r.stop(ctx, t)
		default:
			return
		}
	}
}

func (r *Runner) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-r.queue:
			// select picks at random when both are ready: don't start a
			// job after the stop.
			if ctx.Err() != nil {
				r.stop(ctx, t)
				return
			}
			r.process(ctx, t)
		}
	}
}

// stop reports a job that never started.
func (r *Runner) stop(ctx context.Context, t task) {
	t.done(t.job, Result{}, fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx)))
}

// process gives the job to each processor that accepts it, one after the
// other, so a job never takes more than one worker's share of the CPU.
//
// Which processors accept the job is decided first, so that a job with no
// local file yet is fetched only when one does.
func (r *Runner) process(ctx context.Context, t task) {
	var accepting []Processor
	for _, p := range r.ps {
		if p.Accepts(t.job) {
			accepting = append(accepting, p)
		}
	}
	if len(accepting) == 0 {
		t.done(t.job, Result{}, ErrNotAccepted)
		return
	}
	if t.job.Path == "" && t.job.Fetch != nil {
		release, err := r.fetch(ctx, &t.job)
		if err != nil {
			t.done(t.job, Result{}, err)
			return
		}
		defer release()
	}
	for _, p := range accepting {
		res, err := r.call(ctx, p, t.job)
		res.Processor = p.Name()
		t.done(t.job, res, err)
	}
}

// fetch makes the job's local copy under the timeout and sets its Path.
func (r *Runner) fetch(ctx context.Context, j *Job) (func(), error) {
	fctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	path, release, err := j.Fetch(fctx)
	switch {
	case err == nil:
		j.Path = path
		return release, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx))
	default:
		r.log.Warn("UploadFetchFailed", "upload", j.ID, "error", err)
		return nil, fmt.Errorf("process: fetching %s: %w", j.ID, err)
	}
}

// call runs one processor on one job under the timeout, and makes its error
// say why it ended early whatever the processor returned: a killed tool
// reports "signal: killed", and the caller wants context.DeadlineExceeded.
func (r *Runner) call(ctx context.Context, p Processor, j Job) (res Result, err error) {
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx))
	}
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	defer func() {
		// A processor parses files from the internet; a bug it hits on one
		// file must not take the node and all its streams down with it.
		if v := recover(); v != nil {
			r.log.Error("UploadProcessorPanic", "upload", j.ID, "processor", p.Name(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res, err = Result{}, fmt.Errorf("process: %s panicked: %v", p.Name(), v)
		}
	}()

	res, err = p.Process(pctx, j)
	elapsed := time.Since(start).Round(time.Millisecond)
	switch {
	case err == nil:
		r.log.Debug("UploadProcessed", "upload", j.ID, "processor", p.Name(), "elapsed", elapsed)
		return res, nil
	case ctx.Err() != nil:
		// Shutdown, not the job's fault: no warning.
		if !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return res, fmt.Errorf("%w: %w", ErrStopped, err)
	case pctx.Err() != nil && !errors.Is(err, pctx.Err()):
		err = fmt.Errorf("%s after %v: %w: %w", p.Name(), r.timeout, pctx.Err(), err)
	}
	r.log.Warn("UploadProcessFailed", "upload", j.ID, "processor", p.Name(), "elapsed", elapsed, "err", err)
	return res, err
}
