package tuslock

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/redistest"
)

// TestContention has goroutines on two nodes fight over one upload: never
// two in the critical section at once, and no holder loses its lease.
func TestContention(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts := Options{Prefix: testPrefix(), LeaseTTL: 2 * time.Second}
	nodes := make([]*Locker, 2)
	for i := range nodes {
		nodes[i], _ = newNode(t, srv.FastClient(t), opts)
	}
	const perNode, rounds = 6, 15
	var inside, entered, overlaps atomic.Int64
	var wg sync.WaitGroup
	for _, l := range nodes {
		for range perNode {
			wg.Go(func() {
				for range rounds {
					k := newLock(t, l, "hot")
					if err := k.Lock(timeoutCtx(t, 30*time.Second), func() {}); err != nil {
						t.Error(err)
						return
					}
					if inside.Add(1) != 1 {
						overlaps.Add(1)
					}
					entered.Add(1)
					runtime.Gosched() // give a second holder, if any, time to show
					inside.Add(-1)
					if err := k.Unlock(); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if got := overlaps.Load(); got != 0 {
		t.Errorf("%d times a holder entered while another was inside", got)
	}
	if got, want := entered.Load(), int64(len(nodes)*perNode*rounds); got != want {
		t.Errorf("%d critical sections, want %d", got, want)
	}
}

// TestLockedTwice checks that a lock already held refuses a second Lock
// rather than waiting on itself.
func TestLockedTwice(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l, _ := newNode(t, srv.FastClient(t), Options{Prefix: testPrefix()})
	k := newLock(t, l, "x")
	if err := k.Lock(t.Context(), func() {}); err != nil {
		t.Fatal(err)
	}
	if err := k.Lock(t.Context(), func() {}); !errors.Is(err, errLockedTwice) {
		t.Errorf("second Lock = %v, want errLockedTwice", err)
	}
	if err := k.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := k.Unlock(); err != nil {
		t.Errorf("second Unlock = %v, want nil", err)
	}
	l.Close()
	if _, err := l.NewLock("y"); !errors.Is(err, ErrClosed) {
		t.Errorf("NewLock after Close = %v, want ErrClosed", err)
	}
}
