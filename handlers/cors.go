package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// The one CORS layer of the server: tusd's own CORS handling is turned off
// (its default allows every origin and its pattern is not anchored), so
// these lists carry the tus headers too.
var (
	corsAllowHeaders = []string{
		"Authorization", "Content-Type", "Last-Event-ID", "Idempotency-Key", "X-API-Key",
		"Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata",
		"Upload-Defer-Length", "Upload-Concat", "X-HTTP-Method-Override", "X-Requested-With",
	}
	corsExposeHeaders = []string{
		"Retry-After", "Location", "Tus-Resumable", "Tus-Version", "Tus-Max-Size",
		"Tus-Extension", "Upload-Offset", "Upload-Length", "Upload-Metadata",
		"Upload-Defer-Length", "Upload-Concat",
	}
)

// cors returns the CORS middleware for an allowlist of origins: exact
// ("https://app.example.com"), a subdomain wildcard ("https://*.example.com",
// which matches one or more labels but not the bare domain), or "*" for any.
// Credentials are allowed so that cookie authentication works cross-origin;
// the allowed origin is echoed back, never "*". An empty list means
// same-origin only: no CORS headers at all.
func cors(origins []string) echo.MiddlewareFunc {
	if len(origins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) { return originAllowed(origins, origin), nil },
		AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch,
			http.MethodDelete, http.MethodOptions},
		AllowHeaders:     corsAllowHeaders,
		ExposeHeaders:    corsExposeHeaders,
		AllowCredentials: true,
		MaxAge:           600,
	})
}

func originAllowed(allowed []string, origin string) bool {
	origin = strings.ToLower(origin)
	for _, a := range allowed {
		a = strings.ToLower(a)
		switch {
		case a == "*" || a == origin:
			return true
		case strings.Contains(a, "://*."):
			scheme, domain, _ := strings.Cut(a, "://*.")
			rest, ok := strings.CutPrefix(origin, scheme+"://")
			// At least one label before the domain, and the match ends at
			// a label boundary: evil-example.com must not pass.
			if ok && strings.HasSuffix(rest, "."+domain) && len(rest) > len(domain)+1 {
				return true
			}
		}
	}
	return false
}
