package edge

import (
	"math"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		topics []string
		pos    []Position
	}{
		{"one topic at start", []string{"orders"}, []Position{{"AbC9", 0}}},
		{"one topic", []string{"orders"}, []Position{{"AbC9", 1000}}},
		{"three topics", []string{"a", "b", "c"}, []Position{{"0000", 1}, {"zzzz", 61}, {"Zz09", 62}}},
		{"max seq", []string{"x"}, []Position{{"aaaa", math.MaxUint64}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sorted := sortedTopics(c.topics)
			h := topicSetHash(sorted)
			s := string(appendCursor(nil, h, c.pos))
			got, err := parseCursor(s, h, len(sorted))
			if err != nil {
				t.Fatalf("parseCursor(%q): %v", s, err)
			}
			for i := range got {
				if got[i] != c.pos[i] {
					t.Fatalf("position %d: got %+v, want %+v (cursor %q)", i, got[i], c.pos[i], s)
				}
			}
		})
	}
}

func TestCursorIsShort(t *testing.T) {
	t.Parallel()
	sorted := sortedTopics([]string{"org:acme:finance", "room:42", "user:alice"})
	s := appendCursor(nil, topicSetHash(sorted), []Position{{"AAAA", 1000}, {"BBBB", 5}, {"CCCC", 200000}})
	// 4 bytes of header, then epoch + seq + separator per topic.
	if len(s) > 8+3*7 {
		t.Fatalf("cursor %q is %d bytes", s, len(s))
	}
}

func TestCursorIndependentOfTopicOrder(t *testing.T) {
	t.Parallel()
	a := topicSetHash(sortedTopics([]string{"b", "a", "c"}))
	b := topicSetHash(sortedTopics([]string{"c", "b", "a", "a"}))
	if a != b {
		t.Fatalf("set hash depends on order: %q vs %q", a, b)
	}
}

func TestCursorRejects(t *testing.T) {
	t.Parallel()
	sorted := []string{"a", "b"}
	h := topicSetHash(sorted)
	good := string(appendCursor(nil, h, []Position{{"AAAA", 3}, {"BBBB", 4}}))
	other := string(appendCursor(nil, topicSetHash([]string{"a", "c"}), []Position{{"AAAA", 3}, {"BBBB", 4}}))
	cases := map[string]string{
		"empty":           "",
		"garbage":         "garbage",
		"integer":         "12345",
		"other topic set": other,
		"missing entry":   good[:len(good)-6],
		"extra entry":     good + ".CCCC1",
		"short epoch":     "a" + string(h[:]) + "AAA.BBBB4",
		"no seq":          "a" + string(h[:]) + "AAAA.BBBB4",
		"bad seq digit":   "a" + string(h[:]) + "AAAA3!.BBBB4",
		"seq overflow":    "a" + string(h[:]) + "AAAAzzzzzzzzzzz.BBBB4",
		"wrong version":   "b" + good[1:],
		"non-ascii":       "a" + string(h[:]) + "AAAé3.BBBB4",
	}
	for name, s := range cases {
		if _, err := parseCursor(s, h, len(sorted)); err == nil {
			t.Errorf("%s: parseCursor(%q) accepted it", name, s)
		}
	}
}

func FuzzParseCursor(f *testing.F) {
	h := topicSetHash([]string{"a", "b"})
	f.Add(string(appendCursor(nil, h, []Position{{"AAAA", 3}, {"BBBB", 4}})))
	f.Add("a000AAAA0")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		pos, err := parseCursor(s, h, 2)
		if err != nil {
			return
		}
		again := string(appendCursor(nil, h, pos))
		if _, err := parseCursor(again, h, 2); err != nil {
			t.Fatalf("re-encoded cursor %q unreadable: %v", again, err)
		}
	})
}
