package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/logtest"

	"github.com/golang-jwt/jwt/v5"
)

// RSA 2048 generation takes seconds under -race: one key per test binary.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// testECKey is the fixture's EC key; tests that rotate make their own.
var testECKey = sync.OnceValue(func() *ecdsa.PrivateKey { return newECKey() })

func newECKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

const (
	secretA      = "secret-A-0123456789abcdef0123456789"
	secretB      = "secret-B-0123456789abcdef0123456789"
	testIssuer   = "https://id.example.com"
	testAudience = "edge"
	testAPIKey   = "ek_live_8f2b1c9d4e7a6b5c3d2e1f0a9b8c7d6e"
	kidRSA       = "rsa-1"
	kidEC        = "ec-1"
)

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	b, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	m := map[string]any{
		"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(b[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(b[33:]),
	}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

// writeJWKS replaces path atomically, the way a deploy would.
func writeJWKS(t testing.TB, path string, keys ...map[string]any) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, data)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	a    *Authenticator
	jwks string
	logs *logtest.Buffer
}

// newFixture builds an Authenticator with every kind of credential
// configured: HMAC secret A, a JWKS with one RSA and one EC key, issuer,
// audience, query tokens, defaults and one API key.
func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{jwks: filepath.Join(t.TempDir(), "jwks.json"), logs: &logtest.Buffer{}}
	writeJWKS(t, f.jwks, rsaJWK(kidRSA, &testRSAKey().PublicKey), ecJWK(kidEC, &testECKey().PublicKey))
	cfg := Config{
		HMACSecrets:      []string{secretA},
		JWKSFile:         f.jwks,
		Issuer:           testIssuer,
		Audience:         testAudience,
		QueryToken:       true,
		DefaultSubscribe: []string{"user:{sub}:*", "org:{org}:*"},
		DefaultPublish:   []string{"user:{sub}:outbox"},
		APIKeys:          []APIKey{{Name: "ingest", Hash: HashAPIKey(testAPIKey), Publish: []string{"news:*"}}},
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg, slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	return f
}

// claimsFor returns valid claims for sub alice of org acme.
func claimsFor(now time.Time) tokenClaims {
	return tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "alice",
			Issuer:    testIssuer,
			Audience:  jwt.ClaimStrings{testAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Org:  "acme",
		Edge: edgeClaim{Subscribe: []string{"chat:general"}, Publish: []string{"chat:general"}},
	}
}

// sign signs c with method and key; kid is set when non-empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
