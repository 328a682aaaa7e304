// Package handlers holds Edge's thin echo handlers: they parse a request,
// call the core, and map its errors to HTTP. They know nothing of Redis.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/edge-rt/edge/edge"
	"github.com/labstack/echo/v4"
)

// Error is an error that carries its HTTP answer. Every error reply has the
// body {"error":{"code":..,"message":..}}, written in one place: ErrorHandler.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errorf returns an *Error with a formatted message.
func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// ErrorHandler is echo's HTTPErrorHandler for Edge: it turns any error into
// the JSON error body with the right status, and never leaks internals.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := toError(err)
		var ra *retryAfterError
		if errors.As(err, &ra) {
			c.Response().Header().Set("Retry-After", retryAfterSeconds(ra.after))
		}
		if e.Status >= 500 {
			log.Error("RequestFailed", "method", c.Request().Method, "path", c.Path(), "status", e.Status, "err", err)
		}
		var body errorBody
		body.Error.Code, body.Error.Message = e.Code, e.Message
		if c.Request().Method == http.MethodHead {
			c.NoContent(e.Status)
			return
		}
		c.JSON(e.Status, body)
	}
}

func toError(err error) *Error {
	var e *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, edge.ErrInvalidTopic):
		return errorf(http.StatusBadRequest, "invalid_topic", "%v", err)
	case errors.Is(err, edge.ErrInvalidEvent):
		return errorf(http.StatusBadRequest, "invalid_event", "%v", err)
	case errors.Is(err, edge.ErrUnavailable), errors.Is(err, edge.ErrClosed):
		return errorf(http.StatusServiceUnavailable, "broker_unavailable", "the event broker cannot be reached; retry with the same Idempotency-Key")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, "timeout", "the request timed out; retry with the same Idempotency-Key")
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		return &Error{Status: he.Code, Code: codeFor(he.Code), Message: msg}
	}
	return errorf(http.StatusInternalServerError, "internal", "internal error")
}

func codeFor(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_request"
}
