package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/uploads"
	"github.com/labstack/echo/v4"
)

// Operate serves the operator endpoints: health, readiness and stats.
type Operate struct {
	Hub    *edge.Hub
	NodeID string
	// Uploads adds the upload service's figures to the stats; may be nil.
	Uploads *uploads.Service
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
	Uploads *uploadStats `json:"uploads,omitempty"`
}

// uploadStats are the upload counters /metrics carries, as /v1/stats
// shows them (DESIGN: the same headline figures).
type uploadStats struct {
	Created           uint64            `json:"created"`
	Completed         uint64            `json:"completed"`
	Failed            uint64            `json:"failed"`
	Expired           uint64            `json:"expired"`
	Quarantined       uint64            `json:"quarantined"`
	Recovered         uint64            `json:"recovered"`
	BytesReceived     uint64            `json:"bytesReceived"`
	HashFallbackBytes uint64            `json:"hashFallbackBytes"`
	Refusals          map[string]uint64 `json:"refusals"`
}

// Stats serves the node's headline figures as JSON.
func (h *Operate) Stats(c echo.Context) error {
	out := statsResponse{Node: h.NodeID, Stats: h.Hub.Metrics().Stats(h.Hub.TopicCount())}
	if h.Uploads != nil {
		m := h.Uploads.Metrics().Snapshot()
		out.Uploads = &uploadStats{
			Created: m.Created, Completed: m.Completed, Failed: m.Failed, Expired: m.Expired,
			Quarantined: m.Quarantined, Recovered: m.Recovered,
			BytesReceived: m.BytesReceived, HashFallbackBytes: m.HashFallbackBytes, Refusals: m.Refusals,
		}
	}
	return c.JSON(http.StatusOK, out)
}
