package limit

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is the key prefix a RedisLimiter uses when given none.
const DefaultRedisPrefix = "edge:limit:"

// redisExpiryGrace is how long a bucket's key outlives the time it takes
// to refill fully. An expired key reads as a full bucket, so expiring
// early would hand out a fraction of a token; the grace absorbs rounding
// to milliseconds, and costs only a second's memory per idle key.
const redisExpiryGrace = time.Second

//go:embed limiter_redis.lua
var redisAllowLua string

// redisAllowScript is the whole of Allow: one script, so that concurrent
// calls from any number of nodes never both take the last token.
var redisAllowScript = redis.NewScript(redisAllowLua)

// RedisLimiter is a Limiter kept in Redis (single, Sentinel or Cluster),
// so a limit holds across every node that shares the Redis. Each key is a
// hash "<prefix>{<key>}" (tokens, last refill ms); the hash tag keeps one
// bucket in one cluster slot whatever the key contains. Time is Redis's
// own, so nodes with skewed clocks agree, and each key expires once its
// bucket would be full again, so idle keys take no memory.
//
// Errors: when Redis cannot be reached, Allow returns an error wrapping
// ErrUnavailable and ok false; it never guesses. We recommend failing
// closed (refuse, 503) for publishes, as the HTTP layer does: failing open
// would lift the limit exactly when Redis is struggling, which is when a
// flood hurts most, and with the Redis broker a publish cannot succeed
// without Redis anyway. Failing open is defensible only for a limit whose
// breach is harmless.
type RedisLimiter struct {
	client redis.UniversalClient
	prefix string
}

var _ Limiter = (*RedisLimiter)(nil)

// NewRedisLimiter returns a limiter whose buckets live in client under
// prefix (DefaultRedisPrefix when empty). Limiters with the same client
// target and prefix share buckets, whichever node they run on. It does not
// own client: closing it is the caller's job.
func NewRedisLimiter(client redis.UniversalClient, prefix string) *RedisLimiter {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisLimiter{client: client, prefix: prefix}
}

// Allow implements Limiter with one round trip to Redis.
func (l *RedisLimiter) Allow(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if !validLimit(rate, burst) {
		return false, 0, ErrInvalidLimit
	}
	res, err := redisAllowScript.Run(ctx, l.client, []string{l.key(key)},
		// 'g' with full precision: a rate such as 0.1 must reach Lua as
		// written, not rounded to a fixed number of decimals.
		strconv.FormatFloat(rate, 'g', -1, 64), burst, redisExpiryGrace.Milliseconds(),
	).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("%w: limit script returned %d values", ErrUnavailable, len(res))
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Millisecond, nil
}

// key is the Redis key of key's bucket.
func (l *RedisLimiter) key(key string) string {
	return l.prefix + "{" + key + "}"
}
