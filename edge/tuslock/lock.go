package tuslock

import (
	"context"
	"crypto/rand"
	_ "embed"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"
)

// One script per atomic operation: each compares the token and acts in
// one step, so no other node can take the lock between the two.
var (
	//go:embed acquire.lua
	acquireLua string
	//go:embed extend.lua
	extendLua string
	//go:embed release.lua
	releaseLua string

	acquireScript = redis.NewScript(acquireLua)
	extendScript  = redis.NewScript(extendLua)
	releaseScript = redis.NewScript(releaseLua)
)

// lock is the handler.Lock of one upload.
type lock struct {
	l       *Locker
	id      string
	key     string
	channel string

	mu sync.Mutex
	h  *held // nil when not held
}

// held is one holding of a lock, from Lock to Unlock.
type held struct {
	token          string // never logged: it is the right to free the lock
	requestRelease func()
	asking         atomic.Bool   // a requestRelease call is running
	unlocked       atomic.Bool   // Unlock has begun: nothing left to release
	stop           func()        // ends renewal
	done           chan struct{} // closed when renewal has ended
}

var _ handler.Lock = (*lock)(nil)

// Lock takes the lock, waiting while another request holds it, on this
// node or another, and asking that holder to let go. It returns
// handler.ErrLockTimeout when ctx ends first, and an error wrapping
// ErrUnavailable when Redis fails. requestRelease is called, from another
// goroutine, each time someone asks for the lock while this one holds it;
// calls do not overlap.
func (k *lock) Lock(ctx context.Context, requestRelease func()) error {
	k.mu.Lock()
	heldAlready := k.h != nil
	k.mu.Unlock()
	if heldAlready {
		return errLockedTwice
	}
	l := k.l
	// A new token per holding: a stale renewal or Unlock of an earlier
	// holding must never act on this one.
	token := rand.Text()
	var (
		waiting  *channelState // set once the first attempt has failed
		retry    *time.Timer
		released <-chan struct{}
	)
	defer func() {
		if waiting != nil {
			l.unwatch(k.channel, nil)
		}
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		if waiting != nil {
			// Before the attempt, so a release right after it still wakes us.
			released = l.releasedSignal(waiting)
		}
		start := time.Now()
		ok, err := k.try(ctx, token)
		if err != nil {
			// The SET may have been applied although its reply was lost:
			// free it rather than block everyone for a lease.
			_, _ = k.release(context.WithoutCancel(ctx), token)
			if ctx.Err() != nil {
				return handler.ErrLockTimeout
			}
			return err
		}
		if ok {
			k.hold(token, requestRelease, start)
			return nil
		}
		if waiting == nil {
			// From now on "released" reaches us. One that came between the
			// attempt and here is missed and costs a RetryEvery.
			waiting = l.watch(k.channel, nil)
			released = l.releasedSignal(waiting)
		}
		// Asked again at every retry: the first request may have reached
		// the holder's node before its SUBSCRIBE did, or been lost in a
		// reconnect. Repeats are harmless, as memorylocker's are.
		if err := k.publish(ctx, msgRequest); err != nil {
			if ctx.Err() != nil {
				return handler.ErrLockTimeout
			}
			return err
		}
		if retry == nil {
			retry = time.NewTimer(l.opts.RetryEvery)
		} else {
			retry.Reset(l.opts.RetryEvery)
		}
		select {
		case <-ctx.Done():
			return handler.ErrLockTimeout
		case <-released:
		case <-retry.C:
		}
	}
}

// try makes one attempt at the lock for token.
func (k *lock) try(ctx context.Context, token string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, k.l.opts.Timeout)
	defer cancel()
	n, err := acquireScript.Run(ctx, k.l.client, []string{k.key}, token, k.l.opts.LeaseTTL.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("%w: locking upload %q: %w", ErrUnavailable, k.id, err)
	}
	return n == 1, nil
}

// publish sends msg on the lock's release channel.
func (k *lock) publish(ctx context.Context, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, k.l.opts.Timeout)
	defer cancel()
	if err := k.l.client.Publish(ctx, k.channel, msg).Err(); err != nil {
		return fmt.Errorf("%w: asking the holder of upload %q to release it: %w", ErrUnavailable, k.id, err)
	}
	return nil
}

// release deletes the lock if token still holds it, reporting whether it
// did. Redis then tells waiters on every node.
func (k *lock) release(ctx context.Context, token string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, k.l.opts.Timeout)
	defer cancel()
	n, err := releaseScript.Run(ctx, k.l.client, []string{k.key}, token, k.channel, msgReleased).Int64()
	if err != nil {
		return false, fmt.Errorf("%w: unlocking upload %q: %w", ErrUnavailable, k.id, err)
	}
	if n == 1 {
		k.l.wake(k.channel)
	}
	return n == 1, nil
}

// hold records a new holding and starts renewing it. start is when the
// successful attempt began: the lease can be no younger.
func (k *lock) hold(token string, requestRelease func(), start time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &held{token: token, requestRelease: requestRelease, stop: cancel, done: make(chan struct{})}
	k.l.watch(k.channel, h)
	k.mu.Lock()
	k.h = h
	k.mu.Unlock()
	go k.renew(ctx, h, start.Add(k.l.opts.LeaseTTL))
}

// Unlock releases the lock if this lock holds it; otherwise it does
// nothing. It returns ErrLockLost when the lease had run out before, and
// an error wrapping ErrUnavailable when Redis fails, in which case the
// lock frees itself when its lease runs out.
func (k *lock) Unlock() error {
	k.mu.Lock()
	h := k.h
	k.h = nil
	k.mu.Unlock()
	if h == nil {
		return nil
	}
	h.unlocked.Store(true)
	// Renewal ends first, or it could log a release of our own as a loss.
	h.stop()
	<-h.done
	// Requests arriving from now on are for a lock being released anyway.
	k.l.unwatch(k.channel, h)
	ok, err := k.release(context.Background(), h.token)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: upload %q", ErrLockLost, k.id)
	}
	return nil
}

// renew extends h's lease every RenewEvery until stopped or lost. expires
// is when the lease ends if no renewal succeeds.
//
// A lost lease is logged, not prevented: nothing can stop writes the
// holder already has in flight, and the file store offers no fencing
// token to refuse them, so for a moment two nodes may write the upload.
// That takes LeaseTTL without a successful renewal (a stalled process,
// Redis unreachable, or Redis restarted empty), which is why LeaseTTL is
// several RenewEvery. What it can do, it does: call requestRelease so tusd
// ends the request as soon as possible.
func (k *lock) renew(ctx context.Context, h *held, expires time.Time) {
	defer close(h.done)
	l := k.l
	tick := time.NewTicker(l.opts.RenewEvery)
	defer tick.Stop()
	ttl := l.opts.LeaseTTL.Milliseconds()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, min(l.opts.Timeout, l.opts.RenewEvery))
		n, err := extendScript.Run(cctx, l.client, []string{k.key}, h.token, ttl).Int64()
		cancel()
		switch {
		case ctx.Err() != nil:
			return // Unlock stopped us mid-call
		case err == nil && n == 1:
			expires = start.Add(l.opts.LeaseTTL)
		case err == nil:
			l.log.Error("TusLockLost", "upload", k.id, "reason", "lease expired or taken over")
			h.askRelease()
			return
		case !time.Now().Before(expires):
			l.log.Error("TusLockLost", "upload", k.id, "reason", "not renewed in time", "err", err)
			h.askRelease()
			return
		default:
			l.log.Warn("TusLockRenewFailed", "upload", k.id, "err", err)
		}
	}
}

// askRelease calls requestRelease in its own goroutine, unless a call is
// still running: waiters repeat their requests every RetryEvery, and a
// callback that takes longer should not pile up copies of itself.
func (h *held) askRelease() {
	if h.unlocked.Load() || !h.asking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer h.asking.Store(false)
		// Checked again: a request that raced with Unlock is moot.
		if !h.unlocked.Load() {
			h.requestRelease()
		}
	}()
}
