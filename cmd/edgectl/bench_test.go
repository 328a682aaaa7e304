package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub is a toy SSE fan-out for testing bench's bookkeeping, not Edge:
// it broadcasts every published event to the open streams, but the
// fourth stream to connect misses the event with n = 2, the fifth gets
// n = 3 twice and the first an event of another run, so the report must
// show exactly one loss, one duplicate and one foreign event.
type fakeHub struct {
	mu      sync.Mutex
	seq     int
	streams []chan string
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/metrics":
		h.mu.Lock()
		n := len(h.streams)
		h.mu.Unlock()
		fmt.Fprintf(w, "process_resident_memory_bytes %e\ngo_goroutines %d\n", float64(10<<20+n*8192), 5+n)
	case r.URL.Path == "/v1/stream":
		ch := make(chan string, 1024)
		h.mu.Lock()
		h.streams = append(h.streams, ch)
		h.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		io.WriteString(w, "retry: 1000\n: ok\n\n")
		rc := http.NewResponseController(w)
		rc.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case f := <-ch:
				io.WriteString(w, f)
				rc.Flush()
			}
		}
	case r.Method == http.MethodPost && r.URL.Path == "/v1/topics/bench/events":
		var body struct {
			Data struct{ N int } `json:"data"`
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		data := bytes.TrimSuffix(bytes.TrimPrefix(raw, []byte(`{"data":`)), []byte("}"))
		h.mu.Lock()
		h.seq++
		frame := fmt.Sprintf("id: s%d\ndata: {\"topic\":\"bench\",\"data\":%s,\"ts\":1}\n\n", h.seq, data)
		for i, ch := range h.streams {
			switch {
			case i == 0 && body.Data.N == 0:
				// Another bench's event on the same topic.
				ch <- "id: x\ndata: {\"topic\":\"bench\",\"data\":{\"n\":1,\"t\":1,\"r\":1},\"ts\":1}\n\n"
			case i == 3 && body.Data.N == 2:
				continue
			case i == 4 && body.Data.N == 3:
				ch <- frame
			}
			ch <- frame
		}
		h.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"topic":"bench","seq":%d,"id":"s%d"}`, h.seq, h.seq)
	default:
		http.NotFound(w, r)
	}
}

func TestBenchCountsLossAndDuplicates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		proto string
		// maxStreams is the server's HTTP/2 streams per connection.
		maxStreams int
		wantConns  int64
	}{
		{"http1", 0, 20},
		{"h2c", 0, 1},
		{"h2c", 6, 4},
	}
	for _, tc := range tests {
		proto := tc.proto
		srv := httptest.NewUnstartedServer(&fakeHub{})
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		if tc.maxStreams > 0 {
			srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: tc.maxStreams}
		}
		srv.Start()
		defer srv.Close()
		o := benchOptions{
			srv: serverFlags{server: srv.URL}, streams: 20, topic: "bench", events: 10, burst: true,
			proto: proto, warmup: 2, sources: 1, openTimeout: 10 * time.Second,
			drainTimeout: 500 * time.Millisecond, dialConcurrency: 8,
		}
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		rep, err := bench(t.Context(), o, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Connections != tc.wantConns {
			t.Errorf("%s (%d streams per connection): %d connections, want %d", proto, tc.maxStreams, rep.Connections, tc.wantConns)
		}
		if rep.Open != 20 || rep.Published != 10 || rep.Expected != 200 || rep.Delivered != 199 ||
			rep.Lost != 1 || rep.StreamsWithLoss != 1 || rep.Duplicated != 1 || rep.Foreign != 1 {
			t.Errorf("%s report: %+v", proto, rep)
		}
		if len(rep.LossExamples) != 1 || fmt.Sprint(rep.LossExamples[0].Missing) != "[2]" {
			t.Errorf("loss examples %+v, want one stream missing [2]", rep.LossExamples)
		}
		if !rep.WarmupComplete || rep.Latency.Count != 199 || rep.Latency.MaxMs <= 0 {
			t.Errorf("warmup complete %v, latency %+v", rep.WarmupComplete, rep.Latency)
		}
		if rep.Memory.IdleKiB != 8 || rep.Memory.Goroutines != 1 {
			t.Errorf("memory %+v, want 8 KiB and 1 goroutine per stream", rep.Memory)
		}
		var text bytes.Buffer
		rep.writeText(&text)
		if !strings.Contains(text.String(), "199 of 200 expected: 1 lost (1 streams), 1 duplicated") {
			t.Errorf("text report:\n%s", text.String())
		}
	}
}

func TestCheckFileLimit(t *testing.T) {
	t.Parallel()
	if err := checkFileLimit("http1", 1<<30); err == nil || !strings.Contains(err.Error(), "ulimit -n") {
		t.Errorf("checkFileLimit(http1, 2^30) = %v, want the limit explained", err)
	}
	if err := checkFileLimit("h2c", 1<<30); err != nil {
		t.Errorf("h2c shares connections: %v", err)
	}
	if err := checkFileLimit("http1", 10); err != nil {
		t.Errorf("10 streams: %v", err)
	}
}

func TestSourceDialerSpreadsSources(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ips := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.RemoteAddr, ":")
		mu.Lock()
		ips[host]++
		mu.Unlock()
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d, err := newSourceDialer(3, u)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := streamTransport("http1", 6, d)
	if err != nil {
		t.Fatal(err)
	}
	tr.DisableKeepAlives = true // a connection per request, so a dial per request
	c := &http.Client{Transport: tr}
	for range 6 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if ips[ip] != 2 {
			t.Errorf("connections by source: %v, want 2 from each of 127.0.0.1-3", ips)
			break
		}
	}
	if _, err := newSourceDialer(2, &url.URL{Host: "example.com:80"}); err == nil {
		t.Error("several sources need a loopback server")
	}
}
