package tuslock

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/edge-rt/edge/internal/redistest"
)

// TestHolderKeepsLockPastLease has B wait for several leases while A
// holds and ignores B's requests: B times out, and A's renewals keep the
// lock A's throughout (its Unlock finds its own token).
func TestHolderKeepsLockPastLease(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const lease = 300 * time.Millisecond
	opts := Options{Prefix: testPrefix(), LeaseTTL: lease}
	a, logsA := newNode(t, srv.FastClient(t), opts)
	b, _ := newNode(t, srv.FastClient(t), opts)

	var asked atomic.Int64
	ka := newLock(t, a, "up")
	if err := ka.Lock(t.Context(), func() { asked.Add(1) }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := newLock(t, b, "up").Lock(timeoutCtx(t, 4*lease), func() {})
	if !errors.Is(err, handler.ErrLockTimeout) {
		t.Fatalf("B's Lock = %v, want handler.ErrLockTimeout", err)
	}
	if waited := time.Since(start); waited < 4*lease {
		t.Fatalf("B gave up after %v, before its context ended", waited)
	}
	eventually(t, "A asked to release", func() bool { return asked.Load() > 0 })
	if err := ka.Unlock(); err != nil {
		t.Fatalf("A's Unlock after %v = %v, want nil (lease kept)", time.Since(start), err)
	}
	if strings.Contains(logsA.String(), "TusLockLost") {
		t.Errorf("A logged a lost lease:\n%s", logsA)
	}
}

// TestCrashedHolderExpires stops node A without Unlock (its client closes,
// so renewals fail): B cannot take the lock at once, but can once the
// lease has run out.
func TestCrashedHolderExpires(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts := Options{Prefix: testPrefix(), LeaseTTL: time.Second, RenewEvery: 100 * time.Millisecond}
	clientA := srv.FastClient(t)
	a, logsA := newNode(t, clientA, opts)
	b, _ := newNode(t, srv.FastClient(t), opts)

	ka := newLock(t, a, "up")
	if err := ka.Lock(t.Context(), func() {}); err != nil {
		t.Fatal(err)
	}
	clientA.Close() // the crash

	kb := newLock(t, b, "up")
	// A renewed at most ~RenewEvery ago, so most of a second remains.
	if err := kb.Lock(timeoutCtx(t, 100*time.Millisecond), func() {}); !errors.Is(err, handler.ErrLockTimeout) {
		t.Fatalf("B's Lock right after the crash = %v, want handler.ErrLockTimeout", err)
	}
	if err := kb.Lock(timeoutCtx(t, waitTimeout), func() {}); err != nil {
		t.Fatalf("B's Lock after the lease: %v", err)
	}
	eventually(t, "A to log its lost lease", func() bool {
		return strings.Contains(logsA.String(), "TusLockLost")
	})
	if err := kb.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestUnlockAfterTakeover checks that a holder whose lease ran out (the
// key deleted, as expiry would) and was taken over by B cannot free B's
// lock, whether its renewal noticed the loss first or its Unlock does.
func TestUnlockAfterTakeover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		lease         time.Duration
		renewalNotice bool // renewal runs, sees the loss and asks A to release
	}{
		{"NoticedByRenewal", 300 * time.Millisecond, true},
		{"NoticedAtUnlock", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			opts := Options{Prefix: testPrefix(), LeaseTTL: tc.lease}
			a, logsA := newNode(t, srv.FastClient(t), opts)
			b, _ := newNode(t, srv.FastClient(t), opts)

			var asked atomic.Bool
			ka := newLock(t, a, "up")
			if err := ka.Lock(t.Context(), func() { asked.Store(true) }); err != nil {
				t.Fatal(err)
			}
			if err := srv.Client(t).Del(t.Context(), ka.key).Err(); err != nil {
				t.Fatal(err)
			}
			kb := newLock(t, b, "up")
			if err := kb.Lock(timeoutCtx(t, waitTimeout), func() {}); err != nil {
				t.Fatal(err)
			}
			if tc.renewalNotice {
				// B took a free key and asked nobody: only A's renewal can
				// have called A's requestRelease.
				eventually(t, "A's renewal to notice", func() bool {
					return asked.Load() && strings.Contains(logsA.String(), "TusLockLost")
				})
			}
			if err := ka.Unlock(); !errors.Is(err, ErrLockLost) {
				t.Fatalf("A's Unlock = %v, want ErrLockLost", err)
			}
			// B still holds: a third party times out, and B's Unlock
			// finds its own token.
			if err := newLock(t, a, "up").Lock(timeoutCtx(t, 200*time.Millisecond), func() {}); !errors.Is(err, handler.ErrLockTimeout) {
				t.Fatalf("third Lock = %v, want handler.ErrLockTimeout", err)
			}
			if err := kb.Unlock(); err != nil {
				t.Fatalf("B's Unlock = %v, want nil", err)
			}
		})
	}
}

// TestRedisDown checks that Lock and Unlock fail with ErrUnavailable, and
// promptly, when Redis is gone, rather than hang or claim a timeout.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l, _ := newNode(t, srv.FastClient(t), Options{Prefix: testPrefix(), Timeout: 500 * time.Millisecond})
	k := newLock(t, l, "up")
	if err := k.Lock(t.Context(), func() {}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	start := time.Now()
	if err := k.Unlock(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Unlock = %v, want ErrUnavailable", err)
	}
	if err := newLock(t, l, "up2").Lock(t.Context(), func() {}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lock = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("failing took %v", took)
	}
}
