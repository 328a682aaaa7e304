package edge

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The subscription side of RedisBroker.
//
// go-redis's Subscribe only writes the command; the confirmation arrives on
// the connection's reader like any message. Run's loop therefore settles
// waiting Subscribe calls when the confirmation arrives, and treats a
// confirmation nobody waits for as go-redis having reconnected and
// resubscribed, which lost messages meanwhile: the Handler hears
// HandleResubscribed.

// Subscribe starts delivery of topic's events to the Handler given to Run.
// It waits for Run to start and returns once Redis has confirmed the
// subscription. Subscriptions are a set: subscribing twice is subscribing
// once, and one Unsubscribe ends it.
func (b *RedisBroker) Subscribe(ctx context.Context, topic string) error {
	if !ValidTopic(topic) {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	select {
	case <-b.started:
	case <-b.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	st, err := b.subscribe(ctx, topic)
	if err != nil {
		return err
	}
	select {
	case <-st.ready:
		return st.err
	case <-ctx.Done():
		// The caller takes this as a failure and may never unsubscribe:
		// undo it, unless another subscription has replaced it meanwhile.
		b.unsubscribe(context.WithoutCancel(ctx), topic, st)
		return ctx.Err()
	}
}

// subscribe sends the SUBSCRIBE for topic, or finds the subscription already
// wanted, and returns it without waiting for its confirmation.
func (b *RedisBroker) subscribe(ctx context.Context, topic string) (*redisTopicSub, error) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	key := b.subKey(topic)
	sub := b.subs[key]
	fresh := sub == nil
	if fresh {
		sub = b.newSub()
		b.subs[key] = sub
	}
	if st := sub.topics[topic]; st != nil {
		b.mu.Unlock()
		return st, nil
	}
	st := &redisTopicSub{ready: make(chan struct{})}
	sub.topics[topic] = st
	e := &redisExpect{subscribe: true, st: st}
	sub.expect[topic] = append(sub.expect[topic], e)
	b.mu.Unlock()

	var err error
	if b.opts.Sharded {
		err = sub.ps.SSubscribe(ctx, redisChannel(topic))
	} else {
		err = sub.ps.Subscribe(ctx, redisChannel(topic))
	}
	if fresh && err == nil {
		// Only now: a reader started before the first SSUBSCRIBE would open
		// the connection to a random cluster node instead of the slot's.
		b.startReader(sub)
	}
	if err == nil {
		return st, nil
	}
	err = redisUnavailable(err)

	b.mu.Lock()
	if sub.topics[topic] == st {
		delete(sub.topics, topic)
	}
	st.settle(err)
	sub.unexpect(topic, e)
	drop := (fresh || b.opts.Sharded) && len(sub.topics) == 0 && b.subs[key] == sub
	var undo *redisExpect
	if drop {
		delete(b.subs, key)
	} else {
		undo = &redisExpect{}
		sub.expect[topic] = append(sub.expect[topic], undo)
	}
	b.mu.Unlock()
	// go-redis keeps the channel in its set even when the write failed and
	// would subscribe it on the next reconnect: take it out.
	if drop {
		sub.ps.Close()
	} else if b.psUnsubscribe(context.WithoutCancel(ctx), sub, topic) != nil {
		b.mu.Lock()
		sub.unexpect(topic, undo)
		b.mu.Unlock()
	}
	return nil, err
}

// Unsubscribe stops delivery of topic's events. Delivery stops when it
// returns even if it returns an error (Redis unreachable): messages of
// topics not subscribed are dropped on arrival.
func (b *RedisBroker) Unsubscribe(ctx context.Context, topic string) error {
	return b.unsubscribe(ctx, topic, nil)
}

// unsubscribe ends topic's subscription; when only is set, only if that is
// the current one.
func (b *RedisBroker) unsubscribe(ctx context.Context, topic string, only *redisTopicSub) error {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	key := b.subKey(topic)
	sub := b.subs[key]
	var st *redisTopicSub
	if sub != nil {
		st = sub.topics[topic]
	}
	if st == nil || (only != nil && st != only) {
		b.mu.Unlock()
		return nil
	}
	delete(sub.topics, topic)
	st.settle(errRedisUnsubscribed)
	if b.opts.Sharded && len(sub.topics) == 0 {
		// The slot's last topic: close its connection rather than keep up
		// to 16,384 idle ones.
		delete(b.subs, key)
		b.mu.Unlock()
		sub.ps.Close()
		return nil
	}
	e := &redisExpect{}
	sub.expect[topic] = append(sub.expect[topic], e)
	b.mu.Unlock()
	if err := b.psUnsubscribe(ctx, sub, topic); err != nil {
		b.mu.Lock()
		sub.unexpect(topic, e)
		b.mu.Unlock()
		return redisUnavailable(err)
	}
	return nil
}

func (b *RedisBroker) psUnsubscribe(ctx context.Context, sub *redisSub, topic string) error {
	if b.opts.Sharded {
		return sub.ps.SUnsubscribe(ctx, redisChannel(topic))
	}
	return sub.ps.Unsubscribe(ctx, redisChannel(topic))
}

// subKey is the key of topic's pub/sub connection in b.subs.
func (b *RedisBroker) subKey(topic string) uint16 {
	if b.opts.Sharded {
		return redisSlot(topic)
	}
	return 0
}

func (b *RedisBroker) newSub() *redisSub {
	// No channel yet, so no connection yet: go-redis dials on first use.
	var ps *redis.PubSub
	if b.opts.Sharded {
		ps = b.client.SSubscribe(context.Background())
	} else {
		ps = b.client.Subscribe(context.Background())
	}
	return &redisSub{ps: ps, topics: make(map[string]*redisTopicSub), expect: make(map[string][]*redisExpect)}
}

// startReader forwards what sub's connection receives to Run's loop, so
// that every Handler call comes from Run's goroutine.
func (b *RedisBroker) startReader(sub *redisSub) {
	ch := sub.ps.ChannelWithSubscriptions(
		redis.WithChannelSize(redisRecvBuffer), redis.WithChannelSendTimeout(redisRecvSendTimeout))
	go func() {
		for m := range ch {
			select {
			case b.in <- redisRecv{sub, m}:
			case <-b.quit:
				// Drain until go-redis closes ch (on PubSub.Close), so its
				// reader goroutine never waits out a send timeout.
				for range ch {
				}
				return
			}
		}
	}()
}

// unexpect removes e from topic's expectations.
func (s *redisSub) unexpect(topic string, e *redisExpect) {
	q := s.expect[topic]
	for i, x := range q {
		if x == e {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	s.setExpect(topic, q)
}

func (s *redisSub) setExpect(topic string, q []*redisExpect) {
	if len(q) == 0 {
		delete(s.expect, topic)
	} else {
		s.expect[topic] = q
	}
}

// Run delivers the events of subscribed topics to h until ctx ends or the
// broker is closed. When it returns, the broker's subscriptions end;
// Publish and History keep working until Close.
func (b *RedisBroker) Run(ctx context.Context, h Handler) error {
	b.mu.Lock()
	if b.handler != nil {
		b.mu.Unlock()
		return errRunTwice
	}
	if b.stopped {
		b.mu.Unlock()
		return ErrClosed
	}
	b.handler = h
	close(b.started)
	b.mu.Unlock()
	defer b.stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.quit:
			return ErrClosed
		case r := <-b.in:
			b.dispatch(h, r)
		}
	}
}

// dispatch handles one message or subscription notice, from Run's goroutine.
func (b *RedisBroker) dispatch(h Handler, r redisRecv) {
	switch m := r.msg.(type) {
	case *redis.Message:
		topic, ok := redisTopic(m.Channel)
		if !ok {
			return
		}
		b.mu.Lock()
		wanted := r.sub.topics[topic] != nil
		b.mu.Unlock()
		// A message can follow an UNSUBSCRIBE sent but not yet processed.
		if !wanted {
			return
		}
		ev, err := decodeRedisPayload(topic, m.Payload)
		if err != nil {
			b.log.Warn("RedisBadMessage", "topic", topic, "err", err)
			return
		}
		h.HandleEvent(ev)
	case *redis.Subscription:
		topic, ok := redisTopic(m.Channel)
		if ok && b.confirm(r.sub, topic, m.Kind) {
			b.log.Info("RedisResubscribed", "topic", topic)
			h.HandleResubscribed(topic)
		}
	}
}

// confirm matches a (un)subscribe confirmation with the commands sent and
// reports whether it is a resubscription after a reconnect.
//
// Confirmations come in the order the commands were written (cmdMu), but a
// reconnect loses those still in flight, so a confirmation consumes the
// oldest redisExpect of its kind and everything before it: older entries
// were lost. go-redis's resubscribe after a reconnect sends one SUBSCRIBE
// for every channel in its set, which either fulfils a pending redisExpect
// (the subscription is new) or matches none (it was live: messages may have
// been lost).
func (b *RedisBroker) confirm(sub *redisSub, topic, kind string) (resubscribed bool) {
	isSub := kind == "subscribe" || kind == "ssubscribe"
	b.mu.Lock()
	defer b.mu.Unlock()
	q := sub.expect[topic]
	var matched *redisExpect
	for i, e := range q {
		if e.subscribe == isSub {
			matched, q = e, q[i+1:]
			break
		}
	}
	if matched != nil {
		sub.setExpect(topic, q)
	}
	st := sub.topics[topic]
	if !isSub || st == nil {
		return false
	}
	if matched != nil {
		if matched.st == st {
			st.settle(nil)
		}
		return false
	}
	if st.done {
		return true
	}
	st.settle(nil)
	return false
}

// stop ends subscriptions: waiting Subscribe calls fail with ErrClosed and
// the pub/sub connections close.
func (b *RedisBroker) stop() {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	b.stopped = true
	close(b.quit)
	subs := b.subs
	b.subs = make(map[uint16]*redisSub)
	for _, sub := range subs {
		for _, st := range sub.topics {
			st.settle(ErrClosed)
		}
	}
	b.mu.Unlock()
	for _, sub := range subs {
		sub.ps.Close()
	}
}

// redisSlot is the Redis Cluster hash slot of topic's keys and channel:
// CRC16 (XMODEM) of the hash tag, which is the topic, modulo 16384.
func redisSlot(topic string) uint16 {
	var crc uint16
	for i := 0; i < len(topic); i++ {
		crc ^= uint16(topic[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
