// The wire format of GET /v1/stream (DESIGN.md, "Streaming contract" and
// "Cursors and replay"), read as raw bytes: headers, first bytes, which lines
// each kind of frame has, and exact replay from a cursor.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { postEvent, publish, streamPath, uniqueTopics } from '../lib/api.mjs';
import { waitFor, withHarness } from '../lib/harness.mjs';
import { Publisher, syncLive } from '../lib/scenarios.mjs';
import { RawStream } from '../lib/sse-raw.mjs';
import { e2eToken } from '../lib/token.mjs';

const cursorRe = /^[\x21-\x7e]+$/; // plain printable ASCII, no spaces

// stored returns the data frames of stored events (not probes).
const stored = (s) => s.dataFrames().filter((f) => f.event !== 'probe');

test('stream contract', { timeout: 90_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const streams = [];
    const open = async (path, opts) => {
      const s = await RawStream.open(node.url + path, opts);
      streams.push(s);
      h.onClose(() => s.close());
      return s;
    };
    h.report = () => streams.map((s) => `--- ${s.url}\n${s.text.slice(0, 1500)}\n...\n${s.text.slice(-1500)}`).join('\n');

    await t.test('headers and first bytes come at once', async () => {
      const [a] = uniqueTopics('hdr', 1);
      const s = await open(streamPath([a]));
      assert.equal(s.res.status, 200);
      assert.equal(s.res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      assert.equal(s.res.headers.get('cache-control'), 'no-cache, no-transform');
      assert.equal(s.res.headers.get('x-accel-buffering'), 'no');
      // Nothing is published: a retry line and a comment must still arrive.
      await s.waitForText(/^retry: \d+\n/, 3000);
      await s.waitForText(/^:[^\n]*\n/m, 3000);
      assert.equal(s.dataFrames().length, 0);
      await s.close();
    });

    await t.test('frames: stored, typed and ephemeral events', async () => {
      const [a, b] = uniqueTopics('frames', 2);
      const s = await open(streamPath([a, b]));
      await syncLive(s, node.url, [a, b]);

      const before = Date.now();
      const r1 = await publish(node.url, a, { x: 1, s: 'line\nbreak "quoted" é' });
      const r2 = await publish(node.url, b, { y: [1, 2, { z: null }] }, { type: 'order.created' });
      const eph = await postEvent(node.url, a, { type: 'typing', data: { who: 'alice' }, ephemeral: true });
      assert.ok(eph.status >= 200 && eph.status < 300, `ephemeral publish answered ${eph.status}`);
      const after = Date.now();
      assert.equal(r1.seq, 1, 'first event of a new topic has sequence 1');
      assert.equal(r2.seq, 1);

      await waitStored(s, 3);
      const [f1, f2, f3] = stored(s);

      // A stored "message": id then data, no event line.
      assert.deepEqual(f1.fields, ['id', 'data']);
      assert.match(f1.id, cursorRe);
      assert.equal(f1.data, `{"topic":"${a}","data":{"x":1,"s":"line\\nbreak \\"quoted\\" é"},"ts":${JSON.parse(f1.data).ts}}`);
      // A stored typed event: id, event, data.
      assert.deepEqual(f2.fields, ['id', 'event', 'data']);
      assert.equal(f2.event, 'order.created');
      assert.match(f2.id, cursorRe);
      assert.notEqual(f2.id, f1.id);
      const e2 = JSON.parse(f2.data);
      assert.deepEqual(Object.keys(e2), ['topic', 'data', 'ts']);
      assert.deepEqual(e2, { topic: b, data: { y: [1, 2, { z: null }] }, ts: e2.ts });
      // An ephemeral event: no id, so it never moves the client's position.
      assert.deepEqual(f3.fields, ['event', 'data']);
      assert.equal(f3.event, 'typing');
      assert.deepEqual(JSON.parse(f3.data).data, { who: 'alice' });

      for (const f of [f1, f2, f3]) {
        const { ts } = JSON.parse(f.data);
        assert.ok(Number.isInteger(ts) && ts >= before - 5000 && ts <= after + 5000, `ts ${ts} not a unix ms near now`);
      }
      // "about 8 bytes + 6 per topic": two topics at small sequences.
      assert.ok(f2.id.length <= 8 + 2 * 9, `cursor ${f2.id} is ${f2.id.length} bytes`);
      await s.close();
    });

    await t.test('resume replays exactly the missed events, whatever the topic order', async () => {
      const [a, b] = uniqueTopics('replay', 2);
      const s1 = await open(streamPath([a, b]));
      await syncLive(s1, node.url, [a, b]);
      const pub = new Publisher([a, b]);
      await pub.batch(node, 2); // a0 b1
      await waitStored(s1, 2);
      const cursor = s1.lastId();
      const missed = await pub.batch(node, 5); // a2 b3 a4 b5 a6
      await waitStored(s1, 7);
      const head = s1.lastId();
      await s1.close();

      // Reversed order and the comma form: the cursor must still apply.
      const s2 = await open(
        `/v1/stream?topics=${encodeURIComponent(`${b},${a}`)}&lastEventId=${encodeURIComponent(cursor)}` +
          `&access_token=${encodeURIComponent(e2eToken())}`,
      );
      await waitStored(s2, missed.length);
      const replay = stored(s2);
      assert.ok(!replay.some((f) => f.event === 'reset'), `unexpected reset: ${JSON.stringify(replay)}`);
      for (const topic of [a, b]) {
        assert.deepEqual(
          replay.map((f) => JSON.parse(f.data)).filter((e) => e.topic === topic).map((e) => e.data),
          missed.filter((p) => p.topic === topic).map((p) => p.data),
          `replay of ${topic}`,
        );
      }
      assert.ok(replay.every((f) => f.id && cursorRe.test(f.id)));
      // After the replay the stream stands where the first one ended.
      assert.equal(s2.lastId(), head);

      // Resuming from the head replays nothing: the only stored event this
      // stream sees is one published after it went live.
      const s3 = await open(streamPath([a, b]), { headers: { 'Last-Event-ID': head } });
      await syncLive(s3, node.url, [a, b]);
      const [next] = await pub.batch(node, 1);
      await s3.waitForData(Publisher.matchers([next]), 10_000);
      assert.deepEqual(
        stored(s3).map((f) => JSON.parse(f.data).data),
        [next.data],
      );
      await s2.close();
      await s3.close();
    });
  }),
);

// waitStored waits until s has at least n stored-event frames.
async function waitStored(s, n) {
  await waitFor(() => stored(s).length >= n, {
    timeout: 10_000,
    what: () => `${n} stored frames on ${s.url}; got:\n${s.text.slice(-2000)}`,
  });
}
