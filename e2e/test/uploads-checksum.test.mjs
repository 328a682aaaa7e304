// The "sha256" metadata: a client may send the SHA-256 it expects as hex.
// When the bytes do not match it, the request that completes the upload is
// answered 460 (tus's checksum-mismatch status), the uploader's stream gets
// upload.failed {id, reason: "checksum mismatch"} and never
// upload.completed, the upload is gone (HEAD, PATCH, GET: 404; its files
// moved to Dir/quarantine) and its quota slot is free. When they match, the
// upload completes as any other and upload.completed carries that sha256.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  TusClient,
  UploadEvents,
  endpointOf,
  envelopeProblems,
  headOffset,
  randomBuffer,
  sha256Of,
  tusRequest,
  uploadUser,
} from '../lib/uploads.mjs';

const metadata = { filename: 'sum.bin', filetype: 'application/octet-stream' };

test('a sha256 that does not match: 460 on the completing PATCH, upload.failed, no upload.completed, the upload gone', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    // One unfinished upload per user: the retry at the end shows the
    // refused upload gave its slot back.
    const node = await h.edge({ env: { EDGE_UPLOADS_MAX_CONCURRENT_PER_USER: '1' } });
    const user = uploadUser('sum-bad');
    const events = await UploadEvents.open(h, node, user);
    const data = randomBuffer(MiB + MiB / 2);
    const otherSha = await sha256Of(randomBuffer(data.length));

    // Two PATCHes: the first is accepted, the one that completes is refused.
    const c = new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata: { ...metadata, sha256: otherSha }, chunkSize: MiB });
    h.report = () => `${c.report()}\n${events.report()}`;
    const r = await c.refusal();
    t.diagnostic(`${r.method} ${r.status}: ${r.body}`);
    assert.deepEqual({ method: r.method, status: r.status }, { method: 'PATCH', status: 460 }, r.body);
    assert.equal(JSON.parse(r.body).error?.code, 'checksum_mismatch', r.body);
    assert.deepEqual(
      c.requests.map((q) => [q.method, q.status, q.offset === null ? null : Number(q.offset)]),
      [
        ['POST', 201, null],
        ['PATCH', 204, MiB],
        ['PATCH', 460, null],
      ],
    );
    const { url, id } = c;

    const failed = await events.waitFor('upload.failed', id, 15_000);
    await events.sync(node);
    assert.ok(failed.id, 'upload.failed is a stored event: it has an id line');
    assert.equal(envelopeProblems(failed, user.topic), null);
    assert.deepEqual(failed.data, { id, reason: 'checksum mismatch' });
    const kinds = events.of(id).map((f) => f.event);
    assert.match(kinds.join(' '), /^upload\.created( upload\.progress)* upload\.failed$/, `frames for ${id}: ${kinds.join(', ')}`);

    // Gone for its owner: it can be neither read, resumed nor completed.
    assert.equal((await headOffset(node, url, user.token)).status, 404, 'HEAD after the mismatch');
    const as = (method, headers, body) => tusRequest(node, method, url, { token: user.token, headers, body });
    const patch = await as('PATCH', { 'Upload-Offset': String(MiB), 'Content-Type': 'application/offset+octet-stream' }, data.subarray(MiB));
    assert.equal(patch.status, 404, `PATCH after the mismatch: ${patch.body}`);
    assert.equal((await as('GET')).status, 404, 'GET after the mismatch');
    // Kept for someone to look at, out of the store.
    const quarantine = path.join(h.uploadsDir, 'quarantine');
    assert.ok(existsSync(path.join(quarantine, id)) && existsSync(path.join(quarantine, `${id}.info`)), `${id} and ${id}.info in ${quarantine}`);
    assert.ok(!existsSync(path.join(h.uploadsDir, `${id}.info`)), `${id}.info is no longer in the store`);

    // The client retries the same bytes with the right sha256: its only
    // quota slot is free again, and this one completes.
    const sha256 = await sha256Of(data);
    const retry = new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata: { ...metadata, sha256 } });
    await retry.finish(20_000);
    const completed = await events.waitFor('upload.completed', retry.id, 15_000);
    assert.equal(completed.data.sha256, sha256);

    // The refused upload never completed.
    await events.sync(node);
    assert.deepEqual(events.of(id).filter((f) => f.event === 'upload.completed'), [], `upload.completed for ${id}`);
  }),
);

test('a sha256 that matches completes the upload, and upload.completed carries it', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const user = uploadUser('sum-ok');
    const events = await UploadEvents.open(h, node, user);
    const data = randomBuffer(MiB + MiB / 2);
    const sha256 = await sha256Of(data);

    const c = new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata: { ...metadata, sha256 }, chunkSize: MiB });
    h.report = () => `${c.report()}\n${events.report()}`;
    await c.finish(20_000);
    assert.deepEqual(
      c.requests.map((q) => [q.method, q.status]),
      [
        ['POST', 201],
        ['PATCH', 204],
        ['PATCH', 204],
      ],
    );
    const head = await headOffset(node, c.url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: data.length, length: data.length });

    const completed = await events.waitFor('upload.completed', c.id, 15_000);
    await events.sync(node);
    assert.deepEqual(completed.data, { id: c.id, size: data.length, filename: metadata.filename, filetype: metadata.filetype, sha256 });
    const kinds = events.of(c.id).map((f) => f.event);
    assert.match(kinds.join(' '), /^upload\.created( upload\.progress)+ upload\.completed$/, `frames for ${c.id}: ${kinds.join(', ')}`);

    // Hex in capitals is the same sum.
    const upper = new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata: { ...metadata, sha256: sha256.toUpperCase() } });
    await upper.finish(20_000);
    assert.equal((await events.waitFor('upload.completed', upper.id, 15_000)).data.sha256, sha256);

    // A sha256 that is not 64 hex digits is refused at creation.
    const bad = new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata: { ...metadata, sha256: sha256.slice(0, 63) } });
    const r = await bad.refusal();
    assert.deepEqual({ method: r.method, status: r.status }, { method: 'POST', status: 400 }, r.body);
    assert.equal(JSON.parse(r.body).error?.code, 'invalid_checksum', r.body);
  }),
);
