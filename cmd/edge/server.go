package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/edge-rt/edge/config"
	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/limit"
	"github.com/edge-rt/edge/handlers"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// errServerShutdown ends the requests still running when the drain is over.
var errServerShutdown = errors.New("edge: server shut down")

// run serves until ctx ends, then drains. ready, when not nil, receives the
// listening address once the server accepts connections (for tests).
func run(ctx context.Context, cfg *config.Config, log *slog.Logger, ready chan<- net.Addr) error {
	// Listen first: dev mode depends on the address actually bound.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	authn, err := newAuthenticator(cfg, ln.Addr(), log)
	if err != nil {
		return err
	}

	broker, rateLimiter, rdb, closeBackend := newBackend(cfg, log)
	defer closeBackend()
	ups, runner, closeLocker, err := newUploads(cfg, broker, rdb, log)
	if err != nil {
		return err
	}
	defer closeLocker()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hub := edge.NewHub(broker, edge.HubOptions{Logger: log})
	if err := hub.Metrics().Register(reg); err != nil {
		return err
	}
	if err := ups.Metrics().Register(reg); err != nil {
		return err
	}
	e, err := handlers.New(handlers.Deps{
		Hub:            hub,
		Stream:         streamConfig(cfg),
		MaxTopics:      cfg.SSE.MaxTopics,
		Compression:    cfg.SSE.Compression,
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		MaxEventBytes:  int(cfg.Publish.MaxEventBytes),
		NodeID:         cfg.Node.ID,
		Registry:       reg,
		Logger:         log,
		Auth:           authn,
		Limits:         limits(cfg),
		RateLimiter:    rateLimiter,
		CORSOrigins:    cfg.HTTP.CORSOrigins,
		TrustedProxies: trustedProxies(cfg),
		Uploads:        &handlers.Uploads{Service: ups, BasePath: uploadsBasePath},
	})
	if err != nil {
		return err
	}

	// Streams outlive Shutdown's wait unless something ends them: the base
	// context is cancelled once the drain window is over.
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(errServerShutdown)
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		// Above the JSON-answered limit (handlers.limitHeaders), so only
		// absurd requests meet net/http's plain-text 431.
		MaxHeaderBytes: 2 * cfg.HTTP.MaxHeaderBytes,
		// No WriteTimeout: it would cut every stream. Streams set a deadline
		// per write instead.
		BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Protocols:   protocols(cfg),
	}

	if cfg.HTTP.PprofAddr != "" {
		go servePprof(cfg.HTTP.PprofAddr, log)
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan error, 1)
	go func() { hubDone <- hub.Run(hubCtx) }()
	defer func() { stopHub(); <-hubDone }()
	go authn.Watch(hubCtx)
	go reloadOnHangup(hubCtx, authn, log)
	// Uploads run until the server has drained: tusd's notification
	// channels must be read while any upload request is in flight.
	upsDone := make(chan error, 1)
	go func() { upsDone <- ups.Run(hubCtx) }()
	defer func() { stopHub(); <-upsDone }()
	if runner != nil {
		go runner.Run(hubCtx)
	}

	served := make(chan error, 1)
	go func() {
		if cfg.TLS() {
			served <- srv.ServeTLS(ln, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	log.Info("Listening", "addr", ln.Addr().String(), "broker", brokerName(cfg),
		"tls", cfg.TLS(), "h2c", cfg.HTTP.H2C, "demo", baseURL(cfg, ln.Addr())+"/")
	if ready != nil {
		ready <- ln.Addr()
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	drain(hub, srv, cfg.HTTP.DrainTimeout, log)
	cancelBase(errServerShutdown)
	<-served
	return nil
}

func baseURL(cfg *config.Config, addr net.Addr) string {
	if cfg.TLS() {
		return "https://" + addr.String()
	}
	return "http://" + addr.String()
}

// drain ends the node's streams spread over window, so their clients
// reconnect to other nodes a few at a time rather than all at once, then
// shuts the server down. Stream requests that arrive meanwhile get a retry
// hint and an immediate end (200, never 503: a non-200 answer closes a
// browser's EventSource for good).
func drain(hub *edge.Hub, srv *http.Server, window time.Duration, log *slog.Logger) {
	log.Info("Draining", "streams", hub.Metrics().OpenStreams(), "window", window)
	hub.Drain(window)
	deadline := time.Now().Add(window + time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for hub.Metrics().OpenStreams() > 0 && time.Now().Before(deadline) {
		<-tick.C
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("ShutdownIncomplete", "err", err)
	}
	log.Info("Drained", "streams", hub.Metrics().OpenStreams())
}

func protocols(cfg *config.Config) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if cfg.TLS() {
		p.SetHTTP2(true)
	}
	if cfg.HTTP.H2C {
		// Prior knowledge only: net/http serves an "Upgrade: h2c" request as
		// HTTP/1.1, which every client falls back to correctly.
		p.SetUnencryptedHTTP2(true)
	}
	return p
}

func streamConfig(cfg *config.Config) edge.StreamConfig {
	return edge.StreamConfig{
		Heartbeat:      cfg.SSE.Heartbeat,
		Retry:          cfg.SSE.Retry,
		RetryJitter:    cfg.SSE.RetryJitter,
		MaxLifetime:    cfg.SSE.MaxLifetime,
		LifetimeJitter: cfg.SSE.LifetimeJitter,
		WriteTimeout:   cfg.SSE.WriteTimeout,
		QueueSize:      cfg.SSE.QueueSize,
		BatchWindow:    cfg.SSE.BatchWindow,
	}
}

// newBackend picks the broker and the publish rate limiter: Redis when
// addresses are configured (shared by all nodes), else in-process (one node
// only).
func newBackend(cfg *config.Config, log *slog.Logger) (edge.Broker, limit.Limiter, redis.UniversalClient, func()) {
	if cfg.MemoryBroker() {
		b := edge.NewMemoryBroker(cfg.RetentionPolicy())
		return b, limit.NewMemoryLimiter(), nil, func() { b.Close() }
	}
	client := redis.NewUniversalClient(cfg.RedisOptions())
	b := edge.NewRedisBroker(client, edge.RedisOptions{
		Retention:      cfg.RetentionPolicy(),
		MetaTTL:        cfg.Retention.MetaTTL,
		IdempotencyTTL: cfg.Retention.IdempotencyTTL,
		Sharded:        cfg.Redis.ShardedPubSub,
		Logger:         log,
	})
	return b, limit.NewRedisLimiter(client, ""), client, func() { b.Close(); client.Close() }
}

func limits(cfg *config.Config) handlers.Limits {
	return handlers.Limits{
		StreamsPerUser: cfg.Limits.StreamsPerUser,
		StreamsPerIP:   cfg.Limits.StreamsPerIP,
		PublishRate:    cfg.Limits.PublishRate,
		PublishBurst:   cfg.Limits.PublishBurst,
		MaxHeaderBytes: cfg.HTTP.MaxHeaderBytes,
	}
}

// trustedProxies parses http.trusted_proxies (validated by config).
func trustedProxies(cfg *config.Config) []*net.IPNet {
	var out []*net.IPNet
	for _, cidr := range cfg.HTTP.TrustedProxies {
		if _, n, err := net.ParseCIDR(cidr); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func brokerName(cfg *config.Config) string {
	if cfg.MemoryBroker() {
		return "memory"
	}
	return "redis"
}

func newLogger(cfg *config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("node", cfg.Node.ID)
}
