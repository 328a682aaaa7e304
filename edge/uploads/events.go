package uploads

// Events. tusd's four notification channels are unbuffered and sent to from
// inside requests, so Run reads them in a goroutine that only hands each
// notification on. Publishing happens in a few workers ("shards"), each
// with its own queue; an upload's events always go to the same shard, so
// they are published in the order they happened (created before progress
// before completed before processed), while a slow publish holds up only
// the uploads of one shard. A full queue drops progress events (they are
// ephemeral and superseded by the next) and makes the others wait: that
// slows requests rather than losing a completion.
//
// Stored events carry an Idempotency-Key "<type>:<id>" (upload.processed:
// "<type>:<id>:<processor>"), so a retry, or a second node repeating one,
// is not stored twice. That makes the completion recoverable: once
// upload.completed is published and the upload handed to the processors, a
// marker (<id>.done, see backing) is written beside the upload. The janitor
// announces finished uploads without one (the node died between the last
// byte and the event, or the broker was down throughout the retries) once
// they are announceGrace old, and at most RecoverWithin old: later than the
// broker's idempotency window a repeat would reach clients twice. Other
// events are at most once across a crash.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/uploads/process"
	"github.com/tus/tusd/v2/pkg/handler"
)

const (
	shardCount = 8
	shardQueue = 256
	// publishTimeout bounds one Publish call.
	publishTimeout = 5 * time.Second
	// publishAttempts is how often a stored event is tried.
	publishAttempts = 3
	// progressMemory is how long a shard remembers an upload's progress
	// after its last event. It must exceed the 10 s tusd waits after a
	// PATCH ends before sending that PATCH's last progress, so that a late
	// one after completion is recognised and dropped.
	progressMemory = time.Minute
	// drainGrace bounds the publishing of queued events after Run's ctx
	// ends.
	drainGrace = 5 * time.Second
)

type taskKind int

const (
	taskCreated taskKind = iota
	taskProgress
	taskCompleted
	taskTerminated
	taskFailed
	taskProcessed
)

// task is one thing to publish about an upload.
type task struct {
	kind   taskKind
	info   handler.FileInfo
	reason string         // taskFailed
	result process.Result // taskProcessed
	// recovered marks a taskCompleted the janitor found unannounced.
	recovered bool
}

// progress is what a shard remembers of an upload's progress events.
type progress struct {
	offset int64     // of the last progress event published
	sent   time.Time // when it was published
	last   time.Time // the upload's last event of any kind
	done   bool      // completed, failed or terminated: no more progress
}

// drain hands tusd's notifications, and the failures found on the request
// path, to the shards. One goroutine reads them all: a request sends its
// notifications one after the other, each only once the previous was
// received, so queueing each before receiving the next keeps them in the
// order they happened. (With a reader per channel, a created notification
// received first could be queued after the completion that followed it, or
// after the failure a quick client's next PATCH ran into.)
func (s *Service) drain(ctx context.Context) {
	for {
		var ev handler.HookEvent
		var kind taskKind
		select {
		case <-ctx.Done():
			return
		case t := <-s.failures:
			s.enqueue(ctx, t)
			continue
		case ev = <-s.tus.CreatedUploads:
			kind = taskCreated
		case ev = <-s.tus.UploadProgress:
			kind = taskProgress
		case ev = <-s.tus.CompleteUploads:
			kind = taskCompleted
		case ev = <-s.tus.TerminatedUploads:
			kind = taskTerminated
		}
		// Partial uploads are slices of a file the client has not named
		// yet: their final upload tells the story.
		if !ev.Upload.IsPartial {
			s.enqueue(ctx, task{kind: kind, info: ev.Upload})
		}
	}
}

// enqueue queues t on its upload's shard.
func (s *Service) enqueue(ctx context.Context, t task) {
	h := fnv.New32a()
	h.Write([]byte(t.info.ID))
	q := s.shards[h.Sum32()%uint32(len(s.shards))]
	if t.kind == taskProgress {
		select {
		case q <- t:
		default:
		}
		return
	}
	select {
	case q <- t:
	case <-ctx.Done():
		s.log.Warn("UploadEventDropped", "upload", t.info.ID, "kind", t.kind, "error", ctx.Err())
	case <-s.stopped:
	}
}

// work publishes the tasks of one shard until ctx ends, then what is still
// queued, for a little while.
func (s *Service) work(ctx context.Context, q chan task) {
	seen := make(map[string]*progress)
	sweep := time.NewTicker(progressMemory)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainGrace)
			defer cancel()
			for grace.Err() == nil {
				select {
				case t := <-q:
					if t.kind != taskProgress {
						s.handle(grace, t, seen)
					}
				default:
					return
				}
			}
			return
		case <-sweep.C:
			now := s.now()
			for id, p := range seen {
				if now.Sub(p.last) > progressMemory {
					delete(seen, id)
				}
			}
		case t := <-q:
			s.handle(ctx, t, seen)
		}
	}
}

// Event payloads.
type (
	createdEvent struct {
		ID       string `json:"id"`
		Size     *int64 `json:"size,omitempty"` // absent while deferred
		Filename string `json:"filename"`
		Filetype string `json:"filetype"`
	}
	progressEvent struct {
		ID     string `json:"id"`
		Offset int64  `json:"offset"`
		Size   *int64 `json:"size,omitempty"`
	}
	completedEvent struct {
		ID       string `json:"id"`
		Size     int64  `json:"size"`
		Filename string `json:"filename"`
		Filetype string `json:"filetype"`
		SHA256   string `json:"sha256"`
	}
	processedEvent struct {
		ID        string `json:"id"`
		Processor string `json:"processor"`
		TextURL   string `json:"textUrl"`
	}
	failedEvent struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	}
)

// handle publishes one task.
func (s *Service) handle(ctx context.Context, t task, seen map[string]*progress) {
	info := t.info
	id, owner := info.ID, info.MetaData[OwnerKey]
	if owner == "" {
		return
	}
	p := seen[id]
	if p == nil {
		p = &progress{}
		seen[id] = p
	}
	now := s.now()
	p.last = now
	var size *int64
	if !info.SizeIsDeferred {
		size = &info.Size
	}
	switch t.kind {
	case taskCreated:
		s.publish(ctx, owner, "upload.created", id, "", createdEvent{
			ID: id, Size: size, Filename: filename(info.MetaData), Filetype: filetype(info.MetaData),
		})
	case taskProgress:
		// tusd sends one per PATCH per interval; a PATCH's last one comes
		// 10 s after it ends, possibly after completion. Drop what is late
		// or too soon.
		if p.done || info.Offset <= p.offset || now.Sub(p.sent) < s.cfg.ProgressInterval {
			return
		}
		p.offset, p.sent = info.Offset, now
		s.publish(ctx, owner, "upload.progress", id, "", progressEvent{ID: id, Offset: info.Offset, Size: size})
	case taskCompleted:
		// tusd reports a completion once; the janitor again when it was
		// not announced, which this shard may have tried and failed.
		if p.done && !t.recovered {
			return
		}
		if t.recovered {
			// preFinish did not run or did not finish: a finished upload's
			// object may be missing (S3), and its checksum is unchecked.
			if err := s.back.finish(ctx, id); err != nil {
				s.log.Warn("UploadNotFinished", "upload", id, "error", err)
				return
			}
		}
		sum, err := s.sum(ctx, id, info.Size)
		if err != nil {
			// Removed since (a DELETE right after the last PATCH).
			s.log.Warn("UploadNotHashed", "upload", id, "error", err)
			return
		}
		// Published here, not through fail: this is the upload's shard
		// worker, which drain may be waiting on (fail sends to drain).
		if t.recovered && !s.verify(ctx, info, sum, func() {
			s.metrics.failed.Add(1)
			s.publish(ctx, owner, "upload.failed", id, "", failedEvent{ID: id, Reason: "checksum mismatch"})
		}) {
			return
		}
		if p.offset < info.Size {
			// The one at the end, which tusd sends only 10 s later.
			s.publish(ctx, owner, "upload.progress", id, "", progressEvent{ID: id, Offset: info.Size, Size: &info.Size})
		}
		p.done, p.offset = true, info.Size
		err = s.publish(ctx, owner, "upload.completed", id, "", completedEvent{
			ID: id, Size: info.Size, Filename: filename(info.MetaData), Filetype: filetype(info.MetaData),
			SHA256: hex.EncodeToString(sum),
		})
		if err != nil {
			return // no marker: the janitor announces it again later
		}
		s.process(ctx, owner, info)
		if err := s.back.writeSide(ctx, id, sideDone, nil); err != nil {
			s.log.Warn("UploadMarkerNotSaved", "upload", id, "error", err)
		}
	case taskTerminated:
		p.done = true
	case taskFailed:
		p.done = true
		s.publish(ctx, owner, "upload.failed", id, "", failedEvent{ID: id, Reason: t.reason})
	case taskProcessed:
		s.publish(ctx, owner, "upload.processed", id, ":"+t.result.Processor, processedEvent{
			ID: id, Processor: t.result.Processor, TextURL: s.cfg.BasePath + id + "/text",
		})
	}
}

// publish publishes one event to owner's topic, trying a stored event a few
// times. A failure is logged and returned; only the completion acts on it
// (see the top of this file): the upload itself is fine, and the client can
// learn its state with a HEAD.
func (s *Service) publish(ctx context.Context, owner, typ, id, keySuffix string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		s.log.Error("UploadEventNotPublished", "upload", id, "type", typ, "error", err)
		return err
	}
	p := edge.Publication{Topic: "user:" + owner, Type: typ, Data: b, Ephemeral: typ == "upload.progress"}
	attempts := 1
	if !p.Ephemeral {
		p.IdempotencyKey = typ + ":" + id + keySuffix
		attempts = publishAttempts
	}
	delay := 100 * time.Millisecond
	for i := 1; ; i++ {
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		_, err = s.pub.Publish(pctx, p)
		cancel()
		if err == nil || i == attempts || errors.Is(err, edge.ErrInvalidTopic) || errors.Is(err, edge.ErrInvalidEvent) {
			break
		}
		if !sleep(ctx, delay) {
			break
		}
		delay *= 2
	}
	if err != nil {
		s.log.Warn("UploadEventNotPublished", "upload", id, "type", typ, "topic", p.Topic, "error", err)
	}
	return err
}

// process submits a completed upload to the processors, if any.
func (s *Service) process(ctx context.Context, owner string, info handler.FileInfo) {
	if s.procs == nil {
		return
	}
	job := process.Job{
		ID: info.ID, Owner: owner,
		Filename: filename(info.MetaData), Filetype: filetype(info.MetaData), Size: info.Size,
	}
	job.Path = s.back.localPath(info.ID)
	if job.Path == "" {
		// Fetched by the processors' worker, off the request path, and
		// only when a processor takes it by its first bytes.
		job.Fetch = func(ctx context.Context) (string, func(), error) { return s.back.localFile(ctx, info.ID) }
		head, err := s.head(ctx, info)
		if err != nil {
			// Not silence: without its first bytes no processor would
			// take the upload, and its owner would never hear why.
			s.log.Warn("UploadHeadUnread", "upload", info.ID, "error", err)
			s.metrics.failed.Add(1)
			s.publish(ctx, owner, "upload.failed", info.ID, "", failedEvent{ID: info.ID, Reason: "processing failed"})
			return
		}
		job.Head = head
	}
	if !s.procs.Submit(job, func(_ process.Job, res process.Result, err error) { s.processed(info, res, err) }) {
		s.metrics.failed.Add(1)
		s.publish(ctx, owner, "upload.failed", info.ID, "", failedEvent{ID: info.ID, Reason: "busy"})
	}
}

// head returns the first bytes of finished upload info for processors to
// judge it by.
func (s *Service) head(ctx context.Context, info handler.FileInfo) ([]byte, error) {
	if info.Size == 0 {
		return nil, nil
	}
	r, err := s.back.openData(ctx, info.ID, 0, min(info.Size, sniffLen))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// processed is the processors' done callback, on one of their goroutines:
// it stores the text and queues the event behind the upload's others.
func (s *Service) processed(info handler.FileInfo, res process.Result, err error) {
	ctx := context.Background()
	switch {
	case errors.Is(err, process.ErrNotAccepted):
		// Nothing to do for this kind of file: most uploads.
		return
	case errors.Is(err, process.ErrStopped):
		s.fail(ctx, info, "processing stopped")
		return
	case err != nil:
		s.log.Warn("UploadProcessingFailed", "upload", info.ID, "processor", res.Processor, "error", err)
		s.fail(ctx, info, "processing failed")
		return
	}
	if err := s.back.writeSide(ctx, info.ID, sideText, []byte(res.Text)); err != nil {
		s.log.Error("UploadTextNotStored", "upload", info.ID, "error", err)
		s.fail(ctx, info, "processing failed")
		return
	}
	s.enqueue(ctx, task{kind: taskProcessed, info: info, result: res})
}

// sleep waits d, or less when ctx ends first; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
