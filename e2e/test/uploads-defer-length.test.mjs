// creation-defer-length: an upload created with Upload-Defer-Length: 1 (a
// client that does not know its size yet) takes its bytes over several
// PATCHes; until one of them declares Upload-Length, HEAD answers
// Upload-Defer-Length: 1 and no Upload-Length, and upload.created has no
// size. Once the length is declared (with the last bytes, or alone in an
// empty PATCH at the end) the upload completes, and upload.completed has
// the declared size and the sha256 of every byte sent. Until then the
// upload counts as the maximum upload size against the user's bytes quota.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  TusClient,
  UploadEvents,
  createUpload,
  encodeMetadata,
  endpointOf,
  headOffset,
  randomBuffer,
  sha256Of,
  tusRequest,
  uploadUser,
  within,
} from '../lib/uploads.mjs';

const metadata = { filename: 'stream.bin', filetype: 'application/octet-stream' };

// gatedReader is a tus-js-client fileReader over data that reports no size
// (a source whose length is unknown) and holds every slice from offset
// `from` on until `gate` resolves: the test looks at the upload between
// two PATCHes, with none in flight.
function gatedReader(data, from, gate) {
  return {
    async openFile() {
      return {
        size: null,
        async slice(start, end) {
          if (start >= from) await gate;
          const value = data.subarray(start, Math.min(end, data.length));
          value.size = value.length;
          return { value, done: end >= data.length };
        },
        close() {},
      };
    },
  };
}

function assertDeferred(head, offset, what) {
  assert.equal(head.status, 200, what);
  assert.equal(head.offset, offset, `${what}: Upload-Offset`);
  assert.equal(head.headers.get('upload-defer-length'), '1', `${what}: Upload-Defer-Length`);
  assert.equal(head.headers.get('upload-length'), null, `${what}: no Upload-Length yet`);
}

test('tus-js-client uploadLengthDeferred: several PATCHes, the length declared by the last one, the right size and sha256', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const user = uploadUser('defer');
    const events = await UploadEvents.open(h, node, user);
    const data = randomBuffer(3 * MiB + 17);
    const sha256 = await sha256Of(data);

    let open;
    const gate = new Promise((resolve) => (open = resolve));
    let accepted;
    const firstChunk = new Promise((resolve) => (accepted = resolve));
    const sent = []; // [method, Upload-Defer-Length, Upload-Length] of each request
    const c = new TusClient(data, {
      token: user.token,
      endpoint: endpointOf(node),
      metadata,
      uploadLengthDeferred: true,
      chunkSize: MiB,
      fileReader: gatedReader(data, MiB, gate),
      onBeforeRequest: (req) => {
        sent.push([req.getMethod(), req.getHeader('Upload-Defer-Length') ?? null, req.getHeader('Upload-Length') ?? null]);
      },
      onChunkComplete: (_n, offset) => offset === MiB && accepted(),
    });
    h.report = () => `${c.report()}\n${events.report()}`;
    await within(Promise.race([firstChunk, c.done.then(() => assert.fail('finished with the gate closed'))]), 20_000, 'the first PATCH');

    // Between the first PATCH and the next: the length is not known yet.
    assertDeferred(await headOffset(node, c.url, user.token), MiB, 'HEAD after the first PATCH');
    const created = await events.waitFor('upload.created', c.id, 15_000);
    assert.deepEqual(created.data, { id: c.id, filename: metadata.filename, filetype: metadata.filetype }, 'upload.created of a deferred upload has no size');

    open();
    await c.finish(20_000);
    assert.deepEqual(sent, [
      ['POST', '1', null],
      ['PATCH', null, null],
      ['PATCH', null, null],
      ['PATCH', null, null],
      ['PATCH', null, String(data.length)],
    ]);
    assert.deepEqual(
      c.requests.map((r) => [r.method, r.status, r.offset === null ? null : Number(r.offset)]),
      [
        ['POST', 201, null],
        ['PATCH', 204, MiB],
        ['PATCH', 204, 2 * MiB],
        ['PATCH', 204, 3 * MiB],
        ['PATCH', 204, data.length],
      ],
    );
    const head = await headOffset(node, c.url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: data.length, length: data.length });
    assert.equal(head.headers.get('upload-defer-length'), null, 'no Upload-Defer-Length once declared');

    const completed = await events.waitFor('upload.completed', c.id, 15_000);
    assert.deepEqual(completed.data, { id: c.id, size: data.length, filename: metadata.filename, filetype: metadata.filetype, sha256 });
    await events.sync(node);
    const frames = events.of(c.id);
    assert.match(frames.map((f) => f.event).join(' '), /^upload\.created( upload\.progress)+ upload\.completed$/);
    const progress = frames.filter((f) => f.event === 'upload.progress').map((f) => f.data);
    for (const p of progress) assert.ok(p.size === undefined || p.size === data.length, `progress ${JSON.stringify(p)}`);
    assert.deepEqual(progress.at(-1), { id: c.id, offset: data.length, size: data.length }, 'the last progress event is at the end, with the size');
  }),
);

test('a raw deferred upload: the length declared alone in an empty PATCH after the last bytes', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const user = uploadUser('defer-raw');
    const events = await UploadEvents.open(h, node, user);
    const data = randomBuffer(2 * MiB + 5);
    const half = MiB + 3;
    h.report = () => events.report();

    const post = await tusRequest(node, 'POST', '/v1/uploads/', {
      token: user.token,
      headers: { 'Upload-Defer-Length': '1', 'Upload-Metadata': encodeMetadata(metadata) },
    });
    assert.equal(post.status, 201, post.body);
    const url = new URL(post.headers.get('location'), endpointOf(node)).toString();
    assertDeferred(await headOffset(node, url, user.token), 0, 'HEAD after the POST');

    const patch = (offset, body, headers = {}) =>
      tusRequest(node, 'PATCH', url, {
        token: user.token,
        headers: { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', ...headers },
        body,
      });
    const p1 = await patch(0, data.subarray(0, half));
    assert.deepEqual([p1.status, p1.headers.get('upload-offset')], [204, String(half)], p1.body);
    assertDeferred(await headOffset(node, url, user.token), half, 'HEAD after the first PATCH');
    const p2 = await patch(half, data.subarray(half));
    assert.deepEqual([p2.status, p2.headers.get('upload-offset')], [204, String(data.length)], p2.body);
    assertDeferred(await headOffset(node, url, user.token), data.length, 'HEAD with every byte sent, the length not declared');

    // A length shorter than what was sent is refused and changes nothing.
    const short = await patch(data.length, Buffer.alloc(0), { 'Upload-Length': String(data.length - 1) });
    assert.equal(short.status, 400, short.body);
    assertDeferred(await headOffset(node, url, user.token), data.length, 'HEAD after a length shorter than the offset');

    const id = new URL(url).pathname.split('/').at(-1);
    const last = await patch(data.length, Buffer.alloc(0), { 'Upload-Length': String(data.length) });
    assert.deepEqual([last.status, last.headers.get('upload-offset')], [204, String(data.length)], last.body);
    const head = await headOffset(node, url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: data.length, length: data.length });

    const completed = await events.waitFor('upload.completed', id, 15_000);
    assert.deepEqual(completed.data, { id, size: data.length, filename: metadata.filename, filetype: metadata.filetype, sha256: await sha256Of(data) });
  }),
);

test('a deferred upload counts as the maximum size against the bytes quota until it declares its length', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    // Room for 3 MiB of unfinished uploads; an upload may be 2 MiB at most.
    const node = await h.edge({ env: { EDGE_UPLOADS_MAX_BYTES_PER_USER: String(3 * MiB), EDGE_UPLOADS_MAX_SIZE: String(2 * MiB) } });
    const user = uploadUser('defer-quota');

    const post = await tusRequest(node, 'POST', '/v1/uploads/', {
      token: user.token,
      headers: { 'Upload-Defer-Length': '1', 'Upload-Metadata': encodeMetadata(metadata) },
    });
    assert.equal(post.status, 201, post.body);
    const url = new URL(post.headers.get('location'), endpointOf(node)).toString();

    // The deferred upload holds 2 MiB of the quota: another 2 MiB does not fit.
    const refused = await createUpload(node, user.token, 2 * MiB, metadata);
    assert.equal(refused.status, 403, refused.res.body);
    assert.equal(JSON.parse(refused.res.body).error?.code, 'quota_exceeded', refused.res.body);

    // Declaring 1 MiB with its bytes completes it and frees the quota.
    const small = randomBuffer(MiB);
    const last = await tusRequest(node, 'PATCH', url, {
      token: user.token,
      headers: { 'Upload-Offset': '0', 'Upload-Length': String(MiB), 'Content-Type': 'application/offset+octet-stream' },
      body: small,
    });
    assert.equal(last.status, 204, last.body);

    const data = randomBuffer(2 * MiB);
    const fits = new TusClient(data, { token: user.token, endpoint: endpointOf(node), metadata });
    h.report = () => fits.report();
    await fits.finish(20_000);
    const head = await headOffset(node, fits.url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: data.length, length: data.length });
  }),
);
