// The publishing side of the HTTP API, through fetch.

/**
 * postEvent POSTs body ({type, data, ephemeral}) to topic's events on the
 * node at baseURL and returns {status, body} (body parsed when JSON).
 */
export async function postEvent(baseURL, topic, body, headers = {}) {
  const res = await fetch(`${baseURL}/v1/topics/${topicSegment(topic)}/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
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

/**
 * publish publishes one stored event and returns the 201 body {topic, seq,
 * id}; any other answer throws with it.
 */
export async function publish(baseURL, topic, data, { type = 'message' } = {}) {
  const { status, body } = await postEvent(baseURL, topic, { type, data });
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
 */
export async function probe(baseURL, topic, nonce) {
  const { status, body } = await postEvent(baseURL, topic, {
    type: 'probe',
    data: { probe: nonce, topic },
    ephemeral: true,
  });
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

/** streamPath returns /v1/stream?topic=..&topic=.. (plus extra query). */
export function streamPath(topics, extra = {}) {
  const q = new URLSearchParams();
  for (const t of topics) q.append('topic', t);
  for (const [k, v] of Object.entries(extra)) q.append(k, v);
  return `/v1/stream?${q}`;
}
