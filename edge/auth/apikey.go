package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// APIKey is a key for server-to-server publishing. Only its hash is stored,
// so a leaked config does not leak the key.
type APIKey struct {
	// Name identifies the key in logs, metrics and rate limits; the
	// principal's Subject is "apikey:<Name>". Same rule as a token's sub:
	// [A-Za-z0-9._-]{1,64}.
	Name string
	// Hash is the hex SHA-256 of the key (see HashAPIKey). A plain hash, not
	// a slow one: keys are long random strings, not passwords, so there is
	// nothing to brute-force.
	Hash string
	// Publish are the patterns the key may publish to. Keys never subscribe.
	Publish []string
}

// HashAPIKey returns the value for APIKey.Hash: the hex SHA-256 of key.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// apiKey is a configured APIKey, decoded.
type apiKey struct {
	name    string
	hash    [sha256.Size]byte
	publish patternSet
}

// parseAPIKeys checks and decodes the configured keys.
func parseAPIKeys(keys []APIKey) ([]apiKey, error) {
	out := make([]apiKey, 0, len(keys))
	for i, k := range keys {
		if !validIdentity(k.Name) {
			return nil, fmt.Errorf("auth: api key #%d: name %q must be %s", i+1, k.Name, identityRule)
		}
		h, err := hex.DecodeString(k.Hash)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("auth: api key %q: hash must be 64 hex digits (SHA-256 of the key)", k.Name)
		}
		for _, t := range k.Publish {
			// Placeholders are for tokens: a key has no sub or org, and a
			// literal "{sub}" would silently never match.
			if t == "" || strings.ContainsAny(t, "{}") {
				return nil, fmt.Errorf("auth: api key %q: pattern %q: empty or with a placeholder", k.Name, t)
			}
		}
		ak := apiKey{name: k.Name, publish: newPatternSet(k.Publish)}
		copy(ak.hash[:], h)
		for _, prev := range out {
			if prev.name == ak.name {
				return nil, fmt.Errorf("auth: api key name %q used twice", k.Name)
			}
			if prev.hash == ak.hash {
				return nil, fmt.Errorf("auth: api keys %q and %q have the same hash", prev.name, k.Name)
			}
		}
		out = append(out, ak)
	}
	return out, nil
}

// verifyAPIKey finds the configured key whose hash matches raw's. Every
// configured hash is compared, in constant time, without stopping at a
// match, so response time says nothing about which key (or how much of a
// hash) matched.
func (a *Authenticator) verifyAPIKey(raw string, src source) (*Principal, error) {
	sum := sha256.Sum256([]byte(raw))
	match := -1
	for i := range a.apiKeys {
		if subtle.ConstantTimeCompare(sum[:], a.apiKeys[i].hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, refuse(src, reasonUnknownAPIKey)
	}
	k := &a.apiKeys[match]
	return &Principal{
		Subject: "apikey:" + k.name,
		APIKey:  k.name,
		publish: k.publish,
	}, nil
}
