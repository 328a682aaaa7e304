package tuslock

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The release channels of a Locker, all on one pub/sub connection.
//
// A channel is subscribed while this Locker holds its lock (to hear
// release requests) or waits for it (to hear "released"), and only then:
// a node that subscribed to every upload's channel would receive every
// request of the cluster. go-redis's Subscribe does not wait for Redis's
// confirmation; nothing here needs it, since waiters repeat their requests
// and poll, which also heals messages lost while go-redis reconnects.

// recvBuffer is how many messages go-redis queues for dispatch; dispatch
// never blocks, so it only absorbs bursts.
const recvBuffer = 256

// channelState is what this Locker wants from one release channel.
type channelState struct {
	refs     int                // holders and waiters; subscribed while > 0
	holders  map[*held]struct{} // usually one; two while a lost lease overlaps its successor
	released chan struct{}      // closed and replaced on each "released"
}

// watch registers interest in channel, subscribing when it is the first,
// and, when h is not nil, routes the channel's release requests to h.
func (l *Locker) watch(channel string, h *held) *channelState {
	l.cmdMu.Lock()
	defer l.cmdMu.Unlock()
	l.mu.Lock()
	s := l.chans[channel]
	if s == nil {
		s = &channelState{holders: make(map[*held]struct{}), released: make(chan struct{})}
		l.chans[channel] = s
	}
	s.refs++
	if h != nil {
		s.holders[h] = struct{}{}
	}
	first := s.refs == 1
	l.mu.Unlock()
	if first && !l.closed {
		l.subscribe(channel)
	}
	return s
}

// unwatch undoes one watch(channel, h).
func (l *Locker) unwatch(channel string, h *held) {
	l.cmdMu.Lock()
	defer l.cmdMu.Unlock()
	l.mu.Lock()
	s := l.chans[channel]
	s.refs--
	delete(s.holders, h)
	last := s.refs == 0
	if last {
		delete(l.chans, channel)
	}
	l.mu.Unlock()
	if !last || l.closed || l.ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	// go-redis drops the channel from its set even if the write fails, so
	// a reconnect will not bring it back; until then, dispatch ignores it.
	if err := l.ps.Unsubscribe(ctx, channel); err != nil {
		l.log.Warn("TusLockUnsubscribeFailed", "channel", channel, "err", err)
	}
}

// subscribe adds channel to the pub/sub connection, opening it on first
// use. The caller holds cmdMu. A failure is logged, not returned: go-redis
// keeps the channel in its set and subscribes it again on reconnect, and
// meanwhile waiters poll; failing the lock for it would fail an upload
// that Redis has just locked successfully.
func (l *Locker) subscribe(channel string) {
	fresh := l.ps == nil
	if fresh {
		// No channel yet, so no connection yet: go-redis dials on first use.
		l.ps = l.client.Subscribe(context.Background())
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	if err := l.ps.Subscribe(ctx, channel); err != nil {
		l.log.Warn("TusLockSubscribeFailed", "channel", channel, "err", err)
	}
	if fresh {
		// Only now, so the reader does not dial before there is anything
		// to listen to. The channel ends when Close closes ps.
		ch := l.ps.Channel(redis.WithChannelSize(recvBuffer))
		go func() {
			for m := range ch {
				l.dispatch(m)
			}
		}()
	}
}

// dispatch acts on one message. It never blocks on a callback, so one
// slow requestRelease cannot delay other uploads' messages.
func (l *Locker) dispatch(m *redis.Message) {
	var ask []*held
	l.mu.Lock()
	s := l.chans[m.Channel]
	if s != nil {
		switch m.Payload {
		case msgRequest:
			for h := range s.holders {
				ask = append(ask, h)
			}
		case msgReleased:
			close(s.released)
			s.released = make(chan struct{})
		}
	}
	l.mu.Unlock()
	for _, h := range ask {
		h.askRelease()
	}
}

// wake wakes this Locker's waiters on channel without waiting for the
// "released" message to come back from Redis.
func (l *Locker) wake(channel string) {
	l.dispatch(&redis.Message{Channel: channel, Payload: msgReleased})
}

// releasedSignal returns a channel closed at the next "released" on s.
func (l *Locker) releasedSignal(s *channelState) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return s.released
}
