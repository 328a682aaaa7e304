package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"
)

// sourceDialer spreads connections round-robin over source addresses
// 127.0.0.1 … 127.0.0.k. Each (source, destination) pair has one range of
// ephemeral ports (28,232 on this machine, 32768–60999), and TIME_WAIT from
// earlier runs eats into it: several sources give a large or repeated run
// room.
type sourceDialer struct {
	dialers []*net.Dialer
	next    atomic.Uint64
	// Conns counts connections made: over h2c it shows how many streams
	// shared each connection.
	Conns atomic.Int64
}

// newSourceDialer makes a dialer over n source addresses. n > 1 needs a
// loopback server: 127.0.0.x cannot reach anything else.
func newSourceDialer(n int, server *url.URL) (*sourceDialer, error) {
	if n < 1 || n > 254 {
		return nil, fmt.Errorf("--sources %d: want 1 to 254", n)
	}
	d := &sourceDialer{}
	if n == 1 {
		d.dialers = []*net.Dialer{{Timeout: 10 * time.Second}}
		return d, nil
	}
	if host := server.Hostname(); host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			return nil, fmt.Errorf("--sources %d needs a server on an IPv4 loopback address, not %q", n, host)
		}
	}
	for i := range n {
		d.dialers = append(d.dialers, &net.Dialer{
			Timeout:   10 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i+1))},
		})
	}
	return d, nil
}

// DialContext dials from the next source address.
func (d *sourceDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	i := d.next.Add(1) - 1
	c, err := d.dialers[i%uint64(len(d.dialers))].DialContext(ctx, network, addr)
	if err == nil {
		d.Conns.Add(1)
	}
	return c, err
}

// streamTransport makes the transport of the bench's streams.
//
// http1: one connection per stream, so no cap on connections per host and
// room to keep them all. h2c: HTTP/2 with prior knowledge over cleartext,
// many streams per connection; the transport opens another connection when
// the server's SETTINGS_MAX_CONCURRENT_STREAMS is reached.
//
// h2c uses net/http's own unencrypted HTTP/2 (Go 1.24+) rather than
// golang.org/x/net/http2.Transport{AllowHTTP: true}. Measured on this
// machine with 40 long-lived streams against a server allowing 5 streams
// per connection: x/net's transport opened 25 streams on 5 connections and
// left the other 15 waiting for a free slot forever (streams never end);
// net/http's, with MaxConnsPerHost 1, opened all 40 on 8 connections. x/net
// v0.62 also marks its Transport deprecated in favour of this. One
// transport type keeps the dialer (source addresses) the same for both.
func streamTransport(proto string, streams int, d *sourceDialer) (*http.Transport, error) {
	t := &http.Transport{
		DialContext:         d.DialContext,
		MaxConnsPerHost:     0,
		MaxIdleConns:        streams + 16,
		MaxIdleConnsPerHost: streams + 16,
		IdleConnTimeout:     90 * time.Second,
		// A server that accepts but never answers must not hold a stream's
		// open phase forever.
		ResponseHeaderTimeout: 30 * time.Second,
		// Ask for the identity encoding: the bench measures the plain
		// stream, and a decompressor per stream would load the client.
		DisableCompression: true,
	}
	var p http.Protocols
	switch proto {
	case "http1":
		p.SetHTTP1(true)
	case "h2c":
		p.SetUnencryptedHTTP2(true)
		// For HTTP/2 this bounds connections being dialled at once, not
		// connections: without it, streams started together each dial
		// their own (78 connections for 40 streams in the measurement
		// above), instead of filling one before the next is opened.
		t.MaxConnsPerHost = 1
	default:
		return nil, fmt.Errorf("--proto %q: want http1 or h2c", proto)
	}
	t.Protocols = &p
	return t, nil
}

// fdReserve is the files bench needs besides its streams: stdio, the
// publisher's and sampler's connections, the runtime's poller, slack.
const fdReserve = 64

// checkFileLimit fails early when HTTP/1.1 streams cannot all get a file
// descriptor, rather than letting thousands of dials fail with EMFILE half
// way through. Go raises the soft limit to the hard one at start-up, so
// the soft limit read here is the real one.
func checkFileLimit(proto string, streams int) error {
	if proto != "http1" {
		return nil
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil // unknown: let the dials tell
	}
	if need := uint64(streams) + fdReserve; need > rl.Cur {
		return fmt.Errorf("--streams %d over HTTP/1.1 needs one connection, so one open file, per stream: about %d, "+
			"but the open-file limit (ulimit -n) is %d; use at most %d streams, or --proto h2c (many streams per connection). "+
			"The server needs one file per HTTP/1.1 stream too",
			streams, need, rl.Cur, rl.Cur-fdReserve)
	}
	return nil
}

// errorKey shortens an error to what is the same across streams (a dial
// error without its local port), so the report counts kinds, not instances.
func errorKey(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + " " + op.Net + ": " + op.Err.Error()
	}
	return err.Error()
}
