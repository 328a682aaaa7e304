package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram's buckets are log-linear, as in HdrHistogram: exact below
// 256 µs, then 128 buckets per doubling, so a bucket is at most 1/128 of its
// values wide and a quantile read at the bucket's middle is within 0.4% of
// the true sample. Chosen over keeping every sample so memory stays 35 KiB
// whatever streams × events is: 10,000 × 200 samples would fit in a slice,
// a long soak at 20,000 streams would not.
const (
	histSubBits    = 7                // 128 buckets per doubling
	histLinear     = 2 << histSubBits // values below are exact: 256
	histMaxBits    = 40               // 2^40 µs: 12 days, far past any latency
	histNumBuckets = (histMaxBits - histSubBits + 1) << histSubBits
)

// histogram counts durations at microsecond resolution. Record is safe from
// any number of goroutines (every stream's receiver records into one).
type histogram struct {
	counts [histNumBuckets]atomic.Uint64
	n      atomic.Uint64
	sumUS  atomic.Uint64
	maxUS  atomic.Uint64
}

// Record adds one duration; negative ones (a clock step) count as zero.
func (h *histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	us = min(us, 1<<histMaxBits-1)
	h.counts[histBucket(us)].Add(1)
	h.n.Add(1)
	h.sumUS.Add(us)
	// A load first: the max rarely changes, so most records never write
	// the shared word.
	for old := h.maxUS.Load(); us > old; old = h.maxUS.Load() {
		if h.maxUS.CompareAndSwap(old, us) {
			break
		}
	}
}

// histBucket is the bucket of us (< 2^histMaxBits).
func histBucket(us uint64) int {
	l := bits.Len64(us)
	if l <= histSubBits+1 {
		return int(us)
	}
	shift := l - (histSubBits + 1)
	return shift<<histSubBits + int(us>>shift)
}

// histRange is the smallest and largest value that fall in bucket i.
func histRange(i int) (lo, hi uint64) {
	if i < histLinear {
		return uint64(i), uint64(i)
	}
	shift := i>>histSubBits - 1
	m := uint64(i - shift<<histSubBits)
	return m << shift, (m+1)<<shift - 1
}

// Count is the number of recorded durations.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Max is the largest recorded duration, exact.
func (h *histogram) Max() time.Duration {
	return time.Duration(h.maxUS.Load()) * time.Microsecond
}

// Mean is the average recorded duration.
func (h *histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sumUS.Load()/n) * time.Microsecond
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1): the smallest
// recorded value such that at least q of all values are at most it, read
// at its bucket's middle and never above the exact max. Call it once
// recording has stopped.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := histRange(i)
			v := min(lo+(hi-lo)/2, h.maxUS.Load())
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// latencySummary is a histogram's headline figures in milliseconds, for
// the report.
type latencySummary struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summary reads the headline figures.
func (h *histogram) Summary() latencySummary {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return latencySummary{
		Count:  h.Count(),
		MeanMs: ms(h.Mean()),
		P50Ms:  ms(h.Quantile(0.50)),
		P90Ms:  ms(h.Quantile(0.90)),
		P99Ms:  ms(h.Quantile(0.99)),
		P999Ms: ms(h.Quantile(0.999)),
		MaxMs:  ms(h.Max()),
	}
}
