package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// fakeStream is a tiny SSE server for testing the client wrapper, not
// Edge: each request gets an ephemeral event and the stored event after
// its Last-Event-ID, then the stream ends, cleanly on odd requests and
// by a dropped connection on even ones, so both r3labs' own reconnect and
// our resubscribe are exercised.
type fakeStream struct {
	mu      sync.Mutex
	lastIDs []string // Last-Event-ID of each request
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	last := r.Header.Get("Last-Event-ID")
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, last)
	req := len(f.lastIDs)
	f.mu.Unlock()
	n := 0
	if last != "" {
		var err error
		if n, err = strconv.Atoi(strings.TrimPrefix(last, "c")); err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "retry: 5\n: open\n\n")
	fmt.Fprintf(w, "event: typing\ndata: {\"topic\":\"t\",\"data\":\"eph\",\"ts\":1}\n\n")
	fmt.Fprintf(w, "id: c%d\ndata: {\"topic\":\"t\",\"data\":{\"n\":%d},\"ts\":2}\n\n", n+1, n+1)
	http.NewResponseController(w).Flush()
	if req%2 == 0 {
		// Ends the chunked body without its terminator: the client sees
		// an unexpected EOF, an error, not a clean end.
		panic(http.ErrAbortHandler)
	}
}

func (f *fakeStream) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastIDs...)
}

func fastBackOff() backoff.BackOff { return backoff.NewConstantBackOff(5 * time.Millisecond) }

func TestSubscriptionResumesAfterEveryEnd(t *testing.T) {
	t.Parallel()
	fake := &fakeStream{}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var events []streamEvent
	var cleanEnds, failures int
	sub := &subscription{
		URL:         srv.URL,
		LastEventID: "c10",
		NewBackOff:  fastBackOff,
		OnReconnect: func(err error, _ time.Duration) {
			if err == nil {
				cleanEnds++
			} else {
				failures++
			}
		},
		OnEvent: func(ev streamEvent) {
			events = append(events, ev)
			if len(events) == 10 {
				cancel()
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no 10 events within 10s; server saw Last-Event-IDs %q", fake.requests())
	}

	// Every request resumed from the last stored event: c10, c11, ...,
	// whether the previous stream ended cleanly or was cut.
	got := fake.requests()
	if len(got) < 5 {
		t.Fatalf("requests = %q, want at least 5", got)
	}
	for i, id := range got[:5] {
		if want := fmt.Sprintf("c%d", 10+i); id != want {
			t.Errorf("request %d Last-Event-ID = %q, want %q (all %q)", i, id, want, got)
		}
	}
	// Ephemeral events carry no id of their own and do not move the
	// position; stored ones carry theirs.
	for i, ev := range events {
		stored := i%2 == 1
		switch {
		case stored && (ev.ID != fmt.Sprintf("c%d", 11+i/2) || ev.Event != ""):
			t.Errorf("event %d = %+v, want stored c%d", i, ev, 11+i/2)
		case !stored && (ev.ID != "" || ev.Event != "typing"):
			t.Errorf("event %d = %+v, want ephemeral typing without id", i, ev)
		}
	}
	// Both kinds of end happened: clean ones (#147, resubscribed here) and
	// cut ones (r3labs' own retry with our backoff).
	if cleanEnds < 2 || failures < 2 {
		t.Errorf("%d clean ends and %d failures, want at least 2 of each", cleanEnds, failures)
	}
	if sub.LastEventID != "c15" {
		t.Errorf("LastEventID = %q, want c15", sub.LastEventID)
	}
}

func TestSubscriptionGivesUpOnClientErrors(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"no_topic","message":"name a topic"}}`)
	}))
	defer srv.Close()
	sub := &subscription{URL: srv.URL, NewBackOff: fastBackOff, OnEvent: func(streamEvent) {}}
	err := sub.Run(t.Context())
	if !errors.Is(err, errGiveUp) || !strings.Contains(err.Error(), "no_topic") {
		t.Fatalf("Run = %v, want errGiveUp with the server's message", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("%d requests, want 1: a 404 is not retried", calls)
	}
}

func TestSubscriptionCancelDuringBackOff(t *testing.T) {
	t.Parallel()
	failed := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failed <- struct{}{}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	sub := &subscription{
		URL: srv.URL,
		// An hour: only the context can end the wait.
		NewBackOff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) },
		OnEvent:    func(streamEvent) {},
	}
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	<-failed
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waiting in its backoff 5s after cancel")
	}
}

func TestSubscriptionLargeEvent(t *testing.T) {
	t.Parallel()
	// 200 KiB: r3labs' default buffer (64 KiB) would fail on it.
	big := strings.Repeat("x", 200<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: 1\ndata: {\"topic\":\"t\",\"data\":\"%s\",\"ts\":1}\n\n", big)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	var ev streamEvent
	sub := &subscription{URL: srv.URL, NewBackOff: fastBackOff, OnEvent: func(e streamEvent) { ev = e; cancel() }}
	if err := sub.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if line := newTailLine(ev); line.Topic != "t" || string(line.Data) != `"`+big+`"` || line.ID != "1" {
		t.Fatalf("got id %q topic %q and %d bytes of data", line.ID, line.Topic, len(line.Data))
	}
}

func TestNewTailLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ev   streamEvent
		want string
	}{
		{streamEvent{ID: "c1", Data: []byte(`{"topic":"a","data":{"x":1},"ts":5}`)},
			`{"id":"c1","event":"message","topic":"a","data":{"x":1},"ts":5}`},
		{streamEvent{ID: "c2", Event: "reset", Data: []byte(`{"topics":["a"],"reason":"expired"}`)},
			`{"id":"c2","event":"reset","data":{"topics":["a"],"reason":"expired"}}`},
		{streamEvent{Event: "typing", Data: []byte(`{"topic":"room:1","data":null,"ts":5}`)},
			`{"event":"typing","topic":"room:1","data":null,"ts":5}`},
		{streamEvent{Data: []byte("not json")},
			`{"event":"message","data":"not json"}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(newTailLine(tc.ev))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("newTailLine(%s) = %s, want %s", tc.ev.Data, b, tc.want)
		}
	}
}
