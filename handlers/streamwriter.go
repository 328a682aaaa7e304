package handlers

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/labstack/echo/v4"
)

// responseWriter writes a stream through echo's response (HTTP/2, or a
// writer that cannot be hijacked) and reaches the connection's flush and
// deadline through http.ResponseController, which unwraps middleware
// writers.
type responseWriter struct {
	wire     *echo.Response
	rc       *http.ResponseController
	metrics  *edge.Metrics
	encoding string
}

func newResponseWriter(w *echo.Response, m *edge.Metrics, encoding string) *responseWriter {
	return &responseWriter{wire: w, rc: http.NewResponseController(w), metrics: m, encoding: encoding}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	n, err := w.wire.Write(p)
	w.metrics.BytesWritten(w.encoding, n)
	return n, err
}

func (w *responseWriter) Flush() error                       { return w.rc.Flush() }
func (w *responseWriter) SetWriteDeadline(t time.Time) error { return w.rc.SetWriteDeadline(t) }

// rawWriter writes a stream to a hijacked HTTP/1.1 connection as a chunked
// body: what is written between flushes becomes one chunk and goes out in
// one writev. Its buffer comes from a pool per flush, so an idle stream
// holds none.
type rawWriter struct {
	conn     net.Conn
	metrics  *edge.Metrics
	encoding string
	buf      *[]byte
	headLen  int // bytes of buf that are the response head, not body
	closed   sync.Once
	// Scratch for Flush, kept here so a flush allocates nothing: at tens
	// of thousands of writes a second, garbage per write is GC time.
	size [18]byte
	iov  [4][]byte
	bufs net.Buffers
}

var rawBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// hijack takes the connection over and queues the response head, which
// goes out with the first flush (the stream's opening).
func hijack(c echo.Context, m *edge.Metrics, encoding string) (*rawWriter, error) {
	conn, _, err := http.NewResponseController(c.Response()).Hijack()
	if err != nil {
		return nil, err
	}
	// The status is set for the request log; nothing else reads it now.
	c.Response().Status = http.StatusOK
	w := &rawWriter{conn: conn, metrics: m, encoding: encoding}
	head := w.take()
	*head = append(*head, "HTTP/1.1 200 OK\r\n"...)
	hdr := c.Response().Header().Clone()
	hdr.Set("Transfer-Encoding", "chunked")
	// The connection ends with the stream: say so, so no client waits to
	// reuse it.
	hdr.Set("Connection", "close")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	bw := bufio.NewWriter(&appender{head})
	hdr.Write(bw)
	bw.Flush()
	*head = append(*head, "\r\n"...)
	w.headLen = len(*head)
	return w, nil
}

// appender lets http.Header.Write append to a byte slice.
type appender struct{ b *[]byte }

func (a *appender) Write(p []byte) (int, error) { *a.b = append(*a.b, p...); return len(p), nil }

func (w *rawWriter) take() *[]byte {
	if w.buf == nil {
		w.buf = rawBufPool.Get().(*[]byte)
		*w.buf = (*w.buf)[:0]
	}
	return w.buf
}

func (w *rawWriter) Write(p []byte) (int, error) {
	b := w.take()
	*b = append(*b, p...)
	return len(p), nil
}

// Flush sends what was written as one chunk (after the response head, the
// first time).
func (w *rawWriter) Flush() error {
	if w.buf == nil {
		return nil
	}
	b := *w.buf
	head := b[:w.headLen]
	body := b[w.headLen:]
	var err error
	if len(body) > 0 || len(head) > 0 {
		w.bufs = append(w.iov[:0], head)
		if len(body) > 0 {
			size := append(strconv.AppendInt(w.size[:0], int64(len(body)), 16), '\r', '\n')
			w.bufs = append(w.bufs, size, body, crlf)
		}
		var n int64
		n, err = w.bufs.WriteTo(w.conn)
		w.metrics.BytesWritten(w.encoding, int(n))
		clear(w.iov[:]) // drop the references to the pooled buffer
	}
	w.headLen = 0
	rawBufPool.Put(w.buf)
	w.buf = nil
	return err
}

var crlf = []byte("\r\n")

func (w *rawWriter) SetWriteDeadline(t time.Time) error { return w.conn.SetWriteDeadline(t) }

// Close ends the chunked body and the connection.
func (w *rawWriter) Close() error {
	w.closed.Do(func() {
		w.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if w.buf != nil { // a head or data never flushed
			w.Flush()
		}
		w.conn.Write([]byte("0\r\n\r\n"))
		w.conn.Close()
	})
	return nil
}

// Abort makes a blocked write fail now.
func (w *rawWriter) Abort() { w.conn.SetWriteDeadline(time.Now()) }

// compressedWriter compresses a stream, flushing the compressor on every
// Flush so no event waits in it.
type compressedWriter struct {
	inner edge.StreamWriter
	zw    flushWriter
}

// withCompression wraps w in a compressor for encoding ("" for none). The
// result is always a StreamCloser; Close and Abort reach w when it has them.
func withCompression(w edge.StreamWriter, encoding string) edgeCloser {
	if encoding == "" {
		if c, ok := w.(edgeCloser); ok {
			return c
		}
		return nopCloser{w}
	}
	return &compressedWriter{inner: w, zw: newCompressor(encoding, w)}
}

// edgeCloser is edge.StreamCloser; named here for brevity.
type edgeCloser = edge.StreamCloser

type nopCloser struct{ edge.StreamWriter }

func (nopCloser) Close() error { return nil }
func (nopCloser) Abort()       {}

func (c *compressedWriter) Write(p []byte) (int, error) { return c.zw.Write(p) }

func (c *compressedWriter) Flush() error {
	if err := c.zw.Flush(); err != nil {
		return err
	}
	return c.inner.Flush()
}

func (c *compressedWriter) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }

func (c *compressedWriter) Close() error {
	if cl, ok := c.inner.(edge.StreamCloser); ok {
		return cl.Close()
	}
	return nil
}

func (c *compressedWriter) Abort() {
	if cl, ok := c.inner.(edge.StreamCloser); ok {
		cl.Abort()
	}
}
