// Pause and resume with tus-js-client: abort() mid-upload (64 MiB in 16 MiB
// chunks), the server holds a partial offset (HEAD), start() again resumes
// the same upload from there (HEAD, then PATCH from that offset, no new
// POST) and it completes with the right sha256.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  UploadEvents,
  cutMidChunk,
  endpointOf,
  headOffset,
  randomFile,
  uploadUser,
} from '../lib/uploads.mjs';

test('abort() then start() resumes the upload from the offset the server holds', { timeout: 90_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const user = uploadUser('pause');
    const events = await UploadEvents.open(h, node, user);
    const file = await randomFile(h.tempDir('files'), 64 * MiB);
    const metadata = { filename: 'pause.bin', filetype: 'application/octet-stream' };
    const chunk = 16 * MiB;

    // The client sends at 64 MiB/s (a chunk lasts 250 ms) and pauses on a
    // timer armed when the server has accepted the first chunk: 100 ms into
    // the second PATCH, which cuts it midway. onProgress counts bytes
    // handed to the socket, not bytes the server has: no signal for this.
    const { client: c, cut: pausedAt } = cutMidChunk(file.path, {
      token: user.token,
      endpoint: endpointOf(node),
      metadata,
      chunk,
      rate: 64 * MiB,
      after: 100,
      cut: (client) => client.upload.abort(),
    });
    h.report = () => `${c.report()}\n${events.report()}`;
    await Promise.race([pausedAt, c.finish(30_000).then(() => assert.fail('the upload finished before the pause'))]);
    const url = c.url;
    const id = c.id;

    const head = await headOffset(node, url, user.token);
    assert.equal(head.status, 200, 'HEAD of the paused upload');
    assert.equal(head.length, file.size);
    assert.ok(head.offset >= chunk && head.offset < file.size, `server offset ${head.offset} after the pause: want [${chunk}, ${file.size})`);
    t.diagnostic(`paused at server offset ${head.offset} (${head.offset % chunk === 0 ? 'a chunk boundary' : 'mid-chunk'})`);
    // A paused upload stays paused: the offset does not move without a client.
    assert.equal((await headOffset(node, url, user.token)).offset, head.offset);

    const before = c.requests.length;
    c.upload.start();
    await c.finish(60_000);
    assert.equal(c.url, url, 'the resumed upload is the same upload');

    const resumed = c.requests.slice(before);
    assert.deepEqual(
      { method: resumed[0].method, status: resumed[0].status, offset: Number(resumed[0].offset) },
      { method: 'HEAD', status: 200, offset: head.offset },
      'start() after abort() asks the server for its offset first',
    );
    assert.ok(resumed.slice(1).length >= 1 && resumed.slice(1).every((r) => r.method === 'PATCH' && r.status === 204), c.report());
    assert.equal(c.requests.filter((r) => r.method === 'POST').length, 1, 'no second upload was created');
    assert.equal(Number(resumed.at(-1).offset), file.size);

    const completed = await events.waitFor('upload.completed', id, 15_000);
    assert.deepEqual(completed.data, { id, size: file.size, filename: metadata.filename, filetype: metadata.filetype, sha256: file.sha256 });
    await events.sync(node);
    assert.deepEqual(
      events.all().filter((f) => f.event === 'upload.created').map((f) => f.data.id),
      [id],
      'one upload.created: resuming created nothing',
    );
  }),
);
