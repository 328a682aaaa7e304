// Package ssetest reads Server-Sent Events in tests the way the WHATWG
// EventSource parser does, frame by frame, from any http.Client.
package ssetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Frame is one dispatched SSE block, or a comment line.
type Frame struct {
	ID      string
	HasID   bool
	Event   string
	Data    string
	HasData bool
	Retry   string
	// IsComment marks a comment line (heartbeats are empty comments).
	IsComment bool
	Comment   string
	// At is when the frame was read.
	At time.Time
}

// Stream is an open SSE response.
type Stream struct {
	Resp   *http.Response
	Frames chan Frame // closed when the body ends
	cancel context.CancelFunc
}

// Open starts a GET of url with the given headers and reads its frames in
// the background. The stream is closed when the test ends.
func Open(t testing.TB, client *http.Client, url string, header http.Header) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	s := &Stream{Resp: resp, Frames: make(chan Frame, 1024), cancel: cancel}
	go s.read(resp.Body)
	t.Cleanup(s.Close)
	return s
}

// FromReader reads frames from r, an already open body (decompressed, say).
func FromReader(r io.Reader) *Stream {
	s := &Stream{Frames: make(chan Frame, 1024), cancel: func() {}}
	go s.read(r)
	return s
}

// Close ends the request.
func (s *Stream) Close() {
	s.cancel()
	if s.Resp != nil {
		s.Resp.Body.Close()
	}
}

func (s *Stream) read(body io.Reader) {
	defer close(s.Frames)
	r := bufio.NewReaderSize(body, 1<<16)
	var f Frame
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if f.HasID || data != nil || f.Event != "" || f.Retry != "" {
				f.Data, f.HasData = strings.Join(data, "\n"), data != nil
				f.At = time.Now()
				s.Frames <- f
			}
			f, data = Frame{}, nil
		case strings.HasPrefix(line, ":"):
			s.Frames <- Frame{IsComment: true, Comment: strings.TrimPrefix(line, ":"), At: time.Now()}
		default:
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "id":
				f.ID, f.HasID = value, true
			case "event":
				f.Event = value
			case "data":
				data = append(data, value)
			case "retry":
				f.Retry = value
			}
		}
	}
}

// Next returns the next frame that satisfies keep, failing the test after
// timeout or if the stream ends first.
func (s *Stream) Next(t testing.TB, timeout time.Duration, keep func(Frame) bool) Frame {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-s.Frames:
			if !ok {
				t.Fatalf("stream ended while waiting for a frame")
			}
			if keep == nil || keep(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("no matching frame within %v", timeout)
		}
	}
}

// Event keeps frames that carry data (what an EventSource dispatches).
func Event(f Frame) bool { return f.HasData }

// WaitEnd waits for the server to end the stream, failing after timeout.
func (s *Stream) WaitEnd(t testing.TB, timeout time.Duration) []Frame {
	t.Helper()
	var rest []Frame
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-s.Frames:
			if !ok {
				return rest
			}
			rest = append(rest, f)
		case <-deadline:
			t.Fatalf("stream still open after %v (frames %s)", timeout, fmt.Sprint(rest))
		}
	}
}
