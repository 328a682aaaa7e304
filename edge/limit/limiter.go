// Package limit holds the mechanics of Edge's abuse limits: token-bucket
// rate limiters (in memory for one node, in Redis across nodes) and a
// per-node concurrency counter. It knows nothing of HTTP: the handlers map
// a refusal to 429 with Retry-After and an error to 503.
package limit

import (
	"context"
	"errors"
	"math"
	"time"
)

// Limiter decides whether one more action under key is allowed now.
//
// Each key has one bucket that holds up to burst tokens and gains rate
// tokens per second; a new or long-idle bucket is full, so a client may
// spend burst actions at once and then rate per second. The bucket's
// settings are those of the call: callers pass the same rate and burst for
// a key (a lowered burst caps the tokens already saved at the new burst).
type Limiter interface {
	// Allow takes one token from key's bucket (rate tokens/second, burst
	// capacity). When refused, retryAfter says when a token will be there.
	// An error means the limiter's store is unreachable (ErrUnavailable) or
	// rate and burst are invalid (ErrInvalidLimit); ok is then false.
	Allow(ctx context.Context, key string, rate float64, burst int) (ok bool, retryAfter time.Duration, err error)
}

// Errors the limiters return; callers match them with errors.Is.
var (
	// ErrUnavailable means the limiter's store could not be reached, so
	// nothing is known about the bucket. See RedisLimiter for whether to
	// fail open or closed.
	ErrUnavailable = errors.New("limit: store unavailable")
	// ErrInvalidLimit means rate is not a positive finite number or burst
	// is less than 1. It is a configuration mistake, not a refusal: a
	// bucket that can never hold a token would refuse everyone forever.
	ErrInvalidLimit = errors.New("limit: rate must be positive and finite, burst at least 1")
)

// maxWait caps retry-after and expiry times (about 30 years) so that a
// tiny rate cannot overflow a Duration or be refused by PEXPIRE.
const maxWait = 1e12 * time.Millisecond

func validLimit(rate float64, burst int) bool {
	return rate > 0 && !math.IsInf(rate, 0) && burst >= 1
}

// refill returns tokens after elapsed at rate, capped at burst. A negative
// elapsed (a clock stepped back) adds nothing rather than taking tokens.
func refill(tokens float64, elapsed time.Duration, rate float64, burst int) float64 {
	if elapsed > 0 {
		tokens += elapsed.Seconds() * rate
	}
	return min(tokens, float64(burst))
}

// waitFor returns how long a bucket holding tokens takes to reach want at
// rate, rounded up so that a caller retrying after it finds the token.
func waitFor(tokens, want, rate float64) time.Duration {
	if tokens >= want {
		return 0
	}
	d := math.Ceil((want - tokens) / rate * float64(time.Second))
	if d >= float64(maxWait) {
		return maxWait
	}
	return time.Duration(d)
}
