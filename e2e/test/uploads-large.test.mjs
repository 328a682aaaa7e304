// A 200 MiB file, streamed from disk by tus-js-client (an fs.ReadStream:
// the resumable file source), completes with the right sha256, within a
// minute all told.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import { MiB, TusClient, UploadEvents, endpointOf, fileInput, headOffset, randomFile, uploadUser } from '../lib/uploads.mjs';

test('a 200 MiB upload completes with the right sha256', { timeout: 120_000 }, (t) =>
  withHarness(t, async (h) => {
    const started = Date.now();
    const node = await h.edge();
    const user = uploadUser('large');
    const events = await UploadEvents.open(h, node, user);
    const file = await randomFile(h.tempDir('files'), 200 * MiB);
    const generated = Date.now();
    const metadata = { filename: 'large.bin', filetype: 'application/octet-stream' };

    const c = new TusClient(fileInput(file.path), { token: user.token, endpoint: endpointOf(node), metadata, chunkSize: 64 * MiB });
    h.report = () => `${c.report()}\n${events.report()}`;
    await c.finish(60_000);
    const uploaded = Date.now();
    const id = c.id;

    const completed = await events.waitFor('upload.completed', id, 30_000);
    const done = Date.now();
    assert.deepEqual(completed.data, { id, size: file.size, filename: metadata.filename, filetype: metadata.filetype, sha256: file.sha256 });
    const head = await headOffset(node, c.url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: file.size, length: file.size });
    assert.deepEqual(
      c.requests.map((r) => [r.method, r.status]),
      [['POST', 201], ...Array(4).fill(['PATCH', 204])],
      'one POST, then one PATCH per 64 MiB chunk',
    );

    const secs = (ms) => (ms / 1000).toFixed(1);
    t.diagnostic(
      `200 MiB: file written in ${secs(generated - started)} s, uploaded in ${secs(uploaded - generated)} s ` +
        `(${(200 / ((uploaded - generated) / 1000)).toFixed(0)} MiB/s), upload.completed ${done - uploaded} ms later`,
    );
    assert.ok(done - started < 60_000, `took ${secs(done - started)} s, want under 60 s`);
  }),
);
