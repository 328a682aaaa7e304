package uploads

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"
)

// DefaultQuotaPrefix is the key prefix of the quotas kept in Redis.
const DefaultQuotaPrefix = "edge:uploadquota:"

// quotaTimeout bounds one quota operation: they are small, and a creation
// waits on them.
const quotaTimeout = 2 * time.Second

//go:embed quota_redis.lua
var quotaCountLua string

var quotaCountScript = redis.NewScript(quotaCountLua)

var errQuotaUnavailable = handler.NewError("ERR_QUOTA_UNAVAILABLE",
	"upload quotas cannot be checked right now (their store is unreachable); retry later", http.StatusServiceUnavailable)

// redisQuotas is the quotaBook of every node sharing one Redis, so the
// per-user limits hold across nodes. Keys, all with one hash tag so that a
// script reaches them in a Cluster: "<prefix>{q}:u:<owner>" (upload id ->
// size) and "<prefix>{q}:claims" (upload id -> "unix ms|node|owner").
//
// Every janitor round counts each unfinished upload the node sees again
// (add), which renews its claim: so what Redis lost (a restart without
// persistence, a failover) is counted again within a round. It drops a
// claim whose upload is not in storage; nodes need not share storage (with
// sticky sessions they may not), so a node drops only its own claims after
// claimGrace, and any node's once not renewed for stale (ExpireAfter: the
// upload would have expired by then, or its node is gone).
//
// Errors fail closed where it matters: a creation whose quota cannot be
// checked is refused (503); a release that fails is logged and left to the
// janitor.
type redisQuotas struct {
	client     redis.UniversalClient
	prefix     string
	node       string // this process, in its claims
	stale      time.Duration
	maxUploads int
	maxBytes   int64
	log        *slog.Logger
}

var _ quotaBook = (*redisQuotas)(nil)

func newRedisQuotas(client redis.UniversalClient, prefix string, maxUploads int, maxBytes int64, stale time.Duration, log *slog.Logger) *redisQuotas {
	if prefix == "" {
		prefix = DefaultQuotaPrefix
	}
	// A process, not a host: after a restart the old claims are another
	// node's, released by the stale rule if nothing else does.
	node := make([]byte, 8)
	rand.Read(node)
	return &redisQuotas{
		client: client, prefix: prefix, node: hex.EncodeToString(node), stale: stale,
		maxUploads: maxUploads, maxBytes: maxBytes, log: log,
	}
}

func (q *redisQuotas) userKey(owner string) string { return q.prefix + "{q}:u:" + owner }
func (q *redisQuotas) claimsKey() string           { return q.prefix + "{q}:claims" }

func (q *redisQuotas) count(mode, owner, id string, size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), quotaTimeout)
	defer cancel()
	// The owner last: it is the one part that is not ours to restrict.
	claim := strconv.FormatInt(time.Now().UnixMilli(), 10) + "|" + q.node + "|" + owner
	res, err := quotaCountScript.Run(ctx, q.client, []string{q.userKey(owner), q.claimsKey()},
		baseID(id), size, q.maxUploads, q.maxBytes, claim, mode).Int()
	switch {
	case err != nil:
		q.log.Error("UploadQuotaUnavailable", "op", mode, "upload", id, "error", err)
		return errQuotaUnavailable
	case res == 1:
		return tooManyError(q.maxUploads)
	case res == 2:
		return bytesError(q.maxBytes)
	}
	return nil
}

func (q *redisQuotas) reserve(owner, id string, size int64) error {
	return q.count("reserve", owner, id, size)
}

func (q *redisQuotas) resize(owner, id string, size int64) error {
	return q.count("resize", owner, id, size)
}

// addAll counts stored uploads, or renews their claims (this node, now),
// in one pipelined round trip: the janitor calls it every round with every
// unfinished upload it sees, so what Redis lost is counted again, and the
// claims of live uploads never look stale to nodes that cannot see them.
// A failure is logged; the next round tries again.
func (q *redisQuotas) addAll(uploads []storedUpload) {
	if len(uploads) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), quotaTimeout)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	_, err := q.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range uploads {
			// Eval, not EvalSha: in a pipeline a missing script cannot be
			// loaded and retried.
			quotaCountScript.Eval(ctx, p, []string{q.userKey(u.owner), q.claimsKey()},
				baseID(u.id), u.size, q.maxUploads, q.maxBytes, now+"|"+q.node+"|"+u.owner, "add")
		}
		return nil
	})
	if err != nil {
		q.log.Error("UploadQuotaUnavailable", "op", "add", "uploads", len(uploads), "error", err)
	}
}

// release reads whose the claim is, then deletes it from both hashes in
// one transaction.
func (q *redisQuotas) release(id string) {
	id = baseID(id)
	ctx, cancel := context.WithTimeout(context.Background(), quotaTimeout)
	defer cancel()
	claim, err := q.client.HGet(ctx, q.claimsKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return
	}
	if err == nil {
		_, owner := parseClaim(claim)
		_, err = q.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HDel(ctx, q.userKey(owner), id)
			p.HDel(ctx, q.claimsKey(), id)
			return nil
		})
	}
	if err != nil {
		q.log.Warn("UploadQuotaNotReleased", "upload", id, "error", err)
	}
}

func (q *redisQuotas) idsBefore(t time.Time) []string {
	ctx, cancel := context.WithTimeout(context.Background(), quotaTimeout)
	defer cancel()
	claims, err := q.client.HGetAll(ctx, q.claimsKey()).Result()
	if err != nil {
		q.log.Warn("UploadQuotaUnavailable", "op", "claims", "error", err)
		return nil
	}
	var ids []string
	for id, claim := range claims {
		ms, rest, _ := strings.Cut(claim, "|")
		node, _, _ := strings.Cut(rest, "|")
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			ids = append(ids, id) // not a claim this code wrote: let the janitor check it
			continue
		}
		at := time.UnixMilli(n)
		if (node == q.node && at.Before(t)) || at.Before(t.Add(-q.stale)) {
			ids = append(ids, id)
		}
	}
	return ids
}

// parseClaim splits a claim "unix ms|node|owner"; the owner may hold
// anything, "|" included.
func parseClaim(claim string) (node, owner string) {
	_, rest, _ := strings.Cut(claim, "|")
	node, owner, _ = strings.Cut(rest, "|")
	return node, owner
}

func (q *redisQuotas) usageOf(owner string) (int, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), quotaTimeout)
	defer cancel()
	sizes, err := q.client.HVals(ctx, q.userKey(owner)).Result()
	if err != nil {
		return -1, -1 // not 0: a check expecting nothing counted must not pass
	}
	var total int64
	for _, v := range sizes {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
	}
	return len(sizes), total
}
