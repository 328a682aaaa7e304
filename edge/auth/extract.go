package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// QueryParam is the query parameter a token may come in when
// Config.QueryToken is on. Access logs must pass URLs through RedactURL.
const QueryParam = "access_token"

// APIKeyHeader is the header an API key may come in, besides
// "Authorization: ApiKey <key>".
const APIKeyHeader = "X-API-Key"

// credential is what extract found: the raw secret and where it came from.
// Only src may ever be printed.
type credential struct {
	value  string
	src    source
	apiKey bool
}

// extract finds the request's one credential, in the order Authenticate
// documents.
func (a *Authenticator) extract(r *http.Request) (credential, error) {
	// Authorization schemes other than ours are skipped, not refused: a
	// staging site behind a proxy's Basic auth has the browser send
	// "Authorization: Basic" on every request, next to the cookie we want.
	var found []credential
	for _, h := range r.Header.Values("Authorization") {
		scheme, value, _ := strings.Cut(strings.TrimSpace(h), " ")
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			found = append(found, credential{value: value, src: srcBearer})
		case strings.EqualFold(scheme, "ApiKey"):
			found = append(found, credential{value: value, src: srcAPIKeyAuth, apiKey: true})
		}
	}
	if len(found) > 1 {
		// Two credentials could name two identities; picking one would make
		// the answer depend on header order through proxies.
		return credential{}, refuse(srcAuthz, reasonAmbiguous)
	}
	if len(found) == 1 {
		if found[0].value == "" {
			return credential{}, refuse(found[0].src, reasonEmpty)
		}
		return found[0], nil
	}
	if vs := r.Header.Values(APIKeyHeader); len(vs) > 0 {
		if len(vs) > 1 {
			return credential{}, refuse(srcAPIKeyHeader, reasonAmbiguous)
		}
		if v := strings.TrimSpace(vs[0]); v != "" {
			return credential{value: v, src: srcAPIKeyHeader, apiKey: true}, nil
		}
	}
	// Several cookies of the same name (different paths) are normal; the
	// browser sends the most specific first, and r.Cookie takes it.
	if c, err := r.Cookie(a.cfg.CookieName); err == nil && c.Value != "" {
		return credential{value: c.Value, src: srcCookie}, nil
	}
	if vs, ok := r.URL.Query()[QueryParam]; ok {
		if !a.cfg.QueryToken {
			return credential{}, fmt.Errorf("%w (the %s query parameter is turned off)", ErrNoCredentials, QueryParam)
		}
		if len(vs) > 1 {
			return credential{}, refuse(srcQuery, reasonAmbiguous)
		}
		if vs[0] != "" {
			return credential{value: vs[0], src: srcQuery}, nil
		}
	}
	return credential{}, ErrNoCredentials
}

// RedactURL returns u as a string with the value of the access_token query
// parameter replaced by "REDACTED", for access logs: a query token is a
// bearer credential, and logs are read by more people than the token's
// owner. Query parameters that do not parse are dropped rather than copied,
// since they could hold a mistyped token.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.RawQuery == "" && !u.ForceQuery {
		return u.String()
	}
	c := *u
	q := c.Query()
	if _, ok := q[QueryParam]; ok {
		q.Set(QueryParam, "REDACTED")
	}
	c.RawQuery = q.Encode()
	return c.String()
}
