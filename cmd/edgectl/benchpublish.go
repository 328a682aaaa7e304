package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// publisher publishes the bench's events. With one request in flight at a
// time (the default), the topic's order is the order of n; with several,
// the schedule holds even when one answer is slow (a backend with many
// workers publishing), and n order is no longer publish order.
type publisher struct {
	client *http.Client
	url    string
	header http.Header
	runID  int64
	hist   histogram
	errs   *errorLog
	// inFlight is how many publishes may be under way at once.
	inFlight int
}

// publishResult is what one run of the publisher did.
type publishResult struct {
	ok, failed  int
	first, last time.Time // first send, last answer
	// published has bit n set for every n the server accepted.
	published []uint64
}

// run publishes count events, the i-th with n = nOf(i), at rate per second
// on a fixed schedule (a slow answer is caught up, not added to every later
// event), or back to back when burst. It stops early if ctx ends.
func (p *publisher) run(ctx context.Context, count int, rate float64, burst bool, nOf func(int) int64) publishResult {
	res := publishResult{published: make([]uint64, (count+63)/64)}
	interval := time.Duration(0)
	if !burst {
		interval = time.Duration(float64(time.Second) / rate)
	}
	var mu sync.Mutex // guards res and p.hist when several are in flight
	slots := make(chan struct{}, max(p.inFlight, 1))
	var wg sync.WaitGroup
	start := time.Now()
	res.first = start
	for i := range count {
		if due := start.Add(time.Duration(i) * interval); !burst {
			if d := time.Until(due); d > 0 && !sleepCtx(ctx, d) {
				break
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(n int64) {
			defer func() { <-slots; wg.Done() }()
			sent := time.Now()
			// The send time goes in the event: latency is receive time
			// minus it, on the same machine's clock.
			body := make([]byte, 0, 64)
			body = append(body, `{"data":{"n":`...)
			body = strconv.AppendInt(body, n, 10)
			body = append(body, `,"t":`...)
			body = strconv.AppendInt(body, sent.UnixNano(), 10)
			body = append(body, `,"r":`...)
			body = strconv.AppendInt(body, p.runID, 10)
			body = append(body, `}}`...)
			err := p.publish(ctx, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				p.errs.note(fmt.Errorf("publish: %w", err))
			} else {
				res.ok++
				if n >= 0 {
					setBit(res.published, int(n))
				}
				p.hist.Record(time.Since(sent))
			}
			res.last = time.Now()
		}(nOf(i))
		if p.inFlight <= 1 {
			wg.Wait() // strictly one at a time: n order is publish order
		}
	}
	wg.Wait()
	return res
}

// publish POSTs one event; only 201 (or 200, an idempotent replay) counts.
func (p *publisher) publish(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return &statusError{Code: resp.StatusCode, Body: readErrorBody(resp.Body)}
	}
	// Read to the end so the connection is reused.
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
