package edge

import (
	"context"
	"sync"
	"time"
)

// MemoryBroker is a Broker for one process. It is the default when no Redis
// is configured, so that a bare `go run ./cmd/edge` works; it keeps the same
// contract as RedisBroker (epochs, sequences, retention, idempotency).
type MemoryBroker struct {
	retention RetentionPolicy
	now       func() time.Time

	mu         sync.Mutex
	topics     map[string]*memoryTopic
	subscribed map[string]bool
	handler    Handler
	started    chan struct{} // closed when Run has a handler
	closed     bool
}

var _ Broker = (*MemoryBroker)(nil)

type memoryTopic struct {
	epoch string
	seq   uint64
	log   []*Event // ascending by Seq; trimmed from the front
	// idem maps idempotency keys to the sequence they produced, with the
	// time each was first seen so that the map does not grow forever.
	idem      map[string]idemEntry
	lastSweep time.Time
}

type idemEntry struct {
	seq  uint64
	seen time.Time
}

// idempotencyWindow is how long the memory broker remembers an
// Idempotency-Key: as long as the Redis broker's default.
const idempotencyWindow = 24 * time.Hour

// NewMemoryBroker returns a MemoryBroker keeping history as policy says.
func NewMemoryBroker(policy RetentionPolicy) *MemoryBroker {
	return &MemoryBroker{
		retention:  policy,
		now:        time.Now,
		topics:     make(map[string]*memoryTopic),
		subscribed: make(map[string]bool),
		started:    make(chan struct{}),
	}
}

func (b *MemoryBroker) topic(name string) *memoryTopic {
	t := b.topics[name]
	if t == nil {
		t = &memoryTopic{epoch: NewEpoch(), idem: make(map[string]idemEntry)}
		b.topics[name] = t
	}
	return t
}

// Publish stores and delivers p. Delivery happens under the broker's lock so
// that the handler sees each topic's events in sequence order.
func (b *MemoryBroker) Publish(ctx context.Context, p Publication) (PublishResult, error) {
	if err := p.Normalize(); err != nil {
		return PublishResult{}, err
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return PublishResult{}, ErrClosed
	}
	ev := &Event{Topic: p.Topic, Type: p.Type, Data: p.Data, Time: now.UnixMilli()}
	if p.Ephemeral {
		b.deliver(ev)
		return PublishResult{Time: ev.Time}, nil
	}
	t := b.topic(p.Topic)
	if p.IdempotencyKey != "" {
		if e, ok := t.idem[p.IdempotencyKey]; ok && now.Sub(e.seen) < idempotencyWindow {
			return PublishResult{Position: Position{t.epoch, e.seq}, Time: b.timeOf(t, e.seq), Duplicate: true}, nil
		}
	}
	t.seq++
	ev.Epoch, ev.Seq = t.epoch, t.seq
	t.log = append(t.log, ev)
	if p.IdempotencyKey != "" {
		t.idem[p.IdempotencyKey] = idemEntry{seq: t.seq, seen: now}
	}
	b.trim(p.Topic, t, now)
	b.deliver(ev)
	return PublishResult{Position: Position{t.epoch, t.seq}, Time: ev.Time}, nil
}

// timeOf returns the timestamp of a stored event, or now when it has been
// trimmed (the first result's time is then unknown).
func (b *MemoryBroker) timeOf(t *memoryTopic, seq uint64) int64 {
	for _, ev := range t.log {
		if ev.Seq == seq {
			return ev.Time
		}
	}
	return b.now().UnixMilli()
}

func (b *MemoryBroker) trim(name string, t *memoryTopic, now time.Time) {
	r := b.retention.For(name)
	drop := 0
	if over := len(t.log) - r.MaxEvents; over > 0 {
		drop = over
	}
	cutoff := now.Add(-r.MaxAge).UnixMilli()
	for drop < len(t.log) && t.log[drop].Time < cutoff {
		drop++
	}
	if drop > 0 {
		// Copy rather than reslice so the trimmed events can be collected.
		t.log = append(t.log[:0:0], t.log[drop:]...)
	}
	// Sweep expired idempotency keys now and then, not on every publish:
	// the sweep walks every key.
	if now.Sub(t.lastSweep) > time.Minute {
		t.lastSweep = now
		for k, e := range t.idem {
			if now.Sub(e.seen) >= idempotencyWindow {
				delete(t.idem, k)
			}
		}
	}
}

func (b *MemoryBroker) deliver(ev *Event) {
	if b.handler != nil && b.subscribed[ev.Topic] {
		b.handler.HandleEvent(ev)
	}
}

// History returns stored events of topic after the given sequence.
func (b *MemoryBroker) History(ctx context.Context, topic string, after uint64, limit int) (History, error) {
	if !ValidTopic(topic) {
		return History{}, ErrInvalidTopic
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return History{}, ErrClosed
	}
	t := b.topic(topic)
	b.trim(topic, t, b.now())
	h := History{Head: Position{t.epoch, t.seq}}
	if limit <= 0 {
		return h, nil
	}
	for _, ev := range t.log {
		if ev.Seq > after {
			h.Events = append(h.Events, ev)
			if len(h.Events) == limit {
				break
			}
		}
	}
	return h, nil
}

// Subscribe starts delivery of topic's events to the handler given to Run.
func (b *MemoryBroker) Subscribe(ctx context.Context, topic string) error {
	select {
	case <-b.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.subscribed[topic] = true
	return nil
}

// Unsubscribe stops delivery of topic's events.
func (b *MemoryBroker) Unsubscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subscribed, topic)
	return nil
}

// Run sets the handler and waits until ctx ends or the broker is closed.
func (b *MemoryBroker) Run(ctx context.Context, h Handler) error {
	b.mu.Lock()
	if b.handler != nil {
		b.mu.Unlock()
		return errRunTwice
	}
	b.handler = h
	close(b.started)
	b.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

// Ping always succeeds: the memory broker cannot be unreachable.
func (b *MemoryBroker) Ping(ctx context.Context) error { return nil }

// Close stops the broker; later calls fail with ErrClosed.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// Reset forgets every topic, as a wiped Redis would: later publishes start a
// new epoch. Tests use it to exercise epoch changes.
func (b *MemoryBroker) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.topics)
}
