// parallelUploads: 3 with tus-js-client: three partial uploads
// (Upload-Concat: partial) and a final one that concatenates them
// (concatenation extension); upload.completed of the final upload carries
// the file's size, name, type and sha256.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import { MiB, TusClient, UploadEvents, endpointOf, fileInput, headOffset, randomFile, uploadIdOf, uploadUser } from '../lib/uploads.mjs';

test('parallelUploads: 3 completes as one final upload with the right sha256', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const user = uploadUser('parallel');
    const events = await UploadEvents.open(h, node, user);
    // Not a multiple of 3: the last part is longer than the others.
    const file = await randomFile(h.tempDir('files'), 12 * MiB + 2);
    const metadata = { filename: 'parallel.bin', filetype: 'application/octet-stream' };

    const c = new TusClient(fileInput(file.path), {
      token: user.token,
      endpoint: endpointOf(node),
      metadata,
      parallelUploads: 3,
    });
    h.report = () => `${c.report()}\n${events.report()}`;
    await c.finish(45_000);

    const posts = c.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(
      posts.map((r) => [r.concat?.split(';')[0], r.status]),
      [
        ['partial', 201],
        ['partial', 201],
        ['partial', 201],
        ['final', 201],
      ],
      c.report(),
    );
    const partUrls = posts[3].concat.slice('final;'.length).split(' ');
    assert.equal(new Set(partUrls).size, 3);
    const id = c.id;
    assert.ok(!partUrls.map(uploadIdOf).includes(id), 'the final upload is an upload of its own');

    const head = await headOffset(node, c.url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: file.size, length: file.size });

    const completed = await events.waitFor('upload.completed', id, 20_000);
    assert.deepEqual(completed.data, { id, size: file.size, filename: metadata.filename, filetype: metadata.filetype, sha256: file.sha256 });
  }),
);
