package edge

import (
	"bytes"
	"strconv"
)

// delivery is one event as the hub hands it to streams: the event and its SSE
// frame without the id line, encoded once and shared by every stream (the id
// differs per stream, since a cursor covers all of a stream's topics).
type delivery struct {
	ev    *Event
	frame []byte
}

func newDelivery(ev *Event) *delivery {
	return &delivery{ev: ev, frame: appendEventFrame(nil, ev)}
}

// appendEventFrame appends the event and data fields of ev and the blank
// line that ends the frame: `data: {"topic":..,"data":..,"ts":..}`.
func appendEventFrame(dst []byte, ev *Event) []byte {
	if ev.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, ev.Type...)
		dst = append(dst, '\n')
	}
	// Topic names are plain ASCII without quotes or backslashes (ValidTopic),
	// so they need no JSON escaping.
	payload := make([]byte, 0, len(ev.Data)+len(ev.Topic)+40)
	payload = append(payload, `{"topic":"`...)
	payload = append(payload, ev.Topic...)
	payload = append(payload, `","data":`...)
	payload = append(payload, ev.Data...)
	payload = append(payload, `,"ts":`...)
	payload = strconv.AppendInt(payload, ev.Time, 10)
	payload = append(payload, '}')
	dst = appendData(dst, payload)
	return append(dst, '\n')
}

// appendData appends payload as data fields, one per line of it: a CR, LF or
// CRLF inside the payload would otherwise end the field and let the rest be
// read as other fields. Compact JSON has no raw line breaks, so this is one
// line in practice; the split is the guarantee.
func appendData(dst, payload []byte) []byte {
	for {
		i := bytes.IndexAny(payload, "\r\n")
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, payload...)
			return append(dst, '\n')
		}
		dst = append(dst, payload[:i]...)
		dst = append(dst, '\n')
		if payload[i] == '\r' && i+1 < len(payload) && payload[i+1] == '\n' {
			i++
		}
		payload = payload[i+1:]
	}
}

// appendID appends an id field holding a cursor.
func appendID(dst []byte, setHash [3]byte, positions []Position) []byte {
	dst = append(dst, "id: "...)
	dst = appendCursor(dst, setHash, positions)
	return append(dst, '\n')
}

// appendRetry appends a retry field (reconnection time in milliseconds).
func appendRetry(dst []byte, ms int64) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '\n')
}
