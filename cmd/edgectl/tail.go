package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"
)

// tailLine is what tail prints for each event, one JSON object per line.
type tailLine struct {
	// ID is the event's cursor; absent for ephemeral events.
	ID string `json:"id,omitempty"`
	// Event is the SSE event type, "message" when the frame named none.
	Event string `json:"event"`
	// Topic is the topic the event was published to; absent for frames that
	// are not a topic's event (reset).
	Topic string `json:"topic,omitempty"`
	// Data is the published JSON, or the whole frame's data when it is not
	// an event envelope (reset), or a JSON string when it is not JSON.
	Data json.RawMessage `json:"data"`
	// TS is the publish time in Unix milliseconds, when the frame has one.
	TS int64 `json:"ts,omitempty"`
}

// envelope is the data of Edge's topic events.
type envelope struct {
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
	TS    int64           `json:"ts"`
}

// runTail implements `edgectl tail`: it follows the stream until SIGINT,
// printing every event as a JSON line on stdout and reconnections on stderr.
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tail", "tail --topic a [--topic b] [--last-event-id X]", stderr)
	var (
		srv     serverFlags
		topics  stringsFlag
		lastID  string
		maxSize int
		quiet   bool
	)
	srv.register(fs)
	fs.Var(&topics, "topic", "topic to follow (repeat for several)")
	fs.StringVar(&lastID, "last-event-id", "", "resume after this event id (sent as Last-Event-ID)")
	fs.IntVar(&maxSize, "max-event-size", 1<<20, "largest event accepted, in bytes")
	fs.BoolVar(&quiet, "quiet", false, "do not report reconnections on stderr")
	if err := fs.Parse(args); err != nil {
		return flagStatus(err)
	}
	if len(topics) == 0 || fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	target, err := srv.endpoint("/v1/stream", url.Values{"topic": topics})
	if err != nil {
		fmt.Fprintln(stderr, "edgectl tail:", err)
		return exitUsage
	}
	header := map[string]string{"Accept": "text/event-stream"}
	if t := srv.bearer(); t != "" {
		header["Authorization"] = "Bearer " + t
	}

	enc := json.NewEncoder(stdout)
	var writeErr error
	sub := &subscription{
		URL:           target,
		Header:        header,
		LastEventID:   lastID,
		MaxBufferSize: maxSize,
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	sub.OnEvent = func(ev streamEvent) {
		// One Encode is one write, so lines stay whole when piped.
		if err := enc.Encode(newTailLine(ev)); err != nil && writeErr == nil {
			// stdout is gone (a closed pipe): nothing left to do.
			writeErr = err
			stop()
		}
	}
	if !quiet {
		sub.OnReconnect = func(err error, wait time.Duration) {
			wait = wait.Round(time.Millisecond)
			if err == nil {
				fmt.Fprintf(stderr, "edgectl tail: stream ended by the server, resuming from %q in %v\n", sub.LastEventID, wait)
				return
			}
			fmt.Fprintf(stderr, "edgectl tail: %v; retrying in %v\n", err, wait)
		}
	}
	err = sub.Run(ctx)
	switch {
	case writeErr != nil:
		fmt.Fprintln(stderr, "edgectl tail: writing:", writeErr)
		return exitFail
	case err != nil:
		// A refusal (errGiveUp): the server will not serve this stream.
		fmt.Fprintln(stderr, "edgectl tail:", err)
		return exitFail
	}
	return exitOK
}

// newTailLine unwraps Edge's envelope so the published JSON is printed as
// itself, not as a string inside a string.
func newTailLine(ev streamEvent) tailLine {
	line := tailLine{ID: ev.ID, Event: ev.Event}
	if line.Event == "" {
		line.Event = "message"
	}
	var env envelope
	switch {
	case json.Unmarshal(ev.Data, &env) == nil && env.Topic != "" && len(env.Data) > 0:
		line.Topic, line.Data, line.TS = env.Topic, env.Data, env.TS
	case json.Valid(ev.Data):
		line.Data = ev.Data
	default:
		line.Data, _ = json.Marshal(string(ev.Data))
	}
	return line
}
