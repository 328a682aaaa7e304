package handlers

import (
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
}

// Serve handles one stream request.
func (h *Stream) Serve(c echo.Context) error {
	r := c.Request()
	topics, err := streamTopics(r, h.MaxTopics)
	if err != nil {
		return err
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}

	w := c.Response()
	hdr := w.Header()
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
	w.WriteHeader(http.StatusOK)

	sw := &streamWriter{
		wire:     w,
		rc:       http.NewResponseController(w),
		metrics:  h.Hub.Metrics(),
		encoding: encoding,
	}
	sw.out = sw.countingWrite
	if encoding != "" {
		sw.compressor = newCompressor(encoding, writerFunc(sw.countingWrite))
		sw.out = sw.compressor.Write
	}
	err = h.Hub.Serve(r.Context(), sw, h.Config, edge.StreamRequest{
		Topics:      topics,
		LastEventID: lastID,
		Protocol:    protocol(r),
	})
	if err != nil && r.Context().Err() == nil {
		c.Logger().Debugf("stream ended: %v", err)
	}
	// The response is committed: errors can only end the stream, after which
	// the client reconnects and resumes from its Last-Event-ID.
	return nil
}

// streamWriter writes through echo's response (so its byte count and hooks
// see it), optionally through a compressor flushed on every Flush, and
// reaches the connection's flush and deadline through the
// ResponseController, which unwraps middleware writers.
type streamWriter struct {
	wire       *echo.Response
	rc         *http.ResponseController
	metrics    *edge.Metrics
	encoding   string
	compressor flushWriter
	out        func([]byte) (int, error)
}

func (s *streamWriter) Write(p []byte) (int, error) { return s.out(p) }

func (s *streamWriter) Flush() error {
	if s.compressor != nil {
		if err := s.compressor.Flush(); err != nil {
			return err
		}
	}
	return s.rc.Flush()
}

func (s *streamWriter) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// countingWrite writes to the wire and counts the bytes as they go out.
func (s *streamWriter) countingWrite(p []byte) (int, error) {
	n, err := s.wire.Write(p)
	s.metrics.BytesWritten(s.encoding, n)
	return n, err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

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
