package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edge-rt/edge/internal/redistest"
)

func newTestRedisBroker(t *testing.T, srv *redistest.Server, opts RedisOptions) *RedisBroker {
	b := NewRedisBroker(srv.FastClient(t), opts)
	t.Cleanup(func() { b.Close() })
	return b
}

// redisWiper lets the conformance suite wipe Redis as a restart would.
type redisWiper struct {
	*RedisBroker
	t   *testing.T
	rdb *redis.Client
}

func (w redisWiper) Reset() {
	if err := w.rdb.FlushAll(context.Background()).Err(); err != nil {
		w.t.Fatalf("FLUSHALL: %v", err)
	}
}

func TestRedisBrokerConformance(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			t.Parallel()
			testBroker(t, func(t *testing.T) wiper {
				// A server per case: Reset flushes everything.
				srv := redistest.Start(t)
				b := newTestRedisBroker(t, srv, RedisOptions{Retention: conformanceRetention, Sharded: sharded})
				return redisWiper{b, t, srv.Client(t)}
			})
		})
	}
}

// redisEventually polls cond every 20ms until it holds or d has passed.
func redisEventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

func redisMustPublish(t *testing.T, b Broker, p Publication) PublishResult {
	t.Helper()
	r, err := b.Publish(t.Context(), p)
	if err != nil {
		t.Fatalf("publish %+v: %v", p, err)
	}
	return r
}

func redisMustHistory(t *testing.T, b Broker, topic string, after uint64, limit int) History {
	t.Helper()
	h, err := b.History(t.Context(), topic, after, limit)
	if err != nil {
		t.Fatalf("history of %s: %v", topic, err)
	}
	return h
}

func TestRedisBrokerRoundTrip(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := newTestRedisBroker(t, srv, RedisOptions{})
	rdb := srv.Client(t)
	ctx := t.Context()
	pubs := []Publication{
		{Topic: "rt", Data: json.RawMessage(`[1, 2]`)},
		{Topic: "rt", Type: "created", Data: json.RawMessage(`{"s":"line\nbreak\r\n","u":"ü"}`)},
		{Topic: "rt", Type: "message"},
	}
	var first PublishResult
	for i, p := range pubs {
		r := redisMustPublish(t, b, p)
		if i == 0 {
			first = r
		}
		if r.Seq != uint64(i+1) || r.Epoch != first.Epoch || r.Duplicate || !ValidEpoch(r.Epoch) {
			t.Fatalf("publish %d landed at %+v", i, r)
		}
		if d := time.Since(time.UnixMilli(r.Time)); d < -time.Minute || d > time.Minute {
			t.Fatalf("publish time %d is off by %v", r.Time, d)
		}
	}
	h := redisMustHistory(t, b, "rt", 0, 10)
	wantSeqs(t, h.Events, 1, 2, 3)
	want := []struct{ typ, data string }{{"", `[1,2]`}, {"created", `{"s":"line\nbreak\r\n","u":"ü"}`}, {"", `null`}}
	for i, ev := range h.Events {
		if ev.Topic != "rt" || ev.Epoch != first.Epoch || ev.Type != want[i].typ || string(ev.Data) != want[i].data || ev.Time == 0 {
			t.Errorf("event %d = %+v (data %s)", i, ev, ev.Data)
		}
	}
	wantSeqs(t, redisMustHistory(t, b, "rt", 1, 1).Events, 2)
	if h := redisMustHistory(t, b, "rt", 0, 0); len(h.Events) != 0 || h.Head != (Position{first.Epoch, 3}) {
		t.Fatalf("head-only history = %+v", h)
	}

	// The stored form is documented on RedisBroker; keep it as said.
	members, err := rdb.ZRange(ctx, "edge:{rt}:log", 0, 0).Result()
	if err != nil || len(members) != 1 || members[0] != fmt.Sprintf("1\n%d\n\n[1,2]", first.Time) {
		t.Fatalf("first log member %q, %v", members, err)
	}
	meta, err := rdb.HGetAll(ctx, "edge:{rt}:meta").Result()
	if err != nil || meta["epoch"] != first.Epoch || meta["seq"] != "3" {
		t.Fatalf("meta %v, %v", meta, err)
	}
	for _, key := range []string{"edge:{rt}:meta", "edge:{rt}:log"} {
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 {
			t.Errorf("%s has no expiry (PTTL %v)", key, ttl)
		}
	}
}

func TestRedisBrokerTrimByCount(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := newTestRedisBroker(t, srv, RedisOptions{Retention: RetentionPolicy{
		Rules: []RetentionRule{{Pattern: "count:*", Retention: Retention{MaxEvents: 5}}},
	}})
	for range 12 {
		redisMustPublish(t, b, Publication{Topic: "count:a", Data: json.RawMessage(`1`)})
	}
	h := redisMustHistory(t, b, "count:a", 0, 100)
	wantSeqs(t, h.Events, 8, 9, 10, 11, 12)
	if n := srv.Client(t).ZCard(t.Context(), "edge:{count:a}:log").Val(); n != 5 {
		t.Fatalf("log holds %d events, want 5", n)
	}
}

func TestRedisBrokerTrimByAge(t *testing.T) {
	t.Parallel()
	const maxAge = 200 * time.Millisecond
	srv := redistest.Start(t)
	b := newTestRedisBroker(t, srv, RedisOptions{Retention: RetentionPolicy{
		Rules: []RetentionRule{{Pattern: "age:*", Retention: Retention{MaxEvents: 1000, MaxAge: maxAge}}},
	}})
	rdb := srv.Client(t)

	t.Run("OnHistory", func(t *testing.T) {
		t.Parallel()
		for range 3 {
			redisMustPublish(t, b, Publication{Topic: "age:h", Data: json.RawMessage(`1`)})
		}
		redisEventually(t, 5*time.Second, "events to age out", func() bool {
			h := redisMustHistory(t, b, "age:h", 0, 100)
			if h.Head.Seq != 3 {
				t.Fatalf("head %+v, want seq 3 kept", h.Head)
			}
			return len(h.Events) == 0
		})
		// The sequence goes on: the meta outlives the log.
		if r := redisMustPublish(t, b, Publication{Topic: "age:h", Data: json.RawMessage(`1`)}); r.Seq != 4 {
			t.Fatalf("publish after expiry got seq %d, want 4", r.Seq)
		}
	})

	t.Run("OnPublish", func(t *testing.T) {
		t.Parallel()
		// A burst, then a steady trickle: each publish must leave only
		// events younger than max age, including when more than one trim
		// batch (16) has aged out at once.
		const burst = 40
		for range burst {
			redisMustPublish(t, b, Publication{Topic: "age:p", Data: json.RawMessage(`1`)})
		}
		redisEventually(t, 5*time.Second, "the burst to be trimmed", func() bool {
			r := redisMustPublish(t, b, Publication{Topic: "age:p", Data: json.RawMessage(`1`)})
			members, err := rdb.ZRange(t.Context(), "edge:{age:p}:log", 0, 0).Result()
			if err != nil || len(members) != 1 {
				t.Fatalf("oldest member %q, %v", members, err)
			}
			f := strings.SplitN(members[0], "\n", 3)
			seq, _ := strconv.ParseUint(f[0], 10, 64)
			ts, _ := strconv.ParseInt(f[1], 10, 64)
			if ts < r.Time-maxAge.Milliseconds() {
				t.Fatalf("after a publish at %d the log still holds seq %d from %d", r.Time, seq, ts)
			}
			return seq > burst
		})
	})
}

func TestRedisBrokerIdempotencyAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := newTestRedisBroker(t, srv, RedisOptions{})
	b := newTestRedisBroker(t, srv, RedisOptions{IdempotencyTTL: time.Hour})
	p := Publication{Topic: "idem", Data: json.RawMessage(`{"x":1}`), IdempotencyKey: "order-7"}
	first := redisMustPublish(t, a, p)
	again := redisMustPublish(t, b, p)
	if first.Duplicate || !again.Duplicate || again.Position != first.Position || again.Time != first.Time {
		t.Fatalf("first %+v, retry on the other node %+v", first, again)
	}
	p.IdempotencyKey = "order-8"
	if r := redisMustPublish(t, b, p); r.Duplicate || r.Seq != 2 {
		t.Fatalf("another key got %+v", r)
	}
	ttl := srv.Client(t).PTTL(t.Context(), "edge:{idem}:idem:order-8").Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Fatalf("idempotency key TTL %v, want at most 1h", ttl)
	}
	wantSeqs(t, redisMustHistory(t, a, "idem", 0, 10).Events, 1, 2)
}

// TestRedisBrokerEpochAfterFlush: a wiped Redis gives the topic a new
// epoch; History then reports head 0 and the next publish is seq 1.
func TestRedisBrokerEpochAfterFlush(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := newTestRedisBroker(t, srv, RedisOptions{})
	rdb := srv.Client(t)
	old := redisMustPublish(t, b, Publication{Topic: "e", Data: json.RawMessage(`1`)})
	redisMustPublish(t, b, Publication{Topic: "e2", Data: json.RawMessage(`1`)})
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	h := redisMustHistory(t, b, "e", 0, 10)
	if h.Head.Epoch == old.Epoch || !ValidEpoch(h.Head.Epoch) || h.Head.Seq != 0 || len(h.Events) != 0 {
		t.Fatalf("after FLUSHALL history = %+v (old epoch %s)", h, old.Epoch)
	}
	if r := redisMustPublish(t, b, Publication{Topic: "e", Data: json.RawMessage(`1`)}); r.Position != (Position{h.Head.Epoch, 1}) {
		t.Fatalf("first publish of the new epoch at %+v", r.Position)
	}
	// Publish alone (no History first) makes the new epoch as well.
	if r := redisMustPublish(t, b, Publication{Topic: "e2", Data: json.RawMessage(`1`)}); r.Seq != 1 || r.Epoch == old.Epoch {
		t.Fatalf("publish after FLUSHALL at %+v", r.Position)
	}
}

func TestRedisBrokerTwoNodes(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			a := newTestRedisBroker(t, srv, RedisOptions{Sharded: sharded})
			b := newTestRedisBroker(t, srv, RedisOptions{Sharded: sharded})
			rec := runRecorder(t, b)
			if err := b.Subscribe(t.Context(), "room:1"); err != nil {
				t.Fatal(err)
			}
			var last PublishResult
			for i := range 10 {
				last = redisMustPublish(t, a, Publication{Topic: "room:1", Type: "chat", Data: json.RawMessage(strconv.Itoa(i))})
			}
			redisMustPublish(t, a, Publication{Topic: "room:1", Type: "typing", Data: json.RawMessage(`{}`), Ephemeral: true})
			rec.wait(t, "11 events on node B", func() bool { return len(rec.events["room:1"]) == 11 })
			rec.mu.Lock()
			evs := rec.events["room:1"]
			rec.mu.Unlock()
			wantSeqs(t, evs[:10], seqRange(1, 10)...)
			for i, ev := range evs[:10] {
				if ev.Epoch != last.Epoch || ev.Type != "chat" || string(ev.Data) != strconv.Itoa(i) || ev.Time == 0 {
					t.Fatalf("event %d on node B = %+v", i, ev)
				}
			}
			if eph := evs[10]; eph.Stored() || eph.Epoch != "" || eph.Type != "typing" || string(eph.Data) != `{}` || eph.Time == 0 {
				t.Fatalf("ephemeral event on node B = %+v", eph)
			}
		})
	}
}

// TestRedisBrokerSubscribeChurn subscribes and unsubscribes in quick
// succession, the first SUBSCRIBE still unconfirmed when the UNSUBSCRIBE
// goes out: every Subscribe must wait for its own confirmation, and none may
// be mistaken for a resubscription.
func TestRedisBrokerSubscribeChurn(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			b := newTestRedisBroker(t, srv, RedisOptions{Sharded: sharded})
			rec := runRecorder(t, b)
			ctx := t.Context()
			noWait := func(ctx context.Context, topic string) error {
				_, err := b.subscribe(ctx, topic)
				return err
			}
			for i := range 20 {
				for _, op := range []func(context.Context, string) error{noWait, b.Unsubscribe, b.Subscribe} {
					if err := op(ctx, "churn"); err != nil {
						t.Fatal(err)
					}
				}
				redisMustPublish(t, b, Publication{Topic: "churn", Data: json.RawMessage(`1`)})
				rec.wait(t, "the event after resubscribing", func() bool { return len(rec.events["churn"]) == i+1 })
				if err := b.Unsubscribe(ctx, "churn"); err != nil {
					t.Fatal(err)
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.resubs) != 0 {
				t.Fatalf("spurious resubscriptions: %v", rec.resubs)
			}
		})
	}
}

func TestRedisBrokerResubscribeAfterClientKill(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			b := newTestRedisBroker(t, srv, RedisOptions{Sharded: sharded})
			rec := runRecorder(t, b)
			if err := b.Subscribe(t.Context(), "k"); err != nil {
				t.Fatal(err)
			}
			if err := srv.Client(t).Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
			rec.wait(t, "HandleResubscribed", func() bool { return rec.resubs["k"] > 0 })
			redisMustPublish(t, b, Publication{Topic: "k", Data: json.RawMessage(`1`)})
			rec.wait(t, "delivery after the reconnect", func() bool { return len(rec.events["k"]) == 1 })
		})
	}
}

func TestRedisBrokerServerDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := newTestRedisBroker(t, srv, RedisOptions{})
	rec := runRecorder(t, b)
	ctx := t.Context()
	if err := b.Subscribe(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	redisMustPublish(t, b, Publication{Topic: "d", Data: json.RawMessage(`1`)})
	rec.wait(t, "delivery before the outage", func() bool { return len(rec.events["d"]) == 1 })

	srv.Stop()
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := b.Publish(callCtx, Publication{Topic: "d", Data: json.RawMessage(`2`)})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish to a stopped server: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("publish to a stopped server took %v", d)
	}
	if _, err := b.History(callCtx, "d", 0, 10); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("history from a stopped server: %v, want ErrUnavailable", err)
	}
	if err := b.Ping(callCtx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping of a stopped server: %v, want ErrUnavailable", err)
	}
	subCtx, cancelSub := context.WithTimeout(ctx, 2*time.Second)
	defer cancelSub()
	if err := b.Subscribe(subCtx, "d2"); err == nil {
		t.Fatal("subscribe with the server stopped succeeded")
	}

	srv.Restart()
	rec.wait(t, "HandleResubscribed after the restart", func() bool { return rec.resubs["d"] > 0 })
	// go-redis resubscribes its whole set in one command: had the failed
	// subscription stayed in it, d2 would be subscribed by now.
	if n := srv.Client(t).PubSubNumSub(ctx, "edge:{d2}").Val()["edge:{d2}"]; n != 0 {
		t.Fatalf("the failed subscription to d2 lingered: %d subscribers", n)
	}
	// Pooled connections died with the server; the pool drops them as it
	// finds them, so wait for a healthy one rather than fail on the first.
	redisEventually(t, 5*time.Second, "ping after the restart", func() bool { return b.Ping(ctx) == nil })
	r := redisMustPublish(t, b, Publication{Topic: "d", Data: json.RawMessage(`3`)})
	if r.Seq != 1 {
		t.Fatalf("first publish to the restarted (empty) server at %+v, want seq 1", r.Position)
	}
	rec.wait(t, "delivery after the restart", func() bool { return len(rec.events["d"]) == 2 })
	if err := b.Subscribe(ctx, "d2"); err != nil {
		t.Fatalf("subscribe after the restart: %v", err)
	}
}

// TestRedisSlot pins the slot function to Redis's own CLUSTER KEYSLOT of
// each topic's keys.
func TestRedisSlot(t *testing.T) {
	t.Parallel()
	for topic, want := range map[string]uint16{
		"somekey": 11058, "hash_tag": 2515, "foo": 12182, "room:42": 16332, "org:acme:finance": 6204,
	} {
		if got := redisSlot(topic); got != want {
			t.Errorf("redisSlot(%q) = %d, want %d", topic, got, want)
		}
	}
}
