package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// frame is one parsed SSE frame.
type frame struct {
	ID, HasID   string // HasID is "y" when an id field was present
	Event, Data string
	Retry       string
	Comment     bool
}

// sseClient reads what a stream writes, as an EventSource would.
type sseClient struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
	closed  bool

	deadline time.Time
	block    chan struct{} // when non-nil, Write blocks until it closes or the deadline passes
}

func newSSEClient() *sseClient { return &sseClient{changed: make(chan struct{}, 1)} }

func (c *sseClient) Write(p []byte) (int, error) {
	c.mu.Lock()
	block, deadline := c.block, c.deadline
	c.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-time.After(time.Until(deadline)):
			return 0, os.ErrDeadlineExceeded
		}
	}
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *sseClient) Flush() error { return nil }

func (c *sseClient) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

// frames parses everything received so far.
func (c *sseClient) frames() []frame {
	c.mu.Lock()
	raw := c.buf.String()
	c.mu.Unlock()
	var out []frame
	var f frame
	var data []string
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if f != (frame{}) || data != nil {
				f.Data = strings.Join(data, "\n")
				out = append(out, f)
			}
			f, data = frame{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			out = append(out, frame{Comment: true})
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			f.ID, f.HasID = value, "y"
		case "event":
			f.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			f.Retry = value
		}
	}
	return out
}

// events returns the frames that carry data, as the app sees them.
func (c *sseClient) events() []frame {
	var out []frame
	for _, f := range c.frames() {
		if f.Data != "" {
			out = append(out, f)
		}
	}
	return out
}

// lastID is the id an EventSource would send as Last-Event-ID.
func (c *sseClient) lastID() string {
	id := ""
	for _, f := range c.frames() {
		if f.HasID != "" {
			id = f.ID
		}
	}
	return id
}

// waitEvents waits until n data frames have arrived.
func (c *sseClient) waitEvents(t *testing.T, n int) []frame {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if evs := c.events(); len(evs) >= n {
			return evs
		}
		select {
		case <-c.changed:
		case <-timeout:
			t.Fatalf("waited for %d events, have %d: %+v", n, len(c.events()), c.frames())
		}
	}
}

// payload is the data of an event frame.
type payload struct {
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
	TS    int64           `json:"ts"`
}

func (f frame) payload(t *testing.T) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal([]byte(f.Data), &p); err != nil {
		t.Fatalf("frame data %q: %v", f.Data, err)
	}
	return p
}

var testStreamConfig = StreamConfig{
	Heartbeat:    time.Hour,
	Retry:        time.Second,
	MaxLifetime:  time.Hour,
	WriteTimeout: time.Second,
	QueueSize:    64,
}

// stream runs one stream on hub until the test ends or stop is called.
type runningStream struct {
	client *sseClient
	stop   context.CancelFunc
	done   chan error
}

func openStream(t *testing.T, h *Hub, cfg StreamConfig, lastID string, topics ...string) *runningStream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	rs := &runningStream{client: newSSEClient(), stop: cancel, done: make(chan error, 1)}
	go func() {
		rs.done <- h.Serve(ctx, rs.client, cfg, StreamRequest{Topics: topics, LastEventID: lastID})
	}()
	// The stream is live once its opening and its position are written.
	timeout := time.After(10 * time.Second)
	for {
		frames := rs.client.frames()
		if lastID == "" && len(frames) > 0 && frames[len(frames)-1].HasID != "" {
			break
		}
		if lastID != "" && len(frames) > 1 {
			break // replay or resets follow the opening comment
		}
		if lastID != "" && h.liveStreams(topics[0]) > 0 && len(frames) > 0 {
			break
		}
		select {
		case <-rs.client.changed:
		case err := <-rs.done:
			t.Fatalf("stream ended early: %v", err)
		case <-timeout:
			t.Fatalf("stream did not start: %+v", frames)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Cleanup(cancel)
	return rs
}

func (rs *runningStream) close(t *testing.T) {
	t.Helper()
	rs.stop()
	select {
	case <-rs.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end")
	}
}

// liveStreams returns how many streams follow topic on this hub.
func (h *Hub) liveStreams(topic string) int {
	h.mu.Lock()
	t := h.topics[topic]
	h.mu.Unlock()
	if t == nil {
		return 0
	}
	select {
	case <-t.ready:
	default:
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.streams)
}

func startHub(t *testing.T, b Broker) *Hub {
	h, _ := runHub(t, b, time.Second)
	return h
}

// runHub runs a hub over b until the test ends, or until stop, which
// returns once the hub's writers have stopped.
func runHub(t *testing.T, b Broker, linger time.Duration) (h *Hub, stop func()) {
	h = NewHub(b, HubOptions{Linger: linger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, func() {
		cancel()
		eventually(t, "writers stopped", func() bool {
			h.writers.mu.Lock()
			defer h.writers.mu.Unlock()
			return h.writers.stopped
		})
	}
}

func publishData(t *testing.T, b Broker, topic string, data string) PublishResult {
	t.Helper()
	r, err := b.Publish(t.Context(), Publication{Topic: topic, Data: json.RawMessage(data)})
	if err != nil {
		t.Fatalf("publish %s to %s: %v", data, topic, err)
	}
	return r
}

// datas returns the published data of each event frame of topic.
func datas(t *testing.T, frames []frame, topic string) []string {
	var out []string
	for _, f := range frames {
		if f.Event == "reset" {
			continue
		}
		if p := f.payload(t); p.Topic == topic {
			out = append(out, string(p.Data))
		}
	}
	return out
}

func wantDatas(t *testing.T, got []string, from, to int) {
	t.Helper()
	var want []string
	for i := from; i <= to; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got events %v, want %v", got, want)
	}
}

// testStreams is the end-to-end part of the conformance suite: streams on a
// hub over the broker, as a client sees them.
func testStreams(t *testing.T, newBroker brokerFactory) {
	t.Run("LiveThenResumeWithoutLossOrDuplicate", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		s := openStream(t, h, testStreamConfig, "", "orders")
		for i := 1; i <= 5; i++ {
			publishData(t, b, "orders", fmt.Sprint(i))
		}
		wantDatas(t, datas(t, s.client.waitEvents(t, 5), "orders"), 1, 5)
		s.close(t)
		last := s.client.lastID()
		for i := 6; i <= 9; i++ {
			publishData(t, b, "orders", fmt.Sprint(i))
		}
		r := openStream(t, h, testStreamConfig, last, "orders")
		for i := 10; i <= 12; i++ {
			publishData(t, b, "orders", fmt.Sprint(i))
		}
		wantDatas(t, datas(t, r.client.waitEvents(t, 7), "orders"), 6, 12)
	})

	t.Run("FirstConnectionGetsAPosition", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		publishData(t, b, "pos", "1")
		h := startHub(t, b)
		s := openStream(t, h, testStreamConfig, "", "pos")
		s.close(t)
		if len(s.client.events()) != 0 {
			t.Fatalf("a first connection replayed history: %+v", s.client.events())
		}
		// The client saw no event, yet resumes exactly from where it joined.
		publishData(t, b, "pos", "2")
		r := openStream(t, h, testStreamConfig, s.client.lastID(), "pos")
		wantDatas(t, datas(t, r.client.waitEvents(t, 1), "pos"), 2, 2)
	})

	t.Run("ResumeThreeTopicsFromOneCursor", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		topics := []string{"org:acme:finance", "room:42", "user:alice"}
		s := openStream(t, h, testStreamConfig, "", topics[2], topics[0], topics[1])
		for i := 1; i <= 2; i++ {
			for _, tp := range topics {
				publishData(t, b, tp, fmt.Sprint(i))
			}
		}
		s.client.waitEvents(t, 6)
		s.close(t)
		for i := 3; i <= 5; i++ {
			for _, tp := range topics {
				publishData(t, b, tp, fmt.Sprint(i))
			}
		}
		// Same topics in another order: the cursor does not depend on it.
		r := openStream(t, h, testStreamConfig, s.client.lastID(), topics[1], topics[0], topics[2])
		frames := r.client.waitEvents(t, 9)
		for _, tp := range topics {
			wantDatas(t, datas(t, frames, tp), 3, 5)
		}
	})

	t.Run("TrimmedHistoryResets", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		s := openStream(t, h, testStreamConfig, "", "short:t", "keep")
		publishData(t, b, "short:t", "1")
		publishData(t, b, "keep", "1")
		s.client.waitEvents(t, 2)
		s.close(t)
		for i := 2; i <= 10; i++ { // retention keeps 3 of short:*
			publishData(t, b, "short:t", fmt.Sprint(i))
		}
		publishData(t, b, "keep", "2")
		r := openStream(t, h, testStreamConfig, s.client.lastID(), "short:t", "keep")
		frames := r.client.waitEvents(t, 2)
		wantReset(t, frames[0], ResetExpired, "short:t")
		wantDatas(t, datas(t, frames, "keep"), 2, 2)
		// After the reset the stream goes live from the head: no old events.
		publishData(t, b, "short:t", "11")
		frames = r.client.waitEvents(t, 3)
		wantDatas(t, datas(t, frames, "short:t"), 11, 11)
		// And its id resumes exactly.
		r.close(t)
		publishData(t, b, "short:t", "12")
		again := openStream(t, h, testStreamConfig, r.client.lastID(), "short:t", "keep")
		wantDatas(t, datas(t, again.client.waitEvents(t, 1), "short:t"), 12, 12)
	})

	t.Run("EpochChangeResets", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		s := openStream(t, h, testStreamConfig, "", "wipe")
		publishData(t, b, "wipe", "1")
		s.client.waitEvents(t, 1)
		s.close(t)
		b.Reset()
		publishData(t, b, "wipe", "2")
		r := openStream(t, h, testStreamConfig, s.client.lastID(), "wipe")
		frames := r.client.waitEvents(t, 1)
		wantReset(t, frames[0], ResetEpoch, "wipe")
	})

	t.Run("EpochChangeWhileLiveResets", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		s := openStream(t, h, testStreamConfig, "", "wipe2")
		publishData(t, b, "wipe2", "1")
		s.client.waitEvents(t, 1)
		b.Reset()
		publishData(t, b, "wipe2", "2")
		publishData(t, b, "wipe2", "3")
		frames := s.client.waitEvents(t, 4)
		wantReset(t, frames[1], ResetEpoch, "wipe2")
		wantDatas(t, datas(t, frames, "wipe2"), 1, 3)
	})

	t.Run("UnreadableCursorResets", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		publishData(t, b, "x", "1")
		for _, bad := range []string{"garbage", "42", "a000AAAA1"} {
			s := openStream(t, h, testStreamConfig, bad, "x")
			frames := s.client.waitEvents(t, 1)
			wantReset(t, frames[0], ResetInvalid, "x")
			publishData(t, b, "x", `"live"`)
			if got := datas(t, s.client.waitEvents(t, 2), "x"); len(got) != 1 || got[0] != `"live"` {
				t.Fatalf("after reset got %v", got)
			}
			s.close(t)
		}
	})

	t.Run("EphemeralHasNoID", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		s := openStream(t, h, testStreamConfig, "", "eph")
		before := s.client.lastID()
		if _, err := b.Publish(t.Context(), Publication{Topic: "eph", Type: "typing", Data: json.RawMessage(`{"u":"a"}`), Ephemeral: true}); err != nil {
			t.Fatal(err)
		}
		f := s.client.waitEvents(t, 1)[0]
		if f.HasID != "" || f.Event != "typing" || string(f.payload(t).Data) != `{"u":"a"}` {
			t.Fatalf("ephemeral frame %+v", f)
		}
		if s.client.lastID() != before {
			t.Fatal("an ephemeral event moved the client's position")
		}
	})

	t.Run("SlowStreamIsClosedOthersUnaffected", func(t *testing.T) {
		t.Parallel()
		b := newBroker(t)
		h := startHub(t, b)
		cfg := testStreamConfig
		cfg.QueueSize = 4
		cfg.WriteTimeout = 300 * time.Millisecond
		fast := openStream(t, h, testStreamConfig, "", "busy")
		slow := openStream(t, h, cfg, "", "busy")
		slow.client.mu.Lock()
		slow.client.block = make(chan struct{}) // stops reading
		slow.client.mu.Unlock()
		for i := 1; i <= 40; i++ {
			publishData(t, b, "busy", fmt.Sprint(i))
		}
		wantDatas(t, datas(t, fast.client.waitEvents(t, 40), "busy"), 1, 40)
		select {
		case err := <-slow.done:
			if !errors.Is(err, ErrSlowStream) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("slow stream ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("slow stream was not closed")
		}
		// It resumes from history with every event.
		slow.client.mu.Lock()
		slow.client.block = nil
		slow.client.mu.Unlock()
		got := datas(t, slow.client.events(), "busy")
		r := openStream(t, h, cfg, slow.client.lastID(), "busy")
		all := append(got, datas(t, r.client.waitEvents(t, 40-len(got)), "busy")...)
		wantDatas(t, all, 1, 40)
	})
}

func wantReset(t *testing.T, f frame, reason string, topics ...string) {
	t.Helper()
	if f.Event != "reset" || f.HasID == "" {
		t.Fatalf("want a reset frame with an id, got %+v", f)
	}
	var r struct {
		Topics []string `json:"topics"`
		Reason string   `json:"reason"`
	}
	if err := json.Unmarshal([]byte(f.Data), &r); err != nil {
		t.Fatal(err)
	}
	if r.Reason != reason || strings.Join(r.Topics, ",") != strings.Join(topics, ",") {
		t.Fatalf("reset %+v, want reason %s topics %v", r, reason, topics)
	}
}

func TestMemoryStreams(t *testing.T) {
	t.Parallel()
	testStreams(t, func(t *testing.T) wiper {
		b := NewMemoryBroker(conformanceRetention)
		t.Cleanup(func() { b.Close() })
		return b
	})
}
