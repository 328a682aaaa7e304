// With Redis, a user's upload quotas hold across nodes: one unfinished
// upload allowed, made on node A, and node B refuses the next (429, in
// Edge's JSON error shape); once the upload finishes on A, B accepts a new
// one. The nodes share Redis but not an upload directory, as behind a load
// balancer with sticky sessions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withHarness } from '../lib/harness.mjs';
import { MiB, createUpload, randomBuffer, tusRequest, uploadUser } from '../lib/uploads.mjs';

test('the concurrent-uploads quota holds across two nodes sharing Redis', { timeout: 60_000 }, (t) =>
  withHarness(t, async (h) => {
    const redis = await h.redis();
    const env = { EDGE_REDIS_ADDRS: redis.addr, EDGE_UPLOADS_MAX_CONCURRENT_PER_USER: '1' };
    const a = await h.edge({ name: 'edge-a', env: { ...env, EDGE_UPLOADS_DIR: h.tempDir('uploads-a') } });
    const b = await h.edge({ name: 'edge-b', env: { ...env, EDGE_UPLOADS_DIR: h.tempDir('uploads-b') } });
    const user = uploadUser('quota-nodes');
    const metadata = { filename: 'q.bin', filetype: 'application/octet-stream' };

    const first = await createUpload(a, user.token, MiB, metadata);
    assert.equal(first.status, 201, first.res.body);
    const refused = await createUpload(b, user.token, MiB, metadata);
    assert.equal(refused.status, 429, refused.res.body);
    assert.equal(JSON.parse(refused.res.body).error?.code, 'too_many_uploads', refused.res.body);

    // A finishes it (only A's storage holds it); the slot is free on B too.
    const done = await tusRequest(a, 'PATCH', first.url, {
      token: user.token,
      headers: { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: randomBuffer(MiB),
    });
    assert.equal(done.status, 204, done.body);
    const next = await createUpload(b, user.token, MiB, metadata);
    assert.equal(next.status, 201, next.res.body);
  }),
);
