// A node is killed (SIGKILL) mid-upload; a second node sharing the upload
// directory and Redis resumes the same upload (the URL a load balancer
// would send to it: same path, other node) and completes it with the right
// sha256. The killed node's lock on the upload lives in Redis: the second
// node must get past it (lease expiry) without a hand from the dead node.

import assert from 'node:assert/strict';
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
  uploadUser,
  within,
} from '../lib/uploads.mjs';

test('an upload cut by a killed node completes on a second node sharing the directory and Redis', { timeout: 120_000 }, (t) =>
  withHarness(t, async (h) => {
    const redis = await h.redis();
    const env = { EDGE_REDIS_ADDRS: redis.addr, EDGE_UPLOADS_DIR: h.tempDir('shared-uploads') };
    const a = await h.edge({ name: 'edge-a', env });
    const b = await h.edge({ name: 'edge-b', env });
    const user = uploadUser('kill');
    // The stream follows B, the node that survives; A's events reach it
    // through Redis.
    const events = await UploadEvents.open(h, b, user);
    const file = await randomFile(h.tempDir('files'), 64 * MiB);
    const metadata = { filename: 'kill.bin', filetype: 'application/octet-stream' };
    const chunk = 16 * MiB;

    // The client sends to A at 64 MiB/s (a chunk lasts 250 ms); A is
    // killed on a timer armed when it has accepted the first chunk: 100 ms
    // into the second PATCH, which A's request holds the lock for.
    const { client: onA, cut: killedAt } = cutMidChunk(file.path, {
      token: user.token,
      endpoint: endpointOf(a),
      metadata,
      chunk,
      rate: 64 * MiB,
      after: 100,
      cut: () => a.stop('SIGKILL', 10_000),
    });
    let onB;
    h.report = () => `on A: ${onA.report()}\n${onB ? `on B: ${onB.report()}\n` : ''}${events.report()}`;
    // The client on A sees its PATCH cut (no retries: retryDelays null),
    // maybe before the harness has seen A exit.
    const cut = await within(
      onA.done.then(
        () => assert.fail('the upload on A succeeded: A was killed too late'),
        (err) => err,
      ),
      30_000,
      'the upload on A to be cut by the kill',
    );
    const status = await within(killedAt, 10_000, 'A to exit');
    assert.equal(status.signal, 'SIGKILL');
    assert.equal(cut.originalResponse ?? null, null, `the PATCH on A ended without an answer: ${cut.message}`);
    const created = await events.waitFor('upload.created', onA.id, 10_000);
    assert.equal(created.data.size, file.size);

    // Same path on B, as behind a load balancer.
    const path = new URL(onA.url).pathname;
    const urlOnB = `${b.url}${path}`;
    const resumeStarted = Date.now();
    const head = await headOffset(b, urlOnB, user.token);
    const headMs = Date.now() - resumeStarted;
    assert.equal(head.status, 200, `HEAD on B answered ${head.status}`);
    assert.equal(head.length, file.size);
    assert.ok(head.offset >= chunk && head.offset < file.size, `offset ${head.offset} on B: want [${chunk}, ${file.size})`);

    // No endpoint: if B did not know the upload, tus-js-client would fail
    // instead of quietly starting a new one. Retries cover a 423 while the
    // dead node's lease runs out.
    onB = new TusClient(fileInput(file.path), {
      token: user.token,
      uploadUrl: urlOnB,
      metadata,
      chunkSize: chunk,
      retryDelays: [250, 500, 1000, 2000, 4000, 8000],
    });
    await onB.finish(60_000);
    assert.equal(onB.url, urlOnB);
    assert.equal(onB.requests.filter((r) => r.method === 'POST').length, 0, 'B resumed, created nothing');
    const firstHead = onB.requests.find((r) => r.method === 'HEAD' && r.status === 200);
    assert.equal(Number(firstHead.offset), head.offset, 'B resumed from the offset it reported');
    assert.equal(Number(onB.requests.at(-1).offset), file.size);

    const completed = await events.waitFor('upload.completed', onA.id, 15_000);
    assert.deepEqual(completed.data, { id: onA.id, size: file.size, filename: metadata.filename, filetype: metadata.filetype, sha256: file.sha256 });
    t.diagnostic(`killed at offset ${head.offset} (${head.offset % chunk === 0 ? 'a chunk boundary' : 'mid-chunk'}); first HEAD on B took ${headMs} ms; B's requests: ${onB.requests.map((r) => `${r.method} ${r.status}`).join(', ')}`);
  }),
);
