// Namespaced topic names ("room:42", "org:acme:finance") in a URL path: a
// client may send ":" as is or percent-encoded (encodeURIComponent, what
// browsers' code does); both must name the same topic.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearer, streamPath, uniqueTopics } from '../lib/api.mjs';
import { openNodeClient } from '../lib/client-node.mjs';
import { withHarness } from '../lib/harness.mjs';
import { syncLive } from '../lib/scenarios.mjs';

async function post(url, data) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...bearer() },
    body: JSON.stringify({ type: 'message', data }),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.text() };
}

test('a topic with ":" is the same topic percent-encoded or not', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const [topic] = uniqueTopics('names', 1);
    const client = openNodeClient(h, node.url, streamPath([topic]));
    h.report = () => client.report();
    await syncLive(client, node.url, [topic]);

    const raw = await post(`${node.url}/v1/topics/${topic}/events`, { n: 0 });
    const encoded = await post(`${node.url}/v1/topics/${encodeURIComponent(topic)}/events`, { n: 1 });
    assert.equal(raw.status, 201, `POST /v1/topics/${topic}/events: ${raw.body}`);
    assert.equal(
      encoded.status,
      201,
      `POST /v1/topics/${encodeURIComponent(topic)}/events: ${encoded.body}`,
    );
    assert.deepEqual(
      [JSON.parse(raw.body), JSON.parse(encoded.body)].map((b) => [b.topic, b.seq]),
      [
        [topic, 1],
        [topic, 2],
      ],
    );

    await client.waitForData([{ type: 'message', topic, key: 'n', value: 1 }], 10_000);
    const { events } = await client.snapshot();
    assert.deepEqual(
      events.filter((e) => e.type === 'message').map((e) => JSON.parse(e.data).data),
      [{ n: 0 }, { n: 1 }],
    );
  }),
);
