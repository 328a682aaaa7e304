package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/auth"
	"github.com/edge-rt/edge/edge/limit"
	"github.com/edge-rt/edge/edge/uploads"
	"github.com/edge-rt/edge/internal/ssetest"
	"github.com/prometheus/client_golang/prometheus"
)

var testStream = edge.StreamConfig{
	Heartbeat:    time.Hour,
	Retry:        time.Second,
	MaxLifetime:  time.Hour,
	WriteTimeout: 5 * time.Second,
	QueueSize:    256,
}

type testServer struct {
	*httptest.Server
	hub    *edge.Hub
	broker edge.Broker
	token  string // a token that may follow and publish to every topic
}

// testSecret signs the test servers' tokens.
const testSecret = "handlers-test-secret-0123456789abcdef"

// testLimits are high enough that only tests of the limits meet them.
var testLimits = Limits{StreamsPerUser: 100, StreamsPerIP: 100, PublishRate: 1000, PublishBurst: 1000, MaxHeaderBytes: 16 << 10}

// newTestServer serves Edge's routes over a memory broker.
func newTestServer(t *testing.T, cfg edge.StreamConfig) *testServer {
	t.Helper()
	b := edge.NewMemoryBroker(edge.RetentionPolicy{})
	return newTestServerWith(t, b, cfg, testLimits, limit.NewMemoryLimiter(), nil)
}

func newTestServerWith(t *testing.T, b edge.Broker, cfg edge.StreamConfig, limits Limits, rate limit.Limiter, log *slog.Logger) *testServer {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hub := edge.NewHub(b, edge.HubOptions{Tick: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	reg := prometheus.NewRegistry()
	if err := hub.Metrics().Register(reg); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{
		HMACSecrets:      []string{testSecret},
		QueryToken:       true,
		Leeway:           time.Second, // streams end at exp + leeway: keep tests short
		Issuer:           testIssuer,
		Audience:         testAudience,
		DefaultSubscribe: []string{"user:{sub}", "org:{org}:*"},
		APIKeys:          []auth.APIKey{{Name: "billing", Hash: auth.HashAPIKey(testAPIKey), Publish: []string{"org:*:billing"}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ups, err := uploads.New(uploads.Config{Dir: t.TempDir(), BasePath: "/v1/uploads/"}, b, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	go ups.Run(ctx)
	e, err := New(Deps{
		Hub: hub, Stream: cfg, MaxTopics: 4, MaxBodyBytes: 4096, MaxEventBytes: 1024, Compression: []string{"br", "gzip"},
		NodeID: "test", Registry: reg, Logger: log,
		Auth: authn, Limits: limits, RateLimiter: rate,
		CORSOrigins: []string{"https://app.example.com", "https://*.acme.io"},
		Uploads:     &Uploads{Service: ups, BasePath: "/v1/uploads/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		<-done
	})
	return &testServer{Server: srv, hub: hub, broker: b, token: mint(t, auth.Claims{Subject: "tester", Subscribe: []string{"*"}, Publish: []string{"*"}}, time.Hour)}
}

// testAPIKey may publish to org:*:billing.
const testAPIKey = "edge-test-api-key-for-billing"

// The test servers require this issuer and audience.
const (
	testIssuer   = "https://issuer.test"
	testAudience = "edge"
)

// mint signs c with the test secret, for the test issuer and audience
// unless c names others.
func mint(t *testing.T, c auth.Claims, ttl time.Duration) string {
	t.Helper()
	if c.Issuer == "" {
		c.Issuer = testIssuer
	}
	if c.Audience == nil {
		c.Audience = []string{testAudience}
	}
	tok, err := auth.Mint(testSecret, c, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// open opens a stream with the server's all-topics token.
func (s *testServer) open(t *testing.T, url string, header http.Header) *ssetest.Stream {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + s.token}}
	for k, v := range header {
		h[k] = v
	}
	return ssetest.Open(t, s.Client(), url, h)
}

// get GETs path with the server's all-topics token.
func (s *testServer) get(t *testing.T, path string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	return s.Client().Do(req)
}

func (s *testServer) publish(t *testing.T, topic, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/topics/"+topic+"/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("publish answered %d with non-JSON %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func errorCode(t *testing.T, body map[string]any) string {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok || e["message"] == "" {
		t.Fatalf("not an error body: %v", body)
	}
	return e["code"].(string)
}

func TestStreamHeadersAndFirstBytes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	st := s.open(t, s.URL+"/v1/stream?topic=a&topics=b,c", nil)
	if st.Resp.StatusCode != 200 {
		t.Fatalf("status %d", st.Resp.StatusCode)
	}
	h := st.Resp.Header
	want := map[string]string{
		"Content-Type":      "text/event-stream; charset=utf-8",
		"Cache-Control":     "no-cache, no-transform",
		"X-Accel-Buffering": "no",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	// Nothing is published, yet the retry hint, a comment and the starting
	// position arrive at once.
	// The opening block is "retry: N" and a comment; a parser sees the
	// comment line first, then the block with the retry field.
	opening := []ssetest.Frame{st.Next(t, 2*time.Second, nil), st.Next(t, 2*time.Second, nil)}
	if !opening[0].IsComment || opening[1].Retry == "" {
		t.Fatalf("opening %+v, want a comment and a retry hint", opening)
	}
	pos := st.Next(t, 2*time.Second, nil)
	if !pos.HasID || pos.ID == "" || pos.HasData {
		t.Fatalf("want an id-only frame with the starting position, got %+v", pos)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	t.Parallel()
	cfg := testStream
	cfg.Heartbeat = 100 * time.Millisecond
	s := newTestServer(t, cfg)
	st := s.open(t, s.URL+"/v1/stream?topic=quiet", nil)
	st.Next(t, 2*time.Second, func(f ssetest.Frame) bool { return f.HasID }) // opening done
	var beats []time.Time
	for len(beats) < 3 {
		f := st.Next(t, time.Second, nil)
		if !f.IsComment {
			t.Fatalf("unexpected frame %+v", f)
		}
		beats = append(beats, f.At)
	}
	for i := 1; i < len(beats); i++ {
		// Generous: the point is that silence is filled, not the timer's
		// precision on a loaded machine.
		if gap := beats[i].Sub(beats[i-1]); gap > 5*cfg.Heartbeat {
			t.Fatalf("heartbeats %v apart, configured %v", gap, cfg.Heartbeat)
		}
	}
}

func TestStreamDeliversMultiLineData(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	st := s.open(t, s.URL+"/v1/stream?topic=text", nil)
	st.Next(t, 2*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	body := `{"type":"note","data":{"text":"line one\nline two\r\nid: 99\n\ndata: forged"}}`
	if code, out := s.publish(t, "text", body); code != 201 {
		t.Fatalf("publish: %d %v", code, out)
	}
	f := st.Next(t, 2*time.Second, ssetest.Event)
	if f.Event != "note" || !f.HasID {
		t.Fatalf("frame %+v", f)
	}
	var p struct {
		Topic string
		Data  struct{ Text string }
	}
	if err := json.Unmarshal([]byte(f.Data), &p); err != nil {
		t.Fatalf("data %q: %v", f.Data, err)
	}
	if p.Topic != "text" || p.Data.Text != "line one\nline two\r\nid: 99\n\ndata: forged" {
		t.Fatalf("got %+v", p)
	}
}

func TestStreamRejectsBadRequests(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	cases := []struct {
		query, code string
	}{
		{"", "no_topic"},
		{"topic=bad%20name", "invalid_topic"},
		{"topic=:colon", "invalid_topic"},
		{"topic=" + strings.Repeat("x", 129), "invalid_topic"},
		{"topics=a,b,c,d,e", "too_many_topics"},
	}
	for _, c := range cases {
		resp, err := s.get(t, "/v1/stream?"+c.query)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || errorCode(t, body) != c.code {
			t.Errorf("?%s: %d %v, want 400 %s", c.query, resp.StatusCode, body, c.code)
		}
	}
}

func TestGarbageLastEventIDResets(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	for _, id := range []string{"garbage", "12345", "a b", strings.Repeat("z", 300)} {
		st := s.open(t, s.URL+"/v1/stream?topic=a&topic=b", http.Header{"Last-Event-Id": {id}})
		if st.Resp.StatusCode != 200 {
			t.Fatalf("Last-Event-ID %q: status %d", id, st.Resp.StatusCode)
		}
		f := st.Next(t, 2*time.Second, ssetest.Event)
		if f.Event != "reset" || !f.HasID || f.Data != `{"topics":["a","b"],"reason":"invalid"}` {
			t.Fatalf("Last-Event-ID %q: got %+v", id, f)
		}
		st.Close()
	}
	// The query parameter works the same way (EventSource cannot set headers).
	st := s.open(t, s.URL+"/v1/stream?topic=a&lastEventId=nope", nil)
	if f := st.Next(t, 2*time.Second, ssetest.Event); f.Event != "reset" {
		t.Fatalf("lastEventId=nope: got %+v", f)
	}
}

func TestPublishAndResumeOverHTTP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	code, first := s.publish(t, "orders", `{"data":{"n":1}}`, "Idempotency-Key", "k-1")
	if code != 201 || first["seq"] != 1.0 || first["topic"] != "orders" || first["id"] == "" {
		t.Fatalf("publish: %d %v", code, first)
	}
	code, again := s.publish(t, "orders", `{"data":{"n":1}}`, "Idempotency-Key", "k-1")
	if code != 200 || again["seq"] != 1.0 || again["id"] != first["id"] {
		t.Fatalf("retry: %d %v, want 200 and the first result %v", code, again, first)
	}
	for i := 2; i <= 4; i++ {
		s.publish(t, "orders", fmt.Sprintf(`{"data":{"n":%d}}`, i))
	}
	// The id from publish resumes a stream right after that event.
	st := s.open(t, s.URL+"/v1/stream?topic=orders&lastEventId="+first["id"].(string), nil)
	for i := 2; i <= 4; i++ {
		f := st.Next(t, 2*time.Second, ssetest.Event)
		if want := fmt.Sprintf(`"data":{"n":%d}`, i); !strings.Contains(f.Data, want) {
			t.Fatalf("replayed %q, want %s", f.Data, want)
		}
	}
	// History as JSON.
	resp, err := s.get(t, "/v1/topics/orders/events?after=1&limit=2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Topic  string
		Head   uint64
		Events []struct {
			Seq  uint64
			ID   string
			Type string
			Data json.RawMessage
		}
	}
	json.NewDecoder(resp.Body).Decode(&h)
	if resp.StatusCode != 200 || h.Head != 4 || len(h.Events) != 2 || h.Events[0].Seq != 2 || h.Events[1].Seq != 3 ||
		h.Events[0].Type != "message" || string(h.Events[0].Data) != `{"n":2}` || h.Events[0].ID == "" {
		t.Fatalf("history: %d %+v", resp.StatusCode, h)
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	cases := []struct {
		name, topic, body string
		status            int
		code              string
	}{
		{"invalid topic", "bad%20topic", `{"data":1}`, 400, "invalid_topic"},
		{"malformed JSON", "t", `{"data":`, 400, "malformed_json"},
		{"not an object", "t", `[1,2]`, 400, "malformed_json"},
		{"unknown field", "t", `{"data":1,"id":"x"}`, 400, "malformed_json"},
		{"two values", "t", `{"data":1}{"data":2}`, 400, "malformed_json"},
		{"no data", "t", `{"type":"x"}`, 400, "missing_data"},
		{"type with LF", "t", `{"type":"a\nid: 9","data":1}`, 400, "invalid_event"},
		{"type with CR", "t", `{"type":"a\rb","data":1}`, 400, "invalid_event"},
		{"type with NUL", "t", `{"type":"a\u0000b","data":1}`, 400, "invalid_event"},
		{"oversized body", "t", `{"data":"` + strings.Repeat("x", 5000) + `"}`, 413, "body_too_large"},
		{"oversized event", "t", `{"data":"` + strings.Repeat("x", 2000) + `"}`, 413, "event_too_large"},
	}
	for _, c := range cases {
		code, body := s.publish(t, c.topic, c.body)
		if code != c.status || errorCode(t, body) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, body, c.status, c.code)
		}
	}
	// Nothing of it was stored.
	resp, _ := s.get(t, "/v1/topics/t/events")
	var h struct{ Head uint64 }
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Head != 0 {
		t.Fatalf("rejected publishes stored %d events", h.Head)
	}
}

func TestDrainAnswersStreamsWithRetry(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	open := s.open(t, s.URL+"/v1/stream?topic=d", nil)
	open.Next(t, 2*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	s.hub.Drain(200 * time.Millisecond)
	open.WaitEnd(t, 3*time.Second)

	late := s.open(t, s.URL+"/v1/stream?topic=d", nil)
	if late.Resp.StatusCode != 200 {
		t.Fatalf("stream during drain: status %d, want 200", late.Resp.StatusCode)
	}
	frames := late.WaitEnd(t, 2*time.Second)
	if len(frames) != 2 || frames[1].Retry == "" {
		t.Fatalf("stream during drain got %+v, want a retry hint", frames)
	}
	resp, _ := s.Client().Get(s.URL + "/readyz")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz while draining: %d", resp.StatusCode)
	}
}

func TestStatsAndMetrics(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	st := s.open(t, s.URL+"/v1/stream?topic=m", nil)
	st.Next(t, 2*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	s.publish(t, "m", `{"data":1}`)
	st.Next(t, 2*time.Second, ssetest.Event)

	s.create(t, mint(t, auth.Claims{Subject: "alice"}, time.Hour), "5", nil)

	resp, _ := s.Client().Get(s.URL + "/v1/stats")
	var stats struct {
		edge.Stats
		Uploads *struct {
			Created  uint64            `json:"created"`
			Refusals map[string]uint64 `json:"refusals"`
		} `json:"uploads"`
	}
	json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if stats.Streams["http1"] != 1 || stats.EventsPublished != 1 || stats.EventsDelivered != 1 || stats.Topics != 1 || stats.BrokerSubscriptions != 1 {
		t.Fatalf("stats %+v", stats)
	}
	if stats.Uploads == nil || stats.Uploads.Created != 1 || stats.Uploads.Refusals == nil {
		t.Errorf("stats lack the upload figures: %+v", stats.Uploads)
	}
	resp, _ = s.Client().Get(s.URL + "/metrics")
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`edge_streams{protocol="http1"} 1`, "edge_events_delivered_total 1", "edge_delivery_latency_seconds_bucket"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestPercentEncodedTopicInPath(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	code, out := s.publish(t, "room%3A42", `{"data":1}`)
	if code != 201 || out["topic"] != "room:42" {
		t.Fatalf("publish to room%%3A42: %d %v", code, out)
	}
	resp, err := s.get(t, "/v1/topics/org%3Aacme%3Afinance/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("history of an encoded topic: %d", resp.StatusCode)
	}
	if code, out := s.publish(t, "bad%2Ftopic", `{"data":1}`); code != 400 || errorCode(t, out) != "invalid_topic" {
		t.Fatalf("encoded slash: %d %v", code, out)
	}
}
