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

// ErrSlowStream ends a stream whose queue overflowed: it could not take
// events as fast as they came. Its client resumes from history.
var ErrSlowStream = errors.New("edge: stream too slow, closed")

// StreamWriter is where a stream writes. The HTTP layer passes the response
// writer seen through http.ResponseController, so that every write gets its
// own deadline (no server-wide WriteTimeout can apply to a stream).
type StreamWriter interface {
	Write(p []byte) (int, error)
	Flush() error
	SetWriteDeadline(t time.Time) error
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
}

// Stream is one client's live connection: its topics, its position in each,
// and a bounded queue the hub fills and the stream's writer drains.
type Stream struct {
	hub     *Hub
	cfg     StreamConfig
	w       StreamWriter
	topics  []string // sorted
	setHash [3]byte
	pos     []Position // aligned with topics

	mu       sync.Mutex
	queue    []*delivery
	spare    []*delivery
	overflow bool
	wake     chan struct{}

	lastWrite time.Time
}

// enqueue adds d to the stream's queue without blocking; a full queue marks
// the stream as overflowed, and its writer closes it.
func (s *Stream) enqueue(d *delivery) {
	s.mu.Lock()
	switch {
	case s.overflow:
		s.mu.Unlock()
		return
	case len(s.queue) >= s.cfg.QueueSize:
		s.overflow = true
		s.queue = nil
	default:
		s.queue = append(s.queue, d)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the queued deliveries, handing the stream an empty queue
// that reuses the previous batch's memory.
func (s *Stream) take() ([]*delivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := s.queue
	s.queue = s.spare[:0]
	s.spare = batch
	return batch, s.overflow
}

// bufPool holds write buffers: a stream holds one only while writing, so
// idle streams cost no buffer memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Serve runs one stream until the client goes, its lifetime ends, the node
// drains, or it falls too far behind. The caller has set the response
// headers; Serve writes the body.
func (h *Hub) Serve(ctx context.Context, w StreamWriter, cfg StreamConfig, req StreamRequest) error {
	s := &Stream{
		hub:    h,
		cfg:    cfg,
		w:      w,
		topics: sortedTopics(req.Topics),
		wake:   make(chan struct{}, 1),
	}
	s.setHash = topicSetHash(s.topics)
	gauge := h.metrics.streamGauge(req.Protocol)
	gauge.Add(1)
	defer gauge.Add(-1)

	// First bytes at once, so proxies and onopen see the stream start even
	// while the broker is slow.
	buf := appendRetry(nil, jitter(cfg.Retry, cfg.RetryJitter).Milliseconds())
	buf = append(buf, ": edge\n\n"...)
	if err := s.write(buf); err != nil {
		return err
	}
	if h.Draining() {
		return nil // the retry hint sends the client to another node
	}

	for i, topic := range s.topics {
		if err := h.join(ctx, s, topic); err != nil {
			for _, joined := range s.topics[:i] {
				h.leave(s, joined)
			}
			return fmt.Errorf("join %s: %w", topic, err)
		}
	}
	defer func() {
		for _, topic := range s.topics {
			h.leave(s, topic)
		}
	}()

	if err := s.start(ctx, req.LastEventID); err != nil {
		return err
	}
	return s.run(ctx)
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
	err := s.write(buf)
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

// run sends live events until the stream ends.
func (s *Stream) run(ctx context.Context) error {
	heartbeat := time.NewTicker(s.cfg.Heartbeat / 2)
	defer heartbeat.Stop()
	lifetime := time.NewTimer(jitter(s.cfg.MaxLifetime, s.cfg.LifetimeJitter))
	defer lifetime.Stop()
	draining := s.hub.drainStarted()
	var drainEnd <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lifetime.C:
			return nil
		case <-draining:
			// Spread the ends over the drain window so clients do not all
			// reconnect to the remaining nodes at the same instant.
			draining = nil
			drainEnd = time.After(rand.N(s.hub.drainWindow()) + 1)
		case <-drainEnd:
			return nil
		case now := <-heartbeat.C:
			if now.Sub(s.lastWrite) >= s.cfg.Heartbeat/2 {
				if err := s.write([]byte(":\n\n")); err != nil {
					return err
				}
			}
		case <-s.wake:
			if s.cfg.BatchWindow > 0 {
				select {
				case <-time.After(s.cfg.BatchWindow):
				case <-ctx.Done():
					return nil
				}
			}
			if err := s.flushQueue(); err != nil {
				return err
			}
		}
	}
}

// flushQueue writes every queued event in one write and one flush: with
// thousands of streams, syscalls per event, not bytes, are the cost.
func (s *Stream) flushQueue() error {
	batch, overflow := s.take()
	if overflow {
		s.hub.metrics.slowStreamsClosed.Add(1)
		return ErrSlowStream
	}
	if len(batch) == 0 {
		return nil
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	now := time.Now()
	delivered := 0
	for i, d := range batch {
		var ok bool
		buf, ok = s.appendLive(buf, d.ev, d.frame)
		if ok {
			delivered++
			if d.ev.Stored() {
				s.hub.metrics.deliveryLatency.Observe(float64(now.UnixMilli()-d.ev.Time) / 1e3)
			}
		}
		batch[i] = nil // let the event be collected once every stream sent it
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

// write sends buf with its own deadline and flushes it.
func (s *Stream) write(buf []byte) error {
	now := time.Now()
	if err := s.w.SetWriteDeadline(now.Add(s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	s.lastWrite = now
	return nil
}

// jitter returns base plus a random duration below extra.
func jitter(base, extra time.Duration) time.Duration {
	if extra <= 0 {
		return base
	}
	return base + rand.N(extra)
}
