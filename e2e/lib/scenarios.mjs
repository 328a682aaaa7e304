// The resume scenarios, written once and run by each kind of client (npm
// eventsource, Chromium). A client factory is
//   open(h, baseURL, path) -> client
// where client has snapshot(), waitForOpens(), waitForData() and report()
// (see client-node.mjs and client-browser.mjs).

import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { probe, publish, streamPath, uniqueTopics } from './api.mjs';
import { assertExactDelivery } from './check.mjs';
import { freePort } from './harness.mjs';

/**
 * syncLive returns once client's stream delivers live events on every topic:
 * it publishes ephemeral probes (which no history holds and no cursor counts)
 * until one arrived on each topic. Before that, an event published could
 * legitimately be missed by a stream that had no cursor yet. type is the
 * probes' event type ("probe"; "message" for a page that shows no other).
 */
export async function syncLive(client, baseURL, topics, timeout = 15_000, { type = 'probe' } = {}) {
  const nonce = `p${Math.random().toString(36).slice(2)}`;
  const matchers = topics.map((topic) => ({ type, topic, key: 'probe', value: nonce }));
  const deadline = Date.now() + timeout;
  for (;;) {
    await Promise.all(topics.map((t) => probe(baseURL, t, nonce, { type })));
    try {
      await client.waitForData(matchers, 300);
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`stream never delivered live probes on ${topics.join(', ')} within ${timeout} ms: ${err.message}`);
      }
    }
  }
}

/** Publisher publishes numbered events and remembers them in order. */
export class Publisher {
  constructor(topics) {
    this.topics = topics;
    this.published = [];
    this.n = 0;
  }

  /** next publishes event number n to the next topic in turn, through node. */
  async next(node) {
    const n = this.n++;
    const topic = this.topics[n % this.topics.length];
    // Payloads vary in shape so the comparison is of real JSON, not a counter.
    const data = { n, topic, via: node.name, text: `event ${n}\nwith a line break`, list: [n, n * 2] };
    const res = await publish(node.url, topic, data);
    this.published.push({ topic, data, seq: res.seq, id: res.id });
    return data;
  }

  async batch(node, count) {
    const start = this.published.length;
    for (let i = 0; i < count; i++) await this.next(node);
    return this.published.slice(start);
  }

  /** matchers for waitForData: the given published events. */
  static matchers(list) {
    return list.map((p) => ({ type: 'message', topic: p.topic, key: 'n', value: p.data.n }));
  }

  /** lastPerTopic returns matchers for the newest published event of each topic. */
  lastPerTopic() {
    return this.topics.map((topic) => {
      const last = this.published.findLast((p) => p.topic === topic);
      return { type: 'message', topic, key: 'n', value: last.data.n };
    });
  }
}

/**
 * assertResumed checks, for a client that records its connection attempts,
 * that every reconnection sent a Last-Event-ID (where the client can see
 * it) and, for a client that records which connection brought each event,
 * that it was the id of the last stored event received before it.
 */
export function assertResumed(snap) {
  const conns = snap.conns ?? [];
  for (let i = 1; i < conns.length; i++) {
    if (conns[i].lastEventId === undefined) continue; // not known (a failed attempt in a browser)
    assert.ok(conns[i].lastEventId, `reconnection ${i + 1} sent no Last-Event-ID: ${JSON.stringify(conns)}`);
    const before = snap.events.filter((e) => e.conn !== undefined && e.conn <= i && e.id);
    if (before.length > 0) {
      assert.equal(
        conns[i].lastEventId,
        before.at(-1).id,
        `reconnection ${i + 1} did not resume from the last id it had received`,
      );
    }
  }
}

/**
 * lifetime: the server ends the stream after EDGE_SSE_MAX_LIFETIME (2s +
 * up to 500ms jitter) while events keep being published to two topics; the
 * client reconnects by itself after `retry:` with Last-Event-ID, and in the
 * end holds exactly the published events, in order per topic.
 */
export async function lifetimeScenario(h, open) {
  const topics = uniqueTopics('life', 2);
  const node = await h.edge({
    env: {
      EDGE_SSE_MAX_LIFETIME: '2s',
      EDGE_SSE_LIFETIME_JITTER: '500ms',
      EDGE_SSE_RETRY: '200ms',
      EDGE_SSE_RETRY_JITTER: '50ms',
      EDGE_SSE_HEARTBEAT: '1s',
    },
  });
  const client = await open(h, node.url, streamPath(topics));
  h.report = () => client.report();
  await client.waitForOpens(1, 10_000);
  await syncLive(client, node.url, topics);

  // Publish at a steady pace until the server has ended the stream at least
  // twice (three opens) and at least 40 events went out. The pause paces the
  // load so that events land inside reconnect gaps; it synchronises nothing.
  const pub = new Publisher(topics);
  const deadline = Date.now() + 30_000;
  while ((await client.snapshot()).opens < 3 || pub.n < 40) {
    if (Date.now() > deadline) {
      const s = await client.snapshot();
      assert.fail(`after 30 s and ${pub.n} events the client opened only ${s.opens} times: the server did not end streams at max lifetime, or the client did not reconnect`);
    }
    await pub.next(node);
    await delay(40);
  }
  // Once the newest event of each topic arrived, every earlier one (or its
  // duplicate) has too: delivery is in order per topic.
  await client.waitForData(pub.lastPerTopic(), 15_000);

  const snap = await client.snapshot();
  assertExactDelivery(snap.events, pub.published, topics);
  assert.ok(snap.opens >= 3, `expected at least 2 reconnects, saw ${snap.opens} opens`);
  assertResumed(snap);
  return { snap, published: pub.published };
}

/**
 * restart: two nodes share one Redis. The client follows node A; A is killed
 * (signal), events are published through node B while A is down, A comes
 * back on the same port, the client reconnects by itself and must get B's
 * events replayed from Redis, then live events through the new A.
 */
export async function restartScenario(h, open, { signal }) {
  const topics = uniqueTopics('restart', 2);
  const redis = await h.redis();
  const env = {
    EDGE_REDIS_ADDRS: redis.addr,
    EDGE_SSE_RETRY: '200ms',
    EDGE_SSE_RETRY_JITTER: '50ms',
    EDGE_SSE_HEARTBEAT: '1s',
    // Long enough that only the restart ends the stream.
    EDGE_SSE_MAX_LIFETIME: '10m',
    EDGE_SSE_LIFETIME_JITTER: '1s',
    // A short drain keeps the SIGTERM case quick (default 10s).
    EDGE_HTTP_DRAIN_TIMEOUT: '2s',
  };
  const portA = await freePort();
  const a1 = await h.edge({ port: portA, name: 'edge-a', env });
  const b = await h.edge({ name: 'edge-b', env });
  const client = await open(h, a1.url, streamPath(topics));
  h.report = () => client.report();
  await client.waitForOpens(1, 10_000);
  await syncLive(client, a1.url, topics);

  const pub = new Publisher(topics);
  const before = await pub.batch(a1, 10);
  await client.waitForData(Publisher.matchers(before), 10_000);

  const status = await a1.stop(signal, 45_000);
  if (signal === 'SIGTERM') {
    assert.deepEqual(
      { code: status.code, signal: status.signal },
      { code: 0, signal: null },
      'SIGTERM must drain and exit 0',
    );
  }

  const whileDown = await pub.batch(b, 10);
  // Nothing can have reached the client since A went away: whatever of
  // whileDown it gets must come from replay.
  const mid = await client.snapshot();
  assert.equal(mid.events.filter((e) => e.type === 'message').length, before.length);

  const a2 = await h.edge({ port: portA, name: 'edge-a2', env });
  await client.waitForData(Publisher.matchers(whileDown), 20_000);
  // The replay is written after the stream joined its topics: from here on
  // the stream is live, so what A publishes now must arrive too.
  const after = await pub.batch(a2, 10);
  await client.waitForData(pub.lastPerTopic(), 10_000);

  const snap = await client.snapshot();
  assertExactDelivery(snap.events, pub.published, topics);
  assert.ok(snap.opens >= 2, `expected a reconnect, saw ${snap.opens} opens`);
  assertResumed(snap);
  assert.equal(after.length, 10);
  return { snap, published: pub.published };
}
