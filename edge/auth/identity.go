package auth

import (
	"fmt"
	"strings"
)

// maxIdentityLen bounds sub and org. Topics are at most 128 bytes, so a
// longer identity could never name one of its own topics anyway.
const maxIdentityLen = 128

// validIdentity reports whether s may be a sub or org: non-empty, at most
// maxIdentityLen bytes of [A-Za-z0-9._@-].
//
// Default patterns are built by pasting sub and org into templates such as
// "user:{sub}:*". The values go in literally, so an identity containing '*'
// would turn into a wildcard ("alice*" → "user:alice*:*" reads every user
// starting with alice), and one containing ':' would put its namespace inside
// another user's ("alice:x" gets "user:alice:x:*", topics that "alice"'s
// "user:alice:*" also matches). Refusing both, and everything else outside
// this small set, means substitution can only ever narrow a template.
func validIdentity(s string) bool {
	if s == "" || len(s) > maxIdentityLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == '@':
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
