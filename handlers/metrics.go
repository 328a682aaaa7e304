package handlers

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the HTTP layer refuses. Label values are a fixed set,
// never anything taken from a request.
type Metrics struct {
	authFailures  *prometheus.CounterVec
	limitRefusals *prometheus.CounterVec
}

// Limits named in edge_limit_refusals_total.
const (
	limitStreamsPerUser = "streams_per_user"
	limitStreamsPerIP   = "streams_per_ip"
	limitTopics         = "topics_per_stream"
	limitPublishRate    = "publish_rate"
	limitBodySize       = "body_size"
	limitEventSize      = "event_size"
	limitHeaderSize     = "header_size"
)

// NewMetrics registers the HTTP layer's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_auth_failures_total",
			Help: "Requests refused with 401, by reason (missing or invalid credentials).",
		}, []string{"reason"}),
		limitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_limit_refusals_total",
			Help: "Requests refused by a configured limit, by limit.",
		}, []string{"limit"}),
	}
	for _, c := range []prometheus.Collector{m.authFailures, m.limitRefusals} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Present every series from the start, so a dashboard sees zeros.
	for _, r := range []string{"missing", "invalid"} {
		m.authFailures.WithLabelValues(r)
	}
	for _, l := range []string{limitStreamsPerUser, limitStreamsPerIP, limitTopics, limitPublishRate, limitBodySize, limitEventSize, limitHeaderSize} {
		m.limitRefusals.WithLabelValues(l)
	}
	return m, nil
}

func (m *Metrics) authFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }

func (m *Metrics) refused(limit string) { m.limitRefusals.WithLabelValues(limit).Inc() }
