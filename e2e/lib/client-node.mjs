// A test client on the npm `eventsource` package (the WHATWG EventSource for
// node). It records every event, every open and every connection attempt
// with the Last-Event-ID it sent, and keeps the raw bytes of each response,
// which is the evidence a failure report needs.

import { EventSource } from 'eventsource';
import { matches } from './check.mjs';
import { waitFor } from './harness.mjs';
import { redact } from './token.mjs';

// Characters of raw stream kept per connection: its start (retry, resets,
// replay) and its latest part.
const headKeep = 2048;
const tailKeep = 8192;

export class NodeClient {
  /**
   * @param {string} url full stream URL
   * @param {object} opts
   * @param {string[]} [opts.types] event types to listen for besides "message"
   * @param {string} [opts.initialLastEventId] sent as the Last-Event-ID header
   *   on the first connection (the package only sends one on reconnects)
   * @param {function} [opts.onError] called with (client, event) on each
   *   error event, after it is recorded; closing the client there stops the
   *   package's reconnect (it arms its timer after the handlers ran, and
   *   the timer does nothing once closed)
   */
  constructor(url, { types = [], initialLastEventId, onError } = {}) {
    this.kind = 'npm eventsource';
    this.url = redact(url); // for reports: the token stays out of them
    this.events = []; // {type, data, id, conn}
    this.opens = 0;
    this.errors = [];
    // {lastEventId, status, head, tail, endedAt}; endedAt: Date.now() when
    // the server ended the response body (not set when the client closed it)
    this.conns = [];
    const tapFetch = async (input, init) => {
      const headers = { ...(init.headers ?? {}) };
      if (this.conns.length === 0 && initialLastEventId !== undefined && !headers['Last-Event-ID']) {
        headers['Last-Event-ID'] = initialLastEventId;
      }
      const conn = { lastEventId: headers['Last-Event-ID'] ?? null, status: null, head: '', tail: '' };
      this.conns.push(conn);
      const res = await fetch(input, { ...init, headers });
      conn.status = res.status;
      if (!res.body) return res;
      const decoder = new TextDecoder();
      const tap = new TransformStream({
        transform(chunk, ctl) {
          const text = decoder.decode(chunk, { stream: true });
          if (conn.head.length < headKeep) conn.head += text.slice(0, headKeep - conn.head.length);
          conn.tail = (conn.tail + text).slice(-tailKeep);
          ctl.enqueue(chunk);
        },
        flush() {
          conn.endedAt = Date.now();
        },
      });
      return new Response(res.body.pipeThrough(tap), { status: res.status, headers: res.headers });
    };
    this.es = new EventSource(url, { fetch: tapFetch });
    this.es.onopen = () => {
      this.opens++;
    };
    this.es.onerror = (e) => {
      this.errors.push(e.message ?? 'error');
      if (onError) onError(this, e);
    };
    for (const type of ['message', 'probe', ...types]) {
      this.es.addEventListener(type, (e) => {
        this.events.push({ type, data: e.data, id: e.lastEventId, conn: this.conns.length });
      });
    }
  }

  async snapshot() {
    return { opens: this.opens, events: [...this.events], conns: this.conns.map(({ head, tail, ...c }) => c) };
  }

  /** waitForOpens waits until the stream has opened n times. */
  async waitForOpens(n, timeout) {
    await waitFor(() => this.opens >= n, { timeout, what: () => `${n} opens of ${this.url} (have ${this.opens})` });
  }

  /**
   * waitForData waits until, for every matcher {type, topic, key, value},
   * an event of that type arrived whose envelope has that topic and
   * data[key] === value.
   */
  async waitForData(matchers, timeout) {
    await waitFor(() => matchers.every((m) => this.events.some((e) => matches(e, m))), {
      timeout,
      what: () => `events ${JSON.stringify(matchers)} (have ${this.events.length} events)`,
    });
  }

  /** waitForType waits for the first event of type and returns it. */
  async waitForType(type, timeout) {
    return waitFor(() => this.events.find((e) => e.type === type), { timeout, what: `an event "${type}"` });
  }

  close() {
    this.es.close();
  }

  report() {
    const lines = [
      `client ${this.kind}: ${this.opens} opens, ${this.events.length} events, errors: ${JSON.stringify(this.errors.slice(-10))}`,
    ];
    this.conns.forEach((c, i) => {
      const end = c.endedAt ? `, ended by the server at ${new Date(c.endedAt).toISOString()}` : '';
      lines.push(`--- connection ${i + 1}: status ${c.status}, Last-Event-ID ${JSON.stringify(c.lastEventId)}${end}; raw start:`);
      lines.push(c.head.slice(0, 1200));
      lines.push(`--- connection ${i + 1}: raw end:`);
      lines.push(c.tail.slice(-1200));
    });
    return lines.join('\n');
  }
}

/** openNodeClient is the scenarios' client factory for npm eventsource. */
export function openNodeClient(h, baseURL, path, opts) {
  const c = new NodeClient(baseURL + path, opts);
  h.onClose(() => c.close());
  return c;
}
