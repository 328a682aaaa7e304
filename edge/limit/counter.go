package limit

import "sync"

// Counter counts slots held per key, such as open streams per user or per
// IP, and refuses a slot past a maximum.
//
// It is per node by design, so a limit of N means N on each node: a stream
// is held by one node for its whole life, and a count shared across nodes
// would need leases that expire when a node crashes without releasing, or
// a crashed node's streams would count against their users forever. Keys
// held by no one take no memory.
type Counter struct {
	mu   sync.Mutex
	held map[string]int
}

// NewCounter returns a Counter with nothing held.
func NewCounter() *Counter {
	return &Counter{held: make(map[string]int)}
}

// Acquire takes a slot under key if fewer than max are held; release gives
// it back and may be called any number of times (only the first counts),
// so that both a deferred release and an early one are safe. When refused,
// ok is false and release does nothing. A max below 1 refuses every slot.
func (c *Counter) Acquire(key string, max int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[key] >= max {
		return func() {}, false
	}
	c.held[key]++
	var once sync.Once
	return func() { once.Do(func() { c.release(key) }) }, true
}

func (c *Counter) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[key] <= 1 {
		delete(c.held, key)
		return
	}
	c.held[key]--
}

// Held returns how many slots are held under key.
func (c *Counter) Held(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[key]
}
