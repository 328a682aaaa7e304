// Package tuslock is a tusd v2 handler.Locker kept in Redis, so that
// several Edge nodes sharing one upload directory never write the same
// upload at once.
//
// Each held lock is a key "<prefix>{<id>}" holding a random token, set with
// NX and a lease (PX) that the holder renews while it holds the lock. Only
// the token's owner extends or deletes the key (small Lua scripts compare
// the token first), so a holder whose lease ran out can never free or
// prolong the lock of the node that took over. A node that crashes stops
// renewing, and its locks free themselves after LeaseTTL.
//
// A request that finds the upload locked asks the holder to let go, as
// tusd's memorylocker does within one process, but across nodes: it
// publishes on "<prefix>release:{<id>}", and the holder, on whichever
// node, calls the requestRelease callback it was given (tusd's ends the
// holding request). Unlock publishes "released" on the same channel so
// waiters retry at once instead of at their next poll. Pub/sub is
// at-most-once (a reconnect loses messages), so nothing depends on it:
// waiters also poll every RetryEvery and repeat their request each time.
//
// Ordering and atomicity: Redis orders every acquire, renewal and release
// on one key, so at most one token holds it at any instant. What a lease
// cannot do is stop a holder that lost it from writing: see renew.
package tuslock

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"
)

// Defaults of Options.
const (
	DefaultPrefix     = "edge:tuslock:"
	DefaultLeaseTTL   = 10 * time.Second
	DefaultRetryEvery = 100 * time.Millisecond
	DefaultTimeout    = 2 * time.Second
)

// Messages on a lock's release channel.
const (
	msgRequest  = "request"  // a waiter asks the holder to let go
	msgReleased = "released" // the holder has let go
)

var (
	// ErrUnavailable wraps the error of a Redis call that failed or timed
	// out.
	ErrUnavailable = errors.New("tuslock: redis unavailable")
	// ErrLockLost is returned by Unlock when the lock's lease had run out
	// (and another node may have taken the lock) before Unlock.
	ErrLockLost = errors.New("tuslock: lease lost")
	// ErrClosed is returned by NewLock after Close.
	ErrClosed = errors.New("tuslock: locker closed")

	errLockedTwice = errors.New("tuslock: Lock called on a lock already held")
)

// Options configure a Locker. Zero values mean the default.
type Options struct {
	// Prefix starts every key and channel name. Default DefaultPrefix.
	// Nodes that share uploads must use the same Prefix.
	Prefix string
	// LeaseTTL is how long a lock outlives its holder's last renewal, so
	// how long a crashed node's uploads stay locked. Default 10s.
	LeaseTTL time.Duration
	// RenewEvery is how often a holder renews its lease. Default
	// LeaseTTL/3, so that two renewals in a row can fail before the lease
	// runs out; a value not below LeaseTTL is replaced by the default.
	RenewEvery time.Duration
	// RetryEvery is how often a waiter tries again and repeats its release
	// request when no "released" notice wakes it earlier. Default 100ms.
	RetryEvery time.Duration
	// Timeout bounds every Redis call, so that an unresponsive Redis
	// turns into an error instead of a hung request. Renewals are also
	// bounded by RenewEvery, to be retried before the lease runs out.
	// Default 2s.
	Timeout time.Duration
	// Logger receives lost leases and failed renewals. Default
	// slog.Default().
	Logger *slog.Logger
}

// Locker is a handler.Locker whose locks live in Redis (single, Sentinel
// or Cluster), shared by every node using the same Redis and Prefix. It
// keeps one pub/sub connection for all its locks, opened on first need.
type Locker struct {
	client redis.UniversalClient
	opts   Options
	log    *slog.Logger

	// cmdMu orders SUBSCRIBE and UNSUBSCRIBE commands as watch and unwatch
	// counted them: sent out of order, a channel still wanted could end up
	// unsubscribed.
	cmdMu  sync.Mutex
	ps     *redis.PubSub // nil until the first subscription
	closed bool

	mu    sync.Mutex
	chans map[string]*channelState // by channel name
}

var _ handler.Locker = (*Locker)(nil)

// New returns a Locker keeping its locks in client. It does not own
// client: closing it is the caller's job, after Close.
func New(client redis.UniversalClient, opts Options) *Locker {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < time.Millisecond {
		opts.LeaseTTL = time.Millisecond // PX takes whole milliseconds
	}
	if opts.RenewEvery <= 0 || opts.RenewEvery >= opts.LeaseTTL {
		opts.RenewEvery = opts.LeaseTTL / 3
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = DefaultRetryEvery
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Locker{
		client: client,
		opts:   opts,
		log:    opts.Logger,
		chans:  make(map[string]*channelState),
	}
}

// UseIn adds the locker to composer, as tusd's own lockers do.
func (l *Locker) UseIn(composer *handler.StoreComposer) {
	composer.UseLocker(l)
}

// NewLock returns an unlocked lock of upload id. It makes no Redis call.
func (l *Locker) NewLock(id string) (handler.Lock, error) {
	l.cmdMu.Lock()
	closed := l.closed
	l.cmdMu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return &lock{
		l:       l,
		id:      id,
		key:     l.opts.Prefix + "{" + id + "}",
		channel: l.opts.Prefix + "release:{" + id + "}",
	}, nil
}

// Close closes the pub/sub connection. Call it once no request uses the
// locker (after the tus handler has drained): locks still held keep their
// leases until Unlock but no longer hear release requests, and waiters
// fall back to polling.
func (l *Locker) Close() error {
	l.cmdMu.Lock()
	defer l.cmdMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.ps == nil {
		return nil
	}
	return l.ps.Close()
}
