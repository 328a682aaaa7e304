package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// publishBody is the request of POST /v1/topics/{topic}/events. Only these
// three fields: the server rejects unknown ones.
type publishBody struct {
	Type      string          `json:"type,omitempty"`
	Data      json.RawMessage `json:"data"`
	Ephemeral bool            `json:"ephemeral,omitempty"`
}

// runPublish implements `edgectl publish`: one POST, the server's answer on
// stdout, or its error body on stderr and status 1.
func runPublish(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("publish", "publish --topic t [--type x] [--ephemeral] [--idempotency-key k] DATA_JSON|-", stderr)
	var (
		srv       serverFlags
		topic     string
		typ       string
		ephemeral bool
		idemKey   string
		timeout   time.Duration
	)
	srv.register(fs)
	fs.StringVar(&topic, "topic", "", "topic to publish to (required)")
	fs.StringVar(&typ, "type", "", `event type (default: the server's, "message")`)
	fs.BoolVar(&ephemeral, "ephemeral", false, "publish without storing: no id, no replay")
	fs.StringVar(&idemKey, "idempotency-key", "", "Idempotency-Key header: a retry with the same key returns the first result")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "request timeout")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	if topic == "" || len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	data := []byte(pos[0])
	if pos[0] == "-" {
		if data, err = io.ReadAll(stdin); err != nil {
			fmt.Fprintln(stderr, "edgectl publish: reading stdin:", err)
			return exitFail
		}
		data = bytes.TrimSpace(data)
	}
	// Checked here so a shell-quoting slip gets a message about the data,
	// not the server's about the request body.
	if !json.Valid(data) {
		fmt.Fprintf(stderr, "edgectl publish: data is not valid JSON: %q\n", truncate(data, 80))
		return exitUsage
	}
	body, err := json.Marshal(publishBody{Type: typ, Data: data, Ephemeral: ephemeral})
	if err != nil {
		fmt.Fprintln(stderr, "edgectl publish:", err)
		return exitFail
	}
	target, err := srv.endpoint("/v1/topics/"+url.PathEscape(topic)+"/events", nil)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl publish:", err)
		return exitUsage
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(stderr, "edgectl publish:", err)
		return exitFail
	}
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	srv.authorize(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl publish:", err)
		return exitFail
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		fmt.Fprintln(stderr, "edgectl publish: reading the answer:", err)
		return exitFail
	}
	answer = bytes.TrimSpace(answer)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if len(answer) == 0 {
			answer = []byte(resp.Status)
		}
		fmt.Fprintf(stderr, "%s\n", answer)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s\n", answer)
	return exitOK
}

// truncate shortens b for an error message.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
