// Command edge serves Server-Sent Events with exact resume, publishing and
// history over HTTP/1.1, HTTP/2 and h2c, on one node or many through Redis.
//
// main only wires: config, then the server, then the drain on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/edge-rt/edge/config"
)

func main() {
	cfg, err := config.Load(os.Args[1:])
	if errors.Is(err, config.ErrHelp) {
		config.Usage(os.Stdout)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(2)
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log, nil); err != nil {
		log.Error("ServerFailed", "err", err)
		if errors.Is(err, errNoAuth) {
			os.Exit(2) // a configuration problem, like config.Load's
		}
		os.Exit(1)
	}
}
