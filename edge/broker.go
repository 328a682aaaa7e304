package edge

import (
	"context"
	"encoding/json"
)

// Broker is what Edge needs from the system that stores and carries events
// between nodes. MemoryBroker serves one process; RedisBroker serves any number
// of nodes sharing one Redis (single, Sentinel or Cluster).
//
// The rules every implementation keeps (the conformance suite in
// broker_test.go checks them against both):
//
//   - Each topic has an epoch and a sequence. The epoch is made when the
//     topic's state is first created (by Publish or History) and changes only
//     when that state is lost (a wiped Redis, expired metadata). Within an
//     epoch, stored events get sequence numbers 1, 2, 3, ... with no gap and
//     no reuse.
//   - Publish of a stored event is atomic: the idempotency check, the next
//     sequence, the append to history, the trim by count and age and the
//     pub/sub delivery happen together or not at all. An error from Publish
//     means the event may not exist; it is never silently dropped after a nil
//     error.
//   - An ephemeral event gets no sequence, is not stored, and is delivered
//     only to subscriptions live at the moment it is published.
//   - Subscribe returns once the subscription is live: every event published
//     after it returns reaches the Handler, unless the connection to the
//     broker drops; after a drop the broker resubscribes by itself and calls
//     HandleResubscribed, so that the caller heals the gap from History.
//     Delivery is therefore at most once, and in publish order per topic.
//   - Handler methods are called from one goroutine per broker and must not
//     block.
type Broker interface {
	// Publish stores (unless p.Ephemeral) and delivers one event.
	Publish(ctx context.Context, p Publication) (PublishResult, error)
	// History returns up to limit stored events of topic with a sequence
	// greater than after, oldest first, and the topic's current head. It
	// creates the topic's state (and so its epoch) when there is none, so
	// that every position a client is given names a real epoch. A limit of 0
	// returns only the head.
	History(ctx context.Context, topic string, after uint64, limit int) (History, error)
	// Subscribe starts delivery of topic's events to the Handler given to Run.
	Subscribe(ctx context.Context, topic string) error
	// Unsubscribe stops delivery of topic's events.
	Unsubscribe(ctx context.Context, topic string) error
	// Run delivers the events of subscribed topics to h until ctx ends or the
	// broker is closed. It is called once; Subscribe waits for it to start.
	Run(ctx context.Context, h Handler) error
	// Ping reports whether the broker can serve publishes now.
	Ping(ctx context.Context) error
	// Close releases the broker's connections.
	Close() error
}

// Handler receives what a Broker's subscriptions deliver.
type Handler interface {
	// HandleEvent is called once for each event received on a subscribed
	// topic, in the order received.
	HandleEvent(ev *Event)
	// HandleResubscribed is called when the subscription to topic was
	// re-established after the broker connection was lost: events published
	// meanwhile may be missing and must be read from History.
	HandleResubscribed(topic string)
}

// Publication is a request to publish one event.
type Publication struct {
	// Topic is the topic's name; it must satisfy ValidTopic.
	Topic string
	// Type is the SSE event type; empty means "message".
	Type string
	// Data is the published JSON value, compacted.
	Data json.RawMessage
	// Ephemeral events are delivered live only: no sequence, no history.
	Ephemeral bool
	// IdempotencyKey, when set, makes a repeated Publish with the same key on
	// the same topic return the first result instead of storing a second
	// event. Ignored for ephemeral events.
	IdempotencyKey string
}

// Position is a place in a topic's history: its epoch and the sequence of the
// last event at or before it. Seq 0 is the start of the epoch.
type Position struct {
	Epoch string
	Seq   uint64
}

// PublishResult says where a published event landed.
type PublishResult struct {
	// Position of the stored event; zero for an ephemeral event.
	Position
	// Time is the event's timestamp in Unix milliseconds.
	Time int64
	// Duplicate is true when the IdempotencyKey had been seen and Position is
	// that of the first publish.
	Duplicate bool
}

// History is a page of a topic's stored events.
type History struct {
	// Events are ordered by sequence, oldest first.
	Events []*Event
	// Head is the topic's epoch and its last assigned sequence.
	Head Position
}

// Event is one event as brokers deliver it and streams send it.
type Event struct {
	Topic string
	// Type is the SSE event type; empty means "message".
	Type string
	// Data is the published JSON value.
	Data json.RawMessage
	// Epoch and Seq place a stored event in its topic; both are zero for an
	// ephemeral event.
	Epoch string
	Seq   uint64
	// Time is when the broker accepted the event, in Unix milliseconds.
	Time int64
}

// Stored reports whether the event has a place in history (and so an SSE id).
func (e *Event) Stored() bool { return e.Seq != 0 }
