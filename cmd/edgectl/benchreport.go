package main

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// benchReport is bench's result. Sizes are bytes unless named otherwise.
type benchReport struct {
	Server      string  `json:"server"`
	Proto       string  `json:"proto"`
	Topic       string  `json:"topic"`
	Sources     int     `json:"sources"`
	Interrupted bool    `json:"interrupted,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Burst       bool    `json:"burst,omitempty"`

	Streams        int     `json:"streams"`
	Open           int     `json:"open"`
	Connections    int64   `json:"connections"`
	OpenSeconds    float64 `json:"open_seconds"`
	ConnectErrors  int64   `json:"connect_errors"`
	StreamDrops    int64   `json:"stream_drops"`
	Reconnects     int64   `json:"reconnects"`
	WarmupEvents   int     `json:"warmup_events,omitempty"`
	WarmupComplete bool    `json:"warmup_complete,omitempty"`

	Memory memoryReport `json:"memory"`

	Events           int            `json:"events"`
	Published        int            `json:"published"`
	PublishErrors    int            `json:"publish_errors"`
	PublishSeconds   float64        `json:"publish_seconds"`
	PublishRate      float64        `json:"publish_rate"`
	PublishLatency   latencySummary `json:"publish_latency"`
	Expected         int64          `json:"expected_deliveries"`
	Delivered        int64          `json:"delivered"`
	Lost             int64          `json:"lost"`
	StreamsWithLoss  int            `json:"streams_with_loss"`
	LossExamples     []lossExample  `json:"loss_examples,omitempty"`
	Duplicated       int64          `json:"duplicated"`
	OutOfOrder       int64          `json:"out_of_order"`
	Resets           int64          `json:"resets"`
	Foreign          int64          `json:"foreign"`
	DeliverySeconds  float64        `json:"delivery_seconds"`
	DeliveriesPerSec float64        `json:"deliveries_per_second"`
	Latency          latencySummary `json:"latency"`
	Errors           []errorCount   `json:"errors,omitempty"`
}

// memoryReport is the server's memory before and after the streams opened.
type memoryReport struct {
	// Source is where RSS came from: "proc" or "metrics".
	Source     string        `json:"source"`
	Before     serverSample  `json:"before"`
	Idle       serverSample  `json:"idle"`
	AfterWarm  *serverSample `json:"after_warmup,omitempty"`
	IdleKiB    float64       `json:"idle_kib_per_stream"`
	HeapKiB    float64       `json:"idle_heap_kib_per_stream,omitempty"`
	Goroutines float64       `json:"goroutines_per_stream,omitempty"`
	WarmKiB    float64       `json:"warm_kib_per_stream,omitempty"`
}

// lossExample names a stream that missed events and the first of them.
type lossExample struct {
	Stream  int     `json:"stream"`
	Lost    int64   `json:"lost"`
	Missing []int64 `json:"missing"`
}

// fill computes the report once every stream has stopped.
func (rep *benchReport) fill(o benchOptions, open []*benchStream, shared *benchShared, dialer *sourceDialer, pub *publisher, res publishResult) {
	n := float64(len(open))
	rep.Connections = dialer.Conns.Load()
	m := &rep.Memory
	m.IdleKiB = float64(m.Idle.RSS-m.Before.RSS) / 1024 / n
	if m.Idle.HeapInuse >= 0 && m.Before.HeapInuse >= 0 {
		m.HeapKiB = float64(m.Idle.HeapInuse-m.Before.HeapInuse) / 1024 / n
	}
	if m.Idle.Goroutines >= 0 && m.Before.Goroutines >= 0 {
		m.Goroutines = float64(m.Idle.Goroutines-m.Before.Goroutines) / n
	}
	if m.AfterWarm != nil {
		m.WarmKiB = float64(m.AfterWarm.RSS-m.Before.RSS) / 1024 / n
	}

	rep.Published, rep.PublishErrors = res.ok, res.failed
	rep.PublishSeconds = res.last.Sub(res.first).Seconds()
	if res.ok > 1 && rep.PublishSeconds > 0 {
		rep.PublishRate = float64(res.ok-1) / rep.PublishSeconds
	}
	rep.PublishLatency = pub.hist.Summary()
	rep.Expected = int64(len(open)) * int64(res.ok)

	var lastAt int64
	for i, s := range open {
		rep.Delivered += s.unique.Load()
		rep.Duplicated += s.dup
		if o.publishers <= 1 { // with several in flight, n order is not publish order
			rep.OutOfOrder += s.reorder
		}
		rep.Resets += s.resets
		rep.Foreign += s.foreign
		rep.StreamDrops += s.drops
		rep.Reconnects += s.reconnects
		lastAt = max(lastAt, s.lastAt)
		var ex []int64
		limit := 0
		if len(rep.LossExamples) < 5 {
			limit = 10
		}
		lost, ex := s.missing(res.published, o.events, ex, limit)
		if lost > 0 {
			rep.Lost += lost
			rep.StreamsWithLoss++
			if limit > 0 {
				rep.LossExamples = append(rep.LossExamples, lossExample{Stream: i, Lost: lost, Missing: ex})
			}
		}
	}
	if lastAt > 0 && !res.first.IsZero() {
		rep.DeliverySeconds = time.Unix(0, lastAt).Sub(res.first).Seconds()
		if rep.DeliverySeconds > 0 {
			rep.DeliveriesPerSec = float64(rep.Delivered) / rep.DeliverySeconds
		}
	}
	rep.Latency = shared.latency.Summary()
	rep.Errors = append(shared.errs.list(), pub.errs.list()...)
}

// writeText prints the report for people.
func (rep *benchReport) writeText(w io.Writer) {
	pr := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	pace := fmt.Sprintf("at %g/s", rep.Rate)
	if rep.Burst {
		pace = "back to back"
	}
	pr("edgectl bench  %s  topic %q  %s from %d source address(es)", rep.Server, rep.Topic, rep.Proto, rep.Sources)
	if rep.Interrupted {
		pr("INTERRUPTED: the figures below are partial")
	}
	pr("streams     %d of %d open in %.2fs over %d connections; %d connect errors",
		rep.Open, rep.Streams, rep.OpenSeconds, rep.Connections, rep.ConnectErrors)
	m := rep.Memory
	line := fmt.Sprintf("memory      server RSS %s -> %s with the streams idle: %.1f KiB/stream",
		mib(m.Before.RSS), mib(m.Idle.RSS), m.IdleKiB)
	if m.HeapKiB != 0 || m.Goroutines != 0 {
		line += fmt.Sprintf(" (Go heap %.1f KiB, %.1f goroutines per stream)", m.HeapKiB, m.Goroutines)
	}
	pr("%s [%s]", line, m.Source)
	if m.AfterWarm != nil {
		complete := ""
		if !rep.WarmupComplete {
			complete = " (not all delivered)"
		}
		pr("            after %d warmup events%s: RSS %s, %.1f KiB/stream", rep.WarmupEvents, complete, mib(m.AfterWarm.RSS), m.WarmKiB)
	}
	pr("publish     %d of %d events %s in %.2fs (%.1f/s), %d failed; publish latency p50 %.2fms p99 %.2fms max %.2fms",
		rep.Published, rep.Events, pace, rep.PublishSeconds, rep.PublishRate, rep.PublishErrors,
		rep.PublishLatency.P50Ms, rep.PublishLatency.P99Ms, rep.PublishLatency.MaxMs)
	pr("delivery    %d of %d expected: %d lost (%d streams), %d duplicated, %d out of order, %d resets, %d foreign",
		rep.Delivered, rep.Expected, rep.Lost, rep.StreamsWithLoss, rep.Duplicated, rep.OutOfOrder, rep.Resets, rep.Foreign)
	pr("            %.0f deliveries/s over %.2fs; %d stream drops, %d reconnects",
		rep.DeliveriesPerSec, rep.DeliverySeconds, rep.StreamDrops, rep.Reconnects)
	for _, ex := range rep.LossExamples {
		pr("            stream %d lost %d, first missing n: %v", ex.Stream, ex.Lost, ex.Missing)
	}
	l := rep.Latency
	pr("latency     p50 %.2fms  p90 %.2fms  p99 %.2fms  p99.9 %.2fms  max %.2fms  mean %.2fms  (%d samples)",
		l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.MeanMs, l.Count)
	if len(rep.Errors) == 0 {
		pr("errors      none")
	}
	for i, e := range rep.Errors {
		label := ""
		if i == 0 {
			label = "errors"
		}
		pr("%-11s %d× %s", label, e.Count, e.Error)
	}
}

// mib formats a byte count in MiB, "?" when unknown.
func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}
