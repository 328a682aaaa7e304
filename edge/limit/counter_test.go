package limit

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestCounterConcurrentAcquire(t *testing.T) {
	t.Parallel()
	c := NewCounter()
	const max, callers = 10, 200
	var (
		ok       atomic.Int64
		mu       sync.Mutex
		releases []func()
		wg       sync.WaitGroup
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			release, got := c.Acquire("ip:1", max)
			if got {
				ok.Add(1)
				mu.Lock()
				releases = append(releases, release)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != max || c.Held("ip:1") != max {
		t.Fatalf("%d acquired, Held %d; want exactly %d", ok.Load(), c.Held("ip:1"), max)
	}

	for _, r := range releases {
		wg.Go(r)
	}
	wg.Wait()
	if n := c.Held("ip:1"); n != 0 {
		t.Fatalf("Held = %d after every release, want 0", n)
	}
	if n := len(c.held); n != 0 {
		t.Errorf("%d keys kept with nothing held, want 0", n)
	}
}

func TestCounter(t *testing.T) {
	t.Parallel()
	c := NewCounter()
	r1, ok1 := c.Acquire("u", 2)
	_, ok2 := c.Acquire("u", 2)
	refused, ok3 := c.Acquire("u", 2)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquires = %v %v %v, want true true false", ok1, ok2, ok3)
	}
	refused() // a refused slot's release gives back nothing
	if n := c.Held("u"); n != 2 {
		t.Fatalf("Held = %d after a refused release, want 2", n)
	}

	// Release is idempotent: three calls give back one slot.
	r1()
	r1()
	r1()
	if n := c.Held("u"); n != 1 {
		t.Fatalf("Held = %d after releasing one slot thrice, want 1", n)
	}
	if _, ok := c.Acquire("u", 2); !ok {
		t.Fatal("the released slot could not be taken again")
	}

	// Keys are independent, and a max below 1 refuses.
	if _, ok := c.Acquire("v", 1); !ok {
		t.Error("key v refused while only u is full")
	}
	for _, max := range []int{0, -1} {
		if _, ok := c.Acquire("w", max); ok {
			t.Errorf("Acquire with max %d succeeded, want refused", max)
		}
	}
	if n := c.Held("w"); n != 0 {
		t.Errorf("Held(w) = %d, want 0", n)
	}
}
