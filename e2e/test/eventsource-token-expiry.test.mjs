// npm eventsource with a short-lived token: the server ends the stream when
// the token expires (exp), not at max lifetime. The app then does what a
// real one does: it closes that EventSource (whose URL holds the old token),
// gets a fresh token and opens a new EventSource with it and the last id it
// had (?lastEventId=, since a new EventSource sends no Last-Event-ID). Every
// event published meanwhile arrives exactly once.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { streamPath, uniqueTopics } from '../lib/api.mjs';
import { assertExactDelivery } from '../lib/check.mjs';
import { openNodeClient } from '../lib/client-node.mjs';
import { withHarness } from '../lib/harness.mjs';
import { Publisher, syncLive } from '../lib/scenarios.mjs';
import { decodeClaims, mintToken } from '../lib/token.mjs';

test('eventsource: the stream ends at token expiry; a fresh token resumes without loss or duplicates', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({
      env: {
        // Long enough that only the token ends the stream.
        EDGE_SSE_MAX_LIFETIME: '10m',
        EDGE_SSE_LIFETIME_JITTER: '1s',
        EDGE_SSE_HEARTBEAT: '1s',
        // Streams end at exp plus the leeway that accepts a token; a short
        // leeway keeps the test short.
        EDGE_AUTH_LEEWAY: '1s',
      },
    });
    const topics = uniqueTopics('expiry', 2);
    // The app's user may follow exactly these topics; publishing is done by
    // the suite's own token (e2eToken), another identity.
    const mint = (ttl) => mintToken({ sub: 'short-lived', subscribe: topics, ttl });

    // exp is in whole seconds: the token expires 2 to 3 s from now.
    const first = mint(3);
    const { exp } = decodeClaims(first);
    let endedAt;
    const c1 = openNodeClient(h, node.url, streamPath(topics, {}, { token: first }), {
      types: ['reset'],
      // The first error is the server's end of the stream: the app stops
      // this EventSource there, before it could reconnect with the old URL.
      onError: (c) => {
        endedAt ??= Date.now();
        c.close();
      },
    });
    const clients = [c1];
    h.report = () => clients.map((c) => c.report()).join('\n');
    await c1.waitForOpens(1, 10_000);
    await syncLive(c1, node.url, topics);

    // Publish at a steady pace (about 20/s, under the default 50/s per
    // user) until the stream has ended, so events land right around the end.
    const pub = new Publisher(topics);
    const deadline = Date.now() + 15_000;
    while (endedAt === undefined) {
      if (Date.now() > deadline) assert.fail(`the stream of a token with exp ${exp} did not end within 15 s`);
      await pub.next(node);
      await delay(40);
    }
    const s1 = await c1.snapshot();
    const [conn1] = s1.conns;
    assert.equal(s1.conns.length, 1, 'the app closed the first EventSource at its first error');
    assert.equal(conn1.status, 200);
    assert.ok(conn1.endedAt, 'the server ended the response (a clean end of the body)');
    // The end follows exp plus the 1 s leeway (the server's check runs
    // every 250 ms or so).
    assert.ok(
      conn1.endedAt >= exp * 1000 + 1000 - 100 && conn1.endedAt <= exp * 1000 + 1000 + 2000,
      `stream ended at ${new Date(conn1.endedAt).toISOString()}, token exp ${new Date(exp * 1000).toISOString()}`,
    );
    const lastId = s1.events.at(-1).id;
    assert.ok(lastId, 'the first stream gave the client a position');

    // Published while no stream is open.
    const meanwhile = await pub.batch(node, 6);

    const second = mint(60);
    const c2 = openNodeClient(h, node.url, streamPath(topics, { lastEventId: lastId }, { token: second }), {
      types: ['reset'],
    });
    clients.push(c2);
    await c2.waitForOpens(1, 10_000);
    // The replay is written after the stream joined its topics: once it is
    // in, the stream is live, and later events must arrive too.
    await c2.waitForData(Publisher.matchers(meanwhile), 10_000);
    await pub.batch(node, 6);
    await c2.waitForData(pub.lastPerTopic(), 10_000);

    const s2 = await c2.snapshot();
    const received = [...s1.events, ...s2.events];
    assert.deepEqual(received.filter((e) => e.type === 'reset'), [], 'no reset: the cursor is good');
    assertExactDelivery(received, pub.published, topics);
    assert.ok(pub.published.length >= 30, `only ${pub.published.length} events published`);
    // Both streams delivered part of it: the cut really was mid-flow.
    const count = (s) => s.events.filter((e) => e.type === 'message').length;
    assert.ok(count(s1) > 0 && count(s2) >= meanwhile.length + 6, `first stream ${count(s1)}, second ${count(s2)} events`);
    assert.equal(s2.opens, 1);
    t.diagnostic(
      `stream ended ${conn1.endedAt - exp * 1000} ms after exp; ${pub.published.length} events, ` +
        `${count(s1)} on the first stream, ${count(s2)} on the second`,
    );
  }),
);
