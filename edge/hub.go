package edge

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Hub fans a node's broker subscriptions out to its streams. It holds one
// broker subscription per topic, shared by every local stream of that topic
// and reference-counted, so 10,000 viewers of one topic cost the broker one
// subscription per node.
//
// The hub also makes delivery on the node exact: it tracks the last sequence
// it delivered per topic and, on any jump, epoch change or resubscription,
// reads the missing events from history before delivering further. Streams
// therefore see each topic's stored events in order, without duplicates, and
// without gaps unless history itself has lost them (which they announce with
// a reset).
type Hub struct {
	broker  Broker
	metrics *Metrics
	log     *slog.Logger
	// linger is how long a topic nobody follows stays subscribed, so that a
	// wave of reconnects does not turn into a wave of SUBSCRIBE/UNSUBSCRIBE.
	linger time.Duration

	ctx    context.Context // ends when Run's context does; heals stop with it
	stop   context.CancelFunc
	mu     sync.Mutex
	topics map[string]*hubTopic
	// leaving holds topics being unsubscribed; a new subscription to the same
	// name waits for it so the broker sees UNSUBSCRIBE before SUBSCRIBE.
	leaving map[string]chan struct{}

	draining chan struct{} // closed by Drain
	window   time.Duration // the drain window

	writers *writers
}

// HubOptions configures a Hub.
type HubOptions struct {
	// Linger is how long an unfollowed topic stays subscribed. Default 30s.
	Linger time.Duration
	// Metrics receives the hub's counters; nil makes a private set.
	Metrics *Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Writers is how many goroutines write to streams. Default 16 plus 4
	// per core.
	Writers int
	// Tick is how often streams are checked for heartbeats, lifetime and
	// drain. Default 250ms; it bounds how late a heartbeat may come.
	Tick time.Duration
}

// NewHub returns a hub over broker. Run must be called for it to work.
func NewHub(broker Broker, opts HubOptions) *Hub {
	if opts.Linger <= 0 {
		opts.Linger = 30 * time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Writers <= 0 {
		opts.Writers = defaultWriters()
	}
	if opts.Tick <= 0 {
		opts.Tick = 250 * time.Millisecond
	}
	ctx, stop := context.WithCancel(context.Background())
	h := &Hub{
		ctx:     ctx,
		stop:    stop,
		broker:  broker,
		metrics: opts.Metrics,
		log:     opts.Logger,
		linger:  opts.Linger,
		topics:  make(map[string]*hubTopic),
		leaving: make(map[string]chan struct{}),
	}
	h.writers = newWriters(h, opts.Writers, opts.Tick)
	return h
}

// Broker returns the hub's broker.
func (h *Hub) Broker() Broker { return h.broker }

// Metrics returns the hub's metrics.
func (h *Hub) Metrics() *Metrics { return h.metrics }

// Run delivers broker events to streams until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	defer h.stop()
	context.AfterFunc(ctx, h.stop)
	go h.sweep(h.ctx)
	h.writers.run(h.ctx)
	return h.broker.Run(ctx, h)
}

// hubTopic is one subscribed topic on this node.
type hubTopic struct {
	name  string
	ready chan struct{} // closed when subscribed and pos is known
	err   error         // why the subscription failed, set before ready closes

	mu      sync.Mutex
	streams map[*Stream]struct{}
	idle    time.Time // when the last stream left; zero while followed
	pos     Position  // last event delivered on this node
	healing bool
	pending []*Event // arrived while healing or before ready
}

// join adds s to the topic's streams, subscribing the node when it is the
// topic's first. It returns once the topic delivers live events.
func (h *Hub) join(ctx context.Context, s *Stream, name string) error {
	h.mu.Lock()
	t := h.topics[name]
	created := t == nil
	if created {
		t = &hubTopic{name: name, ready: make(chan struct{}), streams: make(map[*Stream]struct{})}
		h.topics[name] = t
	}
	wait := h.leaving[name]
	t.mu.Lock()
	t.streams[s] = struct{}{}
	t.idle = time.Time{}
	t.mu.Unlock()
	h.mu.Unlock()

	if created {
		go h.subscribe(t, wait)
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		h.leave(s, name)
		return ctx.Err()
	}
	if t.err != nil {
		h.leave(s, name)
		return t.err
	}
	return nil
}

// subscribe runs in its own goroutine so that a joiner giving up does not
// leave the topic half made for the others.
func (h *Hub) subscribe(t *hubTopic, wait chan struct{}) {
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
		}
	}
	err := h.broker.Subscribe(ctx, t.name)
	var head History
	if err == nil {
		head, err = h.broker.History(ctx, t.name, 0, 0)
	}
	if err != nil {
		h.mu.Lock()
		if h.topics[t.name] == t {
			delete(h.topics, t.name)
		}
		h.mu.Unlock()
		t.err = err
		close(t.ready)
		h.log.Warn("SubscribeFailed", "topic", t.name, "err", err)
		// The broker may hold a subscription nobody tracks now.
		h.broker.Unsubscribe(context.WithoutCancel(ctx), t.name)
		return
	}
	h.metrics.brokerSubscriptions.Add(1)
	// Events that arrived before the head was known go first, under the
	// lock, so none that arrives later can overtake them.
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pos = head.Head
	pending := t.pending
	t.pending = nil
	close(t.ready)
	for _, ev := range pending {
		h.handleLocked(t, ev)
	}
}

// leave removes s from the topic. The subscription lingers; sweep ends it.
func (h *Hub) leave(s *Stream, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.streams, s)
	if len(t.streams) == 0 {
		t.idle = time.Now()
	}
	t.mu.Unlock()
}

// sweep unsubscribes topics that nobody has followed for the linger time.
func (h *Hub) sweep(ctx context.Context) {
	tick := time.NewTicker(h.linger / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			h.unsubscribeIdle(ctx, now)
		}
	}
}

func (h *Hub) unsubscribeIdle(ctx context.Context, now time.Time) {
	h.mu.Lock()
	var gone []*hubTopic
	for name, t := range h.topics {
		t.mu.Lock()
		if len(t.streams) == 0 && !t.idle.IsZero() && now.Sub(t.idle) >= h.linger {
			gone = append(gone, t)
			delete(h.topics, name)
			h.leaving[name] = make(chan struct{})
		}
		t.mu.Unlock()
	}
	h.mu.Unlock()
	for _, t := range gone {
		if err := h.broker.Unsubscribe(ctx, t.name); err != nil {
			h.log.Warn("UnsubscribeFailed", "topic", t.name, "err", err)
		}
		h.metrics.brokerSubscriptions.Add(-1)
		h.mu.Lock()
		close(h.leaving[t.name])
		delete(h.leaving, t.name)
		h.mu.Unlock()
	}
}

// HandleEvent implements Handler: it delivers ev to the topic's streams, or
// starts healing when ev does not follow the last delivered event.
func (h *Hub) HandleEvent(ev *Event) {
	h.mu.Lock()
	t := h.topics[ev.Topic]
	h.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.ready:
	default:
		t.pending = append(t.pending, ev)
		return
	}
	h.handleLocked(t, ev)
}

// handleLocked delivers ev or starts healing. Called with t.mu held.
func (h *Hub) handleLocked(t *hubTopic, ev *Event) {
	if t.healing {
		t.pending = append(t.pending, ev)
		return
	}
	if !ev.Stored() {
		h.dispatch(t, ev)
		return
	}
	switch {
	case ev.Epoch == t.pos.Epoch && ev.Seq <= t.pos.Seq:
		// Already delivered (read from history while healing).
	case ev.Epoch == t.pos.Epoch && ev.Seq == t.pos.Seq+1:
		t.pos.Seq = ev.Seq
		h.dispatch(t, ev)
	default:
		// A jump or a new epoch: events are missing on this node.
		t.healing = true
		t.pending = append(t.pending, ev)
		go h.heal(t)
	}
}

// HandleResubscribed implements Handler: events published while the broker
// connection was down are read from history.
func (h *Hub) HandleResubscribed(topic string) {
	h.mu.Lock()
	t := h.topics[topic]
	h.mu.Unlock()
	if t == nil {
		return
	}
	select {
	case <-t.ready:
	default:
		return // subscribe reads the head after the subscription is live
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.healing {
		t.healing = true
		go h.heal(t)
	}
}

// healPage is how many events one history read brings while healing.
const healPage = 500

// heal brings the topic up to date from history, then delivers what arrived
// meanwhile. It retries, with backoff, until it succeeds or the hub stops:
// a broker outage only delays delivery.
func (h *Hub) heal(t *hubTopic) {
	h.metrics.heals.Add(1)
	backoff := 50 * time.Millisecond
	for {
		if h.ctx.Err() != nil {
			return
		}
		done, err := h.healOnce(t)
		if err != nil {
			h.log.Warn("HealFailed", "topic", t.name, "err", err)
			select {
			case <-time.After(backoff + rand.N(backoff)):
			case <-h.ctx.Done():
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		if done {
			return
		}
	}
}

// healOnce reads one page of history and delivers it. It reports done when
// the topic is up to date and no longer healing.
func (h *Hub) healOnce(t *hubTopic) (done bool, err error) {
	t.mu.Lock()
	pos := t.pos
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	page, err := h.broker.History(ctx, t.name, pos.Seq, healPage)
	if err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if page.Head.Epoch != t.pos.Epoch {
		// The topic's state was lost and recreated: read the new epoch from
		// its start. Streams see the new epoch and announce a reset.
		t.pos = Position{Epoch: page.Head.Epoch}
		return false, nil
	}
	for _, ev := range page.Events {
		if ev.Seq > t.pos.Seq {
			t.pos.Seq = ev.Seq
			h.dispatch(t, ev)
		}
	}
	if t.pos.Seq < page.Head.Seq {
		if len(page.Events) == 0 {
			// Trimmed beyond the head: nothing left to read. Streams see the
			// jump on the next event and announce a reset.
			t.pos.Seq = page.Head.Seq
		}
		return false, nil
	}
	// Up to date with history: deliver what arrived meanwhile, in order.
	pending := t.pending
	t.pending = nil
	for i, ev := range pending {
		switch {
		case !ev.Stored():
			h.dispatch(t, ev)
		case ev.Epoch != t.pos.Epoch:
			// Published before the epoch history just showed us, or after
			// yet another loss of state: drop it and read history again,
			// which holds it in the second case.
			t.pending = pending[i+1:]
			return false, nil
		case ev.Seq <= t.pos.Seq:
		case ev.Seq == t.pos.Seq+1:
			t.pos.Seq = ev.Seq
			h.dispatch(t, ev)
		default:
			// Another jump: keep the rest and read history again.
			t.pending = pending[i:]
			return false, nil
		}
	}
	t.healing = false
	return true, nil
}

// dispatch hands ev to every stream of t. It never blocks: a stream whose
// queue is full is closed and resumes from history. Called with t.mu held.
func (h *Hub) dispatch(t *hubTopic, ev *Event) {
	if len(t.streams) == 0 {
		return
	}
	d := newDelivery(ev)
	for s := range t.streams {
		s.enqueue(d)
	}
}

// TopicCount returns how many topics this node is subscribed to.
func (h *Hub) TopicCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}
