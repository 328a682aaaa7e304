package handlers

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/auth"
	"github.com/edge-rt/edge/edge/limit"
	"github.com/edge-rt/edge/static"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Deps is what the routes need.
type Deps struct {
	Hub           *edge.Hub
	Stream        edge.StreamConfig
	MaxTopics     int
	Compression   []string
	MaxBodyBytes  int64
	MaxEventBytes int
	NodeID        string
	Registry      *prometheus.Registry
	Logger        *slog.Logger
	// Auth authenticates every /v1 request but /v1/stats.
	Auth *auth.Authenticator
	// Limits are the abuse limits; RateLimiter enforces the publish rate
	// (Redis's across nodes, or in memory for one node).
	Limits      Limits
	RateLimiter limit.Limiter
	// CORSOrigins is the allowlist of cross-origin callers.
	CORSOrigins []string
	// TrustedProxies are CIDRs whose X-Forwarded-For names the client.
	TrustedProxies []*net.IPNet
	// Uploads is the tus endpoint.
	Uploads *Uploads
}

// New returns the echo instance with every route of Edge.
func New(d Deps) (*echo.Echo, error) {
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = ErrorHandler(d.Logger)
	e.IPExtractor = ipExtractor(d.TrustedProxies)
	// No Timeout, ContextTimeout, BodyDump or Gzip middleware: they buffer
	// or cut streams (see FIELD-NOTES).
	e.Use(middleware.Recover())
	e.Use(requestLog(d.Logger))
	e.Use(limitHeaders(d.Limits.MaxHeaderBytes, metrics))
	// One CORS layer for the whole server (the tus routes included), before
	// authentication: a preflight carries no credentials.
	e.Use(cors(d.CORSOrigins))

	lim := &limiter{Limits: d.Limits, rate: d.RateLimiter, streams: limit.NewCounter(), metrics: metrics}
	stream := &Stream{Hub: d.Hub, Config: d.Stream, MaxTopics: d.MaxTopics, Compression: d.Compression, limits: lim, metrics: metrics, leeway: d.Auth.Leeway()}
	topics := &Topics{Broker: d.Hub.Broker(), Metrics: d.Hub.Metrics(), MaxBodyBytes: d.MaxBodyBytes, MaxEventBytes: d.MaxEventBytes, limits: lim, refused: metrics}
	op := &Operate{Hub: d.Hub, NodeID: d.NodeID}
	if d.Uploads != nil {
		op.Uploads = d.Uploads.Service
	}

	v1 := e.Group("/v1", authenticate(d.Auth, metrics))
	v1.GET("/stream", stream.Serve)
	v1.POST("/topics/:topic/events", topics.Publish)
	v1.GET("/topics/:topic/events", topics.History)
	d.Uploads.register(v1)
	// Operator endpoints carry no user data and are scraped by machines
	// without tokens; keep them off the public listener's path in
	// production (see README).
	e.GET("/v1/stats", op.Stats)
	e.GET("/healthz", op.Healthz)
	e.GET("/readyz", op.Readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	e.GET("/*", echo.WrapHandler(http.FileServerFS(static.Files)))
	return e, nil
}

// ipExtractor reads the client address from X-Forwarded-For only when the
// peer is a trusted proxy; otherwise the peer is the client, so nobody can
// dodge the per-address limit with a made-up header.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// requestLog logs each request once it ends, its URL through
// auth.RedactURL: a query may carry an access token.
func requestLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			r := c.Request()
			log.Info("Request", "method", r.Method, "url", auth.RedactURL(r.URL), "proto", r.Proto,
				"status", c.Response().Status, "bytes", c.Response().Size, "duration", time.Since(start).Round(time.Microsecond))
			return nil
		}
	}
}
