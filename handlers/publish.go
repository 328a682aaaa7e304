package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/edge-rt/edge/edge"
	"github.com/labstack/echo/v4"
)

// Topics serves publishing to and reading the history of one topic.
type Topics struct {
	Broker  edge.Broker
	Metrics *edge.Metrics
	// MaxBodyBytes bounds a publish request's body.
	MaxBodyBytes int64
	// MaxEventBytes bounds the published data.
	MaxEventBytes int

	limits  *limiter
	refused *Metrics
}

type publishRequest struct {
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	Ephemeral bool            `json:"ephemeral"`
}

type publishResponse struct {
	Topic     string `json:"topic"`
	Seq       uint64 `json:"seq,omitempty"`
	ID        string `json:"id,omitempty"`
	Ephemeral bool   `json:"ephemeral,omitempty"`
}

// Publish handles POST /v1/topics/{topic}/events. A stored event is
// answered 201 with its sequence and the SSE id a stream of that topic alone
// would give it; a retry with the same Idempotency-Key is answered 200 with
// the first result. An ephemeral event is answered 202: it has no position.
func (h *Topics) Publish(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	p := principal(c)
	if !p.CanPublish(topic) {
		return forbidden("publish to", topic)
	}
	if err := h.limits.allowPublish(c, p); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, h.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.refused.refused(limitBodySize)
			return err
		}
		return errorf(http.StatusBadRequest, "bad_body", "reading the body: %v", err)
	}
	var req publishRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "malformed_json", "body must be {\"type\":..,\"data\":..,\"ephemeral\":..}: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "malformed_json", "body holds more than one JSON value")
	}
	if len(req.Data) == 0 {
		return errorf(http.StatusBadRequest, "missing_data", "the event needs a \"data\" field")
	}
	if len(req.Data) > h.MaxEventBytes {
		h.refused.refused(limitEventSize)
		return errorf(http.StatusRequestEntityTooLarge, "event_too_large", "event data is %d bytes, the limit is %d", len(req.Data), h.MaxEventBytes)
	}
	res, err := h.Broker.Publish(c.Request().Context(), edge.Publication{
		Topic:          topic,
		Type:           req.Type,
		Data:           req.Data,
		Ephemeral:      req.Ephemeral,
		IdempotencyKey: c.Request().Header.Get("Idempotency-Key"),
	})
	if err != nil {
		return err
	}
	if req.Ephemeral {
		h.Metrics.Published(1)
		return c.JSON(http.StatusAccepted, publishResponse{Topic: topic, Ephemeral: true})
	}
	out := publishResponse{Topic: topic, Seq: res.Seq, ID: edge.TopicCursor(topic, res.Position)}
	if res.Duplicate {
		return c.JSON(http.StatusOK, out)
	}
	h.Metrics.Published(1)
	return c.JSON(http.StatusCreated, out)
}

type historyEvent struct {
	Seq  uint64          `json:"seq"`
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	TS   int64           `json:"ts"`
}

type historyResponse struct {
	Topic  string         `json:"topic"`
	Epoch  string         `json:"epoch"`
	Head   uint64         `json:"head"`
	Events []historyEvent `json:"events"`
}

// maxHistoryLimit is the largest page GET .../events returns.
const maxHistoryLimit = 1000

// History handles GET /v1/topics/{topic}/events?after=<seq>&limit=<n>:
// stored events with a sequence above after (default 0), oldest first, at
// most limit (default 100, at most 1000).
func (h *Topics) History(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	// Reading history is following the topic, after the fact.
	if !principal(c).CanSubscribe(topic) {
		return forbidden("read the history of", topic)
	}
	after, err := queryUint(c, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryUint(c, "limit", 100)
	if err != nil {
		return err
	}
	if limit == 0 || limit > maxHistoryLimit {
		return errorf(http.StatusBadRequest, "invalid_limit", "limit must be between 1 and %d", maxHistoryLimit)
	}
	page, err := h.Broker.History(c.Request().Context(), topic, after, int(limit))
	if err != nil {
		return err
	}
	out := historyResponse{Topic: topic, Epoch: page.Head.Epoch, Head: page.Head.Seq, Events: make([]historyEvent, 0, len(page.Events))}
	for _, ev := range page.Events {
		typ := ev.Type
		if typ == "" {
			typ = "message"
		}
		out.Events = append(out.Events, historyEvent{
			Seq: ev.Seq, ID: edge.TopicCursor(topic, edge.Position{Epoch: ev.Epoch, Seq: ev.Seq}),
			Type: typ, Data: ev.Data, TS: ev.Time,
		})
	}
	return c.JSON(http.StatusOK, out)
}

func queryUint(c echo.Context, name string, def uint64) (uint64, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "invalid_"+name, "%s must be a non-negative integer", name)
	}
	return v, nil
}

// topicParam returns the path's topic, unescaped: browsers encode the ":"
// of namespaced topics (encodeURIComponent("room:42") is "room%3A42"), and
// echo hands path parameters over raw.
func topicParam(c echo.Context) (string, error) {
	topic, err := url.PathUnescape(c.Param("topic"))
	if err != nil || !edge.ValidTopic(topic) {
		return "", invalidTopic(c.Param("topic"))
	}
	return topic, nil
}

func invalidTopic(topic string) *Error {
	return errorf(http.StatusBadRequest, "invalid_topic", "topic %q does not match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", topic)
}
