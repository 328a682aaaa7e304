// An unreadable cursor is answered with `event: reset` (reason "invalid"),
// which reaches the npm eventsource client through addEventListener('reset'),
// and the stream then goes on live from the head it announced.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { streamPath, uniqueTopics } from '../lib/api.mjs';
import { assertExactDelivery } from '../lib/check.mjs';
import { openNodeClient } from '../lib/client-node.mjs';
import { withHarness } from '../lib/harness.mjs';
import { Publisher, syncLive } from '../lib/scenarios.mjs';

// expectInvalidReset opens path on node, waits for the reset, checks it and
// that the stream is live afterwards with exactly what is published then.
async function expectInvalidReset(h, node, topics, path, opts) {
  const client = openNodeClient(h, node.url, path, { types: ['reset'], ...opts });
  h.report = () => client.report();
  const reset = await client.waitForType('reset', 10_000);

  const body = JSON.parse(reset.data);
  assert.equal(body.reason, 'invalid');
  assert.deepEqual([...body.topics].sort(), [...topics].sort());
  // The reset carries the head cursor, the position the client goes on from.
  assert.ok(reset.id, 'reset frame carries no id');
  assert.notEqual(reset.id, 'garbage');
  assert.match(reset.id, /^[\x21-\x7e]{1,64}$/, 'cursor must be short plain ASCII');

  await syncLive(client, node.url, topics);
  const pub = new Publisher(topics);
  await pub.batch(node, 4);
  await client.waitForData(pub.lastPerTopic(), 10_000);

  const snap = await client.snapshot();
  // Nothing before the reset, one reset only, then exactly what was published.
  assert.equal(snap.events[0].type, 'reset', `first event: ${JSON.stringify(snap.events[0])}`);
  assert.equal(snap.events.filter((e) => e.type === 'reset').length, 1);
  assertExactDelivery(snap.events, pub.published, topics);
  client.close();
}

test('event: reset reaches eventsource for an unreadable cursor', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();

    await t.test('?lastEventId=garbage', async () => {
      const topics = uniqueTopics('reset-q', 2);
      await expectInvalidReset(h, node, topics, streamPath(topics, { lastEventId: 'garbage' }));
    });

    await t.test('Last-Event-ID: garbage header', async () => {
      const topics = uniqueTopics('reset-h', 2);
      await expectInvalidReset(h, node, topics, streamPath(topics), { initialLastEventId: 'garbage' });
    });

    await t.test('cursor of another topic set', async () => {
      // A real cursor, from a stream of topic a alone, must not be applied to
      // the set {a, b}: positions would land on the wrong topics.
      const [a, b] = uniqueTopics('reset-set', 2);
      const first = openNodeClient(h, node.url, streamPath([a]));
      await syncLive(first, node.url, [a]);
      const pub = new Publisher([a]);
      await pub.batch(node, 1);
      await first.waitForData(pub.lastPerTopic(), 10_000);
      const { events } = await first.snapshot();
      const cursor = events.find((e) => e.type === 'message').id;
      assert.ok(cursor);
      first.close();
      await expectInvalidReset(h, node, [a, b], streamPath([a, b], { lastEventId: cursor }));
    });
  }),
);
