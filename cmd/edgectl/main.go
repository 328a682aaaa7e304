// Command edgectl is the command-line client of Edge: it tails a stream,
// publishes events and load-tests a server.
//
//	edgectl tail    --topic a --topic b [--last-event-id X]
//	edgectl publish --topic t [--type x] [--ephemeral] [--idempotency-key k] DATA_JSON|-
//	edgectl bench   [--streams 1000] [--events 200] [--rate 20] [--proto http1|h2c] ...
//	edgectl token   --sub ID [--org O] [--subscribe P]... [--publish P]... [--ttl 1h]
//	edgectl health  [--ready]
//
// main only wires: it picks the subcommand and hands it the process's
// context (cancelled by SIGINT or SIGTERM) and standard streams. Each
// subcommand owns its flag set, in its own file.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses: 2 is the flag package's convention for usage errors.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `usage: edgectl <command> [flags] [args]

commands:
  tail     print the events of a stream as JSON lines, resuming across reconnects
  publish  publish one event and print the server's answer
  bench    open many streams, publish at a rate, report delivery, latency and memory
  token    mint a token with the server's secret (auth.hmac_secrets)
  health   exit 0 when the server answers /healthz (or /readyz) with 200

Run "edgectl <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "tail":
		return runTail(ctx, args[1:], stdout, stderr)
	case "publish":
		return runPublish(ctx, args[1:], stdin, stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "token":
		return runToken(ctx, args[1:], stdout, stderr)
	case "health":
		return runHealth(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "edgectl: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
