// Package redistest runs a real redis-server for tests, on a free loopback
// port, so that tests can also stop and restart it to exercise failures.
package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/testproc"
	"github.com/redis/go-redis/v9"
)

// readyTimeout bounds how long a start waits for the server to answer PING.
const readyTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	args []string

	mu     sync.Mutex
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	out    *testproc.Output
}

// Start runs redis-server on a free 127.0.0.1 port, without persistence,
// with args added to its command line (e.g. "--cluster-enabled", "yes"),
// and returns once it answers PING. The server is stopped when the test
// ends. The test fails at once if redis-server is not on PATH.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server not found on PATH (Debian: apt-get install redis-server): %v", err)
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), args: args}
	tb.Cleanup(s.Stop)
	// A free port can be taken between choosing and binding it: try again.
	for attempt := 1; ; attempt++ {
		s.port = testproc.FreePort(tb)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			tb.Fatalf("redistest: %v", err)
		}
	}
}

// start runs the server on s.port and waits until it is ready.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &testproc.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.out = cmd, exited, out
	if err := waitReady(s.addr(), exited); err != nil {
		cmd.Process.Kill()
		<-exited
		s.cmd = nil
		return fmt.Errorf("redis-server on port %d: %v\n%s", s.port, err, out.String())
	}
	return nil
}

// waitReady polls PING until the server answers, exits, or time runs out.
func waitReady(addr string, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before answering PING")
		case <-ctx.Done():
			return fmt.Errorf("no answer to PING within %v: %v", readyTimeout, err)
		case <-tick.C:
		}
	}
}

func (s *Server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr()
}

// Stop kills the server, as a crash would, and waits for it to exit. It
// does nothing when the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port, empty (nothing is
// persisted), and waits until it is ready. It stops it first if running.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.tb.Fatalf("redistest: restart: %v", err)
	}
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	tb.Cleanup(func() { c.Close() })
	return c
}

// FastClient returns a client of the server, as one node would hold it,
// with short timeouts and no retries, so that calls to a stopped server
// fail fast and a test sees each failure. It is closed when the test ends.
func (s *Server) FastClient(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:         s.Addr(),
		DialTimeout:  250 * time.Millisecond,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
		MaxRetries:   -1,
	})
	tb.Cleanup(func() { c.Close() })
	return c
}
