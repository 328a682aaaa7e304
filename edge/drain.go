package edge

import "time"

// Drain tells the hub's streams to end, spread over window, and refuses new
// ones (they get a retry hint and an immediate end). It is idempotent.
func (h *Hub) Drain(window time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining == nil {
		h.draining = make(chan struct{})
	}
	select {
	case <-h.draining:
	default:
		h.window = window
		close(h.draining)
	}
}

// Draining reports whether Drain was called.
func (h *Hub) Draining() bool {
	select {
	case <-h.drainStarted():
		return true
	default:
		return false
	}
}

func (h *Hub) drainStarted() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining == nil {
		h.draining = make(chan struct{})
	}
	return h.draining
}

func (h *Hub) drainWindow() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return max(h.window, time.Millisecond)
}
