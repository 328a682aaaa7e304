package edge

import "errors"

// Errors the core returns; callers match them with errors.Is.
var (
	// ErrUnavailable means the broker cannot be reached: the publish did not
	// happen and may be retried (with the same Idempotency-Key).
	ErrUnavailable = errors.New("edge: broker unavailable")
	// ErrInvalidTopic means a topic name does not match the allowed syntax.
	ErrInvalidTopic = errors.New("edge: invalid topic name")
	// ErrInvalidEvent means an event's type or data cannot be sent safely.
	ErrInvalidEvent = errors.New("edge: invalid event")
	// ErrClosed is returned by a broker or hub that has been closed.
	ErrClosed = errors.New("edge: closed")
)

var errRunTwice = errors.New("edge: broker Run called twice")
