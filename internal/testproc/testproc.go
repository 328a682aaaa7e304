// Package testproc holds what tests that run servers as processes share:
// a free loopback port to start one on, and a buffer for its output.
package testproc

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// FreePort returns a TCP port free on 127.0.0.1 at the moment of the call.
// Another process may take it before the caller binds it: callers retry.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testproc: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Output collects a process's output: exec writes it from its own
// goroutines while the test reads it (a failed start, a log check).
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
