package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// serverFlags are the flags every subcommand shares.
type serverFlags struct {
	server string
	token  string
}

// register adds --server and --token to fs.
func (s *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.server, "server", "http://127.0.0.1:8080", "Edge base URL")
	// Not the flag's default value: -h would print the secret.
	fs.StringVar(&s.token, "token", "", "bearer token sent as Authorization (default $EDGE_TOKEN)")
}

// bearer is the token to send: --token, else $EDGE_TOKEN, which keeps it
// out of shell history and `ps` output.
func (s *serverFlags) bearer() string {
	if s.token != "" {
		return s.token
	}
	return os.Getenv("EDGE_TOKEN")
}

// endpoint joins the server's base URL, path and query.
func (s *serverFlags) endpoint(path string, q url.Values) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s.server, "/"))
	if err != nil {
		return "", fmt.Errorf("--server: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--server %q: want an http:// or https:// URL", s.server)
	}
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// authorize sets the Authorization header when a token was given.
func (s *serverFlags) authorize(h http.Header) {
	if t := s.bearer(); t != "" {
		h.Set("Authorization", "Bearer "+t)
	}
}

// stringsFlag is a repeatable string flag (--topic a --topic b).
type stringsFlag []string

// String implements flag.Value.
func (f *stringsFlag) String() string { return strings.Join(*f, ",") }

// Set implements flag.Value: each use of the flag adds one value.
func (f *stringsFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// parseInterspersed parses fs from args, letting flags follow positional
// arguments too (`publish '{"a":1}' --topic t`): the flag package alone stops
// at the first positional argument and would take the rest as data.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// "--" ends the flags for good: everything after it is positional,
		// even words that look like flags. The flag package consumes it.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// newFlagSet makes a subcommand's flag set that reports errors instead of
// exiting, so run can return the status.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: edgectl %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// flagStatus maps a flag parsing error to an exit status: -h is not a
// failure.
func flagStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// readErrorBody returns up to 4 KiB of a failed response's body, trimmed,
// for messages: enough for Edge's {"error":{...}} and not a whole HTML page.
func readErrorBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4<<10))
	return strings.TrimSpace(string(b))
}
