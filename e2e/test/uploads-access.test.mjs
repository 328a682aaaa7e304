// An upload belongs to its creator: another user's HEAD, PATCH, GET and
// DELETE of it each get 404, as for an upload that does not exist, and
// change nothing: the owner then completes it, with the right sha256.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  TusClient,
  UploadEvents,
  createUpload,
  headOffset,
  randomBuffer,
  sha256Of,
  tusRequest,
  uploadUser,
} from '../lib/uploads.mjs';

test("another user gets 404 for HEAD, PATCH, GET and DELETE of a user's upload", { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const owner = uploadUser('owner');
    const other = uploadUser('other');
    const events = await UploadEvents.open(h, node, owner);
    const data = randomBuffer(3 * MiB);
    const metadata = { filename: 'mine.bin', filetype: 'application/octet-stream' };
    h.report = () => events.report();

    // The owner creates the upload and sends its first MiB.
    const up = await createUpload(node, owner.token, data.length, metadata);
    assert.equal(up.status, 201, `POST: ${up.res.body}`);
    const first = await tusRequest(node, 'PATCH', up.url, {
      token: owner.token,
      headers: { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: data.subarray(0, MiB),
    });
    assert.equal(first.status, 204, `owner's PATCH: ${first.body}`);

    const as = (user, method, headers = {}, body) => tusRequest(node, method, up.url, { token: user.token, headers, body });
    const patchHeaders = { 'Upload-Offset': String(MiB), 'Content-Type': 'application/offset+octet-stream' };
    const tries = {
      HEAD: await as(other, 'HEAD'),
      PATCH: await as(other, 'PATCH', patchHeaders, data.subarray(MiB, 2 * MiB)),
      GET: await as(other, 'GET'),
      DELETE: await as(other, 'DELETE'),
    };
    assert.deepEqual(
      Object.fromEntries(Object.entries(tries).map(([m, r]) => [m, r.status])),
      { HEAD: 404, PATCH: 404, GET: 404, DELETE: 404 },
      `answers to the other user: ${JSON.stringify(Object.fromEntries(Object.entries(tries).map(([m, r]) => [m, r.body])))}`,
    );
    // The same answer as for an upload that does not exist.
    const missing = await tusRequest(node, 'HEAD', `/v1/uploads/${'0'.repeat(32)}`, { token: other.token });
    assert.equal(missing.status, 404);

    // Nothing changed: the other user's PATCH wrote nothing, the DELETE
    // removed nothing.
    const head = await headOffset(node, up.url, owner.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: MiB, length: data.length });

    // The owner finishes it with tus-js-client from the server's offset.
    const c = new TusClient(data, { token: owner.token, uploadUrl: up.url, metadata });
    await c.finish(20_000);
    assert.deepEqual(
      c.requests.map((r) => [r.method, r.status, r.offset === null ? null : Number(r.offset)]),
      [
        ['HEAD', 200, MiB],
        ['PATCH', 204, data.length],
      ],
    );
    const completed = await events.waitFor('upload.completed', up.id, 15_000);
    assert.deepEqual(completed.data, { id: up.id, size: data.length, filename: metadata.filename, filetype: metadata.filetype, sha256: await sha256Of(data) });

    // Finished, it is still the owner's alone.
    assert.equal((await as(other, 'HEAD')).status, 404);
    assert.equal((await as(other, 'GET')).status, 404);
    assert.equal((await as(other, 'DELETE')).status, 404);
    assert.equal((await headOffset(node, up.url, owner.token)).status, 200);
  }),
);
