package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"
)

var benchEvent = &Event{
	Topic: "orders", Type: "order.paid", Epoch: "AbC9", Seq: 1234, Time: 1795749448376,
	Data: json.RawMessage(`{"id":17,"status":"paid","total":"12.50","currency":"EUR"}`),
}

// BenchmarkEncodeFrame is the once-per-event encoding the hub shares among
// all streams of a topic.
func BenchmarkEncodeFrame(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		newDelivery(benchEvent)
	}
}

// BenchmarkAppendLive is the per-stream, per-event work: the checks, the
// cursor id and the copy of the shared frame into the write buffer.
func BenchmarkAppendLive(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("topics=%d", n), func(b *testing.B) {
			topics := make([]string, n)
			for i := range topics {
				topics[i] = fmt.Sprintf("topic-%d", i)
			}
			topics[0] = "orders"
			s := &Stream{topics: sortedTopics(topics), hub: NewHub(NewMemoryBroker(RetentionPolicy{}), HubOptions{})}
			s.setHash = topicSetHash(s.topics)
			s.pos = make([]Position, n)
			i := s.index("orders")
			d := newDelivery(benchEvent)
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				s.pos[i] = Position{Epoch: benchEvent.Epoch, Seq: benchEvent.Seq - 1}
				buf, _ = s.appendLive(buf[:0], d.ev, d.frame)
			}
		})
	}
}

// discardWriter is a StreamWriter that writes nowhere.
type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error)      { return len(p), nil }
func (discardWriter) Flush() error                     { return nil }
func (discardWriter) SetWriteDeadline(time.Time) error { return nil }

var _ io.Writer = discardWriter{}

// BenchmarkHubFanout publishes one event to a topic followed by N streams
// whose writers discard: the whole path from broker to every stream's write
// on this node, per event (divide ns/op by N for the cost per delivery).
func BenchmarkHubFanout(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			broker := NewMemoryBroker(RetentionPolicy{Default: Retention{MaxEvents: 10, MaxAge: time.Hour}})
			hub := NewHub(broker, HubOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go hub.Run(ctx)
			cfg := StreamConfig{Heartbeat: time.Hour, Retry: time.Second, MaxLifetime: time.Hour, WriteTimeout: time.Second, QueueSize: 1 << 20}
			for range n {
				go hub.Serve(ctx, discardWriter{}, cfg, StreamRequest{Topics: []string{"fan"}})
			}
			waitUntil(b, func() bool { return hub.liveStreams("fan") == n })
			data := json.RawMessage(`{"id":17,"status":"paid"}`)
			b.ResetTimer()
			for b.Loop() {
				if _, err := broker.Publish(ctx, Publication{Topic: "fan", Data: data}); err != nil {
					b.Fatal(err)
				}
			}
			// Wait for every stream to have written every event.
			want := uint64(b.N) * uint64(n)
			waitUntil(b, func() bool { return hub.metrics.eventsDelivered.Load() >= want })
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
		})
	}
}

// waitUntil polls cond until it holds, failing after a deadline.
func waitUntil(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("condition not reached within 60s")
		}
		time.Sleep(time.Millisecond)
	}
}
