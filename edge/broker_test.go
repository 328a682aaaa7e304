package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// conformanceRetention is the retention every broker under testBroker must
// be built with: short limits on the "short:" and "aged:" topics let the
// suite observe trimming.
var conformanceRetention = RetentionPolicy{
	Rules: []RetentionRule{
		{Pattern: "short:*", Retention: Retention{MaxEvents: 3, MaxAge: time.Hour}},
		{Pattern: "aged:*", Retention: Retention{MaxEvents: 1000, MaxAge: 300 * time.Millisecond}},
	},
}

// wiper is a broker whose whole state can be lost, as a Redis FLUSHALL or
// restart without persistence loses it.
type wiper interface {
	Broker
	Reset()
}

// brokerFactory makes a new, empty broker built with conformanceRetention.
type brokerFactory func(t *testing.T) wiper

// testBroker is the conformance suite every Broker runs.
func testBroker(t *testing.T, newBroker brokerFactory) {
	t.Run("SequencesAndHistory", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		ctx := t.Context()
		first := publishN(t, b, "orders", 5)
		h, err := b.History(ctx, "orders", 2, 100)
		if err != nil {
			t.Fatal(err)
		}
		if h.Head != (Position{first.Epoch, 5}) {
			t.Fatalf("head = %+v, want epoch %s seq 5", h.Head, first.Epoch)
		}
		wantSeqs(t, h.Events, 3, 4, 5)
		for _, ev := range h.Events {
			if ev.Topic != "orders" || ev.Epoch != first.Epoch || ev.Time == 0 {
				t.Fatalf("bad event %+v", ev)
			}
			var v struct{ N uint64 }
			if err := json.Unmarshal(ev.Data, &v); err != nil || v.N != ev.Seq {
				t.Fatalf("event %d carries %s", ev.Seq, ev.Data)
			}
		}
		h, err = b.History(ctx, "orders", 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, h.Events, 1, 2)
	})

	t.Run("HistoryCreatesEpoch", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h, err := b.History(t.Context(), "fresh", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidEpoch(h.Head.Epoch) || h.Head.Seq != 0 || len(h.Events) != 0 {
			t.Fatalf("head of a new topic = %+v, events %d", h.Head, len(h.Events))
		}
		r, err := b.Publish(t.Context(), Publication{Topic: "fresh", Data: json.RawMessage(`1`)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Epoch != h.Head.Epoch || r.Seq != 1 {
			t.Fatalf("first publish after History landed at %+v, want %s/1", r.Position, h.Head.Epoch)
		}
	})

	t.Run("LiveDeliveryInOrder", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		rec := runRecorder(t, b)
		if err := b.Subscribe(t.Context(), "live"); err != nil {
			t.Fatal(err)
		}
		publishN(t, b, "live", 50)
		publishN(t, b, "other", 3) // not subscribed: must not arrive
		evs := rec.waitFor(t, "live", 50)
		wantSeqs(t, evs, seqRange(1, 50)...)
		if n := len(rec.got("other")); n != 0 {
			t.Fatalf("got %d events of an unsubscribed topic", n)
		}
	})

	t.Run("Unsubscribe", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		rec := runRecorder(t, b)
		ctx := t.Context()
		if err := b.Subscribe(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if err := b.Subscribe(ctx, "marker"); err != nil {
			t.Fatal(err)
		}
		publishN(t, b, "u", 1)
		rec.waitFor(t, "u", 1)
		if err := b.Unsubscribe(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		publishN(t, b, "u", 1)
		// The marker is published after and delivered in order on the same
		// connection, so once it is in, a stray "u" event would be too.
		publishN(t, b, "marker", 1)
		rec.waitFor(t, "marker", 1)
		if n := len(rec.got("u")); n != 1 {
			t.Fatalf("got %d events after unsubscribe, want 1 from before", n)
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		ctx := t.Context()
		p := Publication{Topic: "idem", Type: "created", Data: json.RawMessage(`{"a":1}`), IdempotencyKey: "k1"}
		first, err := b.Publish(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := b.Publish(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Position != first.Position || first.Duplicate {
			t.Fatalf("first %+v, retry %+v", first, again)
		}
		p.IdempotencyKey = "k2"
		other, err := b.Publish(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if other.Duplicate || other.Seq != first.Seq+1 {
			t.Fatalf("new key got %+v", other)
		}
		h, err := b.History(ctx, "idem", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, h.Events, 1, 2)
		if h.Events[0].Type != "created" || string(h.Events[0].Data) != `{"a":1}` {
			t.Fatalf("stored event %+v", h.Events[0])
		}
	})

	t.Run("Ephemeral", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		rec := runRecorder(t, b)
		ctx := t.Context()
		if err := b.Subscribe(ctx, "eph"); err != nil {
			t.Fatal(err)
		}
		r, err := b.Publish(ctx, Publication{Topic: "eph", Type: "typing", Data: json.RawMessage(`{"who":"a"}`), Ephemeral: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != 0 || r.Epoch != "" {
			t.Fatalf("ephemeral publish got a position: %+v", r)
		}
		evs := rec.waitFor(t, "eph", 1)
		if evs[0].Stored() || evs[0].Type != "typing" || string(evs[0].Data) != `{"who":"a"}` {
			t.Fatalf("ephemeral event %+v", evs[0])
		}
		h, err := b.History(ctx, "eph", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Events) != 0 || h.Head.Seq != 0 {
			t.Fatalf("ephemeral event stored: head %+v, %d events", h.Head, len(h.Events))
		}
	})

	t.Run("TrimByCount", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		publishN(t, b, "short:x", 10)
		h, err := b.History(t.Context(), "short:x", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, h.Events, 8, 9, 10)
	})

	t.Run("TrimByAge", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		publishN(t, b, "aged:x", 2)
		deadline := time.Now().Add(5 * time.Second)
		for {
			publishN(t, b, "aged:y", 1) // time passes for the other topic too
			h, err := b.History(t.Context(), "aged:x", 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Events) == 0 {
				if h.Head.Seq != 2 {
					t.Fatalf("trimming lost the head: %+v", h.Head)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("events older than max age still in history: %d", len(h.Events))
			}
			waitABit(t, 50*time.Millisecond)
		}
	})

	t.Run("EpochChangesWhenStateIsLost", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		first := publishN(t, b, "wiped", 3)
		b.Reset()
		h, err := b.History(t.Context(), "wiped", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if h.Head.Epoch == first.Epoch || !ValidEpoch(h.Head.Epoch) {
			t.Fatalf("epoch after wipe %q, before %q", h.Head.Epoch, first.Epoch)
		}
		if h.Head.Seq != 0 || len(h.Events) != 0 {
			t.Fatalf("wiped topic still has %+v / %d events", h.Head, len(h.Events))
		}
	})

	t.Run("InvalidInput", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		ctx := t.Context()
		cases := []struct {
			p    Publication
			want error
		}{
			{Publication{Topic: "bad topic", Data: json.RawMessage(`1`)}, ErrInvalidTopic},
			{Publication{Topic: ":leading", Data: json.RawMessage(`1`)}, ErrInvalidTopic},
			{Publication{Topic: "t", Type: "a\nid: 9", Data: json.RawMessage(`1`)}, ErrInvalidEvent},
			{Publication{Topic: "t", Type: "a\rb", Data: json.RawMessage(`1`)}, ErrInvalidEvent},
			{Publication{Topic: "t", Data: json.RawMessage(`{"a":`)}, ErrInvalidEvent},
		}
		for _, c := range cases {
			if _, err := b.Publish(ctx, c.p); !errors.Is(err, c.want) {
				t.Errorf("Publish(%+v) = %v, want %v", c.p, err, c.want)
			}
		}
	})
}

// publishN publishes n events {"n":seq} to topic and returns the last result.
func publishN(t *testing.T, b Broker, topic string, n int) PublishResult {
	t.Helper()
	var last PublishResult
	for range n {
		h, err := b.History(t.Context(), topic, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		r, err := b.Publish(t.Context(), Publication{Topic: topic, Data: json.RawMessage(fmt.Sprintf(`{"n": %d}`, h.Head.Seq+1))})
		if err != nil {
			t.Fatalf("publish to %s: %v", topic, err)
		}
		last = r
	}
	return last
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func wantSeqs(t *testing.T, evs []*Event, want ...uint64) {
	t.Helper()
	got := make([]uint64, len(evs))
	for i, ev := range evs {
		got[i] = ev.Seq
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sequences %v, want %v", got, want)
	}
}

// waitABit pauses between polls of a condition that depends on the clock
// (age-based trimming), never as synchronisation with another goroutine.
func waitABit(t *testing.T, d time.Duration) {
	select {
	case <-time.After(d):
	case <-t.Context().Done():
	}
}

// recorder is a Handler that keeps what it is given.
type recorder struct {
	mu      sync.Mutex
	events  map[string][]*Event
	resubs  map[string]int
	changed chan struct{}
}

func runRecorder(t *testing.T, b Broker) *recorder {
	r := &recorder{events: map[string][]*Event{}, resubs: map[string]int{}, changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx, r)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *recorder) HandleEvent(ev *Event) {
	r.mu.Lock()
	r.events[ev.Topic] = append(r.events[ev.Topic], ev)
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) HandleResubscribed(topic string) {
	r.mu.Lock()
	r.resubs[topic]++
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) got(topic string) []*Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Event(nil), r.events[topic]...)
}

// wait waits until cond, called with r locked, holds.
func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitFor waits until topic has at least n events and returns them.
func (r *recorder) waitFor(t *testing.T, topic string, n int) []*Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if evs := r.got(topic); len(evs) >= n {
			return evs
		}
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("waited for %d events on %s, have %d", n, topic, len(r.got(topic)))
		}
	}
}

func TestMemoryBrokerConformance(t *testing.T) {
	t.Parallel()
	testBroker(t, func(t *testing.T) wiper {
		b := NewMemoryBroker(conformanceRetention)
		t.Cleanup(func() { b.Close() })
		return b
	})
}
