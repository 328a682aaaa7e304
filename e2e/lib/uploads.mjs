// Uploads: tus-js-client (npm, the node build) against /v1/uploads/, raw
// tus requests through fetch, generated files with their SHA-256, and the
// uploader's event stream (topic user:<sub>) read as raw frames.
//
// Every tus request carries the user's token as `Authorization: Bearer`.
// tus-js-client's own retries are off unless a test turns them on
// (retryDelays), so a server error shows as the error it is, with its
// response, instead of a retried request.

import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { Upload } from 'tus-js-client';
import { postEvent, streamPath } from './api.mjs';
import { parseEnvelope } from './check.mjs';
import { waitFor } from './harness.mjs';
import { RawStream } from './sse-raw.mjs';
import { mintToken } from './token.mjs';

export const MiB = 1024 * 1024;

/**
 * uploadUser returns a fresh user {sub, token, topic}: a token with the
 * default subscribe patterns (which let a user follow user:<sub>) and the
 * right to publish to user:<sub>, only for the stream's live probes.
 */
export function uploadUser(prefix = 'up') {
  const sub = `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const topic = `user:${sub}`;
  return { sub, topic, token: mintToken({ sub, publish: [topic], ttl: 3600 }) };
}

/** endpointOf is the tus endpoint of a node, as tus-js-client is given it. */
export const endpointOf = (node) => `${node.url}/v1/uploads/`;

/** uploadIdOf is an upload's id: the last path segment of its tus URL. */
export function uploadIdOf(url) {
  return new URL(url).pathname.split('/').filter(Boolean).at(-1);
}

/**
 * randomFile writes size bytes to dir/name, head first (if given) and
 * random bytes after it, 1 MiB at a time (never the whole file in memory),
 * and returns {path, size, sha256}.
 */
export async function randomFile(dir, size, { name = `random-${size}.bin`, head = Buffer.alloc(0) } = {}) {
  const file = path.join(dir, name);
  const hash = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(MiB);
    let written = 0;
    if (head.length > 0) {
      const h = head.subarray(0, size);
      hash.update(h);
      await fh.write(h);
      written = h.length;
    }
    while (written < size) {
      const n = Math.min(chunk.length, size - written);
      const part = chunk.subarray(0, n);
      randomFillSync(part);
      hash.update(part);
      await fh.write(part);
      written += n;
    }
  } finally {
    await fh.close();
  }
  return { path: file, size, sha256: hash.digest('hex') };
}

/** sha256Of returns the hex SHA-256 of a Buffer or a file (by path), streamed. */
export async function sha256Of(input) {
  const hash = createHash('sha256');
  if (Buffer.isBuffer(input)) return hash.update(input).digest('hex');
  for await (const chunk of createReadStream(input)) hash.update(chunk);
  return hash.digest('hex');
}

/** randomBuffer returns n random bytes after head. */
export function randomBuffer(n, head = Buffer.alloc(0)) {
  return Buffer.concat([head, randomBytes(Math.max(0, n - head.length))]).subarray(0, n);
}

/**
 * TusClient runs one tus-js-client Upload and records every request it
 * made with the answer it got (method, URL, status, Upload-Offset and the
 * request's Upload-Concat), which is what a test asserts about resuming and
 * what a failure report shows.
 *
 *   done      resolves on onSuccess, rejects on onError (with tus-js-client's
 *             DetailedError: err.originalResponse is the HTTP answer)
 *   upload    the Upload, for abort() and start()
 *   requests  [{method, url, status, offset, length, concat}]
 */
export class TusClient {
  /**
   * @param input   a Buffer or an fs.ReadStream with a path (resumable)
   * @param opts    {token, endpoint, metadata, ...tus-js-client options};
   *                callbacks given here run after the recording ones
   * @param start   start at once (default true)
   */
  constructor(input, { token, endpoint, headers = {}, onSuccess, onError, onAfterResponse, ...opts } = {}, { start = true } = {}) {
    this.requests = [];
    this.errors = [];
    this.done = new Promise((resolve, reject) => {
      this.upload = new Upload(input, {
        endpoint,
        retryDelays: null,
        ...opts,
        headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
        onAfterResponse: (req, res) => {
          this.requests.push({
            method: req.getMethod(),
            url: req.getURL(),
            status: res.getStatus(),
            offset: res.getHeader('Upload-Offset') ?? null,
            length: res.getHeader('Upload-Length') ?? null,
            concat: req.getHeader('Upload-Concat') ?? null,
          });
          return onAfterResponse?.(req, res);
        },
        onSuccess: (payload) => {
          resolve(this.upload);
          onSuccess?.(payload);
        },
        onError: (err) => {
          this.errors.push(describeError(err));
          reject(err);
          onError?.(err);
        },
      });
    });
    // A test that expects a refusal awaits done itself; keep node from
    // calling an unobserved rejection fatal before it does.
    this.done.catch(() => {});
    if (start) this.upload.start();
  }

  get url() {
    return this.upload.url;
  }

  get id() {
    return this.upload.url ? uploadIdOf(this.upload.url) : undefined;
  }

  /**
   * finish waits for success within timeout ms; on an error it throws one
   * that names the HTTP answer.
   */
  async finish(timeout = 30_000) {
    let timer;
    try {
      return await Promise.race([
        this.done.catch((err) => {
          throw new Error(`upload failed: ${describeError(err)}`);
        }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`upload did not finish within ${timeout} ms`)), timeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * refusal waits for the upload to fail and returns {status, body,
   * headers} of the answer that failed it; it throws if the upload
   * succeeds or fails without an HTTP answer.
   */
  async refusal(timeout = 15_000) {
    let timer;
    try {
      const err = await Promise.race([
        this.done.then(
          () => {
            throw new Error(`the upload was accepted (${this.url}); expected a refusal`);
          },
          (e) => e,
        ),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no refusal within ${timeout} ms`)), timeout);
        }),
      ]);
      const res = err.originalResponse;
      if (!res) throw new Error(`the upload failed without an HTTP answer: ${describeError(err)}`);
      return {
        status: res.getStatus(),
        body: res.getBody(),
        headers: res.getUnderlyingObject()?.headers ?? {},
        method: err.originalRequest?.getMethod(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  report() {
    const lines = this.requests.map(
      (r) =>
        `  ${r.method} ${r.url} -> ${r.status}` +
        (r.offset !== null ? ` Upload-Offset: ${r.offset}` : '') +
        (r.concat !== null ? ` (Upload-Concat: ${r.concat})` : ''),
    );
    return [`tus-js-client requests (${this.requests.length}):`, ...lines, ...this.errors.map((e) => `  error: ${e}`)].join('\n');
  }
}

/** within resolves as promise does, or rejects after ms naming what. */
export async function within(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** describeError names a tus-js-client error's request and answer. */
export function describeError(err) {
  const req = err?.originalRequest;
  const res = err?.originalResponse;
  if (!res) return `${err?.message ?? err}${req ? ` (${req.getMethod()} ${req.getURL()})` : ''}`;
  return `${req?.getMethod()} ${req?.getURL()} -> HTTP ${res.getStatus()}: ${String(res.getBody()).slice(0, 300)}`;
}

/** fileInput opens path as tus-js-client's resumable file source. */
export function fileInput(p) {
  return createReadStream(p);
}

/**
 * cutMidChunk uploads the file at path with a TusClient in chunks of
 * `chunk` bytes sent at `rate` bytes/s, and calls cut(client) `after` ms
 * into the second PATCH: on a timer armed when the server has accepted the
 * first chunk (onProgress counts bytes handed to the socket, not bytes the
 * server has, so it gives no such signal). Returns the client and a promise
 * of what cut returned.
 */
export function cutMidChunk(path, { token, endpoint, metadata, chunk, rate, after, cut }) {
  let cutDone;
  const done = new Promise((resolve) => (cutDone = resolve));
  const client = new TusClient(fileInput(path), {
    token,
    endpoint,
    metadata,
    chunkSize: chunk,
    fileReader: pacedFileReader(rate),
    onChunkComplete: (_chunk, accepted) => {
      if (accepted === chunk) setTimeout(() => cut(client).then(cutDone), after);
    },
  });
  return { client, cut: done };
}

/**
 * pacedFileReader is a tus-js-client fileReader for an fs.ReadStream input
 * that sends each chunk's bytes at no more than bytesPerSecond: on
 * loopback a chunk otherwise goes through in a few milliseconds, and a
 * test that must cut a PATCH midway (abort, kill) needs it to last long
 * enough that a timer lands inside it. Pacing is how fast the client sends,
 * not a wait for anything.
 */
export function pacedFileReader(bytesPerSecond) {
  return {
    async openFile(input) {
      const file = input.path.toString();
      const { size } = await stat(file);
      return {
        size,
        slice(start, end) {
          const body = createReadStream(file, { start, end: end - 1, highWaterMark: 64 * 1024 }).pipe(pace(bytesPerSecond));
          body.size = end - start; // tus-js-client sends it as Content-Length
          return Promise.resolve({ value: body, done: end >= size });
        },
        close() {
          input.destroy();
        },
      };
    },
  };
}

// pace passes bytes through at no more than bytesPerSecond, from its
// first byte.
function pace(bytesPerSecond) {
  let begun;
  let sent = 0;
  return new Transform({
    transform(chunk, _enc, done) {
      begun ??= Date.now();
      sent += chunk.length;
      const due = begun + (sent / bytesPerSecond) * 1000;
      setTimeout(() => done(null, chunk), Math.max(0, due - Date.now()));
    },
  });
}

/**
 * tusRequest sends one raw tus request (Tus-Resumable: 1.0.0) to url (an
 * absolute URL or a path on node) and returns {status, headers, body}.
 * token null sends no Authorization.
 */
export async function tusRequest(node, method, url, { token, headers = {}, body } = {}) {
  const full = url.startsWith('http') ? url : `${node.url}${url}`;
  const res = await fetch(full, {
    method,
    headers: {
      'Tus-Resumable': '1.0.0',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body,
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text };
}

/**
 * createUpload creates an upload with a raw POST (Upload-Length size,
 * metadata as tus's Upload-Metadata) and returns {status, url, id, res}.
 */
export async function createUpload(node, token, size, metadata = {}) {
  const res = await tusRequest(node, 'POST', '/v1/uploads/', {
    token,
    headers: { 'Upload-Length': String(size), 'Upload-Metadata': encodeMetadata(metadata) },
  });
  const location = res.headers.get('location');
  const url = location ? new URL(location, endpointOf(node)).toString() : null;
  return { status: res.status, url, id: url ? uploadIdOf(url) : null, res };
}

/** encodeMetadata is tus's Upload-Metadata: "key base64(value)" pairs. */
export function encodeMetadata(metadata) {
  return Object.entries(metadata)
    .map(([k, v]) => `${k} ${Buffer.from(String(v)).toString('base64')}`)
    .join(',');
}

/**
 * headOffset sends HEAD for url as token's user and returns {status,
 * offset, length} (offset and length as numbers, or null).
 */
export async function headOffset(node, url, token) {
  const res = await tusRequest(node, 'HEAD', url, { token });
  const num = (h) => (res.headers.get(h) === null ? null : Number(res.headers.get(h)));
  return { status: res.status, offset: num('upload-offset'), length: num('upload-length'), headers: res.headers };
}

/**
 * UploadEvents follows a user's topic user:<sub> on node with a raw
 * stream and reads the upload.* frames: {event, id, fields, env, data}
 * (env the envelope, data its data). open returns once the stream is
 * live (an ephemeral probe the user published came back).
 */
export class UploadEvents {
  static async open(h, node, user, { timeout = 15_000 } = {}) {
    const e = new UploadEvents();
    e.user = user;
    e.raw = await RawStream.open(node.url + streamPath([user.topic], {}, { token: user.token }));
    h.onClose(() => e.raw.close());
    if (e.raw.res.status !== 200) {
      await e.raw.close();
      throw new Error(`stream of ${user.topic} on ${node.url} answered HTTP ${e.raw.res.status}: ${e.raw.text.slice(0, 500)}`);
    }
    await e.sync(node, timeout);
    return e;
  }

  /**
   * sync publishes ephemeral probes on the user's topic through node until
   * one comes back. The stream is ordered per topic, so once it is back,
   * every event published on the topic before it has arrived too.
   */
  async sync(node, timeout = 15_000) {
    const { topic, token } = this.user;
    const nonce = `p${Math.random().toString(36).slice(2)}`;
    const deadline = Date.now() + timeout;
    for (;;) {
      const res = await postEvent(node.url, topic, { type: 'probe', data: { probe: nonce }, ephemeral: true }, {}, { token });
      if (res.status < 200 || res.status > 299) {
        throw new Error(`probe on ${topic}: HTTP ${res.status}: ${JSON.stringify(res.body)}`);
      }
      try {
        await waitFor(
          () => this.raw.dataFrames().some((f) => f.event === 'probe' && parseEnvelope(f.data)?.data?.probe === nonce),
          { timeout: 300, what: 'probe' },
        );
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`stream of ${topic} never delivered a live probe within ${timeout} ms`);
      }
    }
  }

  /** all returns every upload.* frame so far, in order. */
  all() {
    return this.raw
      .dataFrames()
      .filter((f) => f.event?.startsWith('upload.'))
      .map((f) => {
        const env = parseEnvelope(f.data);
        return { event: f.event, id: f.id, fields: f.fields, raw: f.data, env, data: env?.data };
      });
  }

  /** of returns the frames about upload id, in order. */
  of(id) {
    return this.all().filter((f) => f.data?.id === id);
  }

  /**
   * waitFor waits for a frame of type event about upload id and returns the
   * first one. upload.failed for that id ends the wait at once, unless that
   * is the awaited event.
   */
  async waitFor(event, id, timeout = 15_000) {
    return waitFor(
      () => {
        const frames = this.of(id);
        const failed = frames.find((f) => f.event === 'upload.failed');
        if (failed && event !== 'upload.failed') {
          throw Object.assign(new Error(`upload ${id} failed: ${failed.raw}`), { fatal: true });
        }
        return frames.find((f) => f.event === event);
      },
      { timeout, what: () => `${event} for upload ${id} on ${this.user.topic}; upload frames so far:\n${this.summary()}` },
    );
  }

  summary() {
    return this.all()
      .map((f) => `  ${f.event}${f.id ? ` (id ${f.id})` : ''} ${f.raw}`)
      .slice(-40)
      .join('\n');
  }

  report() {
    return `stream ${this.raw.url}: upload frames:\n${this.summary()}`;
  }
}

/**
 * envelopeProblems checks a frame's envelope: {topic, data, ts} in that
 * order, the user's topic, a numeric ts. It returns what is wrong, or null.
 */
export function envelopeProblems(frame, topic) {
  const env = frame.env;
  if (!env) return `not an envelope: ${frame.raw}`;
  const keys = Object.keys(env).join(',');
  if (keys !== 'topic,data,ts') return `envelope keys ${keys}, want topic,data,ts: ${frame.raw}`;
  if (env.topic !== topic) return `envelope topic ${env.topic}, want ${topic}`;
  if (typeof env.ts !== 'number') return `ts is not a number: ${frame.raw}`;
  return null;
}
