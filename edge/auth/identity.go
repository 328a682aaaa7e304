package auth

import (
	"fmt"
	"strings"
)

// The identity rule: what a token's sub and org claims, an API key's name
// and Mint's Subject and Org may be. validIdentity is its only
// implementation; identityRule is how refusals and config errors spell it,
// and a test keeps the two in agreement.
//
// Identities end up inside topic names: every user owns "user:<sub>" (uploads
// publish there) and the default patterns are "user:{sub}", "user:{sub}:*",
// "org:{org}" and "org:{org}:*". So the rule is a subset of what a topic may
// hold (edge.ValidTopic: [A-Za-z0-9._:-], at most 128 bytes):
//
//   - Only [A-Za-z0-9._-]. No '@', which is not a topic character: an email
//     address as sub would name no topic at all, and its user's upload events
//     could not be published. Issuers must put a stable user id in sub.
//   - No ':' either, though topics allow it: "alice:x" would get
//     "user:alice:x:*", topics that "alice"'s "user:alice:*" also matches, so
//     one user's namespace would sit inside another's. And no '*', which
//     would turn a template into a wildcard ("user:alice*:*"). Refusing
//     everything outside this small set means substitution can only ever
//     narrow a template.
//   - At most 64 bytes, so "user:<sub>" (69) leaves room under the 128-byte
//     topic limit for a suffix: "user:<sub>:<name>" with a name of up to 58.
const (
	maxIdentityLen = 64
	identityRule   = "[A-Za-z0-9._-]{1,64}"
)

// validIdentity reports whether s satisfies the identity rule: non-empty, at
// most maxIdentityLen bytes of [A-Za-z0-9._-].
func validIdentity(s string) bool {
	if s == "" || len(s) > maxIdentityLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Placeholders a default pattern may contain.
const (
	placeholderSub = "{sub}"
	placeholderOrg = "{org}"
)

// checkTemplates validates default patterns from the config. An unknown
// placeholder ("{user}", "{org_id}") would silently never match, so it is a
// config error instead.
func checkTemplates(field string, templates []string) error {
	for _, t := range templates {
		rest := strings.NewReplacer(placeholderSub, "", placeholderOrg, "").Replace(t)
		if t == "" || strings.ContainsAny(rest, "{}") {
			return fmt.Errorf("auth: %s pattern %q: only {sub} and {org} placeholders are allowed", field, t)
		}
	}
	return nil
}

// expandTemplates fills sub and org into templates. A template naming {org}
// is dropped when org is empty: filling in nothing would turn "org:{org}:*"
// into "org::*", a pattern nobody meant to grant.
func expandTemplates(templates []string, sub, org string) []string {
	if len(templates) == 0 {
		return nil
	}
	r := strings.NewReplacer(placeholderSub, sub, placeholderOrg, org)
	out := make([]string, 0, len(templates))
	for _, t := range templates {
		if org == "" && strings.Contains(t, placeholderOrg) {
			continue
		}
		out = append(out, r.Replace(t))
	}
	return out
}
