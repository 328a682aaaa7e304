package edge

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"
)

// writers is the hub's pool of goroutines that write to streams, and the
// registry of its streams. A stream with something to send is put on the
// ready list once; a writer takes it, sends all it has in one write, and
// puts it back only if more came meanwhile. A scanner goroutine sends
// heartbeats and ends streams whose lifetime is over or whose turn to
// leave a draining node has come.
//
// Batching delays a stream's turn by the batch window. Every delay is that
// one window, so a delayed stream joins the end of one list that stays in
// order of due time, and one goroutine (wait) sleeps until the head is due
// and moves every due stream to the ready list at once. One timer for the
// pool, not one per stream per batch: with thousands of streams, a
// time.AfterFunc each is thousands of timers, allocations and goroutines
// (one per firing) per window.
type writers struct {
	hub  *Hub
	n    int
	tick time.Duration

	mu      sync.Mutex
	ready   []*Stream
	head    int // ready[head:] waits
	streams map[*Stream]struct{}
	wake    chan struct{}
	stopped bool // stopAll has run

	delayed  []delayed     // due times non-decreasing
	dhead    int           // delayed[dhead:] waits
	newFirst chan struct{} // a stream became the head of delayed: wait resets its timer
}

// delayed is a stream waiting for its batch window to end.
type delayed struct {
	s   *Stream
	due time.Time
}

func newWriters(h *Hub, n int, tick time.Duration) *writers {
	return &writers{
		hub: h, n: n, tick: tick, streams: make(map[*Stream]struct{}),
		wake: make(chan struct{}, n), newFirst: make(chan struct{}, 1),
	}
}

// defaultWriters is the pool size: more than the cores, so that writes
// blocked on slow clients (each up to its deadline) do not idle the CPU,
// and few enough that the run queue stays short for publishers.
func defaultWriters() int { return 16 + 4*runtime.GOMAXPROCS(0) }

// add registers s, or reports false once stopAll has run: no writer would
// ever serve it and nothing would stop it.
func (p *writers) add(s *Stream) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.streams[s] = struct{}{}
	return true
}

func (p *writers) remove(s *Stream) {
	p.mu.Lock()
	delete(p.streams, s)
	p.mu.Unlock()
}

// schedule puts s on the ready list, after delay when positive (batching).
// The caller has set s.scheduled.
func (p *writers) schedule(s *Stream, delay time.Duration) {
	if delay <= 0 {
		p.push(s)
		return
	}
	d := delayed{s, time.Now().Add(delay)}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		s.flush() // see push
		return
	}
	// Keep the list in order of due time: walk back past later ones. With
	// one window for all streams the loop runs only for a schedule that
	// read the clock just before another took the lock; streams opened
	// with another window (StreamConfig is per stream) need it too.
	i := len(p.delayed)
	for i > p.dhead && p.delayed[i-1].due.After(d.due) {
		i--
	}
	p.delayed = slices.Insert(p.delayed, i, d)
	first := i == p.dhead
	p.mu.Unlock()
	if first {
		// Otherwise wait sleeps until an earlier head, and finds s then.
		select {
		case p.newFirst <- struct{}{}:
		default: // a reset is pending already
		}
	}
}

func (p *writers) push(s *Stream) {
	p.mu.Lock()
	if p.stopped {
		// stopAll has drained the lists and no writer is left: the caller
		// holds s (it set s.scheduled), so it flushes s itself, which
		// releases a stopped stream. Queued, s would wait forever.
		p.mu.Unlock()
		s.flush()
		return
	}
	p.ready = append(p.ready, s)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // every writer is awake already
	}
}

func (p *writers) pop() *Stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.ready) {
		p.ready, p.head = p.ready[:0], 0
		return nil
	}
	s := p.ready[p.head]
	p.ready[p.head] = nil
	p.head++
	return s
}

// run starts the writers, the scanner and the batch timer; they stop when
// ctx ends.
func (p *writers) run(ctx context.Context) {
	for range p.n {
		go p.work(ctx)
	}
	go p.scan(ctx)
	go p.wait(ctx)
}

// wait moves delayed streams to the ready list when they are due. It sleeps
// on one timer set to the head's due time, and only while something waits.
// When ctx ends it leaves what waits to stopAll, which releases it.
func (p *writers) wait(ctx context.Context) {
	t := time.NewTimer(0)
	t.Stop()
	for {
		next, moved := p.takeDue(time.Now())
		for range min(moved, p.n) {
			select {
			case p.wake <- struct{}{}:
			default: // every writer is awake already
			}
		}
		if !next.IsZero() {
			t.Reset(time.Until(next))
		}
		select {
		case <-t.C:
		case <-p.newFirst:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// takeDue moves the delayed streams due at now (all of them when now is
// zero) to the ready list. It returns how many it moved and when the next
// one is due (zero: none waits).
func (p *writers) takeDue(now time.Time) (next time.Time, moved int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; p.dhead < len(p.delayed); p.dhead++ {
		d := &p.delayed[p.dhead]
		if !now.IsZero() && d.due.After(now) {
			next = d.due
			break
		}
		p.ready = append(p.ready, d.s)
		*d = delayed{}
		moved++
	}
	// Under steady traffic the list may never empty: move the waiting
	// tail down once it is no longer than the spent head, or the slice
	// would grow for as long as the traffic lasts.
	if p.dhead >= len(p.delayed)-p.dhead {
		n := copy(p.delayed, p.delayed[p.dhead:])
		clear(p.delayed[n:])
		p.delayed, p.dhead = p.delayed[:n], 0
	}
	return next, moved
}

// yieldEvery is how many streams a writer serves between yields.
const yieldEvery = 8

func (p *writers) work(ctx context.Context) {
	for n := 1; ; n++ {
		if s := p.pop(); s != nil {
			s.flush()
			if n%yieldEvery == 0 {
				// Let others run: a writer with work never blocks (sockets
				// are non-blocking), and without a yield the goroutines
				// woken by the network (publishers, the broker's reader)
				// wait behind whole time slices of writing.
				runtime.Gosched()
			}
			continue
		}
		select {
		case <-p.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (p *writers) scan(ctx context.Context) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.stopAll()
			return
		case now := <-t.C:
			p.scanOnce(now)
		}
	}
}

// scanOnce decides under the lock and acts outside it: stopping a stream
// takes the pool's lock again.
func (p *writers) scanOnce(now time.Time) {
	draining := p.hub.Draining()
	var window time.Duration
	if draining {
		window = p.hub.drainWindow()
	}
	var stop []*Stream
	var stopErr []error
	var beat []*Stream
	p.mu.Lock()
	for s := range p.streams {
		s.mu.Lock()
		if !s.live || s.closing {
			s.mu.Unlock()
			continue
		}
		if draining && s.drainAt.IsZero() {
			// Spread the ends over the window so clients do not all
			// reconnect to the remaining nodes at the same instant.
			s.drainAt = now.Add(rand.N(window) + 1)
		}
		switch {
		case !now.Before(s.end):
			stop, stopErr = append(stop, s), append(stopErr, ErrLifetime)
		case draining && !now.Before(s.drainAt):
			stop, stopErr = append(stop, s), append(stopErr, ErrDraining)
		case now.UnixNano()-s.lastWrite.Load() >= int64(s.cfg.Heartbeat-p.tick):
			// Due within a tick: send it now, so silences never exceed the
			// heartbeat.
			s.heartbeat = true
			if !s.scheduled {
				s.scheduled = true
				beat = append(beat, s)
			}
		}
		s.mu.Unlock()
	}
	p.mu.Unlock()
	for i, s := range stop {
		s.stop(stopErr[i])
	}
	for _, s := range beat {
		p.push(s)
	}
}

// stopAll ends every stream when the hub stops.
func (p *writers) stopAll() {
	p.mu.Lock()
	p.stopped = true
	all := make([]*Stream, 0, len(p.streams))
	for s := range p.streams {
		all = append(all, s)
	}
	p.mu.Unlock()
	for _, s := range all {
		s.stop(ErrDraining)
	}
	// Writers have stopped: release what is still waiting for one, batch
	// window or not (a stopped stream writes nothing more, so its window
	// has no reason to run out first, and the timer may be gone already).
	// Nothing is queued after this: schedule and push, seeing stopped,
	// flush a stream themselves.
	p.takeDue(time.Time{})
	for s := p.pop(); s != nil; s = p.pop() {
		s.flush()
	}
}
