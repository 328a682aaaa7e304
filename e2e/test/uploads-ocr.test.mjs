// OCR: a PNG drawn by ImageMagick with known text, uploaded to a node with
// EDGE_UPLOADS_OCR=true, gets upload.processed after upload.completed; its
// textUrl serves the recognised text to the owner (and to no one else).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { withHarness } from '../lib/harness.mjs';
import { TusClient, UploadEvents, endpointOf, fileInput, sha256Of, uploadUser } from '../lib/uploads.mjs';

const run = promisify(execFile);

test('OCR of an uploaded image yields its text', { timeout: 90_000 }, async (t) => {
  // The test command installs Debian's imagemagick; another convert (a
  // GraphicsMagick stand-in) does not take these options.
  const { stdout: version } = await run('convert', ['-version']);
  assert.match(version, /^Version: ImageMagick/, `convert is not ImageMagick's: ${version.split('\n')[0]}`);

  await withHarness(t, async (h) => {
    const dir = h.tempDir('files');
    const image = path.join(dir, 'ocr.png');
    await run('convert', [
      '-size', '900x200', 'xc:white',
      '-font', 'DejaVu-Sans', '-pointsize', '56', '-fill', 'black',
      '-annotate', '+30+130', 'EDGE OCR 4217',
      image,
    ]);

    const node = await h.edge({ env: { EDGE_UPLOADS_OCR: 'true' } });
    const user = uploadUser('ocr');
    const events = await UploadEvents.open(h, node, user);
    const metadata = { filename: 'ocr.png', filetype: 'image/png' };
    const c = new TusClient(fileInput(image), { token: user.token, endpoint: endpointOf(node), metadata });
    h.report = () => `${c.report()}\n${events.report()}`;
    await c.finish(20_000);
    const id = c.id;

    const completed = await events.waitFor('upload.completed', id, 15_000);
    assert.equal(completed.data.sha256, await sha256Of(image));
    const processed = await events.waitFor('upload.processed', id, 60_000);
    const kinds = events.of(id).map((f) => f.event).filter((k) => k !== 'upload.progress');
    assert.deepEqual(kinds, ['upload.created', 'upload.completed', 'upload.processed']);
    assert.ok(processed.id, 'upload.processed is a stored event: it has an id line');
    assert.deepEqual(Object.keys(processed.data).sort(), ['id', 'processor', 'textUrl']);
    assert.equal(typeof processed.data.processor, 'string');
    assert.ok(processed.data.processor.length > 0);
    const { textUrl } = processed.data;
    assert.match(textUrl, /^\/[^/]/, `textUrl ${textUrl} is a path on the node`);

    const res = await fetch(new URL(textUrl, node.url), {
      headers: { Authorization: `Bearer ${user.token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.match(text, /EDGE/, `OCR text: ${JSON.stringify(text)}`);
    assert.match(text, /4217/, `OCR text: ${JSON.stringify(text)}`);
    t.diagnostic(`OCR text: ${JSON.stringify(text.trim())}; Content-Type ${res.headers.get('content-type')}`);

    // The text is the owner's, like the upload.
    const other = uploadUser('ocr-other');
    const theirs = await fetch(new URL(textUrl, node.url), {
      headers: { Authorization: `Bearer ${other.token}` },
      signal: AbortSignal.timeout(10_000),
    });
    await theirs.arrayBuffer();
    assert.equal(theirs.status, 404);
  });
});
