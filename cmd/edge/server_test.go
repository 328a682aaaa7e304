package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/config"
	"github.com/edge-rt/edge/edge/auth"
	"github.com/edge-rt/edge/internal/ssetest"
)

// startServer runs the whole server as main does, with extra flags, and
// returns its base URL. The server drains when the test ends.
func startServer(t *testing.T, flags ...string) (string, context.CancelFunc, chan error) {
	t.Helper()
	args := append([]string{"--config", "", "--http.addr", "127.0.0.1:0", "--http.drain_timeout", "500ms",
		"--auth.hmac_secrets", testSecret, "--uploads.dir", t.TempDir()}, flags...)
	cfg, err := config.Load(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("server failed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s", scheme, addr), cancel, done
}

// testSecret signs the test servers' tokens.
const testSecret = "cmd-edge-test-secret-0123456789abcdef"

// token mints a token allowed everything.
func token(t *testing.T) string {
	t.Helper()
	return mintFor(t, auth.Claims{Subject: "tester", Subscribe: []string{"*"}, Publish: []string{"*"}})
}

func mintFor(t *testing.T, c auth.Claims) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// publish POSTs data to topic and returns the status.
func publish(t *testing.T, client *http.Client, base, tok, topic, data string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/topics/"+topic+"/events", strings.NewReader(`{"data":`+data+`}`))
	req.Header = bearer(tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// streamOne opens a stream, publishes one event and checks it arrives.
func streamOne(t *testing.T, client *http.Client, base string) *ssetest.Stream {
	t.Helper()
	tok := token(t)
	st := ssetest.Open(t, client, base+"/v1/stream?topic=proto", bearer(tok))
	st.Next(t, 5*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	req, _ := http.NewRequest("POST", base+"/v1/topics/proto/events", strings.NewReader(`{"data":"hello"}`))
	req.Header = bearer(tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	f := st.Next(t, 5*time.Second, ssetest.Event)
	if !strings.Contains(f.Data, `"data":"hello"`) || !f.HasID {
		t.Fatalf("got %+v", f)
	}
	return st
}

func TestHTTP2OverTLSStreams(t *testing.T) {
	t.Parallel()
	cert, key, pool := selfSigned(t)
	base, _, _ := startServer(t, "--http.tls_cert", cert, "--http.tls_key", key)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	st := streamOne(t, client, base)
	if st.Resp.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", st.Resp.Proto)
	}
	if st.Resp.Header.Get("Connection") != "" {
		t.Fatal("an HTTP/2 response carries a Connection header")
	}
}

func TestH2CStreams(t *testing.T) {
	t.Parallel()
	base, _, _ := startServer(t, "--http.h2c")
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}}
	st := streamOne(t, client, base)
	if st.Resp.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", st.Resp.Proto)
	}
	// HTTP/1.1 still works on the same port.
	st1 := streamOne(t, &http.Client{}, base)
	if st1.Resp.ProtoMajor != 1 {
		t.Fatalf("HTTP/1.1 client served over %s", st1.Resp.Proto)
	}
}

func TestShutdownDrainsStreams(t *testing.T) {
	t.Parallel()
	base, stop, done := startServer(t, "--http.drain_timeout", "300ms")
	st := ssetest.Open(t, http.DefaultClient, base+"/v1/stream?topic=drain", bearer(token(t)))
	st.Next(t, 5*time.Second, func(f ssetest.Frame) bool { return f.HasID })
	stop()
	st.WaitEnd(t, 5*time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
		done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after draining")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and returns the files and a
// pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "edge test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
