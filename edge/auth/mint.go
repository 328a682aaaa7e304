package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what Mint writes into a token.
type Claims struct {
	// Subject is the sub claim; required, [A-Za-z0-9._-]{1,64}: a stable
	// user id, not an email address ('@' is not a topic character).
	Subject string
	// Org is the optional org claim, same rule as Subject.
	Org string
	// Subscribe and Publish become the token's own patterns, the edge
	// claim. Config defaults are added when the token is verified, not here.
	Subscribe, Publish []string
	// Issuer is the iss claim, if set.
	Issuer string
	// Audience is the aud claim, if set.
	Audience []string
}

// Mint signs c as an HS256 token valid for ttl from now. It is for dev mode
// and `edgectl token`; production tokens come from the identity provider.
// It refuses what Authenticate would refuse (short secret, bad sub or org,
// no expiry), so a minted token is never one the server rejects for its
// shape.
func Mint(secret string, c Claims, ttl time.Duration) (string, error) {
	return mintAt(secret, c, time.Now(), ttl)
}

// mintAt is Mint with the clock passed in.
func mintAt(secret string, c Claims, now time.Time, ttl time.Duration) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("auth: mint: secret is %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if ttl <= 0 {
		return "", errors.New("auth: mint: ttl must be positive: tokens without expiry are refused")
	}
	if !validIdentity(c.Subject) || (c.Org != "" && !validIdentity(c.Org)) {
		return "", fmt.Errorf("auth: mint: sub and org must be %s", identityRule)
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			Issuer:    c.Issuer,
			Audience:  c.Audience,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Org:  c.Org,
		Edge: edgeClaim{Subscribe: c.Subscribe, Publish: c.Publish},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return tok, nil
}
