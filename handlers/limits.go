package handlers

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/edge-rt/edge/edge/auth"
	"github.com/edge-rt/edge/edge/limit"
	"github.com/labstack/echo/v4"
)

// Limits are the abuse limits the handlers enforce; zero disables none of
// them: config.Validate fills every one.
type Limits struct {
	// StreamsPerUser and StreamsPerIP bound concurrent streams on this node.
	StreamsPerUser, StreamsPerIP int
	// PublishRate (per second) and PublishBurst bound publishes per user
	// or API key, across nodes when the limiter is Redis's.
	PublishRate  float64
	PublishBurst int
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
}

// limiter enforces Limits.
type limiter struct {
	Limits
	rate    limit.Limiter
	streams *limit.Counter
	metrics *Metrics
}

// acquireStream takes a stream slot for the user and for the address; the
// returned release gives both back.
func (l *limiter) acquireStream(p *auth.Principal, ip string) (func(), error) {
	releaseUser, ok := l.streams.Acquire("user:"+p.Subject, l.StreamsPerUser)
	if !ok {
		l.metrics.refused(limitStreamsPerUser)
		return nil, tooMany(time.Second, "too_many_streams", "this user already has %d streams open on this node", l.StreamsPerUser)
	}
	releaseIP, ok := l.streams.Acquire("ip:"+ip, l.StreamsPerIP)
	if !ok {
		releaseUser()
		l.metrics.refused(limitStreamsPerIP)
		return nil, tooMany(time.Second, "too_many_streams", "this address already has %d streams open on this node", l.StreamsPerIP)
	}
	return func() { releaseIP(); releaseUser() }, nil
}

// allowPublish takes a token from the publisher's bucket. When the store is
// unreachable it refuses (503): a limit that vanishes when Redis struggles
// is no limit, and the publish could not be stored anyway.
func (l *limiter) allowPublish(c echo.Context, p *auth.Principal) error {
	key := "pub:user:" + p.Subject
	if p.APIKey != "" {
		key = "pub:key:" + p.APIKey
	}
	ok, retry, err := l.rate.Allow(c.Request().Context(), key, l.PublishRate, l.PublishBurst)
	switch {
	case errors.Is(err, limit.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, "limiter_unavailable", "the rate limiter cannot be reached; retry with the same Idempotency-Key")
	case err != nil:
		return err
	case !ok:
		l.metrics.refused(limitPublishRate)
		return tooMany(retry, "rate_limited", "more than %g publishes per second (burst %d)", l.PublishRate, l.PublishBurst)
	}
	return nil
}

// retryAfterError is a 429 that tells the client when to come back.
type retryAfterError struct {
	err   *Error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

func tooMany(after time.Duration, code, format string, args ...any) error {
	return &retryAfterError{err: errorf(http.StatusTooManyRequests, code, format, args...), after: after}
}

// retryAfterSeconds rounds up: a client told 0 would retry at once.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}

// limitHeaders answers 431 (in JSON) to requests whose headers exceed max.
// net/http's own limit (http.Server.MaxHeaderBytes, set higher) answers in
// plain text, so this check comes first for all but absurd requests.
func limitHeaders(max int, m *Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			size := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
			for k, vs := range r.Header {
				for _, v := range vs {
					size += len(k) + len(v) + 4
				}
			}
			if size > max {
				m.refused(limitHeaderSize)
				return errorf(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request headers are %d bytes, the limit is %d", size, max)
			}
			return next(c)
		}
	}
}
