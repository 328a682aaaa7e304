// Tokens for the tests: HS256 JWTs minted with node's crypto, as an
// identity provider would, and signed with the secret the harness gives
// every bin/edge it starts (EDGE_AUTH_HMAC_SECRETS). No dev mode: a server
// with a known secret accepts exactly the tokens a test mints.

import { createHmac } from 'node:crypto';

/**
 * testSecret is the HS256 secret of every node the harness starts (at least
 * 32 bytes, as the server requires). It guards nothing but throwaway
 * loopback servers.
 */
export const testSecret = 'e2e-only-hs256-secret-not-for-production-0001';

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * mintToken returns a signed JWT.
 *   sub        the sub claim ([A-Za-z0-9._-]{1,64}, no '@'); default "e2e"
 *   org        the optional org claim
 *   subscribe, publish   topic patterns of the `edge` claim ("*" is any run)
 *   ttl        seconds from now to exp (default 3600), or
 *   exp        exp itself, unix seconds (exp is required by the server)
 *   claims     more payload, merged last (overrides anything above)
 *   secret     the HS256 secret; default testSecret
 */
export function mintToken({ sub = 'e2e', org, subscribe, publish, ttl = 3600, exp, claims = {}, secret = testSecret } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub, iat: now, exp: exp ?? now + ttl };
  if (org !== undefined) payload.org = org;
  if (subscribe || publish) {
    payload.edge = {};
    if (subscribe) payload.edge.subscribe = subscribe;
    if (publish) payload.edge.publish = publish;
  }
  Object.assign(payload, claims);
  const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  const signature = createHmac('sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

/** decodeClaims returns a token's payload (unverified), e.g. to read its exp. */
export function decodeClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

let defaultToken;

/**
 * e2eToken is the token of the suite's ordinary client, for tests about
 * something other than access: sub "e2e", subscribe and publish on every
 * topic uniqueTopics makes ("e2e:*"), valid for an hour (a test file is one
 * process and lasts minutes). Minted once per process, so a stream URL that
 * carries it stays the same across the client's own reconnects.
 */
export function e2eToken() {
  defaultToken ??= mintToken({ sub: 'e2e', subscribe: ['e2e:*'], publish: ['e2e:*'], ttl: 3600 });
  return defaultToken;
}

/**
 * redact replaces the value of an access_token query parameter in a URL
 * (or any text) with REDACTED, for failure reports: the server keeps query
 * tokens out of its logs, and the suite keeps them out of its own output.
 */
export function redact(text) {
  return String(text).replace(/([?&]access_token=)[^&\s"']*/g, '$1REDACTED');
}
