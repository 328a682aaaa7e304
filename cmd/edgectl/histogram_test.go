package main

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	// Buckets tile the range with no gap or overlap, and each is at most
	// 1/128 of its values wide.
	var next uint64
	for i := range histNumBuckets {
		lo, hi := histRange(i)
		if lo != next || hi < lo {
			t.Fatalf("bucket %d = [%d, %d], want it to start at %d", i, lo, hi, next)
		}
		if w := hi - lo + 1; w > 1 && float64(w)/float64(lo) > 1.0/128 {
			t.Fatalf("bucket %d = [%d, %d] is %.4f wide", i, lo, hi, float64(w)/float64(lo))
		}
		for _, v := range []uint64{lo, hi} {
			if b := histBucket(v); b != i {
				t.Fatalf("histBucket(%d) = %d, want %d", v, b, i)
			}
		}
		next = hi + 1
	}
	if next != 1<<histMaxBits {
		t.Fatalf("buckets end at %d, want %d", next, uint64(1)<<histMaxBits)
	}
}

// nearestRank is the exact nearest-rank quantile of sorted.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.9999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name    string
		samples []time.Duration
	}{
		{"one", []time.Duration{5 * time.Millisecond}},
		{"small exact", []time.Duration{1 * time.Microsecond, 2 * time.Microsecond, 3 * time.Microsecond, 200 * time.Microsecond}},
		{"1..1000 µs", func() []time.Duration {
			var s []time.Duration
			for i := 1; i <= 1000; i++ {
				s = append(s, time.Duration(i)*time.Microsecond)
			}
			return s
		}()},
		{"log-normal-ish", func() []time.Duration {
			var s []time.Duration
			for range 100000 {
				s = append(s, time.Duration(rng.ExpFloat64()*float64(2*time.Millisecond))+time.Duration(rng.IntN(50))*time.Microsecond)
			}
			return s
		}()},
		{"long tail", []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond, 3 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h histogram
			for _, d := range tc.samples {
				h.Record(d)
			}
			sorted := slices.Clone(tc.samples)
			for i := range sorted {
				sorted[i] = sorted[i].Truncate(time.Microsecond)
			}
			slices.Sort(sorted)
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				want, got := nearestRank(sorted, q), h.Quantile(q)
				if diff := (got - want).Abs(); float64(diff) > float64(want)/256+float64(time.Microsecond) {
					t.Errorf("Quantile(%v) = %v, want %v ±0.4%%", q, got, want)
				}
			}
			if h.Max() != sorted[len(sorted)-1] {
				t.Errorf("Max = %v, want %v", h.Max(), sorted[len(sorted)-1])
			}
			if h.Count() != uint64(len(sorted)) {
				t.Errorf("Count = %d, want %d", h.Count(), len(sorted))
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	t.Parallel()
	var h histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram should read zero")
	}
	h.Record(-time.Second) // a clock step: counted as zero
	h.Record(100 * 365 * 24 * time.Hour)
	if h.Quantile(0.5) != 0 {
		t.Errorf("p50 = %v, want 0", h.Quantile(0.5))
	}
	if got, want := h.Max(), time.Duration(1<<histMaxBits-1)*time.Microsecond; got != want {
		t.Errorf("Max = %v, want the clamp %v", got, want)
	}
}

func TestHistogramConcurrentRecord(t *testing.T) {
	t.Parallel()
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Max() != 7999*time.Microsecond {
		t.Fatalf("Count = %d, Max = %v", h.Count(), h.Max())
	}
}
