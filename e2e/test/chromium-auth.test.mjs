// Chromium's EventSource refused: a stream with a topic outside the token's
// patterns (403), with no token at all, or with an expired one (401). Each is
// answered before the stream starts with a JSON error, and the browser gives
// up for good: a non-200 answer fails the EventSource (readyState CLOSED),
// which never reconnects, so a page with a bad token does not hammer the
// server.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { streamPath, uniqueTopics } from '../lib/api.mjs';
import { BrowserClient, launchChromium } from '../lib/client-browser.mjs';
import { waitFor, withHarness } from '../lib/harness.mjs';
import { mintToken } from '../lib/token.mjs';

// expectRefused opens `new EventSource(path)` in a fresh page, waits until
// its readyState is CLOSED, checks it never opened nor retried, and returns
// the status the browser got and the JSON error body of the same request
// made with the page's fetch (Chromium does not keep an EventSource's
// response body for the network events to read).
async function expectRefused(h, browser, node, path) {
  const c = await BrowserClient.open(browser, node.url, path);
  h.onClose(() => c.close());
  h.report = () => c.report();
  // An open (a stream that should not be) ends the wait at once too.
  await c.page.waitForFunction(() => window.__es.readyState === EventSource.CLOSED || window.__opens > 0, null, {
    polling: 50,
  });
  const state = await c.page.evaluate(() => ({
    readyState: window.__es.readyState,
    opens: window.__opens,
    errors: window.__errors,
    events: window.__events.length,
  }));
  assert.deepEqual(state, { readyState: 2, opens: 0, errors: 1, events: 0 }, 'closed without ever opening');
  // The response event comes from the browser process, maybe after the
  // page saw the failure: wait for it rather than race it.
  await waitFor(() => c.conns.length > 0 && c.conns.every((x) => x.status !== null), {
    timeout: 5000,
    what: () => `the stream response in the browser's network events: ${JSON.stringify(c.conns)}`,
  });
  assert.deepEqual(
    c.conns.map((x) => x.type),
    ['eventsource'],
    `one EventSource request, no retry: ${JSON.stringify(c.conns)}`,
  );
  const { status } = c.conns[0];
  const res = await c.page.evaluate(async (path) => {
    const r = await fetch(path, { headers: { Accept: 'text/event-stream' } });
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  }, path);
  await c.close();
  assert.equal(res.status, status, 'the same request by fetch gets the same answer');
  assert.match(res.type ?? '', /^application\/json/, `content-type of the ${status} answer`);
  let body;
  try {
    body = JSON.parse(res.body);
  } catch {
    assert.fail(`the ${status} answer is not JSON: ${res.body}`);
  }
  return { status, body };
}

test('chromium EventSource is refused, and stays closed, without a valid token or for a forbidden topic', { timeout: 90_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const browser = await launchChromium();
    h.onClose(() => browser.close());
    const tokens = [];

    await t.test('a topic outside the token: 403 naming it', async () => {
      const [mine, other] = uniqueTopics('forbidden', 2);
      // Allowed: exactly `mine`. The forbidden topic comes second, so the
      // answer proves every topic is checked, not the first one only.
      const token = mintToken({ sub: 'alice', subscribe: [mine] });
      tokens.push(token);
      const { status, body } = await expectRefused(h, browser, node, streamPath([mine, other], {}, { token }));
      assert.equal(status, 403);
      assert.equal(body.error.code, 'forbidden');
      assert.ok(body.error.message.includes(`topic "${other}"`), `message names the topic: ${body.error.message}`);
      assert.ok(!body.error.message.includes(`"${mine}"`), `message names only the refused topic: ${body.error.message}`);
    });

    await t.test('no token: 401', async () => {
      const [a] = uniqueTopics('notoken', 1);
      const { status, body } = await expectRefused(h, browser, node, streamPath([a], {}, { token: null }));
      assert.equal(status, 401);
      assert.equal(body.error.code, 'unauthorized');
    });

    await t.test('an expired token: 401', async () => {
      const [a] = uniqueTopics('expired', 1);
      // Expired two minutes ago: well past the server's leeway (30 s).
      const token = mintToken({ sub: 'alice', subscribe: ['e2e:*'], exp: Math.floor(Date.now() / 1000) - 120 });
      tokens.push(token);
      const { status, body } = await expectRefused(h, browser, node, streamPath([a], {}, { token }));
      assert.equal(status, 401);
      assert.equal(body.error.code, 'invalid_token');
      assert.match(body.error.message, /expired/);
      assert.ok(!body.error.message.includes(token), 'the error body must not quote the token');
    });

    // A query token is a bearer credential: it must not reach the log,
    // refused or not. The node is stopped first, so its log is complete.
    await node.stop('SIGTERM', 15_000);
    for (const token of tokens) {
      const signature = token.split('.')[2];
      assert.ok(!node.proc.lines.some((l) => l.includes(signature)), 'a token from the URL appears in the server log');
    }
  }),
);
