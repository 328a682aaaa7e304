// Matching what a client received against what was published.

import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';

/**
 * parseEnvelope reads an event's data as Edge's envelope
 * {"topic":..,"data":..,"ts":..}; it returns null for data that is not one.
 */
export function parseEnvelope(data) {
  try {
    const m = JSON.parse(data);
    return m && typeof m === 'object' && typeof m.topic === 'string' ? m : null;
  } catch {
    return null;
  }
}

/**
 * matches tells whether event e ({type, data}) fits matcher m ({type, topic,
 * key, value}): same type, an envelope of topic m.topic whose data[m.key] is
 * m.value.
 */
export function matches(e, m) {
  if (e.type !== m.type) return false;
  const env = parseEnvelope(e.data);
  return !!env && env.topic === m.topic && env.data != null && env.data[m.key] === m.value;
}

/**
 * assertExactDelivery checks that the "message" events received are exactly
 * the published ones: per topic the same payloads in the same order, none
 * missing, none twice, nothing from elsewhere. Order across topics is not
 * part of the contract (replay goes topic by topic), so it is not compared.
 * Each received stored event must also carry an id and a numeric ts.
 */
export function assertExactDelivery(received, published, topics) {
  const messages = received.filter((e) => e.type === 'message');
  const got = Object.fromEntries(topics.map((t) => [t, []]));
  for (const e of messages) {
    const env = parseEnvelope(e.data);
    assert.ok(env, `received data that is not an envelope: ${e.data}`);
    assert.ok(env.topic in got, `received an event of a topic not subscribed: ${e.data}`);
    assert.equal(typeof env.ts, 'number', `event without a numeric ts: ${e.data}`);
    assert.ok(e.id, `stored event without an id: ${e.data}`);
    got[env.topic].push(env.data);
  }
  const want = Object.fromEntries(topics.map((t) => [t, []]));
  for (const p of published) want[p.topic].push(p.data);
  for (const t of topics) {
    const g = got[t];
    const w = want[t];
    if (!isDeepStrictEqual(g, w)) {
      assert.fail(
        `topic ${t}: received ${g.length} events, published ${w.length}\n` +
          `  missing: ${JSON.stringify(w.filter((x) => !g.some((y) => isDeepStrictEqual(x, y))).map(label))}\n` +
          `  duplicated: ${JSON.stringify(dupes(g).map(label))}\n` +
          `  received order: ${JSON.stringify(g.map(label))}`,
      );
    }
  }
  assert.equal(messages.length, published.length);
}

function label(d) {
  return d && typeof d === 'object' && 'n' in d ? d.n : d;
}

function dupes(list) {
  const seen = new Set();
  const out = [];
  for (const x of list) {
    const k = JSON.stringify(x);
    if (seen.has(k)) out.push(x);
    seen.add(k);
  }
  return out;
}
