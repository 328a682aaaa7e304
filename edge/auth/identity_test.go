package auth

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/golang-jwt/jwt/v5"
)

// identityChars are the characters of the identity rule.
const identityChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

// defaultSubscribe is config's default auth.default_subscribe.
var defaultSubscribe = []string{"user:{sub}", "user:{sub}:*", "org:{org}", "org:{org}:*"}

// validIdentities returns a fixed, reproducible set of identities the rule
// allows: every character on its own, each character repeated to the
// longest length, every length from 1 to the longest, and random strings.
func validIdentities() []string {
	var out []string
	for i := 0; i < len(identityChars); i++ {
		c := identityChars[i : i+1]
		out = append(out, c, strings.Repeat(c, maxIdentityLen))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = identityChars[rng.IntN(len(identityChars))]
		}
		return string(b)
	}
	for n := 1; n <= maxIdentityLen; n++ {
		out = append(out, random(n))
	}
	for range 2000 {
		out = append(out, random(1+rng.IntN(maxIdentityLen)))
	}
	return append(out, "..", "-", "_", ".-_", "user", "org", "0", "a.b-c_d", "1234567890")
}

// randomStrings returns n reproducible strings of up to a little over the
// longest identity, over identityChars and characters outside the rule.
func randomStrings(seed uint64, n int) []string {
	const wider = identityChars + "@:*/ {}+%!~\x00\n\xc3\xa9"
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]string, n)
	for i := range out {
		b := make([]byte, rng.IntN(maxIdentityLen+8))
		for j := range b {
			// Mostly identity characters, so that some strings are valid.
			if rng.IntN(8) == 0 {
				b[j] = wider[rng.IntN(len(wider))]
			} else {
				b[j] = identityChars[rng.IntN(len(identityChars))]
			}
		}
		out[i] = string(b)
	}
	return out
}

// TestIdentitiesNameValidTopics is the reason for the identity rule: for
// every identity it allows, the topics named after it are valid topics, with
// room for a suffix, and a token carrying it as sub and org is accepted and
// may follow them under the default patterns.
func TestIdentitiesNameValidTopics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.DefaultSubscribe = defaultSubscribe })
	// The longest suffix "user:<sub>:" leaves for the longest sub.
	room := edge.MaxTopicLen - len("user:") - maxIdentityLen - len(":")
	if room < 32 {
		t.Fatalf("a %d-byte sub leaves only %d bytes for user:<sub>:<name>", maxIdentityLen, room)
	}
	longest := strings.Repeat("x", room)
	// Whatever validIdentity accepts among strings of a wider alphabet
	// (topic characters, '@', wildcards) joins the set: the property is
	// about the implementation, not about identityChars.
	ids := validIdentities()
	for _, s := range randomStrings(5, 5000) {
		if validIdentity(s) {
			ids = append(ids, s)
		}
	}
	for i, id := range ids {
		if !validIdentity(id) {
			t.Fatalf("validIdentity(%q) = false", id)
		}
		for _, topic := range []string{"user:" + id, "org:" + id, "user:" + id + ":x", "org:" + id + ":x", "user:" + id + ":" + longest} {
			if !edge.ValidTopic(topic) {
				t.Fatalf("identity %q: %q is not a valid topic", id, topic)
			}
		}
		// The whole chain for a sample: minted, accepted, and allowed its
		// own topics (HS256 is cheap, but 2000 tokens under -race add up).
		if i%10 != 0 && len(id) != maxIdentityLen {
			continue
		}
		tok, err := Mint(secretA, Claims{Subject: id, Org: id, Issuer: testIssuer, Audience: []string{testAudience}}, time.Minute)
		if err != nil {
			t.Fatalf("Mint(sub %q): %v", id, err)
		}
		p, err := f.a.Authenticate(request(viaBearer, tok))
		if err != nil {
			t.Fatalf("sub %q refused: %v", id, err)
		}
		for _, topic := range []string{"user:" + id, "user:" + id + ":x", "org:" + id, "org:" + id + ":x"} {
			if !p.CanSubscribe(topic) {
				t.Fatalf("sub %q may not follow %q; patterns %v", id, topic, p.SubscribePatterns())
			}
		}
		// Substitution only narrows: another identity's topics stay out of
		// reach, however the two relate ("a" and "a.b", "a" and "a-").
		other := ids[(i+1)%len(ids)]
		if other != id && (p.CanSubscribe("user:"+other) || p.CanSubscribe("user:"+other+":x")) {
			t.Fatalf("sub %q may follow user %q's topics; patterns %v", id, other, p.SubscribePatterns())
		}
	}
}

// TestIdentityRuleText keeps identityRule, the spelling in error messages,
// in agreement with validIdentity, the implementation: they agree on the
// valid set and on random strings that are mostly not valid.
func TestIdentityRuleText(t *testing.T) {
	t.Parallel()
	if identityRule != "[A-Za-z0-9._-]{1,64}" || maxIdentityLen != 64 {
		t.Fatalf("identity rule is %s, max %d", identityRule, maxIdentityLen)
	}
	re := regexp.MustCompile(`^` + identityRule + `$`)
	check := func(s string) {
		if got, want := validIdentity(s), re.MatchString(s); got != want {
			t.Fatalf("validIdentity(%q) = %v, but %s says %v", s, got, identityRule, want)
		}
	}
	for _, s := range validIdentities() {
		check(s)
	}
	for _, s := range randomStrings(3, 5000) {
		check(s)
	}
	for _, s := range []string{"", strings.Repeat("a", maxIdentityLen+1), "alice@example.com", "@", "a:b", "a*", "é"} {
		if validIdentity(s) {
			t.Errorf("validIdentity(%q) = true", s)
		}
		check(s)
	}
}

// TestIdentityRefusals: '@' (an email address as sub) and 65 bytes are
// refused with the 401 reason, in sub and in org, and by Mint.
func TestIdentityRefusals(t *testing.T) {
	t.Parallel()
	const reason = "sub or org is not [A-Za-z0-9._-]{1,64}"
	if reasonBadIdentity != reason {
		t.Fatalf("reasonBadIdentity = %q, want %q", reasonBadIdentity, reason)
	}
	f := newFixture(t, func(c *Config) { c.DefaultSubscribe = defaultSubscribe })
	for _, tt := range []struct{ name, sub, org string }{
		{name: "email as sub", sub: "alice@example.com", org: "acme"},
		{name: "@ alone", sub: "@", org: "acme"},
		{name: "65-byte sub", sub: strings.Repeat("a", 65), org: "acme"},
		{name: "email as org", sub: "alice", org: "acme@example.com"},
		{name: "65-byte org", sub: "alice", org: strings.Repeat("o", 65)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := claimsFor(time.Now())
			c.Subject, c.Org = tt.sub, tt.org
			tok := sign(t, jwt.SigningMethodHS256, []byte(secretA), "", c)
			for _, via := range []string{viaBearer, viaQuery, viaCookie} {
				p, err := f.a.Authenticate(request(via, tok))
				if !errors.Is(err, ErrInvalidToken) || p != nil {
					t.Fatalf("%s: err = %v, principal %+v; want ErrInvalidToken (401)", via, err, p)
				}
				if !strings.HasSuffix(err.Error(), ": "+reason) {
					t.Errorf("%s: err = %q, want it to end with %q", via, err, reason)
				}
			}
			_, err := Mint(secretA, Claims{Subject: tt.sub, Org: tt.org}, time.Minute)
			if err == nil || !strings.Contains(err.Error(), identityRule) {
				t.Errorf("Mint: err = %v, want the identity rule", err)
			}
		})
	}
}
