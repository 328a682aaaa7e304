// Resume from a stored URL in a new process: a node process uploads with
// tus-js-client's FileUrlStorage, aborts midway and exits; a second process
// with the same storage file finds the upload (findPreviousUploads),
// resumes it (resumeFromPreviousUpload) from the server's offset and
// completes it, with the right sha256.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor, withHarness } from '../lib/harness.mjs';
import { MiB, UploadEvents, endpointOf, headOffset, randomFile, uploadIdOf, uploadUser } from '../lib/uploads.mjs';

const child = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../lib/tus-child.mjs');

// runChild runs lib/tus-child.mjs with args and returns its RESULT and
// exit status.
async function runChild(h, name, args, timeout = 45_000) {
  const p = h.spawn(name, process.execPath, [child], { ...process.env, TUS_CHILD: JSON.stringify(args) });
  const status = await waitFor(() => p.exitStatus, { timeout, what: `${name} to exit` });
  const line = p.lines.find((l) => l.startsWith('RESULT '));
  assert.ok(line, `${name} printed no RESULT (exit ${JSON.stringify(status)}):\n${p.tail()}`);
  return { status, result: JSON.parse(line.slice('RESULT '.length)) };
}

test('a new process resumes an upload from the URL a previous process stored', { timeout: 120_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const user = uploadUser('resume');
    const events = await UploadEvents.open(h, node, user);
    const dir = h.tempDir('files');
    const file = await randomFile(dir, 64 * MiB);
    const chunk = 16 * MiB;
    const args = {
      endpoint: endpointOf(node),
      token: user.token,
      file: file.path,
      storage: path.join(dir, 'tus-urls.json'),
      chunkSize: chunk,
      metadata: { filename: 'resume.bin', filetype: 'application/octet-stream' },
    };
    // The first process sends at 64 MiB/s (a chunk lasts 250 ms) and aborts
    // 100 ms into the second PATCH.
    const abortArgs = { ...args, mode: 'abort', paceBytesPerSecond: 64 * MiB, abortAfterMs: 100 };
    h.report = () => events.report();

    const first = await runChild(h, 'tus-abort', abortArgs);
    assert.deepEqual(first.status, { code: 0, signal: null }, JSON.stringify(first.result));
    const url = first.result.url;
    const id = uploadIdOf(url);
    const head = await headOffset(node, url, user.token);
    assert.equal(head.status, 200);
    assert.ok(head.offset >= chunk && head.offset < file.size, `server offset ${head.offset} after the first process: want [${chunk}, ${file.size})`);
    t.diagnostic(`the first process left the upload at offset ${head.offset} (${head.offset % chunk === 0 ? 'a chunk boundary' : 'mid-chunk'})`);

    const second = await runChild(h, 'tus-resume', { ...args, mode: 'resume' });
    assert.deepEqual(second.status, { code: 0, signal: null }, JSON.stringify(second.result));
    const { requests } = second.result;
    assert.equal(second.result.previousUrl, url, 'the stored URL is the first process’s upload');
    assert.equal(second.result.url, url, 'the second process finished that same upload');
    assert.deepEqual(
      { method: requests[0].method, status: requests[0].status, offset: Number(requests[0].offset) },
      { method: 'HEAD', status: 200, offset: head.offset },
      `the second process resumed from the server's offset: ${JSON.stringify(requests)}`,
    );
    assert.ok(requests.slice(1).every((r) => r.method === 'PATCH' && r.status === 204), JSON.stringify(requests));
    assert.equal(Number(requests.at(-1).offset), file.size);

    const completed = await events.waitFor('upload.completed', id, 15_000);
    assert.deepEqual(completed.data, { id, size: file.size, filename: 'resume.bin', filetype: 'application/octet-stream', sha256: file.sha256 });
    await events.sync(node);
    assert.deepEqual(events.all().filter((f) => f.event === 'upload.created').map((f) => f.data.id), [id]);
  }),
);
