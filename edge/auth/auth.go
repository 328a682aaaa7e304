// Package auth decides who a request is and which topics it may touch.
//
// It verifies JWTs (HS256 from configured secrets, RS256/ES256 from a JWKS
// file) and API keys, and turns them into a Principal whose CanSubscribe and
// CanPublish answer per topic. It knows nothing of routing or storage:
// handlers call Authenticate and map ErrNoCredentials and ErrInvalidToken to
// 401.
//
// Credentials are secrets: no error message or log line of this package ever
// contains one, so its errors can be logged and sent to the client as they
// are.
package auth

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest HMAC secret accepted, in bytes. An HS256
// token is an offline oracle for its secret: anyone holding one token (and
// query tokens end up in proxy logs and browser history) can try guesses
// without asking the server, so a short secret falls to brute force.
const MinSecretLen = 32

// Config configures an Authenticator. Zero values mean the default stated on
// each field.
type Config struct {
	// HMACSecrets verify HS256 tokens; any one of them suffices, so a secret
	// rotates without downtime: add the new one, move minting to it, remove
	// the old one once its tokens have expired. Each must be at least
	// MinSecretLen bytes. Empty: HS256 is refused.
	HMACSecrets []string
	// JWKSFile is a JWKS JSON file with the RS256 (RSA) and ES256 (EC P-256)
	// public keys. Watch reloads it when it changes and Reload on demand
	// (SIGHUP). Empty: RS256 and ES256 are refused.
	JWKSFile string
	// Issuer, when set, must equal the token's iss claim.
	Issuer string
	// Audience, when set, must be among the token's aud claim.
	Audience string
	// Leeway is the clock skew allowed on exp and nbf. Default 30s.
	Leeway time.Duration
	// CookieName is the cookie a browser carries its token in. Default
	// "edge_token".
	CookieName string
	// QueryToken accepts a token in the access_token query parameter, the
	// only way a browser EventSource can send one. The zero value is off
	// because a bool cannot say "unset"; the server's config turns it on by
	// default.
	QueryToken bool
	// DefaultSubscribe and DefaultPublish are patterns added to every
	// token's own, with {sub} and {org} replaced by its claims, e.g.
	// "user:{sub}:*". A pattern naming {org} is skipped for a token without
	// org. API keys do not get them.
	DefaultSubscribe, DefaultPublish []string
	// APIKeys are the keys accepted for server-to-server publishing.
	APIKeys []APIKey
}

// DefaultLeeway is Config.Leeway's default.
const DefaultLeeway = 30 * time.Second

// DefaultCookieName is Config.CookieName's default.
const DefaultCookieName = "edge_token"

// defaultPollInterval is how often Watch stats the JWKS file. A key rotation
// is planned well ahead, so seconds of delay cost nothing and a stat is cheap.
const defaultPollInterval = 2 * time.Second

// Authenticator turns requests into Principals. It is safe for concurrent
// use. HMAC secrets and API keys are fixed at New; only the JWKS keys change
// afterwards (Reload, Watch).
type Authenticator struct {
	cfg         Config
	log         *slog.Logger
	hmacKeys    []jwt.VerificationKey
	apiKeys     []apiKey
	pollEvery   time.Duration
	parseOption []jwt.ParserOption

	// jwks is swapped whole on reload so a request sees one consistent key
	// set without taking a lock.
	jwks atomic.Pointer[keySet]

	// reloadMu serialises loads, so a slow read of an old file can never
	// overwrite the keys of a newer one, and guards the fields below.
	reloadMu sync.Mutex
	// loaded is the stat of the file version last loaded (or last tried).
	loaded os.FileInfo
	// statFailed remembers that the last poll could not stat the file, so a
	// missing file is logged once rather than every poll.
	statFailed bool
}

// New checks cfg and builds an Authenticator. It fails only on bad
// configuration: a short secret, an unreadable or invalid JWKS file, a bad
// API key, an unknown placeholder. An Authenticator with nothing configured
// is valid and refuses every credential. log may be nil.
func New(cfg Config, log *slog.Logger) (*Authenticator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: negative leeway %v", cfg.Leeway)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	a := &Authenticator{cfg: cfg, log: log, pollEvery: defaultPollInterval}
	for i, s := range cfg.HMACSecrets {
		// Name the secret by position only: it must not reach the log.
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("auth: hmac secret #%d is %d bytes, want at least %d", i+1, len(s), MinSecretLen)
		}
		a.hmacKeys = append(a.hmacKeys, []byte(s))
	}
	if err := checkTemplates("default subscribe", cfg.DefaultSubscribe); err != nil {
		return nil, err
	}
	if err := checkTemplates("default publish", cfg.DefaultPublish); err != nil {
		return nil, err
	}
	keys, err := parseAPIKeys(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	a.apiKeys = keys
	a.parseOption = parserOptions(cfg)
	a.jwks.Store(&keySet{})
	if cfg.JWKSFile != "" {
		if err := a.Reload(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Authenticate finds the request's credential and verifies it. Sources are
// tried in order: Authorization: Bearer <jwt>; Authorization: ApiKey <key>
// or X-API-Key; the cookie; the access_token query parameter (when
// Config.QueryToken). The first credential found decides: a refused one is
// not retried with the next source, so an expired header token never falls
// back to some other identity's cookie.
//
// The error wraps ErrNoCredentials or ErrInvalidToken.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	c, err := a.extract(r)
	if err != nil {
		return nil, err
	}
	if c.apiKey {
		return a.verifyAPIKey(c.value, c.src)
	}
	return a.verifyJWT(c.value, c.src)
}

// Leeway is the clock skew tolerated on exp and nbf: a token is accepted
// until its exp plus this.
func (a *Authenticator) Leeway() time.Duration { return a.cfg.Leeway }

// CookieName is the cookie a token is read from.
func (a *Authenticator) CookieName() string { return a.cfg.CookieName }
