package handlers

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/logtest"

	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/auth"
	"github.com/edge-rt/edge/edge/limit"
	"github.com/edge-rt/edge/internal/ssetest"
	"github.com/golang-jwt/jwt/v5"
)

// forge signs arbitrary claims with method and key, for tokens Mint would
// never make.
func forge(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func baseClaims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": "mallory", "iss": testIssuer, "aud": testAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"edge": map[string]any{"subscribe": []string{"*"}, "publish": []string{"*"}},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// badTokens are refused on every endpoint, each for its own reason.
func badTokens(t *testing.T) map[string]string {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := func(mod func(jwt.MapClaims)) string {
		return forge(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(mod))
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, baseClaims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"bad signature":  forge(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef0123"), baseClaims(nil)),
		"expired":        hs(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }),
		"not yet valid":  hs(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }),
		"wrong audience": hs(func(c jwt.MapClaims) { c["aud"] = "other-service" }),
		"wrong issuer":   hs(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }),
		"alg none":       none,
		// The classic confusion: the RSA public key, which is public, used
		// as an HMAC secret.
		"HS256 with the RSA public key": forge(t, jwt.SigningMethodHS256, pubPEM, baseClaims(nil)),
		"RS256 with an unknown key":     forge(t, jwt.SigningMethodRS256, rsaKey, baseClaims(nil)),
		"garbage":                       "not.a.jwt",
		// The identity rule, [A-Za-z0-9._-]{1,64}: an email address has no
		// user:<sub> topic, and a longer sub leaves no room under the limit.
		"email as sub": hs(func(c jwt.MapClaims) { c["sub"] = "mallory@example.com" }),
		"65-byte sub":  hs(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("m", 65) }),
	}
}

// endpoint is one authenticated route, called with a credential.
type endpoint struct {
	name string
	call func(s *testServer, header http.Header) *http.Response
}

func endpoints(t *testing.T, topic string) []endpoint {
	do := func(s *testServer, method, path, body string, header http.Header) *http.Response {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header = header.Clone()
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	return []endpoint{
		{"stream", func(s *testServer, h http.Header) *http.Response {
			return do(s, "GET", "/v1/stream?topic="+topic, "", h)
		}},
		{"publish", func(s *testServer, h http.Header) *http.Response {
			return do(s, "POST", "/v1/topics/"+topic+"/events", `{"data":1}`, h)
		}},
		{"history", func(s *testServer, h http.Header) *http.Response {
			return do(s, "GET", "/v1/topics/"+topic+"/events", "", h)
		}},
	}
}

func wantError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body errorBody
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != status || body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("got %d %s, want %d with code %q", resp.StatusCode, raw, status, code)
	}
}

func TestEveryEndpointRefusesBadCredentials(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	for _, ep := range endpoints(t, "orders") {
		wantError(t, ep.call(s, http.Header{}), 401, "unauthorized")
		for name, tok := range badTokens(t) {
			t.Run(ep.name+"/"+name, func(t *testing.T) {
				wantError(t, ep.call(s, http.Header{"Authorization": {"Bearer " + tok}}), 401, "invalid_token")
			})
		}
		// A valid token for a topic it may not touch.
		limited := mint(t, auth.Claims{Subject: "alice", Subscribe: []string{"news"}, Publish: []string{"news"}}, time.Hour)
		wantError(t, ep.call(s, http.Header{"Authorization": {"Bearer " + limited}}), 403, "forbidden")
	}
}

func TestForbiddenStreamNamesTheTopic(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	tok := mint(t, auth.Claims{Subject: "alice", Org: "acme"}, time.Hour)
	// Defaults give alice user:alice and org:acme:*, nothing else.
	resp, err := s.Client().Get(s.URL + "/v1/stream?topic=user:alice&topic=org:acme:news&topic=org:other:news&access_token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || !strings.Contains(string(raw), `org:other:news`) {
		t.Fatalf("got %d %s", resp.StatusCode, raw)
	}
	st := ssetest.Open(t, s.Client(), s.URL+"/v1/stream?topic=user:alice&topic=org:acme:news&access_token="+tok, nil)
	if st.Resp.StatusCode != 200 {
		t.Fatalf("allowed topics: %d", st.Resp.StatusCode)
	}
}

func TestAPIKeyPublishes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	key := http.Header{"X-Api-Key": {testAPIKey}}
	eps := endpoints(t, "org:acme:billing")
	resp := eps[1].call(s, key)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("API key publish: %d", resp.StatusCode)
	}
	wantError(t, endpoints(t, "org:acme:news")[1].call(s, key), 403, "forbidden")
	// An API key publishes; it does not follow streams.
	wantError(t, eps[0].call(s, key), 403, "forbidden")
	wantError(t, eps[1].call(s, http.Header{"X-Api-Key": {"wrong-key"}}), 401, "invalid_token")
}

func TestQueryTokenNeverLogged(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	s := newTestServerLogging(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	good := mint(t, auth.Claims{Subject: "alice", Subscribe: []string{"a"}, Publish: []string{"a"}}, time.Hour)
	expired := forge(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))
	paths := []string{
		"/v1/stream?topic=a&access_token=",               // works
		"/v1/stream?topic=forbidden&access_token=",       // 403
		"/v1/stream?topic=bad%20name&access_token=",      // 400
		"/v1/topics/a/events?limit=0&access_token=",      // 400
		"/v1/topics/zzz/events?access_token=",            // 403
		"/v1/nothing-here?access_token=",                 // 404
		"/v1/stream?topic=a&lastEventId=x&access_token=", // reset
	}
	for _, tok := range []string{good, expired} {
		for _, p := range paths {
			req, _ := http.NewRequest("GET", s.URL+p+tok, nil)
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == 200 {
				ssetest.FromReader(resp.Body).Next(t, 2*time.Second, func(f ssetest.Frame) bool { return f.HasID })
			}
			resp.Body.Close()
		}
	}
	out := logs.String()
	if !strings.Contains(out, "/v1/stream") {
		t.Fatalf("the requests were not logged at all: %q", out)
	}
	for _, tok := range []string{good, expired} {
		sig := tok[strings.LastIndex(tok, ".")+1:]
		if strings.Contains(out, tok) || strings.Contains(out, sig) {
			t.Fatalf("a query token reached the logs:\n%s", out)
		}
	}
}

func newTestServerLogging(t *testing.T, log *slog.Logger) *testServer {
	t.Helper()
	s := newTestServerWith(t, edge.NewMemoryBroker(edge.RetentionPolicy{}), testStream, testLimits, limit.NewMemoryLimiter(), log)
	return s
}

func TestLimitsAnswerWithJSON(t *testing.T) {
	t.Parallel()
	lim := testLimits
	// A rate so low that no token comes back during the test, however slow
	// the machine: the third publish is refused for certain.
	lim.StreamsPerUser, lim.PublishRate, lim.PublishBurst, lim.MaxHeaderBytes = 1, 0.01, 2, 2048
	s := newTestServerWith(t, edge.NewMemoryBroker(edge.RetentionPolicy{}), testStream, lim, limit.NewMemoryLimiter(), nil)

	// Publish rate: a burst of 2, then 429 with Retry-After.
	for i := range 2 {
		if code, out := s.publish(t, "r", `{"data":1}`); code != 201 {
			t.Fatalf("publish %d: %d %v", i, code, out)
		}
	}
	req, _ := http.NewRequest("POST", s.URL+"/v1/topics/r/events", strings.NewReader(`{"data":1}`))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// The bucket refills one token in 100 s.
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 90 || ra > 100 {
		t.Errorf("Retry-After %q, want about 100 seconds", resp.Header.Get("Retry-After"))
	}
	wantError(t, resp, 429, "rate_limited")

	// Streams per user: the second is refused while the first is open.
	first := s.open(t, s.URL+"/v1/stream?topic=a", nil)
	first.Next(t, 2*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	resp, err = s.get(t, "/v1/stream?topic=b")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on too_many_streams")
	}
	wantError(t, resp, 429, "too_many_streams")

	// Headers.
	req, _ = http.NewRequest("GET", s.URL+"/v1/topics/a/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("X-Padding", strings.Repeat("p", 3000))
	resp, err = s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, resp, 431, "headers_too_large")

	// Every refusal is counted.
	resp, _ = s.Client().Get(s.URL + "/metrics")
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`edge_limit_refusals_total{limit="publish_rate"} 1`,
		`edge_limit_refusals_total{limit="streams_per_user"} 1`,
		`edge_limit_refusals_total{limit="header_size"} 1`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestStreamEndsWhenTokenExpires: the stream ends at the token's exp, and
// the client, with a fresh token and its Last-Event-ID, misses nothing.
func TestStreamEndsWhenTokenExpires(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	short := mint(t, auth.Claims{Subject: "alice", Subscribe: []string{"x"}, Publish: []string{"x"}}, 2*time.Second)
	st := ssetest.Open(t, s.Client(), s.URL+"/v1/stream?topic=x", http.Header{"Authorization": {"Bearer " + short}})
	st.Next(t, 2*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	s.publish(t, "x", `{"data":1}`)
	first := st.Next(t, 2*time.Second, ssetest.Event)
	st.WaitEnd(t, 5*time.Second)
	s.publish(t, "x", `{"data":2}`)

	fresh := mint(t, auth.Claims{Subject: "alice", Subscribe: []string{"x"}}, time.Hour)
	again := ssetest.Open(t, s.Client(), s.URL+"/v1/stream?topic=x", http.Header{
		"Authorization": {"Bearer " + fresh}, "Last-Event-Id": {first.ID},
	})
	if f := again.Next(t, 2*time.Second, ssetest.Event); !strings.Contains(f.Data, `"data":2`) {
		t.Fatalf("after the token's renewal: %+v", f)
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", s.URL+"/v1/stream?topic=a", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "last-event-id, authorization")
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, origin := range []string{"https://app.example.com", "https://eu.acme.io"} {
		resp := preflight(origin)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
			h.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "last-event-id") {
			t.Fatalf("preflight from %s: %d %v", origin, resp.StatusCode, h)
		}
	}
	for _, origin := range []string{"https://evil.test", "https://acme.io.evil.test"} {
		if got := preflight(origin).Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("preflight from %s allowed: %q", origin, got)
		}
	}
	// A real request from an allowed origin sees the exposed headers.
	req, _ := http.NewRequest("GET", s.URL+"/v1/topics/a/events", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Upload-Offset") {
		t.Fatalf("exposed headers: %q", resp.Header.Get("Access-Control-Expose-Headers"))
	}
}
