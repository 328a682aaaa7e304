package limit

import (
	"context"
	"sync"
	"time"
)

// sweepInterval is how often MemoryLimiter looks for buckets to drop. A
// sweep walks every bucket under the lock, so it runs on a timer's worth
// of calls rather than on each one; memory is then bounded by the keys
// seen in one refill time plus one interval.
const sweepInterval = time.Minute

// MemoryLimiter is a Limiter kept in this process, for the memory broker
// (one node). It never returns ErrUnavailable. Buckets idle long enough to
// be full are dropped, since a missing bucket behaves exactly as a full
// one; so a flood of distinct keys cannot grow memory without bound.
type MemoryLimiter struct {
	now func() time.Time // time.Now; tests replace it

	mu        sync.Mutex
	buckets   map[string]*memoryBucket
	lastSweep time.Time
}

var _ Limiter = (*MemoryLimiter)(nil)

// memoryBucket is one key's state as of last; rate and burst are those of
// the latest call, which the sweep needs to tell whether it is full.
type memoryBucket struct {
	tokens float64
	last   time.Time
	rate   float64
	burst  int
}

// NewMemoryLimiter returns an empty in-process limiter.
func NewMemoryLimiter() *MemoryLimiter {
	return &MemoryLimiter{now: time.Now, buckets: make(map[string]*memoryBucket)}
}

// Allow implements Limiter. It does not block, so ctx is unused.
func (m *MemoryLimiter) Allow(_ context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if !validLimit(rate, burst) {
		return false, 0, ErrInvalidLimit
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Read under the lock, so that calls see time in the order they update
	// buckets: a stale now would move last back and count time twice.
	now := m.now()
	if now.Sub(m.lastSweep) >= sweepInterval {
		m.sweep(now)
	}
	b := m.buckets[key]
	if b == nil {
		b = &memoryBucket{tokens: float64(burst), last: now}
		m.buckets[key] = b
	}
	b.tokens = refill(b.tokens, now.Sub(b.last), rate, burst)
	b.last, b.rate, b.burst = now, rate, burst
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, nil
	}
	return false, waitFor(b.tokens, 1, rate), nil
}

// sweep drops the buckets that are full by now. m.mu must be held.
func (m *MemoryLimiter) sweep(now time.Time) {
	m.lastSweep = now
	for key, b := range m.buckets {
		if refill(b.tokens, now.Sub(b.last), b.rate, b.burst) >= float64(b.burst) {
			delete(m.buckets, key)
		}
	}
}

// numBuckets returns the number of buckets kept, for tests.
func (m *MemoryLimiter) numBuckets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}
