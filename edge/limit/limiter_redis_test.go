package limit

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edge-rt/edge/internal/redistest"
)

// testPrefixes makes each limiter's buckets its own on a shared server.
var testPrefixes atomic.Int64

func testPrefix() string {
	return "test" + strconv.FormatInt(testPrefixes.Add(1), 10) + ":"
}

func TestRedisLimiter(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	testLimiter(t, func(t *testing.T) Limiter {
		return NewRedisLimiter(srv.FastClient(t), testPrefix())
	})
}

// TestRedisLimiterCluster runs the suite over a ClusterClient, against a
// one-node cluster that owns every slot, for the hash-tagged keys.
func TestRedisLimiterCluster(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--cluster-enabled", "yes")
	admin := srv.Client(t)
	if err := admin.ClusterAddSlotsRange(t.Context(), 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "cluster_state:ok", func() bool {
		return strings.Contains(admin.ClusterInfo(t.Context()).Val(), "cluster_state:ok")
	})
	testLimiter(t, func(t *testing.T) Limiter {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
		t.Cleanup(func() { c.Close() })
		return NewRedisLimiter(c, testPrefix())
	})
}

// TestRedisLimiterTwoNodes checks that two limiters with their own clients
// ("two nodes") share one bucket: burst in total, not each.
func TestRedisLimiterTwoNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	prefix := testPrefix()
	a := NewRedisLimiter(srv.FastClient(t), prefix)
	b := NewRedisLimiter(srv.FastClient(t), prefix)

	const burst = 10
	if got := allowConcurrently(t, []Limiter{a, b}, "user:1", burst, 4*burst); got != burst {
		t.Errorf("%d calls allowed across two nodes, want burst %d in total", got, burst)
	}
	mustAllow(t, a, "user:1", slowRate, burst, false, "node a past the shared burst")
	mustAllow(t, b, "user:1", slowRate, burst, false, "node b past the shared burst")

	// Taken in turns: the N+1th is refused whichever node takes it.
	for i := range burst {
		mustAllow(t, []Limiter{a, b}[i%2], "user:2", slowRate, burst, true, "call %d", i+1)
	}
	mustAllow(t, b, "user:2", slowRate, burst, false, "call %d on node b", burst+1)
	mustAllow(t, a, "user:2", slowRate, burst, false, "call %d on node a", burst+1)

	// Another prefix is another set of buckets.
	c := NewRedisLimiter(srv.FastClient(t), testPrefix())
	mustAllow(t, c, "user:1", slowRate, burst, true, "another prefix")
}

// TestRedisLimiterExpiry checks the bucket's key layout and that an idle
// key expires once its bucket would be full again.
func TestRedisLimiterExpiry(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.FastClient(t)
	l := NewRedisLimiter(rdb, "rl:")
	const rate, burst = 50.0, 2 // full again 20 ms after one take
	mustAllow(t, l, "user:7", rate, burst, true, "the first call")

	key := "rl:{user:7}"
	ctx := t.Context()
	ttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if max := 20*time.Millisecond + redisExpiryGrace; ttl <= 0 || ttl > max {
		t.Fatalf("PTTL %s = %v, want in (0, %v]", key, ttl, max)
	}
	tokens, err := rdb.HGet(ctx, key, "tokens").Float64()
	if err != nil || tokens < 1 || tokens > 2 {
		t.Fatalf("tokens = %v, %v; want a number in [1, 2]", tokens, err)
	}
	eventually(t, 5*time.Second, "expiry of "+key, func() bool {
		n, err := rdb.Exists(ctx, key).Result()
		return err == nil && n == 0
	})
	for range burst {
		mustAllow(t, l, "user:7", rate, burst, true, "the burst after expiry")
	}
}

// TestRedisLimiterUnavailable checks that a stopped Redis is an error,
// never a silent allow, and that the limiter recovers with the server.
func TestRedisLimiterUnavailable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l := NewRedisLimiter(srv.FastClient(t), "")
	mustAllow(t, l, "k", 1, 1, true, "before the stop")

	srv.Stop()
	ok, _, err := l.Allow(t.Context(), "k", 1, 1)
	if ok || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Allow with Redis stopped = %v, %v; want false, ErrUnavailable", ok, err)
	}

	// The restarted server is empty (and has no cached script: EVALSHA
	// falls back to EVAL), so the bucket is full again.
	srv.Restart()
	eventually(t, 5*time.Second, "Allow after the restart", func() bool {
		ok, _, err := l.Allow(t.Context(), "k", 1, 1)
		return err == nil && ok
	})
}
