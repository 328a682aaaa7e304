package edge

import (
	"errors"
	"hash/fnv"
	"slices"
	"strings"
)

// A cursor is the SSE id of a multi-topic stream: for every topic the stream
// follows, the epoch and the last sequence delivered (Nchan's compound id),
// so one Last-Event-ID resumes every topic exactly.
//
// Format (plain ASCII, short, independent of topic order in the URL):
//
//	"a" <set hash: 3 base62> <entry> ( "." <entry> )*
//	entry = <epoch: 4 base62> <seq: base62, at least one digit>
//
// Entries follow the stream's topics sorted by name. The set hash (FNV-1a of
// the sorted names) tells a cursor of another topic set apart, so a position
// is never applied to the wrong topic. One topic at sequence 1,000 costs
// 10 bytes; each further topic 6 to 9.

const cursorVersion = 'a'

// errBadCursor is why a cursor could not be read; streams answer it with a
// reset (reason "invalid"), never an error status: a non-200 would end a
// browser's EventSource for good.
var errBadCursor = errors.New("edge: unreadable cursor")

// topicSetHash returns the 3-character hash of a sorted topic set.
func topicSetHash(sorted []string) [3]byte {
	h := fnv.New32a()
	for _, t := range sorted {
		h.Write([]byte(t))
		h.Write([]byte{'\n'})
	}
	v := h.Sum32() % (62 * 62 * 62)
	var out [3]byte
	for i := 2; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return out
}

// appendCursor appends the cursor of positions (aligned with the sorted
// topics whose set hash is setHash) to dst.
func appendCursor(dst []byte, setHash [3]byte, positions []Position) []byte {
	dst = append(dst, cursorVersion)
	dst = append(dst, setHash[:]...)
	for i, p := range positions {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, p.Epoch...)
		dst = appendBase62(dst, p.Seq)
	}
	return dst
}

// parseCursor reads a cursor for the sorted topics with set hash setHash.
func parseCursor(s string, setHash [3]byte, n int) ([]Position, error) {
	if len(s) < 4 || s[0] != cursorVersion || s[1:4] != string(setHash[:]) {
		return nil, errBadCursor
	}
	parts := strings.Split(s[4:], ".")
	if len(parts) != n {
		return nil, errBadCursor
	}
	out := make([]Position, n)
	for i, part := range parts {
		if len(part) < EpochLen+1 || !ValidEpoch(part[:EpochLen]) {
			return nil, errBadCursor
		}
		seq, ok := parseBase62(part[EpochLen:])
		if !ok {
			return nil, errBadCursor
		}
		out[i] = Position{Epoch: part[:EpochLen], Seq: seq}
	}
	return out, nil
}

func appendBase62(dst []byte, v uint64) []byte {
	var tmp [11]byte // 62^11 > 2^64
	i := len(tmp)
	for {
		i--
		tmp[i] = base62[v%62]
		v /= 62
		if v == 0 {
			break
		}
	}
	return append(dst, tmp[i:]...)
}

func parseBase62(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 11 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := base62Value(s[i])
		if d < 0 {
			return 0, false
		}
		next := v*62 + uint64(d)
		if next/62 != v { // overflow
			return 0, false
		}
		v = next
	}
	return v, true
}

// sortedTopics returns the distinct topics sorted by name.
func sortedTopics(topics []string) []string {
	out := slices.Clone(topics)
	slices.Sort(out)
	return slices.Compact(out)
}

// TopicCursor returns the cursor of a stream following topic alone, at pos:
// the id publish and history answers give an event, usable as lastEventId.
func TopicCursor(topic string, pos Position) string {
	return string(appendCursor(nil, topicSetHash([]string{topic}), []Position{pos}))
}
