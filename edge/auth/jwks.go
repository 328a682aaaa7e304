package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// minRSABits is the smallest RSA modulus accepted. Go itself refuses under
// 1024; 2048 is the floor every current recommendation sets.
const minRSABits = 2048

// keySet is one loaded version of the JWKS file, by key type so that an
// algorithm only ever sees keys of its own type.
type keySet struct {
	rsa keyList
	ec  keyList
}

// namedKey is a public key and its kid ("" when the JWK has none).
type namedKey struct {
	kid string
	key jwt.VerificationKey
}

// keyList is the keys of one type.
type keyList []namedKey

// lookup returns the keys a token may be verified with. A token naming a kid
// gets the keys with that kid (usually one; the parser tries each). A token
// without one is accepted only when the choice is unambiguous, a single key
// of the type: guessing among several would make every key a candidate for
// every token.
func (l keyList) lookup(kid string, hasKID bool) (any, error) {
	if !hasKID {
		if len(l) != 1 {
			return nil, errUnknownKID
		}
		return l[0].key, nil
	}
	var set jwt.VerificationKeySet
	for _, k := range l {
		if k.kid != "" && k.kid == kid {
			set.Keys = append(set.Keys, k.key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errUnknownKID
	}
	return set, nil
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518) Edge reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// parseJWKS reads a JWKS document. Keys Edge cannot use (encryption keys,
// other types, curves or algorithms) are skipped and logged; a key of a type
// it does use but cannot decode fails the whole file, since that usually
// means a broken file, and on reload the old keys are better kept.
func (a *Authenticator) parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	ks := &keySet{}
	for i, k := range doc.Keys {
		if k.D != "" {
			// Only the public part is read, but a private key in a file
			// meant to be public is worth telling someone about.
			a.log.Warn("JWKSHasPrivateKey", "file", a.cfg.JWKSFile, "kid", k.Kid)
		}
		skip := func(why string) {
			a.log.Info("JWKSKeySkipped", "file", a.cfg.JWKSFile, "index", i, "kid", k.Kid, "reason", why)
		}
		if k.Use == "enc" {
			skip("use is enc")
			continue
		}
		switch k.Kty {
		case "RSA":
			if k.Alg != "" && k.Alg != jwt.SigningMethodRS256.Alg() {
				skip("alg " + k.Alg + " is not RS256")
				continue
			}
			pub, err := rsaKey(k)
			if err != nil {
				return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
			}
			ks.rsa = append(ks.rsa, namedKey{kid: k.Kid, key: pub})
		case "EC":
			if k.Crv != "P-256" {
				skip("curve " + k.Crv + " is not P-256")
				continue
			}
			if k.Alg != "" && k.Alg != jwt.SigningMethodES256.Alg() {
				skip("alg " + k.Alg + " is not ES256")
				continue
			}
			pub, err := ecKey(k)
			if err != nil {
				return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
			}
			ks.ec = append(ks.ec, namedKey{kid: k.Kid, key: pub})
		default:
			// "oct" included: HMAC secrets come from the config, never from
			// a file meant to hold public keys.
			skip("key type " + k.Kty + " is not RSA or EC")
		}
	}
	return ks, nil
}

// b64 decodes a JWK member. RFC 7515 forbids padding; tolerating it costs
// nothing and saves someone an afternoon.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// rsaKey decodes an RSA JWK's public part.
func rsaKey(k jwk) (*rsa.PublicKey, error) {
	n, err := b64(k.N)
	if err != nil || len(n) == 0 {
		return nil, fmt.Errorf("bad RSA modulus n")
	}
	e, err := b64(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("bad RSA exponent e")
	}
	exp := new(big.Int).SetBytes(e).Int64()
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return nil, fmt.Errorf("bad RSA exponent e")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits, want at least %d", pub.N.BitLen(), minRSABits)
	}
	return pub, nil
}

// ecKey decodes a P-256 JWK's public part, refusing points off the curve
// (an invalid-curve point is how ECDH and some ECDSA attacks start).
func ecKey(k jwk) (*ecdsa.PublicKey, error) {
	x, errX := b64(k.X)
	y, errY := b64(k.Y)
	// RFC 7518 6.2.1.2: x and y are exactly the coordinate size.
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return nil, fmt.Errorf("bad EC coordinates")
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("bad EC point: %w", err)
	}
	return pub, nil
}

// Reload reads the JWKS file again. When it cannot be read or parsed, the
// keys loaded before stay in use and the error is logged and returned.
// Without a JWKS file it does nothing. HMAC secrets and API keys are not
// reloaded: they live in the config, and changing them means a new
// Authenticator.
func (a *Authenticator) Reload() error {
	if a.cfg.JWKSFile == "" {
		return nil
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	st, err := os.Stat(a.cfg.JWKSFile)
	if err != nil {
		err = fmt.Errorf("auth: JWKS file: %w", err)
		a.log.Error("JWKSLoadFailed", "file", a.cfg.JWKSFile, "err", err)
		return err
	}
	return a.loadLocked(st)
}

// loadLocked reads and installs the file whose stat is st. It records st
// even on failure, so Watch does not retry a broken version every poll; the
// next write changes the stat and is tried. The stat is taken before the
// read: if the file changes in between, the recorded stat is older than the
// content and the next poll loads again, harmlessly. The other order could
// record the new stat with the old content and miss the change.
func (a *Authenticator) loadLocked(st os.FileInfo) error {
	a.loaded = st
	data, err := os.ReadFile(a.cfg.JWKSFile)
	if err == nil {
		var ks *keySet
		if ks, err = a.parseJWKS(data); err == nil {
			a.jwks.Store(ks)
			a.log.Info("JWKSLoaded", "file", a.cfg.JWKSFile, "rsaKeys", len(ks.rsa), "ecKeys", len(ks.ec))
			return nil
		}
	}
	err = fmt.Errorf("auth: JWKS file %s: %w", a.cfg.JWKSFile, err)
	a.log.Error("JWKSLoadFailed", "file", a.cfg.JWKSFile, "err", err)
	return err
}

// Watch reloads the JWKS file whenever its size, modification time or
// identity (a new file renamed over it) changes, polling every few seconds
// until ctx ends. Polling rather than inotify because the file usually sits
// on a mounted Kubernetes secret or config map, where the atomic symlink
// swap of an update is easy for a file watcher to miss and trivial for a
// stat to see. Without a JWKS file it returns at once.
func (a *Authenticator) Watch(ctx context.Context) {
	if a.cfg.JWKSFile == "" {
		return
	}
	t := time.NewTicker(a.pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.reloadIfChanged()
		}
	}
}

// reloadIfChanged is one Watch poll.
func (a *Authenticator) reloadIfChanged() {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	st, err := os.Stat(a.cfg.JWKSFile)
	if err != nil {
		if !a.statFailed {
			a.statFailed = true
			a.log.Error("JWKSStatFailed", "file", a.cfg.JWKSFile, "err", err)
		}
		return
	}
	a.statFailed = false
	if old := a.loaded; old != nil && os.SameFile(old, st) &&
		old.Size() == st.Size() && old.ModTime().Equal(st.ModTime()) {
		return
	}
	_ = a.loadLocked(st) // logged there; the old keys stay
}
