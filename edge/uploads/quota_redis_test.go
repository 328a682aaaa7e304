package uploads

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/redistest"
)

// Two nodes sharing Redis (and an upload directory) count one user's
// unfinished uploads together: the limit holds across them, and an upload
// counted on one node is released when it finishes on the other.
func TestRedisQuotasAcrossNodes(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	dir := t.TempDir()
	mod := func(c *Config) {
		c.Dir = dir
		c.Redis = rs.FastClient(t)
		c.MaxConcurrentPerUser = 2
		c.MaxBytesPerUser = 1000
	}
	a := newHarness(t, mod, nil)
	b := newHarness(t, mod, nil)

	locA, _ := a.mustCreate("alice", 100, nil)
	b.mustCreate("alice", 100, nil)
	wantRefused(t, a.create("alice", 100, nil), http.StatusTooManyRequests, "ERR_TOO_MANY_UPLOADS")
	wantRefused(t, b.create("alice", 100, nil), http.StatusTooManyRequests, "ERR_TOO_MANY_UPLOADS")
	b.mustCreate("bob", 900, nil)
	wantRefused(t, a.create("bob", 200, nil), http.StatusForbidden, "ERR_QUOTA_EXCEEDED")

	// Finished through node b, counted by node a: the slot is free on both.
	b.mustPatch("alice", b.srv.URL+basePath+filepathBase(locA), 0, randomBytes(100))
	if n, size := a.s.quota.usageOf("alice"); n != 1 || size != 100 {
		t.Errorf("after the completion alice has %d uploads, %d bytes counted; want 1, 100", n, size)
	}
	a.mustCreate("alice", 100, nil)
}

// The janitor drops a claim whose upload is not stored: its own after
// claimGrace, another node's (whose storage it may not see) only once
// older than ExpireAfter.
func TestRedisQuotasJanitor(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	client := rs.FastClient(t)
	mod := func(c *Config) { c.Redis = client; c.ExpireAfter = time.Hour }
	a := newHarness(t, mod, nil)
	b := newHarness(t, mod, nil) // its own directory: it cannot see a's uploads

	a.mustCreate("alice", 100, nil)
	b.s.sweep(t.Context(), time.Now().Add(2*claimGrace))
	if n, _ := a.s.quota.usageOf("alice"); n != 1 {
		t.Fatalf("another node dropped a young claim it cannot check (%d counted)", n)
	}
	a.s.sweep(t.Context(), time.Now().Add(2*claimGrace))
	if n, _ := a.s.quota.usageOf("alice"); n != 1 {
		t.Fatalf("a claim of a stored upload was dropped (%d counted)", n)
	}
	b.s.sweep(t.Context(), time.Now().Add(2*time.Hour))
	if n, _ := a.s.quota.usageOf("alice"); n != 0 {
		t.Fatalf("a claim older than ExpireAfter survived (%d counted)", n)
	}

	// A claim of this node whose upload vanished goes after claimGrace.
	a.s.quota.addAll([]storedUpload{{"carol", newID(), 10}})
	a.s.sweep(t.Context(), time.Now().Add(2*claimGrace))
	if n, _ := a.s.quota.usageOf("carol"); n != 0 {
		t.Errorf("own claim of a missing upload kept (%d counted)", n)
	}
}

// Quotas that cannot be checked refuse the creation (fail closed), with a
// tus error the client can retry later; they work again once Redis is
// back.
func TestRedisQuotasUnavailable(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	h := newHarness(t, func(c *Config) { c.Redis = rs.FastClient(t) }, nil)
	rs.Stop()
	wantRefused(t, h.create("alice", 100, nil), http.StatusServiceUnavailable, "ERR_QUOTA_UNAVAILABLE")
	rs.Restart()
	h.upload("alice", randomBytes(100), nil)
}

// What Redis loses (a restart without persistence) is counted again by the
// next janitor round of a node that stores the uploads.
func TestRedisQuotasRecount(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	client := rs.FastClient(t)
	h := newHarness(t, func(c *Config) { c.Redis = client; c.MaxConcurrentPerUser = 1 }, nil)
	h.mustCreate("alice", 100, nil)
	if err := client.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.s.quota.usageOf("alice"); n != 0 {
		t.Fatalf("%d counted after the flush", n)
	}
	h.s.sweep(t.Context(), time.Now())
	if n, size := h.s.quota.usageOf("alice"); n != 1 || size != 100 {
		t.Fatalf("after a janitor round alice has %d uploads, %d bytes counted; want 1, 100", n, size)
	}
	wantRefused(t, h.create("alice", 100, nil), http.StatusTooManyRequests, "ERR_TOO_MANY_UPLOADS")
}

// A live upload's claim is renewed by the node that stores it, so another
// node (which cannot see the upload) does not take it for stale, however
// old the upload.
func TestRedisQuotasRenewed(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	client := rs.FastClient(t)
	mod := func(c *Config) { c.Redis = client; c.ExpireAfter = time.Hour }
	a := newHarness(t, mod, nil)
	b := newHarness(t, mod, nil)
	_, id := a.mustCreate("alice", 100, nil)
	claims := DefaultQuotaPrefix + "{q}:claims"
	// Made two hours ago by a node long gone, as far as the claim says.
	old := strconv.FormatInt(time.Now().Add(-2*time.Hour).UnixMilli(), 10) + "|gone|alice"
	if err := client.HSet(t.Context(), claims, baseID(id), old).Err(); err != nil {
		t.Fatal(err)
	}
	a.s.sweep(t.Context(), time.Now()) // a stores the upload: renews the claim
	claim, err := client.HGet(t.Context(), claims, baseID(id)).Result()
	if node, owner := parseClaim(claim); err != nil || node != a.s.quota.(*redisQuotas).node || owner != "alice" {
		t.Fatalf("claim after a's round: %q (%v)", claim, err)
	}
	b.s.sweep(t.Context(), time.Now())
	if n, _ := a.s.quota.usageOf("alice"); n != 1 {
		t.Errorf("a renewed claim was dropped by another node (%d counted)", n)
	}
}
