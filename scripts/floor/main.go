// Command floor measures the write floor the streaming targets are judged
// against: a bare loop writing one SSE-sized frame to each of N loopback
// sockets, over and over, on one core, with no HTTP, no framing and no
// queues. Edge's deliveries per second cannot exceed its writes per second.
//
//	floor -role sink -addr 127.0.0.1:19090 &          # drains every socket (pin it to the other core)
//	GOMAXPROCS=1 taskset -c 0 floor -role writer -addr 127.0.0.1:19090 -conns 10000
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"
)

func main() {
	role := flag.String("role", "writer", "writer or sink")
	addr := flag.String("addr", "127.0.0.1:19090", "sink address")
	conns := flag.Int("conns", 10000, "sockets to write to")
	size := flag.Int("size", 120, "bytes per write")
	dur := flag.Duration("for", 10*time.Second, "how long to write")
	flag.Parse()
	switch *role {
	case "sink":
		sink(*addr)
	case "writer":
		writer(*addr, *conns, *size, *dur)
	default:
		log.Fatalf("unknown role %q", *role)
	}
}

// sink accepts connections and discards what arrives on them.
func sink(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go io.Copy(io.Discard, c)
	}
}

// writer dials conns sockets, then writes size bytes to each in turn for
// dur and reports writes per second.
func writer(addr string, conns, size int, dur time.Duration) {
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatalf("dial %d: %v", i, err)
		}
		cs[i] = c
	}
	frame := make([]byte, size)
	copy(frame, "id: aXyZAbC91\ndata: ")
	frame[size-2], frame[size-1] = '\n', '\n'
	writes := 0
	start := time.Now()
	for time.Since(start) < dur {
		for _, c := range cs {
			if _, err := c.Write(frame); err != nil {
				log.Fatal(err)
			}
			writes++
		}
	}
	el := time.Since(start)
	fmt.Fprintf(os.Stdout, "floor: %d writes of %d bytes to %d sockets in %.2fs: %.0f writes/s\n",
		writes, size, conns, el.Seconds(), float64(writes)/el.Seconds())
}
