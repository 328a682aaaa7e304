package auth

import "strings"

// pattern is a topic glob compiled once, when the principal is built, so the
// per-topic check on every stream and publish is a few string compares.
//
// '*' matches any run of characters, including ':' and the empty run; every
// other byte is literal. There are deliberately no other metacharacters
// ('?', classes, escapes): patterns come from tokens minted by other systems,
// and a rule this small is one nobody can misread into granting more.
type pattern struct {
	// prefix is the literal before the first '*'; for a pattern without '*'
	// it is the whole pattern.
	prefix string
	// suffix is the literal after the last '*'.
	suffix string
	// middle holds the non-empty literals between stars, in order.
	middle []string
	star   bool
}

// compilePattern compiles s. Every string is a valid pattern.
func compilePattern(s string) pattern {
	first := strings.IndexByte(s, '*')
	if first < 0 {
		return pattern{prefix: s}
	}
	last := strings.LastIndexByte(s, '*')
	p := pattern{prefix: s[:first], suffix: s[last+1:], star: true}
	for seg := range strings.SplitSeq(s[first+1:last+1], "*") {
		if seg != "" {
			p.middle = append(p.middle, seg)
		}
	}
	return p
}

// match reports whether topic matches p. With stars only, taking the
// leftmost occurrence of each middle literal is optimal (leaving more room
// for the rest), so no backtracking is needed.
func (p pattern) match(topic string) bool {
	if !p.star {
		return topic == p.prefix
	}
	// prefix and suffix must not overlap: "a*a" does not match "a".
	if len(topic) < len(p.prefix)+len(p.suffix) ||
		!strings.HasPrefix(topic, p.prefix) || !strings.HasSuffix(topic, p.suffix) {
		return false
	}
	rest := topic[len(p.prefix) : len(topic)-len(p.suffix)]
	for _, seg := range p.middle {
		i := strings.Index(rest, seg)
		if i < 0 {
			return false
		}
		rest = rest[i+len(seg):]
	}
	return true
}

// patternSet is a list of patterns with their source text kept for display.
type patternSet struct {
	raw      []string
	compiled []pattern
}

// newPatternSet compiles every pattern of lists, dropping duplicates so a
// default that repeats a token's own pattern is checked once.
func newPatternSet(lists ...[]string) patternSet {
	var s patternSet
	seen := make(map[string]struct{})
	for _, list := range lists {
		for _, raw := range list {
			if _, dup := seen[raw]; dup {
				continue
			}
			seen[raw] = struct{}{}
			s.raw = append(s.raw, raw)
			s.compiled = append(s.compiled, compilePattern(raw))
		}
	}
	return s
}

// match reports whether any pattern of s matches topic.
func (s patternSet) match(topic string) bool {
	for _, p := range s.compiled {
		if p.match(topic) {
			return true
		}
	}
	return false
}
