package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"mime"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// A bench stream's life: connecting until its first bytes arrive, then
// open; one still connecting when the open phase ends is abandoned, so the
// run's expectations only count streams that were there from the start.
const (
	streamConnecting int32 = iota
	streamOpen
	streamAbandoned
)

// benchShared is what every stream of a run uses.
type benchShared struct {
	client *http.Client
	url    string
	header http.Header
	// runID tags this run's events, so another bench publishing to the
	// same topic shows as foreign events instead of corrupting the counts.
	runID  int64
	events int // measured events, n = 0 … events-1
	warmup int // warmup events, n = -1 … -warmup
	// dialSem bounds the connections being set up at once: 10,000 SYNs at
	// once overflow the listen backlog and cost 1 s retransmits.
	dialSem chan struct{}
	latency *histogram
	opened  atomic.Int64
	errs    *errorLog
	// fail ends the whole run: the server refused in a way retrying will
	// not fix.
	fail func(error)
}

// benchStream is one stream's receiver. The atomics are read by the run
// while it polls; the rest belongs to the stream's goroutine until the run
// has waited for it.
type benchStream struct {
	state  atomic.Int32
	unique atomic.Int64 // distinct measured events received
	warmed atomic.Int64 // distinct warmup events received

	seen     []uint64 // bit n: measured event n received
	warmSeen []uint64
	maxN     int64
	lastAt   int64 // unix nanos of the last measured delivery

	dup, reorder, foreign, resets  int64
	connectErrs, drops, reconnects int64
	lastID                         []byte
	retry                          time.Duration
}

// newBenchStreams makes n receivers in one slice (one allocation, not
// 10,000) with bitmaps for events measured and warmup events.
func newBenchStreams(n, events, warmup int) []benchStream {
	s := make([]benchStream, n)
	for i := range s {
		s[i].seen = make([]uint64, (events+63)/64)
		s[i].warmSeen = make([]uint64, (warmup+63)/64)
		s[i].maxN = -1
	}
	return s
}

// run keeps the stream open until ctx ends: it connects, reads, and after
// an end or a failure connects again from its last id, as EventSource
// would, so a server that ends streams (max lifetime, a full queue) shows
// as drops and reconnects, and losses only if resuming loses events.
func (s *benchStream) run(ctx context.Context, b *benchShared) {
	var wait time.Duration
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		resp, br, err := s.connect(ctx, b)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var se *statusError
			if errors.As(err, &se) && permanentStatus(se.Code) {
				b.fail(err)
				return
			}
			s.connectErrs++
			b.errs.note(err)
			wait = min(max(2*wait, 100*time.Millisecond), 2*time.Second)
			continue
		}
		if s.state.Load() == streamOpen {
			s.reconnects++
		} else if !s.state.CompareAndSwap(streamConnecting, streamOpen) {
			resp.Body.Close() // abandoned meanwhile
			return
		} else {
			b.opened.Add(1)
		}
		err = s.read(br, b)
		resp.Body.Close()
		if ctx.Err() != nil {
			return
		}
		s.drops++
		if !errors.Is(err, io.EOF) {
			b.errs.note(fmt.Errorf("stream: %w", err))
		}
		wait = time.Second
		if s.retry > 0 {
			wait = min(s.retry, 5*time.Second)
		}
	}
}

// connect opens the stream and waits for its first bytes (Edge sends a
// retry line and a comment at once), holding a dial slot meanwhile.
func (s *benchStream) connect(ctx context.Context, b *benchShared) (*http.Response, *bufio.Reader, error) {
	select {
	case b.dialSem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-b.dialSem }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	if len(s.lastID) > 0 {
		req.Header.Set("Last-Event-ID", string(s.lastID))
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		err := &statusError{Code: resp.StatusCode, Body: readErrorBody(resp.Body)}
		resp.Body.Close()
		return nil, nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("stream answered %q, not text/event-stream", resp.Header.Get("Content-Type"))
	}
	// 4 KiB: the bench's own memory for 10,000 streams stays about 40 MiB.
	br := bufio.NewReaderSize(resp.Body, 4<<10)
	if _, err := br.Peek(1); err != nil {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("waiting for the stream's first bytes: %w", err)
	}
	return resp, br, nil
}

// read counts events until the stream ends, returning why.
func (s *benchStream) read(br *bufio.Reader, b *benchShared) error {
	r := newSSEReader(br, 1<<20)
	defer func() {
		if r.SawID {
			s.lastID = append(s.lastID[:0], r.LastID...)
		}
		if r.Retry >= 0 {
			s.retry = time.Duration(r.Retry) * time.Millisecond
		}
	}()
	for {
		ev, err := r.Next()
		if err != nil {
			return err
		}
		s.count(ev, time.Now().UnixNano(), b)
	}
}

// count files one event.
func (s *benchStream) count(ev sseEvent, now int64, b *benchShared) {
	if len(ev.Event) > 0 {
		if string(ev.Event) == "reset" {
			s.resets++
		} else {
			s.foreign++
		}
		return
	}
	n, t, run, ok := benchPayload(ev.Data)
	switch {
	case !ok || run != b.runID || n >= int64(b.events) || n < -int64(b.warmup):
		s.foreign++
	case n < 0:
		if setBit(s.warmSeen, int(-n-1)) {
			s.warmed.Add(1)
		}
	case !setBit(s.seen, int(n)):
		s.dup++
	default:
		s.unique.Add(1)
		if n < s.maxN {
			s.reorder++
		} else {
			s.maxN = n
		}
		b.latency.Record(time.Duration(now - t))
		s.lastAt = now
	}
}

// setBit sets bit i and reports whether it was clear.
func setBit(set []uint64, i int) bool {
	w, m := i/64, uint64(1)<<(i%64)
	if set[w]&m != 0 {
		return false
	}
	set[w] |= m
	return true
}

// missing lists the n in published that s did not receive, appending to
// dst, and returns their count.
func (s *benchStream) missing(published []uint64, events int, dst []int64, limit int) (int64, []int64) {
	var lost int64
	for w := range published {
		gone := published[w] &^ s.seen[w]
		lost += int64(bits.OnesCount64(gone))
		for gone != 0 && len(dst) < limit {
			i := bits.TrailingZeros64(gone)
			if n := w*64 + i; n < events {
				dst = append(dst, int64(n))
			}
			gone &= gone - 1
		}
	}
	return lost, dst
}

// errorLog counts errors by kind, keeping the order kinds first appeared.
type errorLog struct {
	mu     sync.Mutex
	counts map[string]int
	order  []string
}

// maxErrorKinds bounds the kinds kept: a failing run makes thousands.
const maxErrorKinds = 10

// note counts err under its kind.
func (l *errorLog) note(err error) {
	k := errorKey(err)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = make(map[string]int)
	}
	if _, ok := l.counts[k]; !ok {
		if len(l.order) >= maxErrorKinds {
			k = "(other errors)"
		}
		if _, ok := l.counts[k]; !ok {
			l.order = append(l.order, k)
		}
	}
	l.counts[k]++
}

// errorCount is one kind of error and how often it happened.
type errorCount struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

// list returns the kinds, most frequent first.
func (l *errorLog) list() []errorCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]errorCount, 0, len(l.order))
	for _, k := range l.order {
		out = append(out, errorCount{Error: k, Count: l.counts[k]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}
