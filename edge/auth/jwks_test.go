package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A key rotated in the file is picked up by Reload: the new key works, the
// old one is refused. A broken or missing file keeps the keys in use.
func TestJWKSReload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := time.Now()
	oldTok := sign(t, jwt.SigningMethodES256, testECKey(), kidEC, claimsFor(now))
	next := newECKey()
	newTok := sign(t, jwt.SigningMethodES256, next, "ec-2", claimsFor(now))

	authOK := func(tok string) error {
		_, err := f.a.Authenticate(request(viaBearer, tok))
		return err
	}
	if err := authOK(oldTok); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}

	writeJWKS(t, f.jwks, ecJWK("ec-2", &next.PublicKey))
	if err := authOK(newTok); err == nil {
		t.Fatal("new key accepted before Reload")
	}
	if err := f.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := authOK(newTok); err != nil {
		t.Errorf("new key after Reload: %v", err)
	}
	if err := authOK(oldTok); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "unknown key id") {
		t.Errorf("old key after Reload: err = %v, want unknown key id", err)
	}
	// The RSA key went with the rotation: RS256 is no longer offered.
	rsTok := sign(t, jwt.SigningMethodRS256, testRSAKey(), kidRSA, claimsFor(now))
	if err := authOK(rsTok); err == nil || !strings.Contains(err.Error(), "algorithm not allowed") {
		t.Errorf("RS256 without RSA keys: err = %v, want algorithm not allowed", err)
	}

	writeFile(t, f.jwks, []byte(`{"keys": [`))
	if err := f.a.Reload(); err == nil {
		t.Error("Reload of a truncated file succeeded")
	}
	if err := authOK(newTok); err != nil {
		t.Errorf("keys lost after a failed Reload: %v", err)
	}
	if err := os.Remove(f.jwks); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Reload(); err == nil {
		t.Error("Reload of a missing file succeeded")
	}
	if err := authOK(newTok); err != nil {
		t.Errorf("keys lost after a failed Reload: %v", err)
	}
	if !strings.Contains(f.logs.String(), "JWKSLoadFailed") {
		t.Errorf("failed reload not logged:\n%s", f.logs)
	}
}

// Watch notices a file replaced on disk without being told.
func TestJWKSWatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.a.pollEvery = 10 * time.Millisecond
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.a.Watch(ctx)
	}()
	t.Cleanup(func() {
		stop()
		<-done // Watch returns when its context ends
	})

	next := newECKey()
	tok := sign(t, jwt.SigningMethodES256, next, "ec-2", claimsFor(time.Now()))
	writeJWKS(t, f.jwks, ecJWK(kidEC, &testECKey().PublicKey), ecJWK("ec-2", &next.PublicKey))
	waitFor(t, "Watch to load the new key", func() bool {
		_, err := f.a.Authenticate(request(viaBearer, tok))
		return err == nil
	})

	// A broken write is logged and keeps the keys; the fixed file loads.
	writeFile(t, f.jwks, []byte("not json"))
	waitFor(t, "Watch to report the broken file", func() bool {
		return strings.Contains(f.logs.String(), "JWKSLoadFailed")
	})
	if _, err := f.a.Authenticate(request(viaBearer, tok)); err != nil {
		t.Errorf("keys lost after a broken write: %v", err)
	}
	writeJWKS(t, f.jwks, ecJWK(kidEC, &testECKey().PublicKey))
	waitFor(t, "Watch to drop the removed key", func() bool {
		_, err := f.a.Authenticate(request(viaBearer, tok))
		return err != nil
	})

	// A vanished file is reported and changes nothing.
	if err := os.Remove(f.jwks); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Watch to report the missing file", func() bool {
		return strings.Contains(f.logs.String(), "JWKSStatFailed")
	})
	ecTok := sign(t, jwt.SigningMethodES256, testECKey(), kidEC, claimsFor(time.Now()))
	if _, err := f.a.Authenticate(request(viaBearer, ecTok)); err != nil {
		t.Errorf("keys lost when the file vanished: %v", err)
	}
}

func TestWatchWithoutFileReturns(t *testing.T) {
	t.Parallel()
	a, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Watch(t.Context()) // must not block
	if err := a.Reload(); err != nil {
		t.Errorf("Reload without a file: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	ec1, ec2 := newECKey(), newECKey()
	rsaPub := &testRSAKey().PublicKey
	small := map[string]any{"kty": "RSA", "kid": "small", "e": "AQAB", // a 1024-bit modulus
		"n": base64.RawURLEncoding.EncodeToString(append([]byte{0x80}, make([]byte, 127)...))}
	offCurve := ecJWK("bad", &ec1.PublicKey)
	offCurve["y"] = offCurve["x"]
	with := func(m map[string]any, k string, v any) map[string]any {
		c := make(map[string]any, len(m)+1)
		for kk, vv := range m {
			c[kk] = vv
		}
		c[k] = v
		return c
	}

	tests := []struct {
		name         string
		keys         []map[string]any
		rsa, ec      int
		wantErr      string
		noKIDAlgOK   string // an alg whose kid-less token must verify
		noKIDAlgFail string // an alg whose kid-less token must be refused
	}{
		{name: "rsa and ec", keys: []map[string]any{rsaJWK("r", rsaPub), ecJWK("e", &ec1.PublicKey)}, rsa: 1, ec: 1,
			noKIDAlgOK: "ES256"},
		{name: "enc keys skipped", keys: []map[string]any{with(rsaJWK("r", rsaPub), "use", "enc"), ecJWK("e", &ec1.PublicKey)}, ec: 1},
		{name: "oct skipped", keys: []map[string]any{{"kty": "oct", "k": "c2VjcmV0"}}},
		{name: "P-384 skipped", keys: []map[string]any{with(ecJWK("e", &ec1.PublicKey), "crv", "P-384")}},
		{name: "other alg skipped", keys: []map[string]any{with(rsaJWK("r", rsaPub), "alg", "PS256"), with(ecJWK("e", &ec1.PublicKey), "alg", "ES384")}},
		{name: "no alg accepted", keys: []map[string]any{with(rsaJWK("r", rsaPub), "alg", "")}, rsa: 1},
		{name: "two EC keys, no kid", keys: []map[string]any{ecJWK("", &ec1.PublicKey), ecJWK("", &ec2.PublicKey)}, ec: 2,
			noKIDAlgFail: "ES256"},
		{name: "small RSA refused", keys: []map[string]any{small}, wantErr: "at least 2048"},
		{name: "point off the curve", keys: []map[string]any{offCurve}, wantErr: "bad EC"},
		{name: "short coordinate", keys: []map[string]any{with(ecJWK("e", &ec1.PublicKey), "x", "AAAA")}, wantErr: "bad EC"},
		{name: "even exponent", keys: []map[string]any{with(rsaJWK("r", rsaPub), "e", "AAI")}, wantErr: "exponent"},
		{name: "bad base64", keys: []map[string]any{with(rsaJWK("r", rsaPub), "n", "!!")}, wantErr: "modulus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "jwks.json")
			writeJWKS(t, path, tt.keys...)
			a, err := New(Config{JWKSFile: path}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ks := a.jwks.Load()
			if len(ks.rsa) != tt.rsa || len(ks.ec) != tt.ec {
				t.Errorf("loaded %d RSA, %d EC keys; want %d, %d", len(ks.rsa), len(ks.ec), tt.rsa, tt.ec)
			}
			c := claimsFor(time.Now())
			c.Issuer, c.Audience = "", nil
			if tt.noKIDAlgOK != "" {
				tok := sign(t, jwt.SigningMethodES256, ec1, "", c)
				if _, err := a.Authenticate(request(viaBearer, tok)); err != nil {
					t.Errorf("kid-less token: %v", err)
				}
			}
			if tt.noKIDAlgFail != "" {
				tok := sign(t, jwt.SigningMethodES256, ec1, "", c)
				if _, err := a.Authenticate(request(viaBearer, tok)); err == nil || !strings.Contains(err.Error(), "unknown key id") {
					t.Errorf("kid-less token with two candidate keys: err = %v, want unknown key id", err)
				}
			}
		})
	}
}
