package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/edge-rt/edge/edge/uploads"
	"github.com/labstack/echo/v4"
)

// Uploads mounts the tus service under /v1/uploads/, behind the same
// authentication as every /v1 route. tusd runs no hook on HEAD, PATCH, GET
// or DELETE, so ownership is checked here, before tusd sees the request:
// an upload belongs to its creator, and anyone else gets 404, as if it did
// not exist.
type Uploads struct {
	Service *uploads.Service
	// BasePath is the public prefix, "/v1/uploads/".
	BasePath string
}

func (u *Uploads) register(g *echo.Group) {
	tus := echo.WrapHandler(http.StripPrefix(u.BasePath, tusJSONErrors(u.Service.Handler())))
	g.GET("/uploads/:id/text", u.text, u.owned)
	// Body limits and decompression stay off these routes: tus bodies are
	// large and their bytes count exactly.
	g.Any("/uploads/", tus, u.owned)
	g.Any("/uploads/*", tus, u.owned)
}

// owned puts the caller in the request's context, for tusd's creation hook,
// and refuses access to uploads the caller did not create, including as a
// part of a concatenation.
func (u *Uploads) owned(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principal(c)
		if p.Subject == "" || p.APIKey != "" {
			return errorf(http.StatusForbidden, "forbidden", "uploads need a user token")
		}
		r := c.Request()
		c.SetRequest(r.WithContext(uploads.WithOwner(r.Context(), p.Subject)))
		ids := []string{}
		if id := uploadID(r.URL.Path, u.BasePath); id != "" {
			ids = append(ids, id)
		}
		if concat := r.Header.Get("Upload-Concat"); strings.HasPrefix(concat, "final;") {
			for _, part := range strings.Fields(strings.TrimPrefix(concat, "final;")) {
				if id := uploadID(partPath(part), u.BasePath); id != "" {
					ids = append(ids, id)
				}
			}
		}
		for _, id := range ids {
			owner, err := u.Service.Owner(r.Context(), id)
			if errors.Is(err, uploads.ErrNotFound) || (err == nil && owner != p.Subject) {
				return errorf(http.StatusNotFound, "not_found", "no upload %q", id)
			}
			if err != nil {
				return err
			}
		}
		return next(c)
	}
}

// text serves the OCR text of a processed upload.
func (u *Uploads) text(c echo.Context) error {
	text, err := u.Service.Text(c.Request().Context(), c.Param("id"))
	switch {
	case errors.Is(err, uploads.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "no upload %q", c.Param("id"))
	case errors.Is(err, uploads.ErrNotProcessed):
		return errorf(http.StatusNotFound, "not_processed", "upload %q has no text (not processed, or not an image or PDF)", c.Param("id"))
	case err != nil:
		return err
	}
	return c.String(http.StatusOK, text)
}

// uploadID returns the upload id of a path under base ("" for the
// collection itself).
func uploadID(p, base string) string {
	rest, ok := strings.CutPrefix(path.Clean(p)+"/", strings.TrimSuffix(base, "/")+"/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// partPath returns the path of a partial upload's URL in Upload-Concat,
// which may be absolute or a path.
func partPath(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Path
	}
	return s
}
