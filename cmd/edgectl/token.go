package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/edge-rt/edge/config"
	"github.com/edge-rt/edge/edge/auth"
)

// runToken mints an HS256 token with the server's secret: for development,
// tests and benchmarks. Production tokens come from the identity provider.
// The secret is the first of auth.hmac_secrets in the server's config
// (file, then EDGE_AUTH_HMAC_SECRETS), so the newest secret is listed first
// when rotating.
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("token", "token --sub ID [--org O] [--subscribe P]... [--publish P]... [--ttl 1h] [--config FILE]", stderr)
	var (
		c          auth.Claims
		subscribe  stringsFlag
		publish    stringsFlag
		audience   stringsFlag
		ttl        time.Duration
		configFile string
	)
	fs.StringVar(&c.Subject, "sub", "", "subject (required): [A-Za-z0-9._-]{1,64}, a stable user id, not an email")
	fs.StringVar(&c.Org, "org", "", "organisation")
	fs.Var(&subscribe, "subscribe", "topic pattern the token may follow (repeatable)")
	fs.Var(&publish, "publish", "topic pattern the token may publish to (repeatable)")
	fs.StringVar(&c.Issuer, "iss", "", "issuer claim")
	fs.Var(&audience, "aud", "audience claim (repeatable)")
	fs.DurationVar(&ttl, "ttl", time.Hour, "lifetime")
	fs.StringVar(&configFile, "config", "", "server config file (default ./"+config.DefaultFile+" if present)")
	if err := fs.Parse(args); err != nil {
		return flagStatus(err)
	}
	if c.Subject == "" {
		fmt.Fprintln(stderr, "edgectl token: --sub is required")
		return exitUsage
	}
	c.Subscribe, c.Publish, c.Audience = subscribe, publish, audience
	secret, err := serverSecret(configFile)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl token:", err)
		return exitFail
	}
	tok, err := auth.Mint(secret, c, ttl)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl token:", err)
		return exitFail
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}

// serverSecret reads the secret the server would use, as it would.
func serverSecret(configFile string) (string, error) {
	var args []string
	if configFile != "" {
		args = []string{"--config", configFile}
	} else if _, err := os.Stat(config.DefaultFile); err != nil {
		args = []string{"--config", ""}
	}
	cfg, err := config.Load(args)
	if err != nil {
		return "", err
	}
	if len(cfg.Auth.HMACSecrets) == 0 {
		return "", errors.New("no auth.hmac_secrets in the config or EDGE_AUTH_HMAC_SECRETS (a dev-mode server prints its own token)")
	}
	return strings.TrimSpace(cfg.Auth.HMACSecrets[0]), nil
}
