package uploads

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the upload service does. Partial uploads of a
// concatenation are not counted as uploads created or completed (their
// final upload is); their bytes are counted as received.
type Metrics struct {
	created, completed, failed, expired atomic.Uint64
	quarantined, leftoversRemoved       atomic.Uint64
	recovered                           atomic.Uint64
	bytesReceived, hashFallbackBytes    atomic.Uint64

	mu       sync.Mutex
	refusals map[string]*atomic.Uint64
}

func newMetrics() *Metrics {
	return &Metrics{refusals: make(map[string]*atomic.Uint64)}
}

// MetricsSnapshot is the counters at one moment.
type MetricsSnapshot struct {
	Created, Completed, Failed, Expired uint64
	// Quarantined counts uploads moved aside on a checksum mismatch;
	// LeftoversRemoved the files (objects) the janitor removed that
	// belonged to no upload, quarantined ones included.
	Quarantined, LeftoversRemoved uint64
	// Recovered counts completions the janitor announced because the
	// node that finished the upload did not.
	Recovered                        uint64
	BytesReceived, HashFallbackBytes uint64
	// Refusals counts refused requests by tus error code
	// (ERR_TOO_MANY_UPLOADS, ERR_CHECKSUM_MISMATCH, ...).
	Refusals map[string]uint64
}

// Snapshot returns the current counters.
func (m *Metrics) Snapshot() MetricsSnapshot {
	m.mu.Lock()
	refusals := make(map[string]uint64, len(m.refusals))
	for code, v := range m.refusals {
		refusals[code] = v.Load()
	}
	m.mu.Unlock()
	return MetricsSnapshot{
		Created:           m.created.Load(),
		Completed:         m.completed.Load(),
		Failed:            m.failed.Load(),
		Expired:           m.expired.Load(),
		Quarantined:       m.quarantined.Load(),
		LeftoversRemoved:  m.leftoversRemoved.Load(),
		Recovered:         m.recovered.Load(),
		BytesReceived:     m.bytesReceived.Load(),
		HashFallbackBytes: m.hashFallbackBytes.Load(),
		Refusals:          refusals,
	}
}

// refusal counts one refusal with tus error code code. The codes are the
// service's own constants, so the label's values are few.
func (m *Metrics) refusal(code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.refusals[code]
	if v == nil {
		v = new(atomic.Uint64)
		m.refusals[code] = v
	}
	v.Add(1)
}

// refusalCollector reads the refusal counters at scrape time, so a code
// first seen after Register still shows up.
type refusalCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func (c refusalCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c refusalCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.m.Snapshot()
	codes := make([]string, 0, len(snap.Refusals))
	for code := range snap.Refusals {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(snap.Refusals[code]), code)
	}
}

// Register adds the upload collectors to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	collectors := []prometheus.Collector{
		counter("edge_uploads_created_total", "Uploads created (partial uploads of a concatenation not counted).", &m.created),
		counter("edge_uploads_completed_total", "Uploads completed and accepted (partial uploads not counted).", &m.completed),
		counter("edge_uploads_failed_total", "Uploads failed after data arrived: content type, checksum, processing.", &m.failed),
		counter("edge_uploads_expired_total", "Unfinished uploads removed by the janitor.", &m.expired),
		counter("edge_uploads_quarantined_total", "Uploads moved to quarantine on a checksum mismatch.", &m.quarantined),
		counter("edge_upload_leftovers_removed_total", "Files the janitor removed that belonged to no upload: crash leftovers, temporary and quarantined files.", &m.leftoversRemoved),
		counter("edge_uploads_recovered_total", "Completions announced by the janitor because the node that finished the upload did not.", &m.recovered),
		counter("edge_upload_bytes_received_total", "Upload bytes written to the store.", &m.bytesReceived),
		counter("edge_upload_hash_fallback_bytes_total", "Upload bytes read again to compute a SHA-256 the saved state did not cover.", &m.hashFallbackBytes),
		refusalCollector{m: m, desc: prometheus.NewDesc("edge_upload_refusals_total",
			"Upload requests refused by the service, by tus error code.", []string{"code"}, nil)},
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
