// A wiped Redis gives every topic a new epoch. A client that resumes with a
// cursor of the old epoch must be told (`event: reset`, reason "epoch"), not
// silently skipped past, and then go on exactly in the new epoch.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { streamPath, uniqueTopics } from '../lib/api.mjs';
import { assertExactDelivery } from '../lib/check.mjs';
import { openNodeClient } from '../lib/client-node.mjs';
import { withHarness } from '../lib/harness.mjs';
import { Publisher, syncLive } from '../lib/scenarios.mjs';

test('eventsource gets event: reset (epoch) after Redis is wiped', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const redis = await h.redis();
    const node = await h.edge({
      env: {
        EDGE_REDIS_ADDRS: redis.addr,
        // Short lifetime: the client's own reconnects carry the old cursor.
        EDGE_SSE_MAX_LIFETIME: '1s',
        EDGE_SSE_LIFETIME_JITTER: '200ms',
        EDGE_SSE_RETRY: '100ms',
        EDGE_SSE_RETRY_JITTER: '20ms',
      },
    });
    const topics = uniqueTopics('epoch', 2);
    const client = openNodeClient(h, node.url, streamPath(topics), { types: ['reset'] });
    h.report = () => client.report();
    await syncLive(client, node.url, topics);

    const pub = new Publisher(topics);
    const old = await pub.batch(node, 4);
    await client.waitForData(Publisher.matchers(old), 10_000);

    assert.equal(await redis.command('FLUSHALL'), '+OK');
    const reset = await client.waitForType('reset', 10_000);
    const body = JSON.parse(reset.data);
    assert.equal(body.reason, 'epoch');
    assert.deepEqual([...body.topics].sort(), [...topics].sort());

    // The reset was written once the stream was live: what is published now
    // arrives, through later lifetime reconnects, in the new epoch.
    const { opens } = await client.snapshot();
    const fresh = await pub.batch(node, 6);
    assert.equal(fresh[0].seq, 1, 'the new epoch starts at 1');
    await client.waitForOpens(opens + 1, 10_000);
    await client.waitForData(pub.lastPerTopic(), 10_000);

    const snap = await client.snapshot();
    assert.equal(snap.events.filter((e) => e.type === 'reset').length, 1, 'one reset only');
    assertExactDelivery(snap.events, pub.published, topics);
  }),
);
