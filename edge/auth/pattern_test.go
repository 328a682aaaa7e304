package auth

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"chat:general", "chat:general", true},
		{"chat:general", "chat:general2", false},
		{"chat:general", "chat:genera", false},
		{"*", "", true},
		{"*", "anything:at:all", true},
		{"user:alice:*", "user:alice:", true},
		{"user:alice:*", "user:alice:inbox", true},
		{"user:alice:*", "user:alice:a:b:c", true},
		{"user:alice:*", "user:alice", false},
		{"user:alice:*", "user:alicex:inbox", false},
		{"*:inbox", "user:alice:inbox", true},
		{"*:inbox", "inbox", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a**b", "ab", true},
		{"*b*b*", "bb", true},
		{"*b*b*", "b", false},
		{"*ab*ab*", "aab", false},
		{"*ab*ab*", "abab", true},
		{"org.?", "org.x", false}, // '?' is literal
		{"org.?", "org.?", true},
		{"[a]", "a", false}, // so are brackets
		{"", "", true},
		{"", "a", false},
	}
	for _, tt := range tests {
		if got := compilePattern(tt.pattern).match(tt.topic); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.topic, got, tt.want)
		}
		if got := referenceMatch(tt.pattern, tt.topic); got != tt.want {
			t.Errorf("reference(%q, %q) = %v, want %v: the reference is wrong", tt.pattern, tt.topic, got, tt.want)
		}
	}
}

// referenceMatch is the obviously correct slow version: each literal piece
// quoted, stars as ".*", anchored, with (?s) so '.' takes newlines too.
func referenceMatch(pattern, topic string) bool {
	pieces := strings.Split(pattern, "*")
	for i, p := range pieces {
		pieces[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(pieces, ".*") + `\z`).MatchString(topic)
}

func FuzzMatch(f *testing.F) {
	f.Add("user:{sub}:*", "user:alice:inbox")
	f.Add("*b*b*", "bab")
	f.Add("a*a", "a")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		// regexp reads invalid UTF-8 as U+FFFD and cannot compile it in a
		// pattern; the glob works on bytes. Compare where both are defined.
		if !utf8.ValidString(pattern) || !utf8.ValidString(topic) || len(pattern) > 256 || len(topic) > 512 {
			t.Skip()
		}
		got := compilePattern(pattern).match(topic)
		if want := referenceMatch(pattern, topic); got != want {
			t.Fatalf("match(%q, %q) = %v, reference says %v", pattern, topic, got, want)
		}
	})
}

func BenchmarkPatternMatch(b *testing.B) {
	p := compilePattern("org:*:user:*:inbox")
	for b.Loop() {
		p.match("org:acme:user:alice:feeds:inbox")
	}
}
