package auth

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// How a test request carries its credential.
const (
	viaBearer = "bearer"
	viaCookie = "cookie"
	viaQuery  = "query"
	viaAPIKey = "apikey"
	viaXKey   = "x-api-key"
	viaNone   = "none"
)

func request(via, cred string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/events", nil)
	switch via {
	case viaBearer:
		r.Header.Set("Authorization", "Bearer "+cred)
	case viaCookie:
		r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: cred})
	case viaQuery:
		r.URL.RawQuery = url.Values{QueryParam: {cred}, "topic": {"chat:general"}}.Encode()
	case viaAPIKey:
		r.Header.Set("Authorization", "ApiKey "+cred)
	case viaXKey:
		r.Header.Set(APIKeyHeader, cred)
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := time.Now()
	rsaKey, ecKey := testRSAKey(), testECKey()
	claims := func(mod func(*tokenClaims)) tokenClaims {
		c := claimsFor(now)
		if mod != nil {
			mod(&c)
		}
		return c
	}
	hs := func(mod func(*tokenClaims)) string {
		return sign(t, jwt.SigningMethodHS256, []byte(secretA), "", claims(mod))
	}
	valid := hs(nil)

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	// A valid token with its payload swapped for one naming another user.
	parts := strings.Split(valid, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","iss":"` + testIssuer +
		`","aud":"edge","exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + `}`))
	tampered := strings.Join(parts, ".")

	// "alg":"NONE" is unknown to the library (it only knows "none").
	upperNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"NONE","typ":"JWT"}`)) + "." + parts[1] + "."

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		via     string
		cred    string
		wantErr error  // nil: accepted
		reason  string // in the error message
		wantSub string
	}{
		{name: "no credentials", via: viaNone, wantErr: ErrNoCredentials},
		{name: "HS256 valid", via: viaBearer, cred: valid, wantSub: "alice"},
		{name: "RS256 valid", via: viaBearer, cred: sign(t, jwt.SigningMethodRS256, rsaKey, kidRSA, claims(nil)), wantSub: "alice"},
		{name: "ES256 valid", via: viaBearer, cred: sign(t, jwt.SigningMethodES256, ecKey, kidEC, claims(nil)), wantSub: "alice"},
		{name: "RS256 without kid, one RSA key", via: viaBearer, cred: sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(nil)), wantSub: "alice"},
		{name: "cookie", via: viaCookie, cred: valid, wantSub: "alice"},
		{name: "query", via: viaQuery, cred: valid, wantSub: "alice"},
		{name: "api key in authorization", via: viaAPIKey, cred: testAPIKey, wantSub: "apikey:ingest"},
		{name: "api key in X-API-Key", via: viaXKey, cred: testAPIKey, wantSub: "apikey:ingest"},
		{name: "expired within leeway", via: viaBearer, cred: hs(func(c *tokenClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second))
		}), wantSub: "alice"},
		{name: "nbf within leeway", via: viaBearer, cred: hs(func(c *tokenClaims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Second))
		}), wantSub: "alice"},

		{name: "bad signature", via: viaBearer, cred: sign(t, jwt.SigningMethodHS256, []byte(secretB), "", claims(nil)),
			wantErr: ErrInvalidToken, reason: "token from authorization header: bad signature"},
		{name: "tampered payload", via: viaBearer, cred: tampered, wantErr: ErrInvalidToken, reason: "bad signature"},
		{name: "expired", via: viaBearer, cred: hs(func(c *tokenClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
		}), wantErr: ErrInvalidToken, reason: "expired"},
		{name: "expired in query", via: viaQuery, cred: hs(func(c *tokenClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
		}), wantErr: ErrInvalidToken, reason: "token from query parameter: expired"},
		{name: "not yet valid", via: viaBearer, cred: hs(func(c *tokenClaims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
		}), wantErr: ErrInvalidToken, reason: "not yet valid"},
		{name: "wrong audience", via: viaBearer, cred: hs(func(c *tokenClaims) {
			c.Audience = jwt.ClaimStrings{"other"}
		}), wantErr: ErrInvalidToken, reason: "wrong audience"},
		{name: "no audience", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Audience = nil }),
			wantErr: ErrInvalidToken, reason: "wrong audience"},
		{name: "wrong issuer", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Issuer = "https://evil.example" }),
			wantErr: ErrInvalidToken, reason: "wrong issuer"},
		{name: "no issuer", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Issuer = "" }),
			wantErr: ErrInvalidToken, reason: "wrong issuer"},
		{name: "no exp", via: viaBearer, cred: hs(func(c *tokenClaims) { c.ExpiresAt = nil }),
			wantErr: ErrInvalidToken, reason: "exp claim missing"},
		{name: "no sub", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Subject = "" }),
			wantErr: ErrInvalidToken, reason: "sub claim missing"},
		{name: "sub with wildcard", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Subject = "al*" }),
			wantErr: ErrInvalidToken, reason: "sub or org is not"},
		{name: "org with colon", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Org = "acme:x" }),
			wantErr: ErrInvalidToken, reason: "sub or org is not"},
		{name: "email as sub", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Subject = "alice@example.com" }),
			wantErr: ErrInvalidToken, reason: "token from authorization header: sub or org is not [A-Za-z0-9._-]{1,64}"},
		{name: "sub of 65 bytes", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Subject = strings.Repeat("a", 65) }),
			wantErr: ErrInvalidToken, reason: "sub or org is not [A-Za-z0-9._-]{1,64}"},
		{name: "sub of 64 bytes", via: viaBearer, cred: hs(func(c *tokenClaims) { c.Subject = strings.Repeat("a", 64) }),
			wantSub: strings.Repeat("a", 64)},
		{name: "alg none", via: viaBearer, cred: none, wantErr: ErrInvalidToken, reason: "algorithm not allowed"},
		{name: "alg NONE", via: viaBearer, cred: upperNone, wantErr: ErrInvalidToken, reason: "algorithm not allowed"},
		{name: "HS384", via: viaBearer, cred: sign(t, jwt.SigningMethodHS384, []byte(secretA), "", claims(nil)),
			wantErr: ErrInvalidToken, reason: "algorithm not allowed"},
		{name: "HS256 signed with the RSA public key", via: viaBearer,
			cred:    sign(t, jwt.SigningMethodHS256, pubPEM, kidRSA, claims(nil)),
			wantErr: ErrInvalidToken, reason: "bad signature"},
		{name: "unknown kid", via: viaBearer, cred: sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-9", claims(nil)),
			wantErr: ErrInvalidToken, reason: "unknown key id"},
		{name: "RS256 naming the EC key", via: viaBearer, cred: sign(t, jwt.SigningMethodRS256, rsaKey, kidEC, claims(nil)),
			wantErr: ErrInvalidToken, reason: "unknown key id"},
		{name: "ES256 by a stranger's key", via: viaBearer, cred: sign(t, jwt.SigningMethodES256, newECKey(), kidEC, claims(nil)),
			wantErr: ErrInvalidToken, reason: "bad signature"},
		{name: "malformed", via: viaBearer, cred: "not-a-jwt", wantErr: ErrInvalidToken, reason: "malformed"},
		{name: "three garbage segments", via: viaBearer, cred: "eyJhbGciOiJIUzI1NiJ9.!!!.xyz", wantErr: ErrInvalidToken, reason: "malformed"},
		{name: "too long", via: viaBearer, cred: strings.Repeat("a", maxTokenLen+1), wantErr: ErrInvalidToken, reason: "too long"},
		{name: "wrong api key", via: viaAPIKey, cred: testAPIKey + "x", wantErr: ErrInvalidToken, reason: "api key from authorization header: unknown key"},
		{name: "wrong X-API-Key", via: viaXKey, cred: "ek_live_guess", wantErr: ErrInvalidToken, reason: "api key from X-API-Key header: unknown key"},
		{name: "api key as bearer", via: viaBearer, cred: testAPIKey, wantErr: ErrInvalidToken, reason: "malformed"},
		{name: "token as api key", via: viaAPIKey, cred: valid, wantErr: ErrInvalidToken, reason: "unknown key"},
		{name: "bad cookie", via: viaCookie, cred: "abc.def.ghi", wantErr: ErrInvalidToken, reason: "token from cookie: malformed"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				p, err := f.a.Authenticate(request(tt.via, tt.cred))
				if tt.wantErr == nil {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if p.Subject != tt.wantSub {
						t.Errorf("Subject = %q, want %q", p.Subject, tt.wantSub)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if p != nil {
					t.Errorf("principal %+v returned with error", p)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("err = %q, want it to mention %q", err, tt.reason)
				}
				if tt.cred != "" && strings.Contains(err.Error(), tt.cred) {
					t.Errorf("error message contains the credential: %q", err)
				}
				// No fragment of a token either: its signature is the secret part.
				if sig := tt.cred[strings.LastIndexByte(tt.cred, '.')+1:]; len(sig) >= 8 && strings.Contains(err.Error(), sig) {
					t.Errorf("error message contains the signature: %q", err)
				}
			})
		}
	})
	logs := f.logs.String()
	for _, tt := range tests {
		if tt.cred != "" && strings.Contains(logs, tt.cred) {
			t.Errorf("log contains the credential of %q", tt.name)
		}
	}
}

// Without HMAC secrets, HS256 is not an algorithm the server takes at all:
// the RSA-public-key-as-HMAC-secret trick fails before any signature check.
func TestHMACRefusedWithoutSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.HMACSecrets = nil })
	pubDER, err := x509.MarshalPKIXPublicKey(&testRSAKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	for _, key := range [][]byte{pubPEM, pubDER} {
		tok := sign(t, jwt.SigningMethodHS256, key, kidRSA, claimsFor(time.Now()))
		_, err := f.a.Authenticate(request(viaBearer, tok))
		if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "algorithm not allowed") {
			t.Errorf("err = %v, want algorithm not allowed", err)
		}
	}
}

func TestNothingConfiguredRefusesAll(t *testing.T) {
	t.Parallel()
	a, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, []byte(secretA), "", claimsFor(now)),
		sign(t, jwt.SigningMethodES256, testECKey(), "", claimsFor(now)),
	} {
		if _, err := a.Authenticate(request(viaBearer, tok)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("err = %v, want ErrInvalidToken", err)
		}
	}
	if _, err := a.Authenticate(request(viaXKey, testAPIKey)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("api key: err = %v, want ErrInvalidToken", err)
	}
	// Query tokens are off by default.
	if _, err := a.Authenticate(request(viaQuery, "x")); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("query: err = %v, want ErrNoCredentials", err)
	}
}

func TestQueryTokenSwitch(t *testing.T) {
	t.Parallel()
	tok := sign(t, jwt.SigningMethodHS256, []byte(secretA), "", claimsFor(time.Now()))
	for _, on := range []bool{true, false} {
		f := newFixture(t, func(c *Config) { c.QueryToken = on })
		p, err := f.a.Authenticate(request(viaQuery, tok))
		switch {
		case on && err != nil:
			t.Errorf("QueryToken on: %v", err)
		case on && p.Subject != "alice":
			t.Errorf("QueryToken on: Subject = %q", p.Subject)
		case !on && !errors.Is(err, ErrNoCredentials):
			t.Errorf("QueryToken off: err = %v, want ErrNoCredentials", err)
		case !on && strings.Contains(err.Error(), tok):
			t.Errorf("error contains the token")
		}
	}
}

func TestSourcePrecedence(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.CookieName = "sid" })
	now := time.Now()
	bob := claimsFor(now)
	bob.Subject = "bob"
	alice := sign(t, jwt.SigningMethodHS256, []byte(secretA), "", claimsFor(now))
	bobTok := sign(t, jwt.SigningMethodHS256, []byte(secretA), "", bob)
	expired := claimsFor(now)
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
	expiredTok := sign(t, jwt.SigningMethodHS256, []byte(secretA), "", expired)

	tests := []struct {
		name    string
		build   func(r *http.Request)
		wantSub string
		wantErr string
	}{
		{name: "bearer before cookie", build: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+alice)
			r.AddCookie(&http.Cookie{Name: "sid", Value: bobTok})
		}, wantSub: "alice"},
		{name: "refused bearer does not fall back to cookie", build: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+expiredTok)
			r.AddCookie(&http.Cookie{Name: "sid", Value: bobTok})
		}, wantErr: "expired"},
		{name: "basic auth is skipped", build: func(r *http.Request) {
			r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
			r.AddCookie(&http.Cookie{Name: "sid", Value: bobTok})
		}, wantSub: "bob"},
		{name: "lowercase scheme", build: func(r *http.Request) {
			r.Header.Set("Authorization", "bearer  "+alice)
		}, wantSub: "alice"},
		{name: "x-api-key before cookie", build: func(r *http.Request) {
			r.Header.Set(APIKeyHeader, testAPIKey)
			r.AddCookie(&http.Cookie{Name: "sid", Value: bobTok})
		}, wantSub: "apikey:ingest"},
		{name: "cookie before query", build: func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "sid", Value: bobTok})
			r.URL.RawQuery = QueryParam + "=" + alice
		}, wantSub: "bob"},
		{name: "default cookie name not read", build: func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: alice})
		}, wantErr: "no credentials"},
		{name: "two bearer headers", build: func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+alice)
			r.Header.Add("Authorization", "Bearer "+bobTok)
		}, wantErr: "authorization header: sent more than once"},
		{name: "empty bearer", build: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer ")
		}, wantErr: "token from authorization header: empty"},
		{name: "two query tokens", build: func(r *http.Request) {
			r.URL.RawQuery = QueryParam + "=" + alice + "&" + QueryParam + "=" + bobTok
		}, wantErr: "token from query parameter: sent more than once"},
		{name: "empty query token", build: func(r *http.Request) {
			r.URL.RawQuery = QueryParam + "="
		}, wantErr: "no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/events", nil)
			tt.build(r)
			p, err := f.a.Authenticate(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				for _, tok := range []string{alice, bobTok, expiredTok} {
					if strings.Contains(err.Error(), tok) {
						t.Errorf("error contains a token: %q", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Subject != tt.wantSub {
				t.Errorf("Subject = %q, want %q", p.Subject, tt.wantSub)
			}
		})
	}
}

// A token signed by secret A works while A is configured next to the new
// secret B, and fails once A is removed.
func TestHMACKeyRotation(t *testing.T) {
	t.Parallel()
	tokA := sign(t, jwt.SigningMethodHS256, []byte(secretA), "", claimsFor(time.Now()))
	tests := []struct {
		secrets []string
		ok      bool
	}{
		{secrets: []string{secretA}, ok: true},
		{secrets: []string{secretB, secretA}, ok: true},
		{secrets: []string{secretA, secretB}, ok: true},
		{secrets: []string{secretB}, ok: false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.secrets, ","), func(t *testing.T) {
			t.Parallel()
			a, err := New(Config{HMACSecrets: tt.secrets}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Authenticate(request(viaBearer, tokA))
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && (!errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "bad signature")) {
				t.Errorf("err = %v, want bad signature", err)
			}
		})
	}
}

func TestPrincipalPatterns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := time.Now()
	withOrg := claimsFor(now)
	noOrg := claimsFor(now)
	noOrg.Org = ""
	noOrg.Edge = edgeClaim{}
	punct := claimsFor(now)
	punct.Subject = "a.b-c_d"

	auth := func(c tokenClaims) *Principal {
		t.Helper()
		p, err := f.a.Authenticate(request(viaBearer, sign(t, jwt.SigningMethodHS256, []byte(secretA), "", c)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := f.a.Authenticate(request(viaXKey, testAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	var nobody *Principal

	tests := []struct {
		name           string
		p              *Principal
		topic          string
		sub, pub       bool
		wantSubscribes []string
	}{
		{name: "own subscribe pattern", p: auth(withOrg), topic: "chat:general", sub: true, pub: true},
		{name: "default user pattern", p: auth(withOrg), topic: "user:alice:inbox", sub: true},
		{name: "default org pattern", p: auth(withOrg), topic: "org:acme:news", sub: true},
		{name: "default publish", p: auth(withOrg), topic: "user:alice:outbox", sub: true, pub: true},
		{name: "other user", p: auth(withOrg), topic: "user:bob:inbox"},
		{name: "other org", p: auth(withOrg), topic: "org:globex:news"},
		{name: "prefix is not a namespace", p: auth(withOrg), topic: "user:alicex:inbox"},
		{name: "no org drops org default", p: auth(noOrg), topic: "org::news"},
		{name: "no org keeps user default", p: auth(noOrg), topic: "user:alice:inbox", sub: true},
		{name: "no own patterns", p: auth(noOrg), topic: "chat:general"},
		{name: "sub with punctuation", p: auth(punct), topic: "user:a.b-c_d:x", sub: true},
		{name: "api key publishes", p: key, topic: "news:today", pub: true},
		{name: "api key only its patterns", p: key, topic: "chat:general"},
		{name: "nil principal", p: nobody, topic: "chat:general"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.CanSubscribe(tt.topic); got != tt.sub {
				t.Errorf("CanSubscribe(%q) = %v, want %v", tt.topic, got, tt.sub)
			}
			if got := tt.p.CanPublish(tt.topic); got != tt.pub {
				t.Errorf("CanPublish(%q) = %v, want %v", tt.topic, got, tt.pub)
			}
		})
	}

	t.Run("pattern lists", func(t *testing.T) {
		t.Parallel()
		p := auth(withOrg)
		if got, want := strings.Join(p.SubscribePatterns(), " "), "chat:general user:alice:* org:acme:*"; got != want {
			t.Errorf("SubscribePatterns = %q, want %q", got, want)
		}
		if got, want := strings.Join(auth(noOrg).SubscribePatterns(), " "), "user:alice:*"; got != want {
			t.Errorf("SubscribePatterns without org = %q, want %q", got, want)
		}
		if got, want := strings.Join(p.PublishPatterns(), " "), "chat:general user:alice:outbox"; got != want {
			t.Errorf("PublishPatterns = %q, want %q", got, want)
		}
		p.SubscribePatterns()[0] = "*"
		if p.CanSubscribe("user:bob:x") {
			t.Error("changing the returned slice widened access")
		}
	})
	t.Run("principal fields", func(t *testing.T) {
		t.Parallel()
		p := auth(withOrg)
		if p.Org != "acme" || p.APIKey != "" || !p.ExpiresAt.Equal(withOrg.ExpiresAt.Time) {
			t.Errorf("token principal = %+v", p)
		}
		if key.Org != "" || key.APIKey != "ingest" || !key.ExpiresAt.IsZero() || len(key.SubscribePatterns()) != 0 {
			t.Errorf("api key principal = %+v", key)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "short secret", cfg: Config{HMACSecrets: []string{secretA, "hunter2"}}, want: "hmac secret #2 is 7 bytes"},
		{name: "negative leeway", cfg: Config{Leeway: -time.Second}, want: "negative leeway"},
		{name: "missing JWKS", cfg: Config{JWKSFile: "/nonexistent/jwks.json"}, want: "JWKS file"},
		{name: "unknown placeholder", cfg: Config{DefaultSubscribe: []string{"user:{user}:*"}}, want: "only {sub} and {org}"},
		{name: "empty default", cfg: Config{DefaultPublish: []string{""}}, want: "default publish"},
		{name: "bad key hash", cfg: Config{APIKeys: []APIKey{{Name: "k", Hash: "abc"}}}, want: "64 hex digits"},
		{name: "plaintext key as hash", cfg: Config{APIKeys: []APIKey{{Name: "k", Hash: testAPIKey}}}, want: "64 hex digits"},
		{name: "key name", cfg: Config{APIKeys: []APIKey{{Name: "a b", Hash: HashAPIKey("x")}}}, want: "name"},
		{name: "key name with @", cfg: Config{APIKeys: []APIKey{{Name: "ops@example.com", Hash: HashAPIKey("x")}}},
			want: `name "ops@example.com" must be [A-Za-z0-9._-]{1,64}`},
		{name: "key name of 65 bytes", cfg: Config{APIKeys: []APIKey{{Name: strings.Repeat("k", 65), Hash: HashAPIKey("x")}}},
			want: "must be [A-Za-z0-9._-]{1,64}"},
		{name: "duplicate key name", cfg: Config{APIKeys: []APIKey{
			{Name: "k", Hash: HashAPIKey("x")}, {Name: "k", Hash: HashAPIKey("y")},
		}}, want: "used twice"},
		{name: "duplicate key", cfg: Config{APIKeys: []APIKey{
			{Name: "k1", Hash: HashAPIKey("x")}, {Name: "k2", Hash: HashAPIKey("x")},
		}}, want: "same hash"},
		{name: "placeholder in key pattern", cfg: Config{APIKeys: []APIKey{
			{Name: "k", Hash: HashAPIKey("x"), Publish: []string{"user:{sub}:*"}},
		}}, want: "placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error contains the secret: %v", err)
			}
		})
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.HMACSecrets = []string{secretB, secretA} })
	tok, err := Mint(secretA, Claims{
		Subject: "dev", Org: "acme", Subscribe: []string{"demo:*"}, Publish: []string{"demo:chat"},
		Issuer: testIssuer, Audience: []string{testAudience},
	}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.a.Authenticate(request(viaBearer, tok))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "dev" || p.Org != "acme" || !p.CanSubscribe("demo:x") || !p.CanPublish("demo:chat") ||
		p.CanPublish("demo:x") || !p.CanSubscribe("org:acme:x") {
		t.Errorf("principal = %+v, patterns %v / %v", p, p.SubscribePatterns(), p.PublishPatterns())
	}
	if d := time.Until(p.ExpiresAt); d <= 0 || d > time.Minute {
		t.Errorf("expires in %v, want about a minute", d)
	}

	old, err := mintAt(secretA, Claims{Subject: "dev", Issuer: testIssuer, Audience: []string{testAudience}},
		time.Now().Add(-time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Authenticate(request(viaBearer, old)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("old token: err = %v, want expired", err)
	}

	for _, tt := range []struct {
		secret string
		c      Claims
		ttl    time.Duration
	}{
		{secret: "short", c: Claims{Subject: "dev"}, ttl: time.Minute},
		{secret: secretA, c: Claims{Subject: "dev"}, ttl: 0},
		{secret: secretA, c: Claims{Subject: ""}, ttl: time.Minute},
		{secret: secretA, c: Claims{Subject: "*"}, ttl: time.Minute},
		{secret: secretA, c: Claims{Subject: "dev", Org: "a:b"}, ttl: time.Minute},
		{secret: secretA, c: Claims{Subject: "dev@example.com"}, ttl: time.Minute},
		{secret: secretA, c: Claims{Subject: strings.Repeat("d", 65)}, ttl: time.Minute},
		{secret: secretA, c: Claims{Subject: "dev", Org: "acme@x"}, ttl: time.Minute},
		{secret: secretA, c: Claims{Subject: "dev", Org: strings.Repeat("o", 65)}, ttl: time.Minute},
	} {
		if _, err := Mint(tt.secret, tt.c, tt.ttl); err == nil {
			t.Errorf("Mint(%+v, %v) succeeded", tt.c, tt.ttl)
		}
	}
	if _, err := Mint(secretA, Claims{Subject: "dev@example.com"}, time.Minute); err == nil ||
		!strings.Contains(err.Error(), "sub and org must be [A-Za-z0-9._-]{1,64}") {
		t.Errorf("Mint with '@' in sub: err = %v, want the identity rule", err)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{in: "/events?topic=a&access_token=eyJsecret", want: "/events?access_token=REDACTED&topic=a"},
		{in: "/events?topic=a", want: "/events?topic=a"},
		{in: "/events", want: "/events"},
		{in: "/events?access_token=x&access_token=y", want: "/events?access_token=REDACTED"},
		{in: "/events?a=1;access_token=eyJsecret", want: "/events"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := RedactURL(u); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if RedactURL(nil) != "" {
		t.Error("RedactURL(nil) not empty")
	}
}
