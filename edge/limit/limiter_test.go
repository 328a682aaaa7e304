package limit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowRate refills so slowly (one token in 1,000 s) that no token comes
// back while a test runs, whatever the machine's speed.
const slowRate = 0.001

// testLimiter is the conformance suite every Limiter runs. newLimiter
// returns a limiter whose buckets no other test sees.
func testLimiter(t *testing.T, newLimiter func(t *testing.T) Limiter) {
	t.Run("BurstThenRefusal", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		const rate, burst = 2.0, 3
		start := time.Now()
		for i := range burst {
			mustAllow(t, l, "k", rate, burst, true, "call %d of the burst", i+1)
		}
		retry := mustAllow(t, l, "k", rate, burst, false, "the call past the burst")
		elapsed := time.Since(start)
		// The bucket was empty after the burst, less what refilled while the
		// calls ran; the server rounds its clock to milliseconds.
		perToken := time.Duration(float64(time.Second) / rate)
		if hi, lo := perToken+2*time.Millisecond, perToken-elapsed-2*time.Millisecond; retry > hi || retry < lo {
			t.Errorf("retryAfter = %v, want within [%v, %v] (1/rate less the %v the calls took)", retry, lo, hi, elapsed)
		}
		// A refusal takes nothing: the next call is refused too, no later.
		if again := mustAllow(t, l, "k", rate, burst, false, "a second refusal"); again > retry {
			t.Errorf("second retryAfter %v > first %v: a refusal must not take a token", again, retry)
		}
	})

	t.Run("Refill", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		const rate, burst = 20.0, 2
		for range burst {
			mustAllow(t, l, "k", rate, burst, true, "burst")
		}
		before := time.Now()
		retry := mustAllow(t, l, "k", rate, burst, false, "the drained bucket")
		eventually(t, 5*time.Second, "a token to refill", func() bool {
			ok, _, err := l.Allow(t.Context(), "k", rate, burst)
			if err != nil {
				t.Fatalf("Allow: %v", err)
			}
			return ok
		})
		if waited := time.Since(before); waited < retry-2*time.Millisecond {
			t.Errorf("a token came back after %v, before the promised retryAfter %v", waited, retry)
		}
	})

	t.Run("KeysIndependent", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		for range 2 {
			mustAllow(t, l, "a", slowRate, 2, true, "key a")
		}
		mustAllow(t, l, "a", slowRate, 2, false, "key a past its burst")
		for _, key := range []string{"b", "a:", "{a}", ""} {
			for range 2 {
				mustAllow(t, l, key, slowRate, 2, true, "key %q after a is drained", key)
			}
		}
	})

	t.Run("ConcurrentTakeExactlyBurst", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		const burst, callers = 25, 100
		if got := allowConcurrently(t, []Limiter{l}, "k", burst, callers); got != burst {
			t.Errorf("%d of %d concurrent calls allowed, want exactly burst %d", got, callers, burst)
		}
	})

	t.Run("InvalidLimit", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		for _, tc := range []struct {
			rate  float64
			burst int
		}{
			{0, 1}, {-1, 1}, {math.NaN(), 1}, {math.Inf(1), 1}, {1, 0}, {1, -1},
		} {
			ok, _, err := l.Allow(t.Context(), "k", tc.rate, tc.burst)
			if !errors.Is(err, ErrInvalidLimit) || ok {
				t.Errorf("Allow(rate %v, burst %d) = %v, %v; want false, ErrInvalidLimit", tc.rate, tc.burst, ok, err)
			}
		}
	})
}

// mustAllow calls Allow and fails the test unless it returns want without
// error. It returns retryAfter.
func mustAllow(t *testing.T, l Limiter, key string, rate float64, burst int, want bool, what string, args ...any) time.Duration {
	t.Helper()
	ok, retry, err := l.Allow(t.Context(), key, rate, burst)
	if err != nil {
		t.Fatalf("Allow(%q) for %s: %v", key, fmt.Sprintf(what, args...), err)
	}
	if ok != want {
		t.Fatalf("Allow(%q) for %s = %v, want %v", key, fmt.Sprintf(what, args...), ok, want)
	}
	if ok && retry != 0 {
		t.Errorf("Allow(%q) allowed with retryAfter %v, want 0", key, retry)
	}
	if !ok && retry <= 0 {
		t.Errorf("Allow(%q) refused with retryAfter %v, want > 0", key, retry)
	}
	return retry
}

// allowConcurrently makes callers calls on key at once, spread over ls,
// and returns how many were allowed.
func allowConcurrently(t *testing.T, ls []Limiter, key string, burst, callers int) int {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			ok, _, err := ls[i%len(ls)].Allow(context.Background(), key, slowRate, burst)
			if err != nil {
				t.Errorf("Allow: %v", err)
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	close(start) // release them together, to race for the last tokens
	wg.Wait()
	return int(allowed.Load())
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		<-tick.C
	}
}

func TestMemoryLimiter(t *testing.T) {
	t.Parallel()
	testLimiter(t, func(*testing.T) Limiter { return NewMemoryLimiter() })
}

// TestMemoryLimiterSweep checks that full buckets are dropped, and only
// those, on a clock the test moves.
func TestMemoryLimiterSweep(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	m := NewMemoryLimiter()
	m.now = func() time.Time { return now }
	ctx := t.Context()

	m.Allow(ctx, "fast", 1, 2)        // full again 1 s later
	m.Allow(ctx, "slow", slowRate, 1) // empty for 1,000 s
	if ok, _, _ := m.Allow(ctx, "fast", 1, 2); !ok || m.numBuckets() != 2 {
		t.Fatalf("ok %v with %d buckets, want true with 2", ok, m.numBuckets())
	}
	now = now.Add(sweepInterval - time.Second)
	m.Allow(ctx, "other", 1, 1) // no sweep yet: the interval has not passed
	if m.numBuckets() != 3 {
		t.Fatalf("%d buckets before the sweep interval, want 3", m.numBuckets())
	}
	now = now.Add(time.Second)
	m.Allow(ctx, "new", 1, 1) // sweeps: "fast" and "other" are full
	if m.numBuckets() != 2 {
		t.Fatalf("%d buckets after a sweep, want 2 (slow, new)", m.numBuckets())
	}
	// The slow bucket kept its state: still empty.
	if ok, retry, _ := m.Allow(ctx, "slow", slowRate, 1); ok || retry < 900*time.Second {
		t.Errorf("slow bucket after the sweep: ok %v, retryAfter %v; want refused for ~940 s", ok, retry)
	}
	// A dropped bucket comes back full.
	for range 2 {
		if ok, _, _ := m.Allow(ctx, "fast", 1, 2); !ok {
			t.Errorf("dropped bucket did not come back full")
		}
	}
}
