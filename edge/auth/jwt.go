package auth

import (
	"errors"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the token handed to the parser. Real tokens are well
// under 2 KiB; the bound keeps a hostile one from costing much decoding.
const maxTokenLen = 8 << 10

// tokenClaims is the JWT payload Edge reads and Mint writes.
type tokenClaims struct {
	jwt.RegisteredClaims
	Org  string    `json:"org,omitempty"`
	Edge edgeClaim `json:"edge,omitzero"`
}

// edgeClaim is the "edge" claim: the token's own topic patterns.
type edgeClaim struct {
	Subscribe []string `json:"subscribe,omitempty"`
	Publish   []string `json:"publish,omitempty"`
}

// Internal keyfunc errors, mapped to reasons by reasonFor.
var (
	errAlgorithm  = errors.New("algorithm not allowed")
	errUnknownKID = errors.New("unknown key id")
)

// parserOptions are the checks every token goes through, fixed at New.
//
// exp is required: a token without one would be valid forever, and Edge has
// no revocation list; tokens also travel in URLs (EventSource), where they
// end up in proxy logs and browser history, so they must die on their own.
// A stream also ends at exp, which needs one. iat is not checked: nbf states
// the issuer's intent, and a future iat is usually just clock skew.
// Strict decoding refuses non-canonical base64, so one signature has exactly
// one spelling.
func parserOptions(cfg Config) []jwt.ParserOption {
	opts := []jwt.ParserOption{
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return opts
}

// allowedMethods lists the algorithms that have a key right now. It is
// never nil: the jwt library treats a nil list as "any algorithm".
func (a *Authenticator) allowedMethods(ks *keySet) []string {
	m := make([]string, 0, 3)
	if len(a.hmacKeys) > 0 {
		m = append(m, jwt.SigningMethodHS256.Alg())
	}
	if len(ks.rsa) > 0 {
		m = append(m, jwt.SigningMethodRS256.Alg())
	}
	if len(ks.ec) > 0 {
		m = append(m, jwt.SigningMethodES256.Alg())
	}
	return m
}

// verifyJWT checks raw and builds its Principal.
func (a *Authenticator) verifyJWT(raw string, src source) (*Principal, error) {
	if len(raw) > maxTokenLen {
		return nil, refuse(src, reasonTooLong)
	}
	ks := a.jwks.Load()
	allowed := a.allowedMethods(ks)
	opts := append(slices.Clip(a.parseOption), jwt.WithValidMethods(allowed))
	var c tokenClaims
	tok, err := jwt.NewParser(opts...).ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		return a.keyFor(t, ks)
	})
	if err != nil {
		return nil, refuse(src, a.reasonFor(err, tok, &c, allowed))
	}
	if c.Subject == "" {
		return nil, refuse(src, reasonMissingSub)
	}
	if !validIdentity(c.Subject) || (c.Org != "" && !validIdentity(c.Org)) {
		return nil, refuse(src, reasonBadIdentity)
	}
	p := &Principal{
		Subject: c.Subject,
		Org:     c.Org,
		subscribe: newPatternSet(c.Edge.Subscribe,
			expandTemplates(a.cfg.DefaultSubscribe, c.Subject, c.Org)),
		publish: newPatternSet(c.Edge.Publish,
			expandTemplates(a.cfg.DefaultPublish, c.Subject, c.Org)),
	}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.Time
	}
	return p, nil
}

// keyFor picks the verification keys for t. The key's type follows from the
// algorithm, never the other way round: an HS256 token only ever meets the
// HMAC secrets, so a public RSA key can't be fed to HMAC as a "secret"
// (the classic HS/RS confusion), and "none" has no key at all. The method
// type is checked too, in case something registered its own "HS256".
func (a *Authenticator) keyFor(t *jwt.Token, ks *keySet) (any, error) {
	kid, hasKID := t.Header["kid"]
	kidStr, ok := kid.(string)
	if hasKID && !ok {
		return nil, errUnknownKID
	}
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if t.Method.Alg() != jwt.SigningMethodHS256.Alg() || len(a.hmacKeys) == 0 {
			return nil, errAlgorithm
		}
		// The parser tries each secret in turn: that is what lets secrets
		// rotate. kid is ignored: secrets have no names.
		return jwt.VerificationKeySet{Keys: a.hmacKeys}, nil
	case *jwt.SigningMethodRSA:
		if t.Method.Alg() != jwt.SigningMethodRS256.Alg() {
			return nil, errAlgorithm
		}
		return ks.rsa.lookup(kidStr, hasKID)
	case *jwt.SigningMethodECDSA:
		if t.Method.Alg() != jwt.SigningMethodES256.Alg() {
			return nil, errAlgorithm
		}
		return ks.ec.lookup(kidStr, hasKID)
	default:
		return nil, errAlgorithm
	}
}

// reasonFor maps a jwt library error to a refusal reason. Claim errors can
// come joined (expired and wrong audience at once); the first case listed
// wins. c is only consulted for claim errors, which the library reports only
// after the signature has checked out.
func (a *Authenticator) reasonFor(err error, tok *jwt.Token, c *tokenClaims, allowed []string) string {
	switch {
	case errors.Is(err, errUnknownKID):
		return reasonUnknownKID
	case errors.Is(err, errAlgorithm):
		return reasonAlgorithm
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reasonMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// No alg, or one the library does not know.
		return reasonAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// The library reports an algorithm outside WithValidMethods as a
		// signature error; tell the two apart for the operator's sake.
		if tok != nil && tok.Method != nil && !slices.Contains(allowed, tok.Method.Alg()) {
			return reasonAlgorithm
		}
		return reasonBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return reasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return reasonNotYetValid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// Missing exp, or a missing iss/aud when those are configured; the
		// library's message says which, but its messages are not used here.
		switch {
		case c.ExpiresAt == nil:
			return reasonMissingExp
		case a.cfg.Issuer != "" && c.Issuer == "":
			return reasonWrongIssuer
		default:
			return reasonWrongAudience
		}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return reasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return reasonWrongAudience
	default:
		return reasonBadClaims
	}
}
