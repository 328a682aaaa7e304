// Refusals, each as tus-js-client reports it (onError with the HTTP
// answer): an upload over EDGE_UPLOADS_MAX_SIZE (413), a type not allowed
// by its metadata, a type not allowed by its first bytes (the upload is
// then gone), and uploads over the per-user quotas (concurrent uploads,
// bytes of unfinished uploads). Each next to an upload that just fits.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  TusClient,
  createUpload,
  endpointOf,
  headOffset,
  randomBuffer,
  tusRequest,
  uploadUser,
} from '../lib/uploads.mjs';

const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

function upload(node, user, data, metadata, opts = {}) {
  return new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata, ...opts });
}

test('an upload over the maximum size is refused with 413', { timeout: 30_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({ env: { EDGE_UPLOADS_MAX_SIZE: String(MiB) } });
    const user = uploadUser('size');
    const options = await tusRequest(node, 'OPTIONS', '/v1/uploads/', { token: user.token });
    assert.equal(options.headers.get('tus-max-size'), String(MiB), 'Tus-Max-Size advertises the limit');

    const over = upload(node, user, randomBuffer(MiB + 1), { filename: 'big.bin', filetype: 'application/octet-stream' });
    const r = await over.refusal();
    t.diagnostic(`${r.method} ${r.status}: ${r.body}`);
    assert.deepEqual({ method: r.method, status: r.status }, { method: 'POST', status: 413 }, r.body);
    assert.equal(over.url, null, 'no upload was created');

    const fits = upload(node, user, randomBuffer(MiB), { filename: 'max.bin', filetype: 'application/octet-stream' });
    await fits.finish(10_000);
  }),
);

test('a type not allowed by its metadata is refused', { timeout: 30_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({ env: { EDGE_UPLOADS_ALLOWED_TYPES: 'image/*,application/pdf' } });
    const user = uploadUser('type');

    const text = upload(node, user, Buffer.from('just some text\n'.repeat(100)), { filename: 'notes.txt', filetype: 'text/plain' });
    const r = await text.refusal();
    t.diagnostic(`${r.method} ${r.status}: ${r.body}`);
    assert.equal(r.method, 'POST');
    assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}: ${r.body}`);
    assert.match(r.body, /text\/plain|type/i, 'the refusal says why');
    assert.equal(text.url, null, 'no upload was created');

    const image = upload(node, user, randomBuffer(64 * 1024, png), { filename: 'ok.png', filetype: 'image/png' });
    await image.finish(10_000);
  }),
);

test('a type not allowed by its first bytes is refused and the upload is gone', { timeout: 30_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({ env: { EDGE_UPLOADS_ALLOWED_TYPES: 'image/*' } });
    const user = uploadUser('sniff');

    // Declared image/png, but the bytes are a zip archive's.
    const fake = upload(node, user, randomBuffer(256 * 1024, zip), { filename: 'photo.png', filetype: 'image/png' });
    h.report = () => fake.report();
    const r = await fake.refusal();
    t.diagnostic(`${r.method} ${r.status}: ${r.body}`);
    assert.ok(r.status >= 400 && r.status < 500, `${r.method} answered ${r.status}: ${r.body}`);
    assert.match(r.body, /type|zip/i, 'the refusal says why');
    assert.ok(fake.url, 'the upload was created before its bytes were seen');
    const head = await headOffset(node, fake.url, user.token);
    t.diagnostic(`HEAD of the refused upload: ${head.status}`);
    assert.ok(head.status === 404 || head.status === 410, `HEAD of the refused upload answered ${head.status}, want 404 or 410`);

    const real = upload(node, user, randomBuffer(256 * 1024, png), { filename: 'photo.png', filetype: 'image/png' });
    await real.finish(10_000);
  }),
);

test('a second unfinished upload over the concurrent uploads quota is refused', { timeout: 30_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({ env: { EDGE_UPLOADS_MAX_CONCURRENT_PER_USER: '1' } });
    const user = uploadUser('quota');
    const meta = { filename: 'q.bin', filetype: 'application/octet-stream' };

    const firstData = randomBuffer(MiB);
    const first = await createUpload(node, user.token, firstData.length, meta);
    assert.equal(first.status, 201, first.res.body);

    const second = upload(node, user, randomBuffer(MiB), meta);
    const r = await second.refusal();
    t.diagnostic(`${r.method} ${r.status}: ${r.body}`);
    assert.equal(r.method, 'POST');
    assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}: ${r.body}`);
    assert.match(r.body, /concurren|unfinished|quota|limit/i, 'the refusal says why');

    // Another user has a quota of their own.
    await upload(node, uploadUser('quota-other'), randomBuffer(MiB), meta).finish(10_000);

    // Once the first upload is finished, the slot is free again.
    await new TusClient(firstData, { token: user.token, uploadUrl: first.url, metadata: meta }).finish(10_000);
    await upload(node, user, randomBuffer(MiB), meta).finish(10_000);
  }),
);

test('an upload over the bytes-per-user quota of unfinished uploads is refused', { timeout: 30_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge({ env: { EDGE_UPLOADS_MAX_BYTES_PER_USER: String(2 * MiB) } });
    const user = uploadUser('bytes');
    const meta = { filename: 'b.bin', filetype: 'application/octet-stream' };

    const first = await createUpload(node, user.token, 1.5 * MiB, meta);
    assert.equal(first.status, 201, first.res.body);
    const over = upload(node, user, randomBuffer(MiB), meta);
    const r = await over.refusal();
    t.diagnostic(`${r.method} ${r.status}: ${r.body}`);
    assert.equal(r.method, 'POST');
    assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}: ${r.body}`);
    assert.match(r.body, /byte|quota|limit/i, 'the refusal says why');
    // What is left under the quota still goes.
    await upload(node, user, randomBuffer(MiB / 2), meta).finish(10_000);
  }),
);
