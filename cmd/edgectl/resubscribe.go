package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/r3labs/sse/v2"
)

// subscription keeps one SSE stream open through the r3labs/sse/v2 client
// until its context ends, resuming from the last event id it saw.
//
// The r3labs client (v2.10.0, unmaintained since 2023) cannot be used as is
// for a stream that must stay open for hours:
//
//   - When the server ends a stream cleanly, SubscribeWithContext returns nil
//     and the stream stays gone (r3labs/sse#147). Edge ends every stream at
//     its max lifetime and on drain, expecting the client to come back, so an
//     outer loop here subscribes again, sending the last id as Last-Event-ID.
//   - Its default reconnect strategy is an ExponentialBackOff whose
//     MaxElapsedTime (15 minutes) counts from the first connect and is never
//     reset, so the first outage after the 15-minute mark ends the stream for
//     good. We pass our own, with MaxElapsedTime 0 (never give up), jitter,
//     wrapped in backoff.WithContext so cancelling stops a pending wait at
//     once, and reset after every event so each outage starts afresh.
//   - It ignores `retry:`; we use the server's hint as the pause before
//     resubscribing, so a draining node spreads its clients' return.
//   - Events over 64 KiB fail unless ClientMaxBufferSize is raised.
//   - It retries any non-200 answer forever. A 4xx other than 408 and 429
//     will not get better (bad topic, no token), so it ends the
//     subscription, as it ends a browser's EventSource.
//
// One sse.Client per subscription: the client keeps per-stream state (the
// last event id) that must not be shared.
type subscription struct {
	// URL is the stream's URL, topics included.
	URL string
	// Header is sent with every request (Authorization).
	Header map[string]string
	// HTTPClient makes the requests. It must not have a Timeout: that would
	// cut every stream.
	HTTPClient *http.Client
	// LastEventID is where to resume; "" starts from now. Run updates it.
	LastEventID string
	// MaxBufferSize bounds one event. Default 1 MiB.
	MaxBufferSize int
	// NewBackOff makes the reconnect strategy of each subscribe call.
	// Default: defaultBackOff.
	NewBackOff func() backoff.BackOff
	// DefaultRetry is the pause before resubscribing after a clean end when
	// the server sent no `retry:`. Default 1s.
	DefaultRetry time.Duration
	// OnEvent receives every dispatched event, in order, from one goroutine.
	OnEvent func(streamEvent)
	// OnReconnect, when set, is told of every reconnect and its pause: err
	// is nil after a clean end of the stream by the server.
	OnReconnect func(err error, wait time.Duration)
}

// streamEvent is one event as the subscription hands it on.
type streamEvent struct {
	// ID is the event's own id, "" when it had none (ephemeral events).
	ID    string
	Event string
	Data  []byte
}

// errGiveUp marks an answer that retrying cannot fix.
var errGiveUp = errors.New("server refused the stream")

// statusError is a non-200 answer to a stream request.
type statusError struct {
	Code int
	Body string
}

// Error says the status and, when there is one, the server's error body.
func (e *statusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("stream request answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("stream request answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// defaultBackOff waits 0.5 s, then up to 1.5 times longer each failure,
// ±50% jitter so a fleet of clients does not reconnect in step, capped at
// 30 s, and never stops.
func defaultBackOff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMultiplier(1.5),
		backoff.WithMaxInterval(30*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
}

// healthyConnection is how long a stream must have lasted, if it delivered
// no event, for its end to count as a normal one (max lifetime, drain)
// rather than a server that accepts and hangs up at once.
const healthyConnection = 5 * time.Second

// Run subscribes until ctx ends (then it returns nil) or the server refuses
// the stream for good (then it returns the refusal, matching errGiveUp).
func (s *subscription) Run(ctx context.Context) error {
	maxBuf := s.MaxBufferSize
	if maxBuf <= 0 {
		maxBuf = 1 << 20
	}
	newBackOff := s.NewBackOff
	if newBackOff == nil {
		newBackOff = defaultBackOff
	}
	defRetry := s.DefaultRetry
	if defRetry <= 0 {
		defRetry = time.Second
	}
	hc := s.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}

	subCtx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)

	client := sse.NewClient(s.URL, sse.ClientMaxBufferSize(maxBuf))
	client.Connection = hc
	client.Headers = s.Header
	client.ResponseValidator = func(_ *sse.Client, resp *http.Response) error {
		// r3labs closes the body only when there is no validator and on
		// success: a failing validator must close it itself.
		if resp.StatusCode == http.StatusOK {
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
				return nil
			}
			resp.Body.Close()
			err := fmt.Errorf("%w: answer is %q, not text/event-stream", errGiveUp, resp.Header.Get("Content-Type"))
			giveUp(err)
			return err
		}
		err := &statusError{Code: resp.StatusCode, Body: readErrorBody(resp.Body)}
		resp.Body.Close()
		if permanentStatus(resp.StatusCode) {
			// Cancelling makes the backoff return Stop, so r3labs returns.
			giveUp(fmt.Errorf("%w: %w", errGiveUp, err))
		}
		return err
	}
	if s.OnReconnect != nil {
		client.ReconnectNotify = func(err error, wait time.Duration) { s.OnReconnect(err, wait) }
	}

	var (
		retryHint time.Duration // the server's last `retry:`
		quickEnds int           // clean ends in a row of unhealthy connections
		ownID     []byte        // the slice r3labs holds as its last id
	)
	for {
		if s.LastEventID != "" {
			ownID = []byte(s.LastEventID)
			client.LastEventID.Store(ownID)
		}
		b := backoff.WithContext(newBackOff(), subCtx)
		client.ReconnectStrategy = b
		delivered := false
		start := time.Now()

		err := client.SubscribeWithContext(subCtx, "", func(msg *sse.Event) {
			// r3labs fills msg.ID of an event without an id with the last
			// id it stored: the very slice it was given, or the previous
			// event's. Pointer identity tells the two apart, so ephemeral
			// events neither show nor move a position they do not have.
			own := len(msg.ID) > 0 && (len(ownID) == 0 || &msg.ID[0] != &ownID[0])
			if own {
				ownID = msg.ID
				s.LastEventID = string(msg.ID)
			}
			if len(msg.Retry) > 0 {
				if ms, err := strconv.Atoi(string(msg.Retry)); err == nil && ms >= 0 {
					retryHint = time.Duration(ms) * time.Millisecond
				}
			}
			// The connection works: the next outage starts from the
			// initial interval. Safe: r3labs calls this handler from the
			// goroutine that runs the backoff.
			b.Reset()
			// A block with no data (the opening retry line, an id alone)
			// is not an event, as in EventSource. r3labs delivers it.
			if len(msg.Data) == 0 {
				return
			}
			delivered = true
			ev := streamEvent{Event: string(msg.Event), Data: msg.Data}
			if own {
				ev.ID = s.LastEventID
			}
			s.OnEvent(ev)
		})
		if subCtx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return context.Cause(subCtx)
		}
		if err != nil {
			// Only a stopped backoff returns an error, and ours stops only
			// when subCtx ends; kept so a changed backoff cannot spin.
			return err
		}

		// A clean end (#147): come back after the server's hint, or back
		// off when connections end without doing anything.
		wait := defRetry
		if retryHint > 0 {
			wait = retryHint
		}
		if delivered || time.Since(start) >= healthyConnection {
			quickEnds = 0
		} else {
			quickEnds++
			wait = min(wait<<min(quickEnds, 6), 30*time.Second)
		}
		wait = jitter(wait)
		if s.OnReconnect != nil {
			s.OnReconnect(nil, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-subCtx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return nil
			}
			return context.Cause(subCtx)
		case <-t.C:
		}
	}
}

// permanentStatus reports whether a stream answer will not improve on retry.
func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// jitter spreads d over [0.75d, 1.25d) so clients ended together return
// apart.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*3/4 + rand.N(d/2+1)
}
