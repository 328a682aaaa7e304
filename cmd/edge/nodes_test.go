package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/logtest"

	"github.com/edge-rt/edge/config"
	"github.com/edge-rt/edge/edge/auth"
	"github.com/edge-rt/edge/internal/redistest"
	"github.com/edge-rt/edge/internal/ssetest"
)

// TestNoCrossTenantLeak runs two nodes on one Redis. A stream of org A
// never sees org B's events, whichever node they are published on, and
// cannot reach org B's topics with a crafted Last-Event-ID.
func TestNoCrossTenantLeak(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t)
	node1, _, _ := startServer(t, "--redis.addrs", rdb.Addr())
	node2, _, _ := startServer(t, "--redis.addrs", rdb.Addr())
	// Defaults give each user org:{org}:* and nothing else.
	alice := mintFor(t, auth.Claims{Subject: "alice", Org: "a", Publish: []string{"org:a:*"}})
	bob := mintFor(t, auth.Claims{Subject: "bob", Org: "b", Publish: []string{"org:b:*"}})

	// Alice may not follow org B's topic, alone or among hers.
	for _, q := range []string{"topic=org:b:news", "topic=org:a:news&topic=org:b:news"} {
		resp, err := http.Get(node1 + "/v1/stream?" + q + "&access_token=" + alice)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("alice following %s: %d", q, resp.StatusCode)
		}
	}

	// Bob's stream on node 2 gives a real cursor of org:b:news.
	bobStream := ssetest.Open(t, http.DefaultClient, node2+"/v1/stream?topic=org:b:news", bearer(bob))
	bobStream.Next(t, 5*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	aliceStream := ssetest.Open(t, http.DefaultClient, node1+"/v1/stream?topic=org:a:news", bearer(alice))
	aliceStream.Next(t, 5*time.Second, func(f ssetest.Frame) bool { return f.HasID })

	for i, node := range []string{node1, node2, node1, node2} {
		if code := publish(t, http.DefaultClient, node, bob, "org:b:news", `"secret-b"`); code != 201 {
			t.Fatalf("bob publish %d: %d", i, code)
		}
		if code := publish(t, http.DefaultClient, node, alice, "org:a:news", `"hello-a"`); code != 201 {
			t.Fatalf("alice publish %d: %d", i, code)
		}
		// Alice may not publish into org B either.
		if code := publish(t, http.DefaultClient, node, alice, "org:b:news", `"spoof"`); code != 403 {
			t.Fatalf("alice publishing to org B: %d", code)
		}
	}
	var bobLast string
	for range 4 {
		f := bobStream.Next(t, 5*time.Second, ssetest.Event)
		if !strings.Contains(f.Data, "secret-b") {
			t.Fatalf("bob got %q", f.Data)
		}
		bobLast = f.ID
	}
	for range 4 {
		if f := aliceStream.Next(t, 5*time.Second, ssetest.Event); !strings.Contains(f.Data, "hello-a") {
			t.Fatalf("alice got %q", f.Data)
		}
	}
	// Bob's cursor used by alice on her own topic: unreadable for her topic
	// set, so a reset and nothing of org B.
	crafted := ssetest.Open(t, http.DefaultClient, node2+"/v1/stream?topic=org:a:news", http.Header{
		"Authorization": {"Bearer " + alice}, "Last-Event-Id": {bobLast},
	})
	f := crafted.Next(t, 5*time.Second, ssetest.Event)
	if f.Event != "reset" || !strings.Contains(f.Data, `"reason":"invalid"`) || strings.Contains(f.Data, "org:b") {
		t.Fatalf("crafted cursor: %+v", f)
	}
	publish(t, http.DefaultClient, node1, bob, "org:b:news", `"secret-b-2"`)
	publish(t, http.DefaultClient, node1, alice, "org:a:news", `"after"`)
	if f := crafted.Next(t, 5*time.Second, ssetest.Event); !strings.Contains(f.Data, `"after"`) {
		t.Fatalf("after the reset alice got %q", f.Data)
	}
}

// TestPublishRateLimitAcrossNodes: the bucket lives in Redis, so a user's
// burst is shared by every node.
func TestPublishRateLimitAcrossNodes(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t)
	flags := []string{"--redis.addrs", rdb.Addr(), "--limits.publish_rate", "0.5", "--limits.publish_burst", "3"}
	node1, _, _ := startServer(t, flags...)
	node2, _, _ := startServer(t, flags...)
	tok := mintFor(t, auth.Claims{Subject: "carol", Publish: []string{"*"}})
	nodes := []string{node1, node2, node1}
	for i, node := range nodes {
		if code := publish(t, http.DefaultClient, node, tok, "busy", "1"); code != 201 {
			t.Fatalf("publish %d within the burst: %d", i, code)
		}
	}
	for _, node := range []string{node2, node1} {
		req, _ := http.NewRequest("POST", node+"/v1/topics/busy/events", strings.NewReader(`{"data":1}`))
		req.Header = bearer(tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("over the shared burst on %s: %d Retry-After %q", node, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	// Another user has a bucket of their own.
	if code := publish(t, http.DefaultClient, node2, mintFor(t, auth.Claims{Subject: "dave", Publish: []string{"*"}}), "busy", "1"); code != 201 {
		t.Fatalf("another user: %d", code)
	}
}

// TestDevModeOnlyOnLoopback: without any auth configured, a loopback
// server starts (dev mode); any other address refuses to.
func TestDevModeOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load([]string{"--config", "", "--http.addr", "0.0.0.0:0", "--uploads.dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx, cfg, slog.New(slog.DiscardHandler), nil); !errors.Is(err, errNoAuth) {
		t.Fatalf("non-loopback without auth: %v, want errNoAuth", err)
	}

	cfg, err = config.Load([]string{"--config", "", "--http.addr", "127.0.0.1:0", "--http.drain_timeout", "100ms", "--uploads.dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log, ready) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("dev mode did not start: %v", err)
	}
	// The printed token works as it is.
	m := regexp.MustCompile(`msg=DevMode .* token=([A-Za-z0-9._-]+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("dev mode printed no token: %s", logs.String())
	}
	st := ssetest.Open(t, http.DefaultClient, "http://"+addr.String()+"/v1/stream?topic=anything", bearer(m[1]))
	if st.Resp.StatusCode != 200 {
		t.Fatalf("the dev token was refused: %d", st.Resp.StatusCode)
	}
	st.Close()
	cancel()
	<-done
}
