// A test client on headless Chromium's own EventSource, driven by
// playwright-core. The page is Edge's demo page (same origin as the stream);
// the events are collected in window.__events inside the page and waited for
// with page.waitForFunction.

import { chromium } from 'playwright-core';
import { redact } from './token.mjs';

/** chromiumPath is Debian's chromium unless CHROMIUM_PATH says otherwise. */
export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** launchChromium starts headless Chromium; close it with browser.close(). */
export function launchChromium() {
  return chromium.launch({
    executablePath: chromiumPath,
    // No --user-data-dir: Playwright refuses it here and makes a temp profile.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
}

export class BrowserClient {
  /**
   * open loads baseURL's demo page in a new page of browser and starts
   * `new EventSource(path)` in it, listening for "message", "probe" and
   * types.
   */
  static async open(browser, baseURL, path, { types = [] } = {}) {
    const c = new BrowserClient();
    c.kind = 'chromium EventSource';
    c.url = redact(baseURL + path); // for reports: the token stays out of them
    c.context = await browser.newContext();
    c.page = await c.context.newPage();
    c.page.setDefaultTimeout(15_000);
    c.console = [];
    c.conns = [];
    c.page.on('console', (m) => c.console.push(redact(`${m.type()}: ${m.text()}`)));
    c.page.on('pageerror', (e) => c.console.push(redact(`pageerror: ${e.message}`)));
    // Each stream request as the browser sent it: the Last-Event-ID header
    // is how we see that Chromium resumed by itself.
    c.page.on('request', (req) => {
      if (!req.url().includes('/v1/stream')) return;
      // lastEventId stays undefined for an attempt that got no answer (node
      // down): the browser's headers of a failed request are not reported.
      const conn = { type: req.resourceType(), lastEventId: undefined, status: null };
      c.conns.push(conn);
      req
        .response()
        .then(async (r) => {
          conn.status = r ? r.status() : 'no response';
          if (r) conn.lastEventId = (await req.allHeaders())['last-event-id'] ?? null;
        })
        .catch(() => {});
    });
    const res = await c.page.goto(baseURL + '/', { waitUntil: 'load' });
    if (!res || res.status() !== 200) {
      throw new Error(`demo page ${baseURL}/ answered ${res ? res.status() : 'nothing'}`);
    }
    await c.page.evaluate(
      ({ path, types }) => {
        window.__events = [];
        window.__opens = 0;
        window.__errors = 0;
        const es = new EventSource(path);
        window.__es = es;
        es.onopen = () => {
          window.__opens++;
        };
        es.onerror = () => {
          window.__errors++;
        };
        for (const type of ['message', 'probe', ...types]) {
          es.addEventListener(type, (e) => {
            let msg = null;
            try {
              msg = JSON.parse(e.data);
            } catch {}
            window.__events.push({ type, data: e.data, id: e.lastEventId, msg });
          });
        }
      },
      { path, types },
    );
    return c;
  }

  async snapshot() {
    const s = await this.page.evaluate(() => ({
      opens: window.__opens,
      errors: window.__errors,
      events: window.__events.map(({ type, data, id }) => ({ type, data, id })),
    }));
    return { ...s, conns: [...this.conns] };
  }

  async waitForOpens(n, timeout) {
    await this.page.waitForFunction((n) => window.__opens >= n, n, { timeout, polling: 50 });
  }

  /** waitForData: see NodeClient.waitForData. */
  async waitForData(matchers, timeout) {
    await this.page.waitForFunction(
      (matchers) =>
        matchers.every((m) =>
          window.__events.some(
            (e) =>
              e.type === m.type &&
              e.msg &&
              e.msg.topic === m.topic &&
              e.msg.data != null &&
              e.msg.data[m.key] === m.value,
          ),
        ),
      matchers,
      { timeout, polling: 50 },
    );
  }

  async waitForType(type, timeout) {
    const h = await this.page.waitForFunction(
      (type) => window.__events.find((e) => e.type === type),
      type,
      { timeout, polling: 50 },
    );
    return h.jsonValue();
  }

  async close() {
    await this.page.evaluate(() => window.__es && window.__es.close()).catch(() => {});
    await this.context.close();
  }

  async report() {
    let s;
    try {
      s = await this.snapshot();
    } catch (err) {
      return `client ${this.kind}: page unreadable: ${err.message}`;
    }
    const lines = [
      `client ${this.kind}: ${s.opens} opens, ${s.errors} errors, ${s.events.length} events`,
      `connections: ${JSON.stringify(this.conns)}`,
      `last events: ${JSON.stringify(s.events.slice(-20))}`,
      `console: ${this.console.slice(-20).join('\n')}`,
    ];
    return lines.join('\n');
  }
}

/**
 * openBrowserClient is the scenarios' client factory for Chromium: one
 * browser per test, closed with the harness.
 */
export async function openBrowserClient(h, baseURL, path, opts) {
  const browser = await launchChromium();
  h.onClose(() => browser.close());
  const c = await BrowserClient.open(browser, baseURL, path, opts);
  h.onClose(() => c.close());
  return c;
}
