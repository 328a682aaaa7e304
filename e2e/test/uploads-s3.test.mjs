// Uploads to S3 (a real S3 server, Versity's versitygw, path style, static
// keys): a tus-js-client upload lands in the bucket as one object of the
// uploaded bytes under the prefix, its id is `<32 hex>+<multipart id>`, GET
// of its URL serves the bytes, upload.completed has their sha256, and the
// node's local dir (parts on their way) is left empty. Two nodes sharing
// Redis and the bucket (each with its own local dir): the one taking an
// upload is SIGKILLed after a chunk went to S3 as a part, and the other
// resumes the same upload (past the dead node's lock lease) to the right
// bytes.

import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  TusClient,
  UploadEvents,
  cutMidChunk,
  endpointOf,
  fileInput,
  headOffset,
  randomFile,
  sha256Of,
  uploadUser,
  within,
} from '../lib/uploads.mjs';

const prefix = 'e2e/';
const metadata = { filename: 's3.bin', filetype: 'application/octet-stream' };

// The object of a finished upload, as versitygw's posix backend keeps it:
// <root>/<bucket>/<prefix><32 hex>. Its size and sha256, or null if absent.
async function objectOf(s3, id) {
  const file = path.join(s3.root, s3.bucket, prefix + id.split('+')[0]);
  const st = await stat(file).catch(() => null);
  return st && { file, size: st.size, sha256: await sha256Of(file) };
}

// download GETs an upload's URL as its owner: {status, size, sha256}.
async function download(url, token) {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, size: body.length, sha256: await sha256Of(body) };
}

test('an upload to S3 is one object of its bytes, served by GET, with its sha256 in upload.completed', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const s3 = await h.s3();
    const local = h.tempDir('parts');
    const node = await h.edge({ env: { ...s3.env(prefix), EDGE_UPLOADS_DIR: local } });
    const user = uploadUser('s3');
    const events = await UploadEvents.open(h, node, user);
    const file = await randomFile(h.tempDir('files'), 12 * MiB + 321);

    const c = new TusClient(fileInput(file.path), { token: user.token, endpoint: endpointOf(node), metadata });
    h.report = () => `${c.report()}\n${events.report()}`;
    await c.finish(30_000);

    assert.match(c.url, new RegExp(`^${node.url}/v1/uploads/[^/]+$`));
    assert.match(c.id, /^[0-9a-f]{32}\+[^+]+$/, `the id is <32 hex>+<multipart id>: ${c.id}`);
    const completed = await events.waitFor('upload.completed', c.id, 15_000);
    assert.deepEqual(completed.data, { id: c.id, size: file.size, ...metadata, sha256: file.sha256 });

    const object = await objectOf(s3, c.id);
    assert.ok(object, `no object ${prefix}${c.id.split('+')[0]} in bucket ${s3.bucket}`);
    assert.deepEqual({ size: object.size, sha256: object.sha256 }, { size: file.size, sha256: file.sha256 }, `object ${object.file}`);

    const got = await download(c.url, user.token);
    assert.deepEqual(got, { status: 200, size: file.size, sha256: file.sha256 }, `GET ${c.url}`);
    const left = (await readdir(local, { recursive: true, withFileTypes: true })).filter((e) => !e.isDirectory());
    assert.deepEqual(left.map((e) => path.join(e.parentPath ?? e.path, e.name)), [], 'files left in the local dir');
  }),
);

test('an upload to S3 cut by a killed node completes on a second node sharing Redis and the bucket', { timeout: 120_000 }, (t) =>
  withHarness(t, async (h) => {
    const redis = await h.redis();
    const s3 = await h.s3();
    // A short lease: the survivor gets the dead node's lock 2 s after its
    // last renewal. Each node has its own dir: with S3 it only holds parts
    // on their way, nothing another node needs.
    const env = { EDGE_REDIS_ADDRS: redis.addr, EDGE_UPLOADS_LOCK_LEASE: '2s', ...s3.env(prefix) };
    const a = await h.edge({ name: 'edge-a', env: { ...env, EDGE_UPLOADS_DIR: h.tempDir('parts-a') } });
    const b = await h.edge({ name: 'edge-b', env: { ...env, EDGE_UPLOADS_DIR: h.tempDir('parts-b') } });
    const user = uploadUser('s3kill');
    const events = await UploadEvents.open(h, b, user);
    const file = await randomFile(h.tempDir('files'), 30 * MiB + 789);
    // 6 MiB chunks, over S3's 5 MiB minimum: each PATCH is a part in S3.
    const chunk = 6 * MiB;

    // A is sent 12 MiB/s (a chunk lasts 500 ms) and killed 200 ms into the
    // second PATCH, on a timer armed when it has accepted the first chunk.
    const { client: onA, cut: killedAt } = cutMidChunk(file.path, {
      token: user.token,
      endpoint: endpointOf(a),
      metadata,
      chunk,
      rate: 12 * MiB,
      after: 200,
      cut: () => a.stop('SIGKILL', 10_000),
    });
    let onB;
    h.report = () => `on A: ${onA.report()}\n${onB ? `on B: ${onB.report()}\n` : ''}${events.report()}`;
    const cut = await within(
      onA.done.then(
        () => assert.fail('the upload on A succeeded: A was killed too late'),
        (err) => err,
      ),
      30_000,
      'the upload on A to be cut by the kill',
    );
    assert.equal((await within(killedAt, 10_000, 'A to exit')).signal, 'SIGKILL');
    assert.equal(cut.originalResponse ?? null, null, `the PATCH on A ended without an answer: ${cut.message}`);
    assert.match(onA.id, /^[0-9a-f]{32}\+[^+]+$/);
    await events.waitFor('upload.created', onA.id, 10_000);

    // Same path on B, as behind a load balancer. Its HEAD waits for A's lease.
    const urlOnB = `${b.url}${new URL(onA.url).pathname}`;
    const head = await headOffset(b, urlOnB, user.token);
    assert.equal(head.status, 200, `HEAD on B answered ${head.status}`);
    assert.equal(head.length, file.size);
    assert.ok(head.offset >= chunk && head.offset < file.size, `offset ${head.offset} on B: want [${chunk}, ${file.size})`);

    onB = new TusClient(fileInput(file.path), {
      token: user.token,
      uploadUrl: urlOnB,
      metadata,
      chunkSize: chunk,
      retryDelays: [250, 500, 1000, 2000, 4000],
    });
    await onB.finish(60_000);
    assert.equal(onB.requests.filter((r) => r.method === 'POST').length, 0, 'B resumed, created nothing');
    assert.equal(Number(onB.requests.find((r) => r.method === 'HEAD' && r.status === 200).offset), head.offset);
    assert.equal(Number(onB.requests.at(-1).offset), file.size);

    const completed = await events.waitFor('upload.completed', onA.id, 15_000);
    assert.deepEqual(completed.data, { id: onA.id, size: file.size, ...metadata, sha256: file.sha256 });
    const object = await objectOf(s3, onA.id);
    assert.ok(object, `no object ${prefix}${onA.id.split('+')[0]} in bucket ${s3.bucket}`);
    assert.deepEqual({ size: object.size, sha256: object.sha256 }, { size: file.size, sha256: file.sha256 }, `object ${object.file}`);
    assert.deepEqual(await download(urlOnB, user.token), { status: 200, size: file.size, sha256: file.sha256 }, `GET on B`);
    t.diagnostic(`killed at offset ${head.offset}; B's requests: ${onB.requests.map((r) => `${r.method} ${r.status}`).join(', ')}`);
  }),
);
