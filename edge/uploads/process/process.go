// Package process post-processes finished uploads off the request path.
//
// The upload handler submits a Job to a Runner when an upload completes and
// answers the client at once; the Runner's workers hand each job to every
// Processor that accepts it, a bounded number at a time and each under a
// time limit, and report every outcome through the job's done callback
// (which is where the caller emits upload.processed or upload.failed).
//
// Nothing here is durable: jobs waiting in the queue when the node stops are
// reported as stopped, not kept, because a finished upload can be processed
// again by whoever owns its outcome, and a queue on disk would need the
// locking and recovery the uploads themselves already have.
package process

import (
	"context"
	"errors"
)

// Job is one finished upload to process. Path is made by the server, never
// by the client; Filename and Filetype are the client's metadata and are
// neither trusted nor passed to a tool.
type Job struct {
	ID, Owner, Path, Filename, Filetype string
	Size                                int64
	// Fetch, when Path is empty, makes a local copy of the upload (one in
	// S3, say) and returns its path and a function that removes it. The
	// Runner calls it on its worker, under the job's timeout, once a
	// processor accepts the job.
	Fetch func(ctx context.Context) (path string, release func(), err error)
	// Head is the upload's first bytes (up to 512), for Accepts to judge a
	// job whose Path is empty before anything is fetched: a Processor's
	// Accepts must judge by Head when Path is empty.
	Head []byte
}

// Result is what a processor made of a job.
type Result struct {
	// Processor is the Name of the processor that made it.
	Processor string
	// Text is the recognised text, when the processor makes any (OCR).
	Text string
}

// Processor is one kind of post-processing.
//
// Process must return soon after ctx is done: the Runner's timeout and its
// shutdown both work only through ctx, because a goroutine cannot be
// stopped from outside. A processor that runs tools kills them when ctx
// ends.
type Processor interface {
	// Name names the processor in results, events and logs ("ocr").
	Name() string
	// Accepts reports whether the processor handles the job, judged by the
	// file's first bytes rather than the client's declared type alone: from
	// Path, or from Head when Path is empty (a remote upload not fetched
	// yet, which is fetched only if some processor accepts it).
	Accepts(j Job) bool
	// Process processes the job.
	Process(ctx context.Context, j Job) (Result, error)
}

// Errors this package returns; callers match them with errors.Is.
var (
	// ErrNotAccepted means no processor accepts the job (or the processor
	// given it does not handle its type). Callers usually ignore it: most
	// uploads have nothing to post-process.
	ErrNotAccepted = errors.New("process: not accepted")
	// ErrStopped means the Runner stopped before the job finished; it is
	// wrapped together with the cause (usually context.Canceled).
	ErrStopped = errors.New("process: runner stopped")
	// ErrToolMissing means a tool a processor needs is not installed.
	ErrToolMissing = errors.New("process: tool not installed")
)
