package main

import (
	"bufio"
	"bytes"
	"errors"
	"math"
)

// sseReader is the bench's SSE parser, written to cost next to nothing per
// event so that 10,000 streams on the server's own machine measure the
// server, not the client: no allocation per line or per event once its
// buffers have grown, and no goroutine or channel of its own (r3labs has
// both, and a regexp-free but allocating parser).
//
// It follows the WHATWG event stream rules for what it keeps: `data:` lines
// joined by LF, `event:`, `id:` (ignored if it holds NUL), `retry:`, comments
// skipped, one leading space after the colon dropped, a leading BOM dropped,
// and a block without data not dispatched. Lines may end in LF or CRLF; a
// lone CR as line end, allowed by the spec but sent by no server we target
// (Edge sends LF), is not recognised.
type sseReader struct {
	br      *bufio.Reader
	maxLine int
	started bool

	long    []byte // a line longer than br's buffer, put together
	data    []byte
	event   []byte
	id      []byte
	hasData bool
	hasID   bool // the current block had an id line

	// LastID is the last event id seen, as EventSource keeps it: blocks
	// without an id line leave it unchanged.
	LastID []byte
	// SawID reports whether LastID was ever set.
	SawID bool
	// Retry is the last `retry:` value in milliseconds, or -1.
	Retry int64
}

// sseEvent is one dispatched event. Its slices belong to the reader and
// are only valid until the next call to Next.
type sseEvent struct {
	// ID is the block's own id; HasID says whether it had one.
	ID    []byte
	HasID bool
	// Event is the type, empty for "message".
	Event []byte
	Data  []byte
}

// errLineTooLong reports a line over the reader's limit: a runaway or
// hostile stream must not make the client buffer without bound.
var errLineTooLong = errors.New("SSE line too long")

// newSSEReader reads events from br, refusing lines over maxLine bytes.
func newSSEReader(br *bufio.Reader, maxLine int) *sseReader {
	return &sseReader{br: br, maxLine: maxLine, Retry: -1}
}

// Next returns the next event, or the read error (io.EOF at the end). An
// event cut short by the end of the stream is dropped, as the spec says.
func (r *sseReader) Next() (sseEvent, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		r.field(line)
	}
}

// readLine returns the next line without its line end. The slice is valid
// until the next read.
func (r *sseReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.long = append(r.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(r.long) > r.maxLine {
				return nil, errLineTooLong
			}
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if err != nil {
		return nil, err
	}
	if len(line) > r.maxLine+2 {
		return nil, errLineTooLong
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if !r.started {
		r.started = true
		line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
	}
	return line, nil
}

// field applies one non-empty line.
func (r *sseReader) field(line []byte) {
	if line[0] == ':' {
		return // comment: heartbeat or the stream's opening
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) { // no allocation: the compiler compares in place
	case "data":
		if r.hasData {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		r.hasData = true
	case "event":
		r.event = append(r.event[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.id = append(r.id[:0], value...)
			r.hasID = true
		}
	case "retry":
		if n, ok := parseDigits(value); ok {
			r.Retry = n
		}
	}
}

// dispatch ends a block: it returns the event if the block had data, and
// resets the block's buffers either way.
func (r *sseReader) dispatch() (sseEvent, bool) {
	if r.hasID {
		r.LastID = append(r.LastID[:0], r.id...)
		r.SawID = true
	}
	ev := sseEvent{HasID: r.hasID, Event: r.event, Data: r.data}
	if r.hasID {
		ev.ID = r.id
	}
	ok := r.hasData
	r.hasData, r.hasID = false, false
	r.data, r.event = r.data[:0], r.event[:0]
	return ev, ok
}

// parseDigits parses a non-empty run of ASCII digits that fits an int64,
// as `retry:` wants (and the bench's Unix nanoseconds, 19 digits).
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// benchPayload finds n, t and r in the data of a bench event,
// {"topic":..,"data":{"n":12,"t":1700000000000000000,"r":42},"ts":..},
// without a JSON decoder: bench reads millions of them. ok is false for
// anything else, which bench counts as foreign.
func benchPayload(data []byte) (n, t, run int64, ok bool) {
	i := bytes.Index(data, []byte(`"data":{`))
	if i < 0 {
		return 0, 0, 0, false
	}
	inner := data[i+len(`"data":{`):]
	if n, ok = jsonIntField(inner, `"n":`); !ok {
		return 0, 0, 0, false
	}
	if t, ok = jsonIntField(inner, `"t":`); !ok {
		return 0, 0, 0, false
	}
	if run, ok = jsonIntField(inner, `"r":`); !ok {
		return 0, 0, 0, false
	}
	return n, t, run, true
}

// jsonIntField parses the integer after key in b (optional minus sign, then
// digits, ended by ',' or '}').
func jsonIntField(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	end := bytes.IndexAny(b, ",}")
	if end < 0 {
		return 0, false
	}
	v, ok := parseDigits(b[:end])
	if neg {
		v = -v
	}
	return v, ok
}
