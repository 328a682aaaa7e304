package limit

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/edge-rt/edge/internal/redistest"
)

// benchmarkAllow calls Allow from parallel goroutines over 1,000 keys, at
// a rate high enough that most calls are allowed (the common case).
func benchmarkAllow(b *testing.B, l Limiter) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := keys[next.Add(1)%uint64(len(keys))]
			if _, _, err := l.Allow(b.Context(), key, 1e6, 100); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMemoryLimiterAllow(b *testing.B) {
	benchmarkAllow(b, NewMemoryLimiter())
}

func BenchmarkRedisLimiterAllow(b *testing.B) {
	srv := redistest.Start(b)
	benchmarkAllow(b, NewRedisLimiter(srv.Client(b), ""))
}
