package handlers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/edge-rt/edge/edge"
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
}

// New returns the echo instance with every route of Edge.
func New(d Deps) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = ErrorHandler(d.Logger)
	// No Timeout, ContextTimeout, BodyDump or Gzip middleware: they buffer
	// or cut streams (see FIELD-NOTES).
	e.Use(middleware.Recover())
	e.Use(requestLog(d.Logger))

	stream := &Stream{Hub: d.Hub, Config: d.Stream, MaxTopics: d.MaxTopics, Compression: d.Compression}
	topics := &Topics{Broker: d.Hub.Broker(), Metrics: d.Hub.Metrics(), MaxBodyBytes: d.MaxBodyBytes, MaxEventBytes: d.MaxEventBytes}
	op := &Operate{Hub: d.Hub, NodeID: d.NodeID}

	e.GET("/v1/stream", stream.Serve)
	e.POST("/v1/topics/:topic/events", topics.Publish)
	e.GET("/v1/topics/:topic/events", topics.History)
	e.GET("/v1/stats", op.Stats)
	e.GET("/healthz", op.Healthz)
	e.GET("/readyz", op.Readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	e.GET("/*", echo.WrapHandler(http.FileServerFS(static.Files)))
	return e
}

// requestLog logs each request once it ends. It logs the path without the
// query string: a query may carry an access token.
func requestLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			r := c.Request()
			log.Info("Request", "method", r.Method, "path", r.URL.Path, "proto", r.Proto,
				"status", c.Response().Status, "bytes", c.Response().Size, "duration", time.Since(start).Round(time.Microsecond))
			return nil
		}
	}
}
