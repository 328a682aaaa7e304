// The publishing side of the HTTP API, through fetch, and stream URLs.
//
// Every /v1 request needs a credential. Publishes send the token as
// `Authorization: Bearer`; stream URLs carry it as access_token, the way
// browsers' EventSource (which cannot send headers) does. Both default to
// e2eToken() (token.mjs); pass token: null to send none.

import { e2eToken } from './token.mjs';

/**
 * postEvent POSTs body ({type, data, ephemeral}) to topic's events on the
 * node at baseURL, with token as Bearer, and returns {status, body} (body
 * parsed when JSON).
 */
export async function postEvent(baseURL, topic, body, headers = {}, { token = e2eToken() } = {}) {
  const res = await fetch(`${baseURL}/v1/topics/${topicSegment(topic)}/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...bearer(token), ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed };
}

/** bearer returns the Authorization header for token, none for null. */
export function bearer(token = e2eToken()) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * publish publishes one stored event and returns the 201 body {topic, seq,
 * id}; any other answer throws with it.
 */
export async function publish(baseURL, topic, data, { type = 'message', token } = {}) {
  const { status, body } = await postEvent(baseURL, topic, { type, data }, {}, { token });
  if (status !== 201) {
    throw new Error(`publish to ${topic} on ${baseURL}: HTTP ${status}: ${JSON.stringify(body)}`);
  }
  if (body.topic !== topic || !Number.isInteger(body.seq) || body.seq < 1 || typeof body.id !== 'string') {
    throw new Error(`publish to ${topic}: unexpected answer ${JSON.stringify(body)}`);
  }
  return body;
}

/**
 * probe publishes an ephemeral event of type "probe" (no sequence, no
 * history): it reaches only subscriptions live at that moment, so seeing it
 * proves a stream is live without adding to the stored events a test counts.
 * type changes the event type, for a client that shows only "message".
 */
export async function probe(baseURL, topic, nonce, { type = 'probe', token } = {}) {
  const { status, body } = await postEvent(
    baseURL,
    topic,
    { type, data: { probe: nonce, topic }, ephemeral: true },
    {},
    { token },
  );
  if (status < 200 || status > 299) {
    throw new Error(`ephemeral publish to ${topic}: HTTP ${status}: ${JSON.stringify(body)}`);
  }
}

/** uniqueTopics returns n fresh, namespaced topic names for one test. */
export function uniqueTopics(prefix, n) {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  return Array.from({ length: n }, (_, i) => `e2e:${prefix}:${run}:${String.fromCharCode(97 + i)}`);
}

/**
 * topicSegment escapes a topic name for a URL path as Go's url.PathEscape
 * does: ":" is a legal path character and stays. The percent-encoded form
 * (encodeURIComponent) has a test of its own, topic-names.test.mjs.
 */
export function topicSegment(topic) {
  return encodeURIComponent(topic).replace(/%3A/gi, ':');
}

/**
 * streamPath returns /v1/stream?topic=..&topic=.. (plus extra query), with
 * token as access_token last (none for token: null).
 */
export function streamPath(topics, extra = {}, { token = e2eToken() } = {}) {
  const q = new URLSearchParams();
  for (const t of topics) q.append('topic', t);
  for (const [k, v] of Object.entries(extra)) q.append(k, v);
  if (token) q.append('access_token', token);
  return `/v1/stream?${q}`;
}
