package auth

import (
	"slices"
	"time"
)

// Principal is who a request acts for and what it may touch. Authenticate
// builds it; it is read-only afterwards and safe to share between goroutines.
type Principal struct {
	// Subject is the token's sub claim, or "apikey:<name>" for an API key.
	// The two cannot collide: a token's sub may not contain ':'.
	Subject string
	// Org is the token's org claim; empty when the token has none and for
	// API keys.
	Org string
	// APIKey is the key's name when the request authenticated with an API
	// key, and empty for tokens.
	APIKey string
	// ExpiresAt is the token's exp claim; a stream ends there so the client
	// reconnects with a fresh token. Zero means no expiry (API keys).
	ExpiresAt time.Time

	subscribe patternSet
	publish   patternSet
}

// CanSubscribe reports whether p may read topic: stream it or read its
// history. A nil Principal may do nothing.
func (p *Principal) CanSubscribe(topic string) bool {
	return p != nil && p.subscribe.match(topic)
}

// CanPublish reports whether p may publish to topic. A nil Principal may do
// nothing.
func (p *Principal) CanPublish(topic string) bool {
	return p != nil && p.publish.match(topic)
}

// SubscribePatterns returns the patterns CanSubscribe checks, defaults
// included and placeholders already filled in. For display and debugging;
// changing the returned slice changes nothing.
func (p *Principal) SubscribePatterns() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.subscribe.raw)
}

// PublishPatterns returns the patterns CanPublish checks, like
// SubscribePatterns.
func (p *Principal) PublishPatterns() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.publish.raw)
}
