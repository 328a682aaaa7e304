package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzAuthenticate feeds arbitrary Authorization headers. Whatever comes in,
// Authenticate must not panic, must fail with one of its two errors, must
// not echo the credential, and must accept only a credential the test
// signed or configured itself: the fuzzer cannot sign, so any other success
// is a forgery.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f, nil)
	now := time.Now()
	c := claimsFor(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(24 * time.Hour)) // outlives the fuzz run
	genuine := []string{
		sign(f, jwt.SigningMethodHS256, []byte(secretA), "", c),
		sign(f, jwt.SigningMethodRS256, testRSAKey(), kidRSA, c),
		sign(f, jwt.SigningMethodES256, testECKey(), kidEC, c),
		testAPIKey,
	}
	for _, g := range genuine {
		f.Add("Bearer " + g)
		f.Add("ApiKey " + g)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/events", nil)
		r.Header["Authorization"] = []string{header}
		p, err := fx.a.Authenticate(r)
		if err == nil {
			for _, g := range genuine {
				if strings.Contains(header, g) {
					return
				}
			}
			t.Fatalf("accepted a credential nobody signed: %q → %+v", header, p)
		}
		if p != nil {
			t.Fatalf("principal returned with error %v", err)
		}
		if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNoCredentials) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		_, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
		if cred = strings.TrimSpace(cred); len(cred) >= 16 && strings.Contains(err.Error(), cred) {
			t.Fatalf("error echoes the credential: %v", err)
		}
	})
}
