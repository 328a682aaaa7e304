package edge

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the core does. The counters are plain atomics, read by
// both the Prometheus collectors and Stats, so /metrics and /v1/stats cannot
// disagree.
type Metrics struct {
	streamsHTTP1, streamsHTTP2, streamsH2C atomic.Int64

	brokerSubscriptions atomic.Int64
	eventsPublished     atomic.Uint64
	eventsDelivered     atomic.Uint64
	eventsReplayed      atomic.Uint64
	resetsExpired       atomic.Uint64
	resetsEpoch         atomic.Uint64
	resetsInvalid       atomic.Uint64
	slowStreamsClosed   atomic.Uint64
	heals               atomic.Uint64
	streamWrites        atomic.Uint64
	bytesIdentity       atomic.Uint64
	bytesGzip           atomic.Uint64
	bytesBrotli         atomic.Uint64

	deliveryLatency prometheus.Histogram
}

// NewMetrics returns a zeroed set of metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edge_delivery_latency_seconds",
			Help:    "Time from a stored event's acceptance by the broker to its write on a stream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
}

// Stats is the headline figures of one node, as /v1/stats serves them.
type Stats struct {
	Streams             map[string]int64 `json:"streams"`
	BrokerSubscriptions int64            `json:"brokerSubscriptions"`
	Topics              int              `json:"topics"`
	EventsPublished     uint64           `json:"eventsPublished"`
	EventsDelivered     uint64           `json:"eventsDelivered"`
	EventsReplayed      uint64           `json:"eventsReplayed"`
	Resets              uint64           `json:"resets"`
	SlowStreamsClosed   uint64           `json:"slowStreamsClosed"`
}

// Stats returns the current figures; topics is the hub's topic count.
func (m *Metrics) Stats(topics int) Stats {
	return Stats{
		Streams: map[string]int64{
			"http1": m.streamsHTTP1.Load(),
			"h2":    m.streamsHTTP2.Load(),
			"h2c":   m.streamsH2C.Load(),
		},
		BrokerSubscriptions: m.brokerSubscriptions.Load(),
		Topics:              topics,
		EventsPublished:     m.eventsPublished.Load(),
		EventsDelivered:     m.eventsDelivered.Load(),
		EventsReplayed:      m.eventsReplayed.Load(),
		Resets:              m.resetsExpired.Load() + m.resetsEpoch.Load() + m.resetsInvalid.Load(),
		SlowStreamsClosed:   m.slowStreamsClosed.Load(),
	}
}

// Published counts n events published through this node.
func (m *Metrics) Published(n int) { m.eventsPublished.Add(uint64(n)) }

// streamGauge returns the open-streams gauge of a protocol label.
func (m *Metrics) streamGauge(proto string) *atomic.Int64 {
	switch proto {
	case "h2":
		return &m.streamsHTTP2
	case "h2c":
		return &m.streamsH2C
	default:
		return &m.streamsHTTP1
	}
}

func (m *Metrics) reset(reason string) {
	switch reason {
	case ResetExpired:
		m.resetsExpired.Add(1)
	case ResetEpoch:
		m.resetsEpoch.Add(1)
	default:
		m.resetsInvalid.Add(1)
	}
}

// Register adds the core's collectors to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	gauge := func(name, help string, labels prometheus.Labels, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f)
	}
	counter := func(name, help string, labels prometheus.Labels, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) })
	}
	i64 := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) } }
	collectors := []prometheus.Collector{
		gauge("edge_streams", "Open SSE streams by protocol.", prometheus.Labels{"protocol": "http1"}, i64(&m.streamsHTTP1)),
		gauge("edge_streams", "Open SSE streams by protocol.", prometheus.Labels{"protocol": "h2"}, i64(&m.streamsHTTP2)),
		gauge("edge_streams", "Open SSE streams by protocol.", prometheus.Labels{"protocol": "h2c"}, i64(&m.streamsH2C)),
		gauge("edge_broker_subscriptions", "Topics this node is subscribed to at the broker.", nil, i64(&m.brokerSubscriptions)),
		counter("edge_events_published_total", "Events published through this node.", nil, &m.eventsPublished),
		counter("edge_events_delivered_total", "Live events written to streams.", nil, &m.eventsDelivered),
		counter("edge_events_replayed_total", "Events written to streams from history on resume.", nil, &m.eventsReplayed),
		counter("edge_resets_total", "Reset frames sent, by reason.", prometheus.Labels{"reason": ResetExpired}, &m.resetsExpired),
		counter("edge_resets_total", "Reset frames sent, by reason.", prometheus.Labels{"reason": ResetEpoch}, &m.resetsEpoch),
		counter("edge_resets_total", "Reset frames sent, by reason.", prometheus.Labels{"reason": ResetInvalid}, &m.resetsInvalid),
		counter("edge_slow_streams_closed_total", "Streams closed because their queue overflowed.", nil, &m.slowStreamsClosed),
		counter("edge_stream_writes_total", "Writes (syscalls, each with every event queued) to streams; deliveries per write is the batching.", nil, &m.streamWrites),
		counter("edge_heals_total", "Times a topic was healed from history after a gap or resubscription.", nil, &m.heals),
		counter("edge_stream_bytes_written_total", "Bytes written to streams, by encoding.", prometheus.Labels{"encoding": "identity"}, &m.bytesIdentity),
		counter("edge_stream_bytes_written_total", "Bytes written to streams, by encoding.", prometheus.Labels{"encoding": "gzip"}, &m.bytesGzip),
		counter("edge_stream_bytes_written_total", "Bytes written to streams, by encoding.", prometheus.Labels{"encoding": "br"}, &m.bytesBrotli),
		m.deliveryLatency,
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// BytesWritten counts n bytes written to a stream on the wire, after the
// given content encoding ("" or "identity", "gzip", "br").
func (m *Metrics) BytesWritten(encoding string, n int) {
	switch encoding {
	case "gzip":
		m.bytesGzip.Add(uint64(n))
	case "br":
		m.bytesBrotli.Add(uint64(n))
	default:
		m.bytesIdentity.Add(uint64(n))
	}
}

// OpenStreams returns how many streams are open on this node.
func (m *Metrics) OpenStreams() int64 {
	return m.streamsHTTP1.Load() + m.streamsHTTP2.Load() + m.streamsH2C.Load()
}
