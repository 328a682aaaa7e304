package tuslock

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/edge-rt/edge/internal/redistest"
)

// waitTimeout bounds every wait on a condition; generous for -race on a
// loaded machine, and never reached when things work.
const waitTimeout = 10 * time.Second

// testPrefixes keeps each test's keys and channels its own.
var testPrefixes atomic.Int64

func testPrefix() string {
	return "test" + strconv.FormatInt(testPrefixes.Add(1), 10) + ":"
}

// logBuffer collects a Locker's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newNode returns a Locker on client with opts, closed when the test ends.
// Its log goes to the returned buffer.
func newNode(t testing.TB, client redis.UniversalClient, opts Options) (*Locker, *logBuffer) {
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	l := New(client, opts)
	t.Cleanup(func() { l.Close() })
	return l, logs
}

// newLock returns a lock of id from l, failing the test on error.
func newLock(t testing.TB, l *Locker, id string) *lock {
	t.Helper()
	k, err := l.NewLock(id)
	if err != nil {
		t.Fatalf("NewLock(%q): %v", id, err)
	}
	return k.(*lock)
}

// eventually waits until cond holds, failing the test after waitTimeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSubscribed waits until channel has at least n subscribers in Redis.
func waitSubscribed(t testing.TB, admin *redis.Client, channel string, n int64) {
	t.Helper()
	eventually(t, "subscribers of "+channel, func() bool {
		return admin.PubSubNumSub(context.Background(), channel).Val()[channel] >= n
	})
}

func timeoutCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// setup describes where the two parties of a test get their Lockers:
// one node (both from one Locker) or two (each its own client), and
// single Redis or Cluster.
type setup struct {
	name  string
	nodes func(t *testing.T, opts Options) (a, b *Locker)
}

func setups() []setup {
	single := func(t *testing.T, opts Options, two bool) (a, b *Locker) {
		srv := redistest.Start(t)
		opts.Prefix = testPrefix()
		a, _ = newNode(t, srv.FastClient(t), opts)
		if !two {
			return a, a
		}
		b, _ = newNode(t, srv.FastClient(t), opts)
		return a, b
	}
	return []setup{
		{"OneNode", func(t *testing.T, o Options) (a, b *Locker) { return single(t, o, false) }},
		{"TwoNodes", func(t *testing.T, o Options) (a, b *Locker) { return single(t, o, true) }},
		{"TwoNodesCluster", func(t *testing.T, opts Options) (a, b *Locker) {
			srv := redistest.Start(t, "--cluster-enabled", "yes")
			admin := srv.Client(t)
			if err := admin.ClusterAddSlotsRange(t.Context(), 0, 16383).Err(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "cluster_state:ok", func() bool {
				return strings.Contains(admin.ClusterInfo(t.Context()).Val(), "cluster_state:ok")
			})
			opts.Prefix = testPrefix()
			node := func() *Locker {
				c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
				t.Cleanup(func() { c.Close() })
				l, _ := newNode(t, c, opts)
				return l
			}
			return node(), node()
		}},
	}
}

// TestTusdExpectations runs tusd's own memorylocker tests, with one
// change: requestRelease comes asynchronously (from another node, through
// Redis), so the Timeout case waits for it instead of checking at once,
// and gives the request time to be published.
func TestTusdExpectations(t *testing.T) {
	t.Parallel()
	for _, s := range setups() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			a, b := s.nodes(t, Options{})

			t.Run("LockAndUnlock", func(t *testing.T) {
				k := newLock(t, a, "one")
				if err := k.Lock(t.Context(), func() { panic("must not be called") }); err != nil {
					t.Fatal(err)
				}
				if err := k.Unlock(); err != nil {
					t.Fatal(err)
				}
			})

			t.Run("Timeout", func(t *testing.T) {
				var called atomic.Bool
				k1 := newLock(t, a, "two")
				if err := k1.Lock(t.Context(), func() { called.Store(true) }); err != nil {
					t.Fatal(err)
				}
				defer k1.Unlock()
				k2 := newLock(t, b, "two")
				err := k2.Lock(timeoutCtx(t, 300*time.Millisecond), func() { panic("must not be called") })
				if !errors.Is(err, handler.ErrLockTimeout) {
					t.Fatalf("Lock = %v, want handler.ErrLockTimeout", err)
				}
				eventually(t, "requestRelease called", called.Load)
			})

			t.Run("RequestUnlock", func(t *testing.T) {
				// The callback's Unlock goes on after B has the lock (it
				// publishes "released", ends renewal): its result comes
				// back here, so that it ends before the test and its nodes.
				unlocked := make(chan error, 1)
				k1 := newLock(t, a, "three")
				if err := k1.Lock(t.Context(), func() {
					select {
					case unlocked <- k1.Unlock():
					default: // asked again: the first answer is the one
					}
				}); err != nil {
					t.Fatal(err)
				}
				k2 := newLock(t, b, "three")
				if err := k2.Lock(timeoutCtx(t, waitTimeout), func() { panic("must not be called") }); err != nil {
					t.Fatal(err)
				}
				if err := k2.Unlock(); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-unlocked:
					if err != nil {
						t.Errorf("Unlock in requestRelease: %v", err)
					}
				case <-time.After(waitTimeout):
					t.Error("requestRelease was not called, or its Unlock did not return")
				}
			})
		})
	}
}

// TestReleaseRequestWakesWaiter checks both notifications on their own:
// with a retry interval longer than the test, B gets the lock only if A
// heard B's request through pub/sub and B heard A's "released".
func TestReleaseRequestWakesWaiter(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts := Options{Prefix: testPrefix(), RetryEvery: time.Hour}
	a, _ := newNode(t, srv.FastClient(t), opts)
	b, _ := newNode(t, srv.FastClient(t), opts)

	asked := make(chan struct{})
	unlocked := make(chan error, 1) // ka's Unlock may end after kb has the lock
	ka := newLock(t, a, "up1")
	if err := ka.Lock(t.Context(), func() {
		close(asked) // a second call would panic: requests must not overlap
		unlocked <- ka.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	// B's first request is sent once: A must be listening by then.
	waitSubscribed(t, srv.Client(t), ka.channel, 1)

	kb := newLock(t, b, "up1")
	if err := kb.Lock(timeoutCtx(t, waitTimeout), func() {}); err != nil {
		t.Fatalf("B's Lock: %v", err)
	}
	select {
	case <-asked:
	default:
		t.Fatal("B got the lock without A being asked to release it")
	}
	if err := kb.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-unlocked; err != nil {
		t.Errorf("A's Unlock in requestRelease: %v", err)
	}
}
