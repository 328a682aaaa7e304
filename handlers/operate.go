package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/labstack/echo/v4"
)

// Operate serves the operator endpoints: health, readiness and stats.
type Operate struct {
	Hub    *edge.Hub
	NodeID string
}

// Healthz answers 200 while the process serves requests.
func (h *Operate) Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz answers 200 when the broker is reachable and the node is not
// draining, so load balancers send new streams elsewhere during a drain.
func (h *Operate) Readyz(c echo.Context) error {
	if h.Hub.Draining() {
		return errorf(http.StatusServiceUnavailable, "draining", "this node is shutting down")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.Hub.Broker().Ping(ctx); err != nil {
		return errorf(http.StatusServiceUnavailable, "broker_unavailable", "the event broker cannot be reached")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

type statsResponse struct {
	Node string `json:"node"`
	edge.Stats
}

// Stats serves the node's headline figures as JSON.
func (h *Operate) Stats(c echo.Context) error {
	return c.JSON(http.StatusOK, statsResponse{Node: h.NodeID, Stats: h.Hub.Metrics().Stats(h.Hub.TopicCount())})
}
