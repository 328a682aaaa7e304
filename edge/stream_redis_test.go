package edge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/redistest"
)

func TestRedisStreams(t *testing.T) {
	t.Parallel()
	testStreams(t, func(t *testing.T) wiper {
		srv := redistest.Start(t)
		b := newTestRedisBroker(t, srv, RedisOptions{Retention: conformanceRetention})
		return redisWiper{b, t, srv.Client(t)}
	})
}

// TestRedisTwoNodes runs two hubs, each with its own broker, on one Redis:
// a stream on one node gets events published on the other, and a client
// resumes on the other node exactly.
func TestRedisTwoNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := newTestRedisBroker(t, srv, RedisOptions{})
	b := newTestRedisBroker(t, srv, RedisOptions{})
	hubA, hubB := startHub(t, a), startHub(t, b)
	s := openStream(t, hubA, testStreamConfig, "", "shared")
	for i := 1; i <= 3; i++ {
		publishData(t, b, "shared", fmt.Sprint(i))
	}
	wantDatas(t, datas(t, s.client.waitEvents(t, 3), "shared"), 1, 3)
	s.close(t)
	for i := 4; i <= 6; i++ {
		publishData(t, a, "shared", fmt.Sprint(i))
	}
	r := openStream(t, hubB, testStreamConfig, s.client.lastID(), "shared")
	publishData(t, a, "shared", "7")
	wantDatas(t, datas(t, r.client.waitEvents(t, 4), "shared"), 4, 7)
}

// TestRedisPubSubKillHeals kills the node's pub/sub connection mid-stream
// while events keep coming: pub/sub loses what was published meanwhile, and
// the hub must fill it from history, so the stream has every event once.
func TestRedisPubSubKillHeals(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	node := newTestRedisBroker(t, srv, RedisOptions{})
	publisher := newTestRedisBroker(t, srv, RedisOptions{})
	hub := startHub(t, node)
	s := openStream(t, hub, testStreamConfig, "", "k")
	admin := srv.Client(t)
	const total = 60
	for i := 1; i <= total; i++ {
		if i%20 == 0 {
			if err := admin.Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
		}
		publishData(t, publisher, "k", fmt.Sprint(i))
	}
	wantDatas(t, datas(t, s.client.waitEvents(t, total), "k"), 1, total)
	if hub.metrics.heals.Load() == 0 {
		t.Fatal("the hub never healed: the kill was not noticed")
	}
}

// TestRedisRestartMidStream restarts redis-server (it keeps nothing on disk)
// under a live stream: the stream must say so with a reset (epoch), then
// deliver the new epoch's events; a client resuming from before the restart
// is told the same, and nothing is silently skipped.
func TestRedisRestartMidStream(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	node := newTestRedisBroker(t, srv, RedisOptions{})
	hub := startHub(t, node)
	s := openStream(t, hub, testStreamConfig, "", "r")
	for i := 1; i <= 3; i++ {
		publishData(t, node, "r", fmt.Sprint(i))
	}
	s.client.waitEvents(t, 3)
	before := s.client.lastID()

	srv.Restart()
	// Publish until Redis takes it again: errors meanwhile are the point
	// (the publisher learns of each failure), not a test failure.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := node.Publish(t.Context(), Publication{Topic: "r", Data: []byte("4")})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("publish after restart: %v", err)
		}
		waitABit(t, 50*time.Millisecond)
	}
	publishData(t, node, "r", "5")
	frames := s.client.waitEvents(t, 6)
	wantReset(t, frames[3], ResetEpoch, "r")
	wantDatas(t, datas(t, frames, "r"), 1, 5)

	old := openStream(t, hub, testStreamConfig, before, "r")
	wantReset(t, old.client.waitEvents(t, 1)[0], ResetEpoch, "r")
}

// TestRedisPublishWhileDown: the publisher gets an error, never a silent
// drop, and a resuming client later has every event that was accepted.
func TestRedisPublishWhileDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	node := newTestRedisBroker(t, srv, RedisOptions{})
	hub := startHub(t, node)
	s := openStream(t, hub, testStreamConfig, "", "down")
	publishData(t, node, "down", "1")
	s.client.waitEvents(t, 1)
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := node.Publish(ctx, Publication{Topic: "down", Data: []byte("2")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish with Redis down: %v, want ErrUnavailable", err)
	}
}

// TestRedisRestartWithPersistenceResumesExactly restarts a redis-server
// that keeps its data (AOF) under a live stream: the stream and a client
// resuming from before the restart both end with every accepted event
// exactly once, and no reset, since no state was lost.
func TestRedisRestartWithPersistenceResumesExactly(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	node := newTestRedisBroker(t, srv, RedisOptions{})
	hub := startHub(t, node)
	s := openStream(t, hub, testStreamConfig, "", "p")
	for i := 1; i <= 5; i++ {
		publishData(t, node, "p", fmt.Sprint(i))
	}
	early := s.client.waitEvents(t, 5)
	cursorAfter3 := early[2].ID

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	if _, err := node.Publish(ctx, Publication{Topic: "p", Data: []byte("-1")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish with Redis down: %v", err)
	}
	cancel()
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := node.Publish(t.Context(), Publication{Topic: "p", Data: []byte("6")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after restart: %v", err)
		}
		waitABit(t, 50*time.Millisecond)
	}
	for i := 7; i <= 10; i++ {
		publishData(t, node, "p", fmt.Sprint(i))
	}
	frames := s.client.waitEvents(t, 10)
	for _, f := range frames {
		if f.Event == "reset" {
			t.Fatalf("reset although Redis kept its data: %+v", f)
		}
	}
	wantDatas(t, datas(t, frames, "p"), 1, 10)

	r := openStream(t, hub, testStreamConfig, cursorAfter3, "p")
	wantDatas(t, datas(t, r.client.waitEvents(t, 7), "p"), 4, 10)
}
