package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/edge-rt/edge/config"
	"github.com/edge-rt/edge/edge/auth"
)

// errNoAuth stops a server that would listen beyond this machine with no
// way to check a token.
var errNoAuth = errors.New("no auth.hmac_secrets, auth.jwks_file or auth.api_keys, and the address is not loopback: set EDGE_AUTH_HMAC_SECRETS (32+ random bytes) or auth.jwks_file, or listen on 127.0.0.1 for dev mode")

// newAuthenticator builds the authenticator from cfg. With nothing to
// verify tokens with, a loopback server runs in dev mode: a random secret,
// and a ready token printed in the log with the demo URL; any other address
// refuses to start.
func newAuthenticator(cfg *config.Config, addr net.Addr, log *slog.Logger) (*auth.Authenticator, error) {
	acfg := auth.Config{
		HMACSecrets:      cfg.Auth.HMACSecrets,
		JWKSFile:         cfg.Auth.JWKSFile,
		Issuer:           cfg.Auth.Issuer,
		Audience:         cfg.Auth.Audience,
		Leeway:           cfg.Auth.Leeway,
		CookieName:       cfg.Auth.CookieName,
		QueryToken:       !cfg.Auth.DisableQueryToken,
		DefaultSubscribe: cfg.Auth.DefaultSubscribe,
		DefaultPublish:   cfg.Auth.DefaultPublish,
	}
	for _, k := range cfg.Auth.APIKeys {
		acfg.APIKeys = append(acfg.APIKeys, auth.APIKey{Name: k.Name, Hash: k.Hash, Publish: k.Publish})
	}
	configured := len(acfg.HMACSecrets) > 0 || acfg.JWKSFile != "" || len(acfg.APIKeys) > 0
	if configured {
		return auth.New(acfg, log)
	}
	if !isLoopback(addr) {
		return nil, errNoAuth
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	acfg.HMACSecrets = []string{hex.EncodeToString(secret)}
	a, err := auth.New(acfg, log)
	if err != nil {
		return nil, err
	}
	token, err := auth.Mint(acfg.HMACSecrets[0], auth.Claims{
		Subject: "dev", Subscribe: []string{"*"}, Publish: []string{"*"},
	}, cfg.Auth.DevTokenTTL)
	if err != nil {
		return nil, err
	}
	// The one token Edge ever logs: made for this process only, on a
	// loopback address, so that the demo works without any setup.
	log.Warn("DevMode", "reason", "no auth configured and a loopback address",
		"token", token, "demo", baseURL(cfg, addr)+"/?access_token="+url.QueryEscape(token),
		"ttl", cfg.Auth.DevTokenTTL)
	return a, nil
}

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// reloadOnHangup reloads the JWKS file on SIGHUP, as operators expect of a
// daemon after rotating keys.
func reloadOnHangup(ctx context.Context, a *auth.Authenticator, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := a.Reload(); err != nil {
				log.Warn("JWKSReloadFailed", "err", err)
			} else {
				log.Info("JWKSReloaded")
			}
		}
	}
}
