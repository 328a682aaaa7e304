package uploads

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// quotaBook is the bookkeeping of unfinished uploads per user: how many,
// and their declared bytes together (see claimSize). It is filled at start
// from what is stored (so a restart does not reset anyone's quota),
// changed by creations and completions, and corrected by the janitor,
// which drops claims of uploads that finished or vanished.
//
// Claims are keyed by baseID: on S3 the hook reserves before the store
// makes the full id. Checking and reserving are one step, so two creations
// racing cannot both take the last slot.
type quotaBook interface {
	// reserve counts a new upload of size bytes for owner, or refuses it.
	reserve(owner, id string, size int64) error
	// resize changes the size of upload id (a deferred length becoming
	// known), counting it if it was not, or refuses it.
	resize(owner, id string, size int64) error
	// addAll counts the unfinished uploads found in storage, without
	// checking limits (see redisQuotas for what it renews).
	addAll(uploads []storedUpload)
	// release stops counting upload id; releasing twice is harmless.
	release(id string)
	// idsBefore returns the ids of claims the janitor may drop when their
	// upload is not in storage: those made before t.
	idsBefore(t time.Time) []string
	// usageOf returns owner's counted uploads and bytes.
	usageOf(owner string) (int, int64)
}

// storedUpload is an unfinished upload found in storage, for addAll.
type storedUpload struct {
	owner, id string
	size      int64
}

// quotas is the quotaBook of one node, in memory: with the memory broker,
// or when no Redis is configured. Uploads another node creates after this
// one started are not counted here: per-user limits then hold per node.
type quotas struct {
	maxUploads int
	maxBytes   int64

	mu     sync.Mutex
	byID   map[string]claim
	byUser map[string]*usage
}

type claim struct {
	owner string
	size  int64
	// at is when the claim was made; see idsBefore.
	at time.Time
}

type usage struct {
	uploads int
	bytes   int64
}

func newQuotas(maxUploads int, maxBytes int64) *quotas {
	return &quotas{
		maxUploads: maxUploads,
		maxBytes:   maxBytes,
		byID:       make(map[string]claim),
		byUser:     make(map[string]*usage),
	}
}

func (q *quotas) reserve(owner, id string, size int64) error {
	id = baseID(id)
	q.mu.Lock()
	defer q.mu.Unlock()
	var u usage
	if cur := q.byUser[owner]; cur != nil {
		u = *cur
	}
	if u.uploads >= q.maxUploads {
		return tooManyError(q.maxUploads)
	}
	if u.bytes+size > q.maxBytes {
		return q.bytesError()
	}
	q.addLocked(owner, id, size)
	return nil
}

func (q *quotas) resize(owner, id string, size int64) error {
	id = baseID(id)
	q.mu.Lock()
	defer q.mu.Unlock()
	c, ok := q.byID[id]
	if !ok {
		// Not counted here (made on another node): count it now.
		var used int64
		if u := q.byUser[owner]; u != nil {
			used = u.bytes
		}
		if used+size > q.maxBytes {
			return q.bytesError()
		}
		q.addLocked(owner, id, size)
		return nil
	}
	u := q.byUser[c.owner]
	if u.bytes-c.size+size > q.maxBytes {
		return q.bytesError()
	}
	u.bytes += size - c.size
	c.size = size
	q.byID[id] = c
	return nil
}

func (q *quotas) bytesError() error { return bytesError(q.maxBytes) }

func tooManyError(maxUploads int) error {
	return handler.NewError("ERR_TOO_MANY_UPLOADS",
		fmt.Sprintf("at most %d unfinished uploads per user; finish or delete one first", maxUploads),
		http.StatusTooManyRequests)
}

func bytesError(maxBytes int64) error {
	return handler.NewError("ERR_QUOTA_EXCEEDED",
		fmt.Sprintf("a user's unfinished uploads may total at most %d bytes (one of deferred length counts as the maximum upload size until it declares its length); finish or delete one first", maxBytes),
		http.StatusForbidden)
}

func (q *quotas) addAll(uploads []storedUpload) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, u := range uploads {
		id := baseID(u.id)
		if _, ok := q.byID[id]; !ok {
			q.addLocked(u.owner, id, u.size)
		}
	}
}

func (q *quotas) addLocked(owner, id string, size int64) {
	u := q.byUser[owner]
	if u == nil {
		u = &usage{}
		q.byUser[owner] = u
	}
	u.uploads++
	u.bytes += size
	q.byID[id] = claim{owner: owner, size: size, at: time.Now()}
}

func (q *quotas) release(id string) {
	id = baseID(id)
	q.mu.Lock()
	defer q.mu.Unlock()
	c, ok := q.byID[id]
	if !ok {
		return
	}
	delete(q.byID, id)
	u := q.byUser[c.owner]
	u.uploads--
	u.bytes -= c.size
	if u.uploads == 0 {
		delete(q.byUser, c.owner)
	}
}

func (q *quotas) idsBefore(t time.Time) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for id, c := range q.byID {
		if c.at.Before(t) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (q *quotas) usageOf(owner string) (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if u := q.byUser[owner]; u != nil {
		return u.uploads, u.bytes
	}
	return 0, 0
}
