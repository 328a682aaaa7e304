package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edge-rt/edge/edge/auth"
)

// TestTokenIsAcceptedByTheServersAuthenticator mints with the secret from
// the environment, as an operator would, and verifies with the same secret.
func TestTokenIsAcceptedByTheServersAuthenticator(t *testing.T) {
	secret := "edgectl-token-test-secret-0123456789ab"
	t.Setenv("EDGE_AUTH_HMAC_SECRETS", secret)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"token", "--config", "", "--sub", "alice", "--org", "acme",
		"--subscribe", "room:*", "--publish", "room:42", "--ttl", "10m"}, nil, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	a, err := auth.New(auth.Config{HMACSecrets: []string{secret}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out.String()))
	p, err := a.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || p.Org != "acme" || !p.CanSubscribe("room:7") || !p.CanPublish("room:42") || p.CanPublish("room:7") {
		t.Fatalf("principal %+v", p)
	}
}

func TestTokenNeedsASecret(t *testing.T) {
	t.Setenv("EDGE_AUTH_HMAC_SECRETS", "")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"token", "--config", "", "--sub", "a"}, nil, &out, &errOut); code != exitFail {
		t.Fatalf("exit %d without a secret", code)
	}
	if !strings.Contains(errOut.String(), "hmac_secrets") {
		t.Fatalf("message %q does not say what to set", errOut.String())
	}
}

// TestTokenRefusesBadSub: edgectl mints nothing the server would refuse for
// its sub, such as an email address ('@' is not a topic character).
func TestTokenRefusesBadSub(t *testing.T) {
	t.Setenv("EDGE_AUTH_HMAC_SECRETS", "edgectl-token-test-secret-0123456789ab")
	for _, sub := range []string{"alice@example.com", strings.Repeat("a", 65)} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"token", "--config", "", "--sub", sub}, nil, &out, &errOut); code != exitFail {
			t.Fatalf("--sub %q: exit %d, stdout %q", sub, code, out.String())
		}
		if out.Len() != 0 || !strings.Contains(errOut.String(), "[A-Za-z0-9._-]{1,64}") {
			t.Fatalf("--sub %q: stdout %q, stderr %q; want no token and the rule", sub, out.String(), errOut.String())
		}
	}
}
