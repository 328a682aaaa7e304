// A raw SSE reader on fetch: it keeps the bytes and splits them into frames
// exactly as sent, so tests can check the wire format itself (which lines a
// frame has, in which order), which EventSource clients hide.

import { matches } from './check.mjs';
import { waitFor } from './harness.mjs';
import { redact } from './token.mjs';

/**
 * RawStream is one GET of a stream URL. frames are the blocks between blank
 * lines, each a list of [field, value] in order (comments have field "").
 */
export class RawStream {
  static async open(url, { headers = {}, timeout = 10_000 } = {}) {
    const s = new RawStream();
    s.url = redact(url); // for reports: the token stays out of them
    s.text = '';
    s.ctl = new AbortController();
    s.res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: s.ctl.signal });
    s.ended = false;
    s.done = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of s.res.body) s.text += decoder.decode(chunk, { stream: true });
      } catch {
        // aborted by close(), or the server went away
      }
      s.ended = true;
    })();
    s.timeout = timeout;
    return s;
  }

  /** frames parses the complete frames received so far. */
  frames() {
    const complete = this.text.slice(0, this.text.lastIndexOf('\n\n') + 2);
    return complete
      .split('\n\n')
      .filter((block) => block !== '')
      .map((block) =>
        block.split('\n').map((line) => {
          const i = line.indexOf(':');
          if (i < 0) return [line, ''];
          const value = line.slice(i + 1);
          return [line.slice(0, i), value.startsWith(' ') ? value.slice(1) : value];
        }),
      );
  }

  /** dataFrames returns the frames that carry data, as {id, event, data}. */
  dataFrames() {
    return this.frames()
      .filter((f) => f.some(([k]) => k === 'data'))
      .map((f) => ({
        id: f.find(([k]) => k === 'id')?.[1],
        event: f.find(([k]) => k === 'event')?.[1],
        data: f.filter(([k]) => k === 'data').map(([, v]) => v).join('\n'),
        fields: f.map(([k]) => k),
      }));
  }

  /** waitForDataFrames waits until n data frames arrived and returns them. */
  async waitForDataFrames(n, timeout = this.timeout) {
    await waitFor(() => this.dataFrames().length >= n, {
      timeout,
      what: () => `${n} data frames on ${this.url}; got so far:\n${this.text.slice(-2000)}`,
    });
    return this.dataFrames();
  }

  /** waitForData: see NodeClient.waitForData. */
  async waitForData(matchers, timeout = this.timeout) {
    const events = () => this.dataFrames().map((f) => ({ type: f.event ?? 'message', data: f.data }));
    await waitFor(() => matchers.every((m) => events().some((e) => matches(e, m))), {
      timeout,
      what: () => `events ${JSON.stringify(matchers)} on ${this.url}; got so far:\n${this.text.slice(-2000)}`,
    });
  }

  /** waitForText waits until the raw text matches re. */
  async waitForText(re, timeout = this.timeout) {
    await waitFor(() => re.test(this.text), { timeout, what: `${re} on ${this.url}` });
  }

  /** lastId is the value of the last id line received. */
  lastId() {
    const ids = this.frames().flatMap((f) => f.filter(([k]) => k === 'id').map(([, v]) => v));
    return ids.at(-1);
  }

  async close() {
    this.ctl.abort();
    await this.done;
  }
}
