package auth

import (
	"errors"
	"fmt"
)

// ErrNoCredentials means the request carried no credential in any source
// Authenticate looks at. Handlers answer it with 401.
var ErrNoCredentials = errors.New("auth: no credentials")

// ErrInvalidToken means a credential was present and refused. Authenticate
// wraps it with where the credential came from and why it was refused, for
// example "auth: invalid token: token from query parameter: expired". The
// message never contains the credential itself, so it is safe to log and to
// send to the client. Handlers answer it with 401.
var ErrInvalidToken = errors.New("auth: invalid token")

// source names where a credential came from. It is what error messages show
// in place of the credential.
type source string

const (
	srcBearer       source = "token from authorization header"
	srcAPIKeyAuth   source = "api key from authorization header"
	srcAPIKeyHeader source = "api key from X-API-Key header"
	srcCookie       source = "token from cookie"
	srcQuery        source = "token from query parameter"
	srcAuthz        source = "authorization header"
)

// Refusal reasons. A small fixed set of words, never text derived from the
// token: the jwt library's own messages can quote decoded header or claim
// bytes, so they are mapped to these and dropped.
const (
	reasonMalformed     = "malformed"
	reasonTooLong       = "too long"
	reasonEmpty         = "empty"
	reasonAmbiguous     = "sent more than once"
	reasonExpired       = "expired"
	reasonNotYetValid   = "not yet valid"
	reasonBadSignature  = "bad signature"
	reasonWrongAudience = "wrong audience"
	reasonWrongIssuer   = "wrong issuer"
	reasonUnknownKID    = "unknown key id"
	reasonAlgorithm     = "algorithm not allowed"
	reasonMissingExp    = "exp claim missing"
	reasonMissingSub    = "sub claim missing"
	reasonBadIdentity   = "sub or org is not " + identityRule
	reasonBadClaims     = "invalid claims"
	reasonUnknownAPIKey = "unknown key"
)

// refuse builds the error for a refused credential.
func refuse(src source, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidToken, src, reason)
}
