// Idempotency-Key: a retried publish returns the first result (200) and the
// stream carries the event once.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { postEvent, publish, streamPath, uniqueTopics } from '../lib/api.mjs';
import { assertExactDelivery } from '../lib/check.mjs';
import { openNodeClient } from '../lib/client-node.mjs';
import { withHarness } from '../lib/harness.mjs';
import { syncLive } from '../lib/scenarios.mjs';

test('Idempotency-Key makes a retried publish return the first result', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const [a] = uniqueTopics('idem', 1);
    const client = openNodeClient(h, node.url, streamPath([a]));
    h.report = () => client.report();
    await syncLive(client, node.url, [a]);

    const first = await postEvent(node.url, a, { type: 'message', data: { n: 0 } }, { 'Idempotency-Key': 'k-1' });
    const retry = await postEvent(node.url, a, { type: 'message', data: { n: 0 } }, { 'Idempotency-Key': 'k-1' });
    assert.equal(first.status, 201);
    assert.equal(retry.status, 200);
    assert.deepEqual(retry.body, first.body);
    assert.deepEqual(Object.keys(first.body).sort(), ['id', 'seq', 'topic']);
    // Another key is another event; the sentinel after it proves the stream
    // has delivered everything before it.
    const second = await postEvent(node.url, a, { type: 'message', data: { n: 1 } }, { 'Idempotency-Key': 'k-2' });
    assert.equal(second.status, 201);
    assert.equal(second.body.seq, first.body.seq + 1);
    await publish(node.url, a, { n: 2 });

    await client.waitForData([{ type: 'message', topic: a, key: 'n', value: 2 }], 10_000);
    const snap = await client.snapshot();
    assertExactDelivery(snap.events, [0, 1, 2].map((n) => ({ topic: a, data: { n } })), [a]);
  }),
);
