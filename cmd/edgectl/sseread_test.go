package main

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// got is an sseEvent copied out of the reader's buffers.
type got struct {
	ID    string
	HasID bool
	Event string
	Data  string
}

func readAll(t *testing.T, in string, maxLine int) ([]got, *sseReader, error) {
	t.Helper()
	r := newSSEReader(bufio.NewReaderSize(strings.NewReader(in), 16), maxLine)
	var out []got
	for {
		ev, err := r.Next()
		if err != nil {
			return out, r, err
		}
		out = append(out, got{string(ev.ID), ev.HasID, string(ev.Event), string(ev.Data)})
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		want   []got
		lastID string
		retry  int64
	}{
		{
			name:   "edge opening, heartbeat, stored event",
			in:     "retry: 2000\n: ok\n\n: hb\n\nid: c1\ndata: {\"topic\":\"a\"}\n\n",
			want:   []got{{"c1", true, "", `{"topic":"a"}`}},
			lastID: "c1", retry: 2000,
		},
		{
			name: "event type and multi-line data",
			in:   "event: reset\ndata: one\ndata: two\ndata:\n\n",
			want: []got{{"", false, "reset", "one\ntwo\n"}},
		},
		{
			name:   "CRLF lines and only one leading space dropped",
			in:     "id:x\r\ndata:  two spaces\r\n\r\n",
			want:   []got{{"x", true, "", " two spaces"}},
			lastID: "x",
		},
		{
			name:   "ephemeral event keeps the last id",
			in:     "id: 1\ndata: a\n\ndata: b\n\n",
			want:   []got{{"1", true, "", "a"}, {"", false, "", "b"}},
			lastID: "1",
		},
		{
			name:   "a block without data is not dispatched but its id counts",
			in:     "id: 9\n\nevent: x\n\ndata: y\n\n",
			want:   []got{{"", false, "", "y"}},
			lastID: "9",
		},
		{
			name: "a field name alone is an empty value",
			in:   "data\n\n",
			want: []got{{"", false, "", ""}},
		},
		{
			name: "id with NUL is ignored, unknown fields and bad retry too",
			in:   "id: a\x00b\nfoo: bar\nretry: 1x\ndata: z\n\n",
			want: []got{{"", false, "", "z"}},
		},
		{
			name: "leading BOM",
			in:   "\xEF\xBB\xBFdata: bom\n\n",
			want: []got{{"", false, "", "bom"}},
		},
		{
			name: "an event cut by the end is dropped",
			in:   "data: whole\n\ndata: cut",
			want: []got{{"", false, "", "whole"}},
		},
		{
			name:   "lines longer than the buffer",
			in:     "data: " + strings.Repeat("x", 100) + "\nid: " + strings.Repeat("i", 40) + "\n\n",
			want:   []got{{strings.Repeat("i", 40), true, "", strings.Repeat("x", 100)}},
			lastID: strings.Repeat("i", 40),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, r, err := readAll(t, tc.in, 1<<10)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want EOF", err)
			}
			if len(out) != len(tc.want) {
				t.Fatalf("events = %+v, want %+v", out, tc.want)
			}
			for i := range out {
				if out[i] != tc.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, out[i], tc.want[i])
				}
			}
			if string(r.LastID) != tc.lastID || r.SawID != (tc.lastID != "") {
				t.Errorf("LastID = %q (saw %v), want %q", r.LastID, r.SawID, tc.lastID)
			}
			wantRetry := tc.retry
			if wantRetry == 0 {
				wantRetry = -1
			}
			if r.Retry != wantRetry {
				t.Errorf("Retry = %d, want %d", r.Retry, wantRetry)
			}
		})
	}
}

func TestSSEReaderLineLimit(t *testing.T) {
	t.Parallel()
	_, _, err := readAll(t, "data: "+strings.Repeat("x", 200)+"\n\n", 64)
	if !errors.Is(err, errLineTooLong) {
		t.Fatalf("err = %v, want errLineTooLong", err)
	}
}

// loopReader repeats one frame forever.
type loopReader struct {
	frame []byte
	off   int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.frame[l.off:])
		n += c
		l.off = (l.off + c) % len(l.frame)
	}
	return n, nil
}

// The bench's receivers must not allocate per event once warm: with
// 10,000 streams the garbage would load the machine the server runs on.
func TestSSEReaderDoesNotAllocate(t *testing.T) {
	frame := "id: 0a1b2c3d\ndata: {\"topic\":\"bench\",\"data\":{\"n\":12,\"t\":1700000000000000000,\"r\":77},\"ts\":1700000000000}\n\n: hb\n\n"
	r := newSSEReader(bufio.NewReaderSize(&loopReader{frame: []byte(frame)}, 4096), 1<<20)
	next := func() {
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok := benchPayload(ev.Data); !ok {
			t.Fatalf("payload not found in %q", ev.Data)
		}
	}
	for range 10 {
		next()
	}
	if a := testing.AllocsPerRun(1000, next); a != 0 {
		t.Errorf("%v allocations per event, want 0", a)
	}
}

func TestBenchPayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		n, t, r int64
		ok      bool
	}{
		{`{"topic":"bench","data":{"n":12,"t":1700000000000000001,"r":9223372036854775807},"ts":1}`, 12, 1700000000000000001, 9223372036854775807, true},
		{`{"topic":"bench","data":{"r":1,"t":5,"n":-3},"ts":1}`, -3, 5, 1, true},
		{`{"topic":"bench","data":{"n":0,"t":7,"r":3}}`, 0, 7, 3, true},
		{`{"topic":"bench","data":{"n":0,"t":7}}`, 0, 0, 0, false},
		{`{"topic":"bench","data":"hello","ts":1}`, 0, 0, 0, false},
		{`{"topic":"bench","data":{"n":"x","t":7,"r":1}}`, 0, 0, 0, false},
		{`{"topic":"bench","data":{"n":1}}`, 0, 0, 0, false},
		{`{"topics":["bench"],"reason":"expired"}`, 0, 0, 0, false},
		{`{"topic":"bench","data":{"n":,"t":7,"r":1}}`, 0, 0, 0, false},
		{`{"topic":"bench","data":{"n":1,"t":9999999999999999999,"r":1}}`, 0, 0, 0, false},
	}
	for _, tc := range tests {
		n, ts, r, ok := benchPayload([]byte(tc.in))
		if ok != tc.ok || (ok && (n != tc.n || ts != tc.t || r != tc.r)) {
			t.Errorf("benchPayload(%s) = %d, %d, %d, %v; want %d, %d, %d, %v", tc.in, n, ts, r, ok, tc.n, tc.t, tc.r, tc.ok)
		}
	}
}
