// The demo page GET / as a person uses it, in Chromium: opened with the
// token in its URL (/?access_token=..., the link dev mode prints), it
// follows topics over its EventSource (token as access_token) and publishes
// with its form (token as Bearer); the published event shows in its log
// with its id. A screenshot is left in the test's log folder (demo.png).

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { uniqueTopics } from '../lib/api.mjs';
import { launchChromium } from '../lib/client-browser.mjs';
import { withHarness } from '../lib/harness.mjs';
import { syncLive } from '../lib/scenarios.mjs';
import { mintToken, redact } from '../lib/token.mjs';

// logLines reads the page's #log: newest first, one line per entry.
const logLines = (page) => page.$eval('#log', (el) => el.textContent.split('\n').filter(Boolean));

// events parses the log's event lines, "#<lastEventId> <data>", oldest first.
function events(lines) {
  return lines
    .map((l) => /^#(\S*) (.*)$/.exec(l))
    .filter(Boolean)
    .map(([, id, data]) => ({ type: 'message', id, data }))
    .reverse();
}

// pageClient lets syncLive wait on what the page shows.
function pageClient(page) {
  return {
    async waitForData(matchers, timeout) {
      await page.waitForFunction(
        (matchers) => {
          const shown = document
            .getElementById('log')
            .textContent.split('\n')
            .map((l) => /^#\S* (.*)$/.exec(l))
            .filter(Boolean)
            .map(([, data]) => {
              try {
                return JSON.parse(data);
              } catch {
                return null;
              }
            });
          return matchers.every((m) =>
            shown.some((e) => e && e.topic === m.topic && e.data != null && e.data[m.key] === m.value),
          );
        },
        matchers,
        { timeout, polling: 50 },
      );
    },
  };
}

test('chromium: the demo page follows and publishes with the token from its URL', { timeout: 90_000 }, (t) =>
  withHarness(t, async (h) => {
    const node = await h.edge();
    const topics = uniqueTopics('demo', 2);
    // A user who may follow both topics and publish to the first one only.
    const token = mintToken({ sub: 'demo-user', subscribe: topics, publish: [topics[0]] });

    const browser = await launchChromium();
    h.onClose(() => browser.close());
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    h.onClose(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const seen = [];
    page.on('console', (m) => seen.push(redact(`${m.type()}: ${m.text()}`)));
    page.on('pageerror', (e) => seen.push(redact(`pageerror: ${e.message}`)));
    const streams = [];
    page.on('request', (req) => {
      if (req.url().includes('/v1/')) streams.push({ method: req.method(), url: redact(req.url()), type: req.resourceType() });
    });
    h.report = async () =>
      [
        `requests: ${JSON.stringify(streams)}`,
        `state: ${await page.$eval('#state', (el) => el.textContent).catch((e) => e.message)}`,
        `log:\n${(await logLines(page).catch(() => [])).join('\n')}`,
        `console:\n${seen.join('\n')}`,
      ].join('\n');

    const res = await page.goto(`${node.url}/?access_token=${encodeURIComponent(token)}`, { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    // The page warns in #auth when its URL has no token.
    assert.equal(await page.$eval('#auth', (el) => el.textContent), '');

    await page.fill('#topics', topics.join(', '));
    await page.click('#follow button');
    await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { polling: 50 });
    // The page's stream carries the token in its URL, as EventSource must.
    assert.ok(
      streams.some((r) => r.type === 'eventsource' && r.url.includes('access_token=REDACTED')),
      `the page's EventSource request: ${JSON.stringify(streams)}`,
    );

    // "open" is the response's start, not yet the subscription: wait until
    // live events show. The page shows "message" events only, so the probes
    // are ephemeral events of that type (no id of their own).
    await syncLive(pageClient(page), node.url, topics, 15_000, { type: 'message' });
    const before = events(await logLines(page));
    const cursorBefore = before.at(-1).id;

    // Publish as the person does: the page's form, the token as Bearer.
    const payload = { hello: 'world', nonce: Math.random().toString(36).slice(2) };
    await page.fill('#ptopic', topics[0]);
    await page.fill('#pdata', JSON.stringify(payload));
    await page.click('#publish button');

    // The page logs the publish answer, then the event from its stream.
    const published = await page.waitForFunction(
      () => document.getElementById('log').textContent.match(/^publish (\d+) (.*)$/m)?.slice(1),
      null,
      { polling: 50 },
    );
    const [status, bodyText] = await published.jsonValue();
    assert.equal(status, '201', `publish answered ${status} ${bodyText}`);
    const body = JSON.parse(bodyText);
    assert.equal(body.topic, topics[0]);
    assert.equal(body.seq, 1);

    await page.waitForFunction(
      (nonce) => document.getElementById('log').textContent.includes(`"nonce":"${nonce}"`),
      payload.nonce,
      { polling: 50 },
    );
    const shown = events(await logLines(page)).filter((e) => e.data.includes(`"nonce":"${payload.nonce}"`));
    assert.equal(shown.length, 1, `the event shows once: ${JSON.stringify(shown)}`);
    const [event] = shown;
    // A stored event carries an id, the stream's new cursor: not empty, and
    // not the position the probes (ephemeral, without ids) were shown with.
    assert.ok(event.id, `event shown without an id: ${JSON.stringify(event)}`);
    assert.notEqual(event.id, cursorBefore, 'the stored event did not move the cursor');
    assert.match(event.id, /^[\x21-\x7e]+$/);
    const env = JSON.parse(event.data);
    assert.deepEqual(env, { topic: topics[0], data: payload, ts: env.ts });
    assert.equal(await page.$eval('#state', (el) => el.textContent), 'open');
    assert.deepEqual(seen.filter((l) => l.startsWith('pageerror')), []);

    const shot = path.join(h.logDir, 'demo.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
  }),
);
