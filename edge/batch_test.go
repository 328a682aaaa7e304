package edge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// timedClient is an sseClient that records when each write started, so a
// test can tell how many writes carried what, and how late they were.
type timedClient struct {
	*sseClient
	mu     sync.Mutex
	starts []time.Time
}

func (c *timedClient) Write(p []byte) (int, error) {
	now := time.Now() // before the bytes can be seen
	c.mu.Lock()
	c.starts = append(c.starts, now)
	c.mu.Unlock()
	return c.sseClient.Write(p)
}

func (c *timedClient) writes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.starts...)
}

// openTimed runs a first-connection stream of topic on h and returns once
// it is live; done receives Serve's result.
func openTimed(t *testing.T, h *Hub, cfg StreamConfig, topic string) (c *timedClient, done chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	c = &timedClient{sseClient: newSSEClient()}
	done = make(chan error, 1)
	go func() { done <- h.Serve(ctx, c, cfg, StreamRequest{Topics: []string{topic}}) }()
	eventually(t, "stream live", func() bool {
		f := c.frames()
		return len(f) > 0 && f[len(f)-1].HasID != ""
	})
	return c, done
}

// settledWrites waits until the hub's write counter has caught up with the
// writes its clients saw (it counts after a write returns) and returns it.
func settledWrites(t *testing.T, h *Hub, clients ...*timedClient) uint64 {
	t.Helper()
	var n uint64
	eventually(t, "write counter settled", func() bool {
		n = 0
		for _, c := range clients {
			n += uint64(len(c.writes()))
		}
		return h.metrics.streamWrites.Load() == n
	})
	return n
}

// eventually waits for cond, failing after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// delayedCount is how many streams wait for their batch window.
func (p *writers) delayedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.delayed) - p.dhead
}

// TestBatchWindowOneWrite: events published within the window reach each
// stream in one write, in order, once.
func TestBatchWindowOneWrite(t *testing.T) {
	t.Parallel()
	// Long enough that publishing ten events to the memory broker (which
	// delivers before Publish returns) fits in it even on a loaded machine;
	// the test checks that it did rather than assume it.
	const window = time.Second
	const events = 10
	for _, streams := range []int{1, 20} {
		t.Run(fmt.Sprintf("streams=%d", streams), func(t *testing.T) {
			t.Parallel()
			b := NewMemoryBroker(conformanceRetention)
			t.Cleanup(func() { b.Close() })
			h := startHub(t, b)
			cfg := testStreamConfig
			cfg.BatchWindow = window
			clients := make([]*timedClient, streams)
			for i := range clients {
				clients[i], _ = openTimed(t, h, cfg, "batch")
			}
			before := settledWrites(t, h, clients...)

			start := time.Now()
			for i := 1; i <= events; i++ {
				publishData(t, b, "batch", fmt.Sprint(i))
			}
			if took := time.Since(start); took >= window {
				t.Fatalf("publishing took %v, not within the %v window: the test cannot tell batching from chance", took, window)
			}
			for _, c := range clients {
				evs := c.waitEvents(t, events)
				wantDatas(t, datas(t, evs, "batch"), 1, events)
			}
			if got := settledWrites(t, h, clients...) - before; got != uint64(streams) {
				t.Fatalf("%d events to %d streams took %d writes, want one per stream", events, streams, got)
			}
			for _, c := range clients {
				if n := len(c.events()); n != events {
					t.Fatalf("a stream got %d events, want %d", n, events)
				}
			}
		})
	}
}

// TestBatchWindowWaits: the batch is written no earlier than the window
// after its first event. Only the lower bound is checked: how late a write
// may come depends on the machine.
func TestBatchWindowWaits(t *testing.T) {
	t.Parallel()
	const window = 50 * time.Millisecond
	b := NewMemoryBroker(conformanceRetention)
	t.Cleanup(func() { b.Close() })
	h := startHub(t, b)
	cfg := testStreamConfig
	cfg.BatchWindow = window
	c, _ := openTimed(t, h, cfg, "late")
	before := len(c.writes())

	start := time.Now() // before the event is queued, so before its window starts
	publishData(t, b, "late", "1")
	publishData(t, b, "late", "2")
	wantDatas(t, datas(t, c.waitEvents(t, 2), "late"), 1, 2)
	w := c.writes()
	if len(w) <= before {
		t.Fatal("events arrived without a write")
	}
	if waited := w[before].Sub(start); waited < window {
		t.Fatalf("batch written %v after its first event, before the %v window", waited, window)
	}
}

// TestBatchWindowZero: without a window, nothing goes through the delay
// queue and every event is delivered as before.
func TestBatchWindowZero(t *testing.T) {
	t.Parallel()
	b := NewMemoryBroker(conformanceRetention)
	t.Cleanup(func() { b.Close() })
	h := startHub(t, b)
	c, _ := openTimed(t, h, testStreamConfig, "now")
	before := settledWrites(t, h, c)
	for i := 1; i <= 5; i++ {
		publishData(t, b, "now", fmt.Sprint(i))
	}
	wantDatas(t, datas(t, c.waitEvents(t, 5), "now"), 1, 5)
	// Without a window the writers may still coalesce events that come
	// while they are busy, but never write one event twice or none.
	if got := settledWrites(t, h, c) - before; got < 1 || got > 5 {
		t.Fatalf("5 events took %d writes", got)
	}
	h.writers.mu.Lock()
	used := cap(h.writers.delayed)
	h.writers.mu.Unlock()
	if used != 0 {
		t.Fatal("a stream without a batch window was delayed")
	}
}

// TestBatchWindowsDiffer: a stream with a short window is not held behind
// one with a long window (StreamConfig is per stream, so the delay queue
// cannot assume one window).
func TestBatchWindowsDiffer(t *testing.T) {
	t.Parallel()
	b := NewMemoryBroker(conformanceRetention)
	t.Cleanup(func() { b.Close() })
	h := startHub(t, b)
	slow, fast := testStreamConfig, testStreamConfig
	slow.BatchWindow = time.Hour
	fast.BatchWindow = time.Millisecond
	long, _ := openTimed(t, h, slow, "mixed")
	short, _ := openTimed(t, h, fast, "mixed")
	publishData(t, b, "mixed", "1")
	wantDatas(t, datas(t, short.waitEvents(t, 1), "mixed"), 1, 1)
	if n := len(long.events()); n != 0 {
		t.Fatalf("the stream with an hour's window got %d events at once", n)
	}
}

// TestBatchWindowShutdown: a stream waiting for its window when the hub
// stops is released at once, not after the window (nor never, once the
// writers are gone).
func TestBatchWindowShutdown(t *testing.T) {
	t.Parallel()
	b := NewMemoryBroker(conformanceRetention)
	t.Cleanup(func() { b.Close() })
	h, stop := runHub(t, b, time.Second)
	cfg := testStreamConfig
	cfg.BatchWindow = time.Hour
	_, done := openTimed(t, h, cfg, "bye")
	publishData(t, b, "bye", "1")
	eventually(t, "stream delayed", func() bool { return h.writers.delayedCount() == 1 })
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrDraining) {
			t.Fatalf("stream ended with %v, want %v", err, ErrDraining)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stream waiting for its batch window was not released at shutdown")
	}
	if n := h.metrics.OpenStreams(); n != 0 {
		t.Fatalf("%d streams still open", n)
	}
}

// TestDelayQueueStaysSmall: under steady traffic the delay queue never
// empties, yet its slice does not grow with the traffic.
func TestDelayQueueStaysSmall(t *testing.T) {
	t.Parallel()
	p := newWriters(nil, 1, time.Second)
	const waiting = 10
	for range waiting {
		p.schedule(&Stream{}, time.Hour)
	}
	for range 10000 {
		p.schedule(&Stream{}, time.Hour)
		p.mu.Lock()
		head := p.delayed[p.dhead].due
		p.mu.Unlock()
		if _, moved := p.takeDue(head); moved < 1 {
			t.Fatal("the head was not taken when due")
		}
		for p.pop() != nil {
		}
	}
	if n := len(p.delayed); n > 4*waiting {
		t.Fatalf("delay queue holds %d slots for about %d waiting streams", n, waiting)
	}
}

// BenchmarkBatchSchedule is the cost of delaying a stream's turn, from
// schedule to the ready list, in bursts like a publish to a topic with many
// streams makes. The window is tiny so the benchmark measures the queue,
// not the wait. One time.AfterFunc per schedule, the earlier way, cost
// about nine times as much here, with two allocations per schedule.
func BenchmarkBatchSchedule(b *testing.B) {
	p := newWriters(nil, 1, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.wait(ctx)
	const burst = 1000
	streams := make([]*Stream, burst)
	for i := range streams {
		streams[i] = &Stream{}
	}
	ready := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.ready) - p.head
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range streams {
			p.schedule(s, time.Microsecond)
		}
		for ready() < burst {
			<-p.wake // wait wakes a writer after each move
		}
		for p.pop() != nil {
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/stream")
}

// TestOpenAfterStop: a stream opened once the hub has stopped (its context
// ended, no drain) is refused, not left with no writer to serve or stop it.
func TestOpenAfterStop(t *testing.T) {
	t.Parallel()
	b := NewMemoryBroker(conformanceRetention)
	t.Cleanup(func() { b.Close() })
	h, stop := runHub(t, b, time.Minute)
	// A stream on the topic first, so that the late one finds it
	// subscribed (lingering) and gets as far as the writer pool.
	_, first := openTimed(t, h, testStreamConfig, "late")
	stop()
	if err := <-first; !errors.Is(err, ErrDraining) {
		t.Fatalf("the first stream ended with %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- h.Serve(t.Context(), newSSEClient(), testStreamConfig, StreamRequest{Topics: []string{"late"}})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Serve on a stopped hub returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stream opened on a stopped hub hangs")
	}
	if n := h.metrics.OpenStreams(); n != 0 {
		t.Fatalf("%d streams still open", n)
	}
}

// TestScheduleAfterStop: a stream an enqueue marked scheduled just before
// stopAll ran, and hands to the pool only after, is flushed (and so
// released) by that hand-over itself, for no writer is left to take it.
func TestScheduleAfterStop(t *testing.T) {
	t.Parallel()
	for _, window := range []time.Duration{0, 10 * time.Millisecond} {
		b := NewMemoryBroker(conformanceRetention)
		t.Cleanup(func() { b.Close() })
		h, stop := runHub(t, b, time.Minute)
		cfg := testStreamConfig
		cfg.BatchWindow = window
		_, done := openTimed(t, h, cfg, "race")
		var s *Stream
		h.writers.mu.Lock()
		for st := range h.writers.streams {
			s = st
		}
		h.writers.mu.Unlock()
		// What enqueue does first, under the stream's lock...
		s.mu.Lock()
		s.scheduled = true
		s.mu.Unlock()
		stop()
		// ...and then, too late, outside it.
		h.writers.schedule(s, window)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("window %v: a stream handed to a stopped pool was never released", window)
		}
	}
}
