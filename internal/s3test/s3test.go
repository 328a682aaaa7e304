// Package s3test runs a real S3-compatible server for tests: Versity's
// S3 gateway (versitygw, Apache-2.0) over a directory, on a free loopback
// port. It speaks the S3 API the AWS SDK and tusd's s3store use, multipart
// uploads included, so tests of the S3 store talk S3 over HTTP rather than
// to a fake.
package s3test

import (
	"fmt"
	"go/build"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/edge-rt/edge/internal/testproc"
)

// Version is the versitygw release scripts/test-deps.sh installs.
const Version = "v1.8.0"

// readyTimeout bounds how long Start waits for the server to answer.
const readyTimeout = 15 * time.Second

// Server is one versitygw process owned by a test, with one bucket.
type Server struct {
	// Endpoint is the server's URL, "http://127.0.0.1:<port>".
	Endpoint string
	// AccessKey and SecretKey are the root account's credentials.
	AccessKey, SecretKey string
	// Bucket is an empty bucket made for the test.
	Bucket string
	// Root is the directory the gateway serves: Root/<bucket>/<key>.
	Root string

	bin    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	out    *testproc.Output
}

// Start runs versitygw on a free 127.0.0.1 port over a temporary directory
// holding one bucket, and returns once it answers. The server is stopped
// when the test ends. The test fails at once if versitygw is not
// installed (scripts/test-deps.sh installs it).
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := binary()
	if err != nil {
		tb.Fatalf("s3test: %v (install it: go install github.com/versity/versitygw/cmd/versitygw@%s, or run scripts/test-deps.sh)", err, Version)
	}
	s := &Server{AccessKey: "edge-test", SecretKey: "edge-test-secret-key", Bucket: "uploads", Root: tb.TempDir()}
	// The posix backend serves every directory under Root as a bucket.
	if err := os.Mkdir(filepath.Join(s.Root, s.Bucket), 0o755); err != nil {
		tb.Fatalf("s3test: %v", err)
	}
	tb.Cleanup(s.stop)
	// A free port can be taken between choosing and binding it: try again.
	for attempt := 1; ; attempt++ {
		s.bin, s.port = bin, testproc.FreePort(tb)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			tb.Fatalf("s3test: %v", err)
		}
	}
}

// binary finds versitygw on PATH or where go install puts it.
func binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		gobin = filepath.Join(build.Default.GOPATH, "bin")
	}
	p := filepath.Join(gobin, "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw is neither on PATH nor in %s", gobin)
	}
	return p, nil
}

func (s *Server) start() error {
	addr := "127.0.0.1:" + strconv.Itoa(s.port)
	cmd := exec.Command(s.bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "posix", s.Root)
	out := &testproc.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited, s.out, s.Endpoint = cmd, exited, out, "http://"+addr

	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		// Any HTTP answer (403 to an unsigned request) means it serves.
		if resp, err := client.Get(s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("versitygw on %s exited: %s", addr, out.String())
		case <-time.After(20 * time.Millisecond): // polling a port: nothing to wait on
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("versitygw on %s not ready after %v: %s", addr, readyTimeout, out.String())
		}
	}
}

// Stop kills the server (SIGKILL: an S3 service that vanishes); what it
// stored stays in Root.
func (s *Server) Stop() { s.stop() }

// Restart starts the server again on the same port and Root, and returns
// once it answers.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.stop()
	if err := s.start(); err != nil {
		tb.Fatalf("s3test: restart: %v", err)
	}
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}
