package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/labstack/echo/v4"
)

// Stream serves GET /v1/stream: one SSE connection for many topics.
type Stream struct {
	Hub    *edge.Hub
	Config edge.StreamConfig
	// MaxTopics is the most topics one stream may follow.
	MaxTopics int
	// Compression lists the encodings offered, in preference order.
	Compression []string

	limits  *limiter
	metrics *Metrics
	leeway  time.Duration
}

// Serve handles one stream request.
//
// An HTTP/1.1 stream takes its connection over (hijacks it): the handler
// returns and the hub's writers own the connection, so an idle stream costs
// no goroutine and no net/http buffers (about a third of what net/http
// holds per connection). Its end is a clean chunked end and a close. A
// stream that ends its client's way is noticed at the next write (at most a
// heartbeat later). HTTP/2 streams cannot be taken over: their handler
// waits for the stream's end.
func (h *Stream) Serve(c echo.Context) error {
	r := c.Request()
	topics, err := streamTopics(r, h.MaxTopics)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == "too_many_topics" {
			h.metrics.refused(limitTopics)
		}
		return err
	}
	// Every topic is checked before the stream starts, and the cursor only
	// ever names these topics: a crafted Last-Event-ID cannot reach others.
	p := principal(c)
	for _, t := range topics {
		if !p.CanSubscribe(t) {
			return forbidden("subscribe to", t)
		}
	}
	release, err := h.limits.acquireStream(p, c.RealIP())
	if err != nil {
		return err
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	req := edge.StreamRequest{
		Topics:      topics,
		LastEventID: lastID,
		Protocol:    protocol(r),
		OnEnd:       release,
	}
	if !p.ExpiresAt.IsZero() {
		// The stream ends when its token would be refused (exp plus the
		// leeway that accepted it), so the client comes back with a fresh
		// one and resumes. Ending at exp itself would open and end a
		// stream every few seconds during the leeway.
		req.Until = p.ExpiresAt.Add(h.leeway)
	}

	hdr := c.Response().Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	// no-transform: proxies must not recompress (and so buffer) the stream.
	hdr.Set("Cache-Control", "no-cache, no-transform")
	// nginx buffers proxied responses until they end unless told not to.
	hdr.Set("X-Accel-Buffering", "no")
	encoding := negotiateEncoding(r, h.Compression)
	if len(h.Compression) > 0 {
		hdr.Add("Vary", "Accept-Encoding")
	}
	if encoding != "" {
		hdr.Set("Content-Encoding", encoding)
	}
	metrics := h.Hub.Metrics()

	if r.ProtoMajor == 1 {
		raw, err := hijack(c, metrics, encoding)
		if err == nil {
			w := withCompression(raw, encoding)
			if _, err := h.Hub.Open(r.Context(), w, h.Config, req); err != nil {
				release()
				// The opening (with its retry hint) went out: end cleanly,
				// and the client comes back after the hint.
				w.Close()
				logStreamEnd(c, err)
			}
			return nil
		}
		if !errors.Is(err, http.ErrNotSupported) {
			release()
			return err
		}
		// A writer that cannot be hijacked (a test recorder, a wrapper):
		// serve it like HTTP/2.
	}

	c.Response().WriteHeader(http.StatusOK)
	w := withCompression(newResponseWriter(c.Response(), metrics, encoding), encoding)
	err = h.Hub.Serve(r.Context(), w, h.Config, req)
	w.Flush() // the compressor's end, if any
	release()
	logStreamEnd(c, err)
	// The response is committed: errors can only end the stream, after which
	// the client reconnects and resumes from its Last-Event-ID.
	return nil
}

func logStreamEnd(c echo.Context, err error) {
	if err != nil && c.Request().Context().Err() == nil {
		c.Logger().Debugf("stream ended: %v", err)
	}
}

// streamTopics reads topic=a&topic=b and topics=a,b.
func streamTopics(r *http.Request, max int) ([]string, error) {
	q := r.URL.Query()
	var topics []string
	seen := map[string]bool{}
	add := func(t string) error {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			return nil
		}
		if !edge.ValidTopic(t) {
			return invalidTopic(t)
		}
		seen[t] = true
		topics = append(topics, t)
		if len(topics) > max {
			return errorf(http.StatusBadRequest, "too_many_topics", "a stream may follow at most %d topics", max)
		}
		return nil
	}
	for _, t := range q["topic"] {
		if err := add(t); err != nil {
			return nil, err
		}
	}
	for _, list := range q["topics"] {
		for _, t := range strings.Split(list, ",") {
			if err := add(t); err != nil {
				return nil, err
			}
		}
	}
	if len(topics) == 0 {
		return nil, errorf(http.StatusBadRequest, "no_topic", "name at least one topic: ?topic=a&topic=b or ?topics=a,b")
	}
	return topics, nil
}

// protocol labels a request for metrics.
func protocol(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2 && r.TLS != nil:
		return "h2"
	case r.ProtoMajor == 2:
		return "h2c"
	}
	return "http1"
}
