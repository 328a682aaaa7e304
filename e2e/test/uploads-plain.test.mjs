// A plain tus-js-client upload of a few MB of random bytes: it succeeds,
// and the uploader's stream (user:<sub>) carries upload.created, then
// upload.progress (ephemeral: no id line), then upload.completed with the
// SHA-256 of the whole file, in that order.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import {
  MiB,
  TusClient,
  UploadEvents,
  endpointOf,
  envelopeProblems,
  fileInput,
  headOffset,
  randomFile,
  uploadUser,
} from '../lib/uploads.mjs';

test('a plain upload completes with its sha256 and created, progress, completed events in order', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const user = uploadUser('plain');
    const events = await UploadEvents.open(h, node, user);
    const file = await randomFile(h.tempDir('files'), 4 * MiB + 123);
    const metadata = { filename: 'plain.bin', filetype: 'application/octet-stream' };

    const c = new TusClient(fileInput(file.path), { token: user.token, endpoint: endpointOf(node), metadata });
    h.report = () => `${c.report()}\n${events.report()}`;
    await c.finish(30_000);

    assert.match(c.url, new RegExp(`^${node.url}/v1/uploads/[^/]+$`), 'Location is an upload URL under /v1/uploads/');
    const id = c.id;
    assert.deepEqual(
      c.requests.map((r) => [r.method, r.status]),
      [
        ['POST', 201],
        ['PATCH', 204],
      ],
    );
    const head = await headOffset(node, c.url, user.token);
    assert.deepEqual({ status: head.status, offset: head.offset, length: head.length }, { status: 200, offset: file.size, length: file.size });

    const completed = await events.waitFor('upload.completed', id, 15_000);
    // Whatever the server sent about the upload before this probe is here now.
    await events.sync(node);
    const frames = events.of(id);
    const kinds = frames.map((f) => f.event);
    // created, one or more progress, completed: nothing else, in that order.
    assert.match(kinds.join(' '), /^upload\.created( upload\.progress)+ upload\.completed$/, `frames for ${id}: ${kinds.join(', ')}`);

    for (const f of frames) assert.equal(envelopeProblems(f, user.topic), null);
    const created = frames[0];
    assert.ok(created.id, 'upload.created is a stored event: it has an id line');
    assert.deepEqual(created.data, { id, size: file.size, filename: metadata.filename, filetype: metadata.filetype });

    const progress = frames.filter((f) => f.event === 'upload.progress');
    let last = 0;
    for (const p of progress) {
      assert.deepEqual(p.fields, ['event', 'data'], `upload.progress is ephemeral (no id line): ${p.raw}`);
      assert.deepEqual(Object.keys(p.data).sort(), ['id', 'offset', 'size']);
      assert.equal(p.data.size, file.size);
      assert.ok(Number.isInteger(p.data.offset) && p.data.offset >= last && p.data.offset <= file.size, `progress offsets ${progress.map((x) => x.data.offset)}`);
      last = p.data.offset;
    }
    assert.equal(last, file.size, 'the last progress event is at the end of the upload');

    assert.ok(completed.id, 'upload.completed is a stored event: it has an id line');
    assert.deepEqual(completed.data, {
      id,
      size: file.size,
      filename: metadata.filename,
      filetype: metadata.filetype,
      sha256: file.sha256,
    });
  }),
);
