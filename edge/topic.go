package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// MaxTopicLen is the longest topic name accepted.
const MaxTopicLen = 128

// ValidTopic reports whether name matches ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$.
// Written out rather than as a regexp because it runs for every topic of
// every stream and publish.
func ValidTopic(name string) bool {
	if len(name) == 0 || len(name) > MaxTopicLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// MaxTypeLen is the longest event type accepted.
const MaxTypeLen = 64

// Normalize checks p and puts it in the form brokers store: Data compacted
// (so it holds no raw line breaks) and Type "message" spelled as empty. It
// guards against frame injection: a type with CR, LF or NUL could end the
// SSE field early and forge another event.
func (p *Publication) Normalize() error {
	if !ValidTopic(p.Topic) {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, p.Topic)
	}
	if p.Type == "message" {
		p.Type = ""
	}
	if len(p.Type) > MaxTypeLen {
		return fmt.Errorf("%w: type longer than %d bytes", ErrInvalidEvent, MaxTypeLen)
	}
	if strings.ContainsAny(p.Type, "\r\n\x00") {
		return fmt.Errorf("%w: type contains CR, LF or NUL", ErrInvalidEvent)
	}
	if len(p.Data) == 0 {
		p.Data = json.RawMessage("null")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, p.Data); err != nil {
		return fmt.Errorf("%w: data is not valid JSON: %v", ErrInvalidEvent, err)
	}
	p.Data = buf.Bytes()
	if len(p.IdempotencyKey) > 256 {
		return fmt.Errorf("%w: idempotency key longer than 256 bytes", ErrInvalidEvent)
	}
	return nil
}
