// Termination (tus DELETE) by the owner of an unfinished upload: 204, then
// the upload is gone (HEAD, PATCH, DELETE: 404), its claim on the user's
// quotas (unfinished uploads, declared bytes) is released, so a new upload
// that the quota refused before is accepted, and the server publishes no
// event about it: the stream has upload.created (and progress) for it,
// never upload.completed nor upload.failed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  TusClient,
  UploadEvents,
  createUpload,
  endpointOf,
  headOffset,
  randomBuffer,
  sha256Of,
  tusRequest,
  uploadUser,
  within,
} from '../lib/uploads.mjs';

const metadata = { filename: 'gone.bin', filetype: 'application/octet-stream' };

// assertNoOutcome checks that the stream's frames about upload id are
// upload.created and progress only.
function assertNoOutcome(events, id) {
  const kinds = events.of(id).map((f) => f.event);
  assert.match(kinds.join(' '), /^upload\.created( upload\.progress)*$/, `frames for the terminated upload ${id}: ${kinds.join(', ')}`);
}

test("tus-js-client abort(true) terminates the owner's upload: 204, gone, its slot free, no outcome event", { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({ env: { EDGE_UPLOADS_MAX_CONCURRENT_PER_USER: '1' } });
    const user = uploadUser('term');
    const events = await UploadEvents.open(h, node, user);
    const data = randomBuffer(3 * MiB);

    // Pause once the server has the first MiB, from onChunkComplete (no
    // PATCH is in flight then).
    let paused;
    const pausedAt = new Promise((resolve) => (paused = resolve));
    const c = new TusClient(data, {
      token: user.token,
      endpoint: endpointOf(node),
      metadata,
      chunkSize: MiB,
      onChunkComplete: (_n, offset) => offset === MiB && c.upload.abort().then(paused),
    });
    h.report = () => `${c.report()}\n${events.report()}`;
    await within(Promise.race([pausedAt, c.done.then(() => assert.fail('the upload finished before the pause'))]), 20_000, 'the pause after the first MiB');
    const { url, id } = c;
    const head = await headOffset(node, url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset }, { status: 200, offset: MiB });
    await events.waitFor('upload.created', id, 15_000);

    // The unfinished upload holds the user's only slot.
    const meanwhile = await createUpload(node, user.token, MiB, metadata);
    assert.equal(meanwhile.status, 429, `a second upload while the first is unfinished: ${meanwhile.res.body}`);

    await c.upload.abort(true);
    assert.deepEqual(c.requests.at(-1), { method: 'DELETE', url, status: 204, offset: null, length: null, concat: null });

    assert.equal((await headOffset(node, url, user.token)).status, 404, 'HEAD after DELETE');
    const patch = await tusRequest(node, 'PATCH', url, {
      token: user.token,
      headers: { 'Upload-Offset': String(MiB), 'Content-Type': 'application/offset+octet-stream' },
      body: data.subarray(MiB),
    });
    assert.equal(patch.status, 404, `PATCH after DELETE: ${patch.body}`);

    // The slot is free: a new upload by the same user goes through.
    const next = new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata });
    await next.finish(20_000);
    assert.notEqual(next.id, id);
    const completed = await events.waitFor('upload.completed', next.id, 15_000);
    assert.equal(completed.data.sha256, await sha256Of(data));

    await events.sync(node);
    assertNoOutcome(events, id);
  }),
);

test('a raw DELETE with Tus-Resumable terminates the upload and releases its declared bytes', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({ env: { EDGE_UPLOADS_MAX_BYTES_PER_USER: String(2 * MiB) } });
    const user = uploadUser('term-raw');
    const events = await UploadEvents.open(h, node, user);
    const data = randomBuffer(2 * MiB);
    h.report = () => events.report();

    const up = await createUpload(node, user.token, data.length, metadata);
    assert.equal(up.status, 201, up.res.body);
    const first = await tusRequest(node, 'PATCH', up.url, {
      token: user.token,
      headers: { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: data.subarray(0, MiB / 2),
    });
    assert.equal(first.status, 204, first.body);

    // Its 2 MiB fill the user's bytes quota.
    const over = await createUpload(node, user.token, MiB, metadata);
    assert.equal(over.status, 403, `a second upload over the bytes quota: ${over.res.body}`);

    const del = await tusRequest(node, 'DELETE', up.url, { token: user.token });
    assert.equal(del.status, 204, del.body);
    assert.equal(del.body, '');
    assert.equal(del.headers.get('tus-resumable'), '1.0.0');

    assert.equal((await headOffset(node, up.url, user.token)).status, 404, 'HEAD after DELETE');
    assert.equal((await tusRequest(node, 'DELETE', up.url, { token: user.token })).status, 404, 'a second DELETE');

    // Its bytes are free: the same size again is accepted and completes.
    const again = await createUpload(node, user.token, data.length, metadata);
    assert.equal(again.status, 201, again.res.body);
    const c = new TusClient(data, { token: user.token, uploadUrl: again.url, metadata });
    await c.finish(20_000);
    const completed = await events.waitFor('upload.completed', again.id, 15_000);
    assert.equal(completed.data.sha256, await sha256Of(data));

    await events.sync(node);
    assertNoOutcome(events, up.id);
  }),
);
