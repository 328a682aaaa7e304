package handlers

import (
	"errors"
	"net/http"

	"github.com/edge-rt/edge/edge/auth"
	"github.com/labstack/echo/v4"
)

// principalKey is where authenticate leaves the request's Principal.
const principalKey = "edge.principal"

// authenticate resolves every request of the group to a Principal, or
// answers 401. Nothing of the credential reaches the answer or the logs:
// auth's errors name only its source and the reason.
func authenticate(a *auth.Authenticator, m *Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := a.Authenticate(c.Request())
			switch {
			case errors.Is(err, auth.ErrNoCredentials):
				m.authFailure("missing")
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="edge"`)
				return errorf(http.StatusUnauthorized, "unauthorized",
					"a token is required: Authorization: Bearer, the %s cookie, or the access_token parameter (%v)", a.CookieName(), err)
			case err != nil:
				m.authFailure("invalid")
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="edge", error="invalid_token"`)
				return errorf(http.StatusUnauthorized, "invalid_token", "%v", err)
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// principal returns the request's Principal, set by authenticate.
func principal(c echo.Context) *auth.Principal {
	p, _ := c.Get(principalKey).(*auth.Principal)
	return p
}

// forbidden refuses a topic the principal may not touch, naming it, so the
// app knows which of its topics is wrong.
func forbidden(action, topic string) *Error {
	return errorf(http.StatusForbidden, "forbidden", "not allowed to %s topic %q", action, topic)
}
