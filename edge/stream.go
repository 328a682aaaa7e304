package edge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons a reset frame gives.
const (
	// ResetExpired: history no longer holds the events after the client's
	// position (trimmed by count or age).
	ResetExpired = "expired"
	// ResetEpoch: the topic's state was lost and recreated since the
	// client's position was issued.
	ResetEpoch = "epoch"
	// ResetInvalid: the client's Last-Event-ID could not be read, or names a
	// position the topic never reached.
	ResetInvalid = "invalid"
)

// Why streams end.
var (
	// ErrSlowStream ends a stream whose queue overflowed: it could not take
	// events as fast as they came. Its client resumes from history.
	ErrSlowStream = errors.New("edge: stream too slow, closed")
	// ErrDraining ends a stream because the node is shutting down; its
	// client reconnects (to another node) after the retry hint.
	ErrDraining = errors.New("edge: node draining")
	// ErrLifetime ends a stream that reached its maximum lifetime or its
	// credentials' expiry; its client reconnects and resumes.
	ErrLifetime = errors.New("edge: stream lifetime over")
)

// StreamWriter is where a stream writes. Writes come from the hub's writer
// goroutines, one at a time, never concurrently.
type StreamWriter interface {
	Write(p []byte) (int, error)
	Flush() error
	SetWriteDeadline(t time.Time) error
}

// StreamCloser is a StreamWriter the hub must close when the stream ends
// (a hijacked connection: nothing else will).
type StreamCloser interface {
	StreamWriter
	// Close ends the response cleanly and releases the connection.
	Close() error
	// Abort makes a write in progress fail at once, so a stalled client
	// does not hold a writer goroutine until its deadline.
	Abort()
}

// StreamConfig holds the node-wide stream settings. Zero values are not
// defaults here: config.Validate fills them.
type StreamConfig struct {
	// Heartbeat is the longest a stream stays silent; a comment fills it.
	Heartbeat time.Duration
	// Retry and RetryJitter make the reconnection hint: Retry plus up to
	// RetryJitter, random per stream, so reconnects spread out.
	Retry, RetryJitter time.Duration
	// MaxLifetime and LifetimeJitter cap a stream's life, so connections
	// move to new nodes and restarts do not reconnect everyone at once.
	MaxLifetime, LifetimeJitter time.Duration
	// WriteTimeout is the deadline of each write.
	WriteTimeout time.Duration
	// QueueSize is how many events may wait for a stream before it is
	// closed as too slow.
	QueueSize int
	// BatchWindow, when positive, is how long a stream waits after the first
	// queued event for more, to send them in one write.
	BatchWindow time.Duration
}

// StreamRequest is what one client asked for.
type StreamRequest struct {
	// Topics are the topics to follow (valid names, no duplicates needed).
	Topics []string
	// LastEventID is the client's cursor, empty on a first connection.
	LastEventID string
	// Protocol labels the stream in metrics: "http1", "h2" or "h2c".
	Protocol string
	// Until, when set, ends the stream at that time (its credentials
	// expire), so the client reconnects with fresh ones.
	Until time.Time
	// OnEnd, when set, is called once when a stream that Open started ends
	// (to give back what the caller holds for it). Idempotent callers only:
	// it is also called when Open fails after joining.
	OnEnd func()
}

// Stream is one client's live connection: its topics, its position in each,
// and a bounded queue the hub fills and the hub's writers drain. A stream
// has no goroutine of its own: a small pool writes every stream, so that
// with thousands of streams a few goroutines are runnable, events that
// arrive while the pool is busy join the next write of each stream (one
// syscall for all of them), and publishers are not queued behind thousands
// of writers.
type Stream struct {
	hub     *Hub
	cfg     StreamConfig
	w       StreamWriter
	topics  []string // sorted
	setHash [3]byte
	pos     []Position // aligned with topics; only the writer in turn uses it
	gauge   *atomic.Int64
	end     time.Time // lifetime or credentials, whichever is first
	onEnd   func()

	lastWrite atomic.Int64 // unix nanos of the last successful write
	deadline  time.Time    // the writer's current deadline; only the writer in turn uses it

	mu        sync.Mutex
	queue     []*delivery
	spare     []*delivery
	overflow  bool
	heartbeat bool // a heartbeat is due
	live      bool // start is done: the pool may write
	scheduled bool // in the ready list or being written
	closing   bool
	err       error
	drainAt   time.Time
	done      chan struct{} // closed once the stream is over and released
}

// Done is closed when the stream has ended and no writer uses it any more.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err says why the stream ended, once Done is closed; nil when its context
// ended (the client went away).
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// enqueue adds d to the stream's queue without blocking; a full queue marks
// the stream as overflowed, and the writer ends it.
func (s *Stream) enqueue(d *delivery) {
	s.mu.Lock()
	switch {
	case s.overflow || s.closing:
		s.mu.Unlock()
		return
	case len(s.queue) >= s.cfg.QueueSize:
		s.overflow = true
		clear(s.queue)
		s.queue = s.queue[:0]
	default:
		s.queue = append(s.queue, d)
	}
	schedule := s.live && !s.scheduled
	if schedule {
		s.scheduled = true
	}
	s.mu.Unlock()
	if schedule {
		s.hub.writers.schedule(s, s.cfg.BatchWindow)
	}
}

// bufPool holds write buffers: a stream holds one only while writing, so
// idle streams cost no buffer memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Serve runs one stream until ctx ends (the client goes) or the stream ends
// by itself (lifetime, drain, too slow, a failed write). The caller has set
// the response headers; Serve writes the body.
func (h *Hub) Serve(ctx context.Context, w StreamWriter, cfg StreamConfig, req StreamRequest) error {
	s, err := h.Open(ctx, w, cfg, req)
	if err != nil {
		return err
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.stop(nil)
		<-s.done
	}
	return s.Err()
}

// Open starts a stream: it writes the opening (at once, so proxies and
// onopen see the stream start even while the broker is slow), joins the
// topics, and writes resets and replay. The stream then belongs to the
// hub's writers until it ends; Done tells when. During a drain the stream
// gets its opening, with the retry hint, and ends with ErrDraining.
func (h *Hub) Open(ctx context.Context, w StreamWriter, cfg StreamConfig, req StreamRequest) (*Stream, error) {
	s := &Stream{
		hub:    h,
		cfg:    cfg,
		w:      w,
		topics: sortedTopics(req.Topics),
		gauge:  h.metrics.streamGauge(req.Protocol),
		onEnd:  req.OnEnd,
		end:    time.Now().Add(jitter(cfg.MaxLifetime, cfg.LifetimeJitter)),
		done:   make(chan struct{}),
		// The opener holds the stream until start is done, as a writer
		// would: nobody else writes to it or releases it meanwhile.
		scheduled: true,
	}
	if !req.Until.IsZero() && req.Until.Before(s.end) {
		s.end = req.Until
	}
	s.setHash = topicSetHash(s.topics)

	buf := appendRetry(nil, jitter(cfg.Retry, cfg.RetryJitter).Milliseconds())
	buf = append(buf, ": edge\n\n"...)
	if err := s.write(buf); err != nil {
		return nil, err
	}
	if h.Draining() {
		return nil, ErrDraining
	}

	for i, topic := range s.topics {
		if err := h.join(ctx, s, topic); err != nil {
			for _, joined := range s.topics[:i] {
				h.leave(s, joined)
			}
			return nil, fmt.Errorf("join %s: %w", topic, err)
		}
	}
	s.gauge.Add(1)
	if !h.writers.add(s) {
		// The hub stopped between the drain check and here.
		s.mu.Lock()
		s.closing, s.err = true, ErrDraining
		s.mu.Unlock()
		s.release()
		return nil, ErrDraining
	}
	err := s.start(ctx, req.LastEventID)
	s.mu.Lock()
	if err == nil && s.closing {
		err = s.err // stopped while starting (the node is shutting down)
		if err == nil {
			err = ErrDraining
		}
	}
	if err != nil {
		s.closing, s.err = true, err
		s.mu.Unlock()
		s.release()
		return nil, err
	}
	s.live = true
	// Hand the stream to the writers, with what arrived meanwhile.
	s.scheduled = len(s.queue) > 0 || s.overflow
	schedule := s.scheduled
	s.mu.Unlock()
	if schedule {
		h.writers.schedule(s, 0)
	}
	return s, nil
}

// start writes what comes before live events: resets and the replay of
// missed history, or, on a first connection, the current position (an id
// with no data sets the client's Last-Event-ID without firing an event, so a
// client that reconnects before any event still resumes exactly).
func (s *Stream) start(ctx context.Context, lastEventID string) error {
	var from []Position
	resets := map[string][]string{}
	if lastEventID != "" {
		p, err := parseCursor(lastEventID, s.setHash, len(s.topics))
		if err != nil {
			resets[ResetInvalid] = s.topics
		} else {
			from = p
		}
	}
	s.pos = make([]Position, len(s.topics))
	var replay []*Event
	for i, topic := range s.topics {
		after := uint64(0)
		if from != nil {
			after = from[i].Seq
		}
		h, err := s.hub.broker.History(ctx, topic, after, 0)
		if err != nil {
			return fmt.Errorf("history of %s: %w", topic, err)
		}
		head := h.Head
		s.pos[i] = head
		switch {
		case from == nil:
		case from[i].Epoch != head.Epoch:
			resets[ResetEpoch] = append(resets[ResetEpoch], topic)
		case from[i].Seq > head.Seq:
			resets[ResetInvalid] = append(resets[ResetInvalid], topic)
		case from[i].Seq < head.Seq:
			evs, err := s.readHistory(ctx, topic, from[i], head.Seq)
			if err != nil {
				return err
			}
			if evs == nil {
				resets[ResetExpired] = append(resets[ResetExpired], topic)
				continue
			}
			s.pos[i] = from[i]
			replay = append(replay, evs...)
		}
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	for _, reason := range []string{ResetInvalid, ResetEpoch, ResetExpired} {
		if topics := resets[reason]; len(topics) > 0 {
			buf = s.appendReset(buf, topics, reason)
		}
	}
	if lastEventID == "" {
		buf = appendID(buf, s.setHash, s.pos)
		buf = append(buf, '\n')
	}
	for _, ev := range replay {
		i := s.index(ev.Topic)
		s.pos[i].Seq = ev.Seq
		buf = appendID(buf, s.setHash, s.pos)
		buf = appendEventFrame(buf, ev)
	}
	s.hub.metrics.eventsReplayed.Add(uint64(len(replay)))
	var err error
	if len(buf) > 0 {
		err = s.write(buf)
	}
	*bp = buf
	return err
}

// readHistory returns the events of topic after from, up to head, or nil
// when history no longer holds the first of them.
func (s *Stream) readHistory(ctx context.Context, topic string, from Position, head uint64) ([]*Event, error) {
	var out []*Event
	after := from.Seq
	for after < head {
		h, err := s.hub.broker.History(ctx, topic, after, healPage)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", topic, err)
		}
		if h.Head.Epoch != from.Epoch || len(h.Events) == 0 || h.Events[0].Seq != after+1 {
			return nil, nil
		}
		for _, ev := range h.Events {
			if ev.Seq > head {
				break
			}
			out = append(out, ev)
			after = ev.Seq
		}
	}
	return out, nil
}

// appendReset appends a reset frame for topics, whose positions must be set
// to where the client goes on from.
func (s *Stream) appendReset(buf []byte, topics []string, reason string) []byte {
	buf = appendID(buf, s.setHash, s.pos)
	buf = append(buf, "event: reset\n"...)
	payload := append([]byte(`{"topics":["`), strings.Join(topics, `","`)...)
	payload = append(payload, `"],"reason":"`...)
	payload = append(payload, reason...)
	payload = append(payload, `"}`...)
	buf = appendData(buf, payload)
	s.hub.metrics.reset(reason)
	return append(buf, '\n')
}

func (s *Stream) index(topic string) int {
	return slices.Index(s.topics, topic)
}

// flush writes everything queued, and a heartbeat if one is due and nothing
// else is written, in one write and one flush: with thousands of streams,
// syscalls per event, not bytes, are the cost. Called by one writer at a
// time (the scheduled flag).
func (s *Stream) flush() {
	s.mu.Lock()
	batch := s.queue
	s.queue = s.spare[:0]
	s.spare = batch
	overflow, heartbeat, closing := s.overflow, s.heartbeat, s.closing
	s.heartbeat = false
	s.mu.Unlock()

	var err error
	switch {
	case closing:
	case overflow:
		s.hub.metrics.slowStreamsClosed.Add(1)
		err = ErrSlowStream
	default:
		err = s.writeBatch(batch, heartbeat)
	}
	clear(batch) // let the events be collected once every stream sent them

	s.mu.Lock()
	if err != nil && !s.closing {
		s.closing, s.err = true, err
	}
	if s.closing {
		s.mu.Unlock()
		s.release()
		return
	}
	again := len(s.queue) > 0 || s.heartbeat || s.overflow
	s.scheduled = again
	s.mu.Unlock()
	if again {
		s.hub.writers.schedule(s, 0)
	}
}

func (s *Stream) writeBatch(batch []*delivery, heartbeat bool) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	var now time.Time
	delivered := 0
	for _, d := range batch {
		var ok bool
		buf, ok = s.appendLive(buf, d.ev, d.frame)
		if ok {
			delivered++
			if d.ev.Stored() {
				if now.IsZero() {
					now = time.Now()
				}
				s.hub.metrics.deliveryLatency.Observe(float64(now.UnixMilli()-d.ev.Time) / 1e3)
			}
		}
	}
	if len(buf) == 0 {
		if !heartbeat {
			return nil
		}
		buf = append(buf, ":\n\n"...)
	}
	s.hub.metrics.eventsDelivered.Add(uint64(delivered))
	err := s.write(buf)
	*bp = buf
	return err
}

// appendLive appends one live event, keeping the per-topic rules: in order,
// no duplicate, and any gap or new epoch announced with a reset first.
func (s *Stream) appendLive(buf []byte, ev *Event, frame []byte) ([]byte, bool) {
	if !ev.Stored() {
		return append(buf, frame...), true
	}
	i := s.index(ev.Topic)
	if i < 0 {
		return buf, false
	}
	p := &s.pos[i]
	switch {
	case ev.Epoch != p.Epoch:
		*p = Position{Epoch: ev.Epoch, Seq: ev.Seq - 1}
		buf = s.appendReset(buf, s.topics[i:i+1], ResetEpoch)
	case ev.Seq <= p.Seq:
		return buf, false // replayed already
	case ev.Seq > p.Seq+1:
		p.Seq = ev.Seq - 1
		buf = s.appendReset(buf, s.topics[i:i+1], ResetExpired)
	}
	p.Seq = ev.Seq
	buf = appendID(buf, s.setHash, s.pos)
	return append(buf, frame...), true
}

// write sends buf with a deadline and flushes it. The deadline is moved
// only when less than half of it is left: setting it costs as much as a
// third of a small write, and a write still gets at least half the timeout.
func (s *Stream) write(buf []byte) error {
	now := time.Now()
	if s.deadline.Sub(now) < s.cfg.WriteTimeout/2 {
		s.deadline = now.Add(s.cfg.WriteTimeout)
		if err := s.w.SetWriteDeadline(s.deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	s.lastWrite.Store(now.UnixNano())
	s.hub.metrics.streamWrites.Add(1)
	return nil
}

// stop ends the stream with err (nil: the client went away). A write in
// progress is aborted where the writer allows it; the stream is released
// once no writer holds it.
func (s *Stream) stop(err error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing, s.err = true, err
	busy := s.scheduled
	s.mu.Unlock()
	if !busy {
		s.release()
		return
	}
	if c, ok := s.w.(StreamCloser); ok {
		c.Abort()
	}
	// The writer that holds the stream releases it when its write returns.
	// If the stream is only waiting in the ready list, a writer finds it
	// closing and releases it at once.
}

// release gives up everything the stream holds. Called once, by whoever
// finds it closing with no writer in it.
func (s *Stream) release() {
	for _, topic := range s.topics {
		s.hub.leave(s, topic)
	}
	s.hub.writers.remove(s)
	s.gauge.Add(-1)
	if c, ok := s.w.(StreamCloser); ok {
		c.Close()
	}
	if s.onEnd != nil {
		s.onEnd()
	}
	close(s.done)
}

// jitter returns base plus a random duration below extra.
func jitter(base, extra time.Duration) time.Duration {
	if extra <= 0 {
		return base
	}
	return base + rand.N(extra)
}
