package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealth asks /healthz (or /readyz with --ready) and exits 0 only on
// 200: the container health check, where no curl is installed.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("health", "health [--server URL] [--ready]", stderr)
	var srv serverFlags
	srv.register(fs)
	ready := fs.Bool("ready", false, "ask /readyz (broker reachable, not draining) instead of /healthz")
	if err := fs.Parse(args); err != nil {
		return flagStatus(err)
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	u, err := srv.endpoint(path, nil)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl health:", err)
		return exitUsage
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl health:", err)
		return exitFail
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl health:", err)
		return exitFail
	}
	defer resp.Body.Close()
	body := readErrorBody(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "edgectl health: %d %s\n", resp.StatusCode, body)
		return exitFail
	}
	fmt.Fprintln(stdout, body)
	return exitOK
}
