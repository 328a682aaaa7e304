package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		topic      string
		eph        bool
		positional []string
	}{
		{[]string{"--topic", "a", `{"x":1}`}, "a", false, []string{`{"x":1}`}},
		{[]string{`{"x":1}`, "--topic", "a", "--ephemeral"}, "a", true, []string{`{"x":1}`}},
		{[]string{"--topic=a", "-"}, "a", false, []string{"-"}},
		{[]string{"--topic", "a", "--", "--ephemeral"}, "a", false, []string{"--ephemeral"}},
		{[]string{"x", "--topic", "b", "y"}, "b", false, []string{"x", "y"}},
	}
	for _, tc := range tests {
		fs := newFlagSet("t", "t", io.Discard)
		topic := fs.String("topic", "", "")
		eph := fs.Bool("ephemeral", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if *topic != tc.topic || *eph != tc.eph || !slices.Equal(pos, tc.positional) {
			t.Errorf("%q: topic %q eph %v positional %q; want %q %v %q", tc.args, *topic, *eph, pos, tc.topic, tc.eph, tc.positional)
		}
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	s := serverFlags{server: "http://127.0.0.1:8080/"}
	got, err := s.endpoint("/v1/stream", map[string][]string{"topic": {"a", "org:b"}})
	if err != nil || got != "http://127.0.0.1:8080/v1/stream?topic=a&topic=org%3Ab" {
		t.Fatalf("endpoint = %q, %v", got, err)
	}
	for _, bad := range []string{"127.0.0.1:8080", "localhost:8080", "ftp://x"} {
		s.server = bad
		if _, err := s.endpoint("/x", nil); err == nil || !strings.Contains(err.Error(), "--server") {
			t.Errorf("--server %q should be refused, got %v", bad, err)
		}
	}
}
