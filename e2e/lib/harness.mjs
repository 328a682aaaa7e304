// Harness: the processes an end-to-end test needs (redis-server, bin/edge,
// versitygw), on free loopback ports, with their logs captured and
// everything killed at the end, also when the test fails or times out.
//
// Nothing here builds: `make build` (or `make test-e2e`) puts bin/edge in place
// first; EDGE_BIN points elsewhere.

import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { testSecret } from './token.mjs';

const e2eDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** EDGE_BIN, else ../bin/edge relative to e2e/. */
export const edgeBin = process.env.EDGE_BIN
  ? path.resolve(e2eDir, process.env.EDGE_BIN)
  : path.resolve(e2eDir, '../bin/edge');

/** Where each run leaves the logs of the processes it started. */
export const logRoot = process.env.E2E_LOG_DIR
  ? path.resolve(process.env.E2E_LOG_DIR)
  : path.join(e2eDir, 'logs');

// setpriv --pdeathsig makes a child die with the test process even when that
// is SIGKILLed (a runner timeout), so no redis-server or edge outlives a run
// and holds its port.
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

// Children still alive, killed on exit as the last line of defence.
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * waitFor polls cond (sync or async) until it returns a truthy value, which
 * it returns, or throws after timeout ms naming what it waited for (a string,
 * or a function called then, to describe the state at the deadline).
 * An error cond throws counts as "not yet", unless it is fatal().
 */
export async function waitFor(cond, { timeout = 10_000, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
      lastErr = undefined;
    } catch (err) {
      if (err.fatal) throw err;
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr ? ` (last error: ${lastErr.message})` : '';
      const desc = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeout} ms waiting for ${desc}${why}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** fatal marks an error that ends a waitFor at once. */
export function fatal(message) {
  return Object.assign(new Error(message), { fatal: true });
}

/** freePort returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// redisCommand sends one command (RESP) and resolves the first line of the
// reply, or rejects on a connection error or after 2 s.
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    sock.setTimeout(2000, () => {
      sock.destroy();
      reject(new Error(`redis ${args[0]}: no answer`));
    });
    sock.on('error', reject);
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
    });
    sock.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        sock.destroy();
        resolve(buf.slice(0, i));
      }
    });
  });
}

/**
 * A started child process: its log (in memory and in a file), its exit, and
 * stop(), which signals it and waits for it to exit.
 */
class Proc {
  constructor(name, cmd, args, env, logFile) {
    this.name = name;
    this.lines = [];
    this.logFile = logFile;
    this.file = createWriteStream(logFile);
    const [exe, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
    this.child = spawn(exe, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.exit = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.child);
        this.exitStatus = { code, signal };
        this.log(`[harness] ${name} exited code=${code} signal=${signal}`);
        resolve(this.exitStatus);
      });
      this.child.on('error', (err) => {
        live.delete(this.child);
        this.exitStatus = { code: null, signal: null, error: err };
        this.log(`[harness] ${name} failed to start: ${err.message}`);
        resolve(this.exitStatus);
      });
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop();
        for (const line of parts) this.log(line);
      });
      stream.on('end', () => rest && this.log(rest));
    }
  }

  log(line) {
    this.lines.push(line);
    this.file.write(line + '\n');
  }

  get running() {
    return this.exitStatus === undefined;
  }

  /** stop sends signal and waits up to timeout ms for the exit status. */
  async stop(signal = 'SIGTERM', timeout = 30_000) {
    if (!this.running) return this.exitStatus;
    this.log(`[harness] sending ${signal} to ${this.name}`);
    this.child.kill(signal);
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${timeout} ms of ${signal}`)),
        timeout,
      );
    });
    try {
      return await Promise.race([this.exit, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  tail(n = 60) {
    return this.lines.slice(-n).join('\n');
  }
}

/**
 * Harness owns the processes of one test. Use it through withHarness, which
 * closes it whatever happens and prints the logs when the test fails.
 */
export class Harness {
  constructor(testName) {
    const slug = testName.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 80);
    this.logDir = path.join(logRoot, `${slug}-${process.pid}`);
    mkdirSync(this.logDir, { recursive: true });
    this.procs = [];
    this.closers = [];
    this.tempDirs = [];
  }

  /**
   * tempDir makes a fresh directory under the system temp dir (files a
   * test generates, an upload store), removed when the harness closes.
   */
  tempDir(name = 'tmp') {
    const dir = mkdtempSync(path.join(os.tmpdir(), `edge-e2e-${name.replace(/[^A-Za-z0-9_-]+/g, '-')}-`));
    this.tempDirs.push(dir);
    return dir;
  }

  spawn(name, cmd, args, env) {
    const file = path.join(this.logDir, `${name}-${this.procs.length}.log`);
    const p = new Proc(name, cmd, args, env, file);
    this.procs.push(p);
    return p;
  }

  /** onClose registers fn (a browser, a client) to be closed before the processes. */
  onClose(fn) {
    this.closers.push(fn);
  }

  /** redis starts a throwaway redis-server and waits until it answers PING. */
  async redis({ timeout = 10_000 } = {}) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const proc = this.spawn('redis', 'redis-server', args, process.env);
    await waitFor(
      async () => {
        if (!proc.running) throw fatal(`redis-server exited early:\n${proc.tail()}`);
        return (await redisCommand(port, 'PING')) === '+PONG';
      },
      { timeout, interval: 50, what: `redis-server on port ${port} to answer PING` },
    );
    return { port, addr: `127.0.0.1:${port}`, proc, command: (...args) => redisCommand(port, ...args) };
  }

  /**
   * s3 starts Versity's S3 gateway (versitygw, its posix backend) over a
   * temp dir of this harness, with one empty bucket, and waits until it
   * answers HTTP. It returns {endpoint, root, bucket, accessKey, secretKey,
   * proc, env(prefix)}: root/<bucket>/<key> is an object's file, and env()
   * is the EDGE_UPLOADS_S3_* a node needs to use the bucket (path style,
   * static keys). No versitygw is an error, never a skip.
   */
  async s3({ bucket = 'uploads', timeout = 15_000 } = {}) {
    const bin = versitygwBin();
    const root = this.tempDir('s3');
    mkdirSync(path.join(root, bucket));
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const accessKey = 'edge-e2e';
    const secretKey = 'edge-e2e-secret-key';
    const args = ['--port', `127.0.0.1:${port}`, '--access', accessKey, '--secret', secretKey, 'posix', root];
    const proc = this.spawn('versitygw', bin, args, process.env);
    await waitFor(
      async () => {
        if (!proc.running) throw fatal(`versitygw exited early:\n${proc.tail()}`);
        // Any answer (403 to an unsigned request) means it serves.
        const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return true;
      },
      { timeout, interval: 50, what: `versitygw on ${endpoint} to answer HTTP` },
    );
    const env = (prefix = '') => ({
      EDGE_UPLOADS_S3_BUCKET: bucket,
      EDGE_UPLOADS_S3_ENDPOINT: endpoint,
      EDGE_UPLOADS_S3_PATH_STYLE: 'true',
      EDGE_UPLOADS_S3_ACCESS_KEY: accessKey,
      EDGE_UPLOADS_S3_SECRET_KEY: secretKey,
      EDGE_UPLOADS_S3_PREFIX: prefix,
    });
    return { endpoint, root, bucket, accessKey, secretKey, proc, env };
  }

  /**
   * edge starts bin/edge on port (a free one if not given) with env added to
   * the EDGE_* defaults and waits until /healthz answers 200.
   *
   * Every node gets testSecret as its HS256 secret, so it accepts the
   * tokens of token.mjs and never starts in dev mode (a random secret and a
   * token in its log). EDGE_AUTH_* variables of the calling shell are not
   * passed on (an EDGE_AUTH_ISSUER there would refuse every minted token,
   * which carry no iss or aud); a test sets its own in env.
   *
   * EDGE_UPLOADS_DIR defaults to a temp dir of this harness (one per test,
   * shared by its nodes), so no node writes into the work tree; a test that
   * needs its own sets it in env.
   */
  async edge({ port, env = {}, name = 'edge', timeout = 15_000 } = {}) {
    if (!existsSync(edgeBin)) {
      throw new Error(`${edgeBin} does not exist: run \`make build\` first (or set EDGE_BIN)`);
    }
    port ??= await freePort();
    const url = `http://127.0.0.1:${port}`;
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGE_AUTH_')));
    const fullEnv = {
      ...inherited,
      EDGE_HTTP_ADDR: `127.0.0.1:${port}`,
      EDGE_REDIS_ADDRS: '',
      EDGE_NODE_ID: name,
      EDGE_AUTH_HMAC_SECRETS: testSecret,
      EDGE_UPLOADS_DIR: (this.uploadsDir ??= this.tempDir('uploads')),
      ...env,
    };
    const proc = this.spawn(name, edgeBin, [], fullEnv);
    await waitFor(
      async () => {
        if (!proc.running) throw fatal(`${name} exited before /healthz answered:\n${proc.tail()}`);
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeout, interval: 50, what: `${name} /healthz on ${url}` },
    );
    return { name, port, url, proc, stop: (sig, ms) => proc.stop(sig, ms) };
  }

  /** logs returns the tail of every process log, for a failure report. */
  logs(n = 60) {
    return this.procs
      .map((p) => `----- ${p.name} (${p.logFile}) -----\n${p.tail(n)}`)
      .join('\n');
  }

  /**
   * close closes clients and browsers, then kills every process still
   * running, then removes the temp dirs.
   */
  async close() {
    const closers = this.closers.splice(0).reverse();
    for (const fn of closers) {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`[harness] close: ${err.message}\n`);
      }
    }
    await Promise.all(this.procs.filter((p) => p.running).map((p) => p.stop('SIGKILL', 5000)));
    await Promise.all(this.procs.map((p) => new Promise((r) => p.file.end(r))));
    for (const dir of this.tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * withHarness runs fn(h) with a fresh Harness for test context t; on failure
 * it prints the process logs (and fn's own report, if it set h.report) and
 * rethrows; it always closes the harness.
 */
export async function withHarness(t, fn) {
  const h = new Harness(t.name);
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await h.close();
    }
  };
  // Also on a runner timeout, when fn is still running.
  t.after(close);
  try {
    return await fn(h);
  } catch (err) {
    const extra = typeof h.report === 'function' ? await safe(h.report) : '';
    process.stderr.write(
      `\n===== ${t.name} failed: ${err.message}\n${extra ? extra + '\n' : ''}${h.logs()}\n=====\n`,
    );
    throw err;
  } finally {
    await close();
  }
}

/**
 * versitygwBin finds Versity's S3 gateway: VERSITYGW_BIN, else versitygw
 * on PATH, else $(go env GOPATH)/bin (where scripts/test-deps.sh puts it).
 */
export function versitygwBin() {
  if (process.env.VERSITYGW_BIN) {
    const p = path.resolve(process.env.VERSITYGW_BIN);
    if (!existsSync(p)) throw new Error(`VERSITYGW_BIN=${p} does not exist`);
    return p;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, 'versitygw');
    if (existsSync(p)) return p;
  }
  let gopath = process.env.GOPATH?.split(path.delimiter)[0];
  try {
    gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim().split(path.delimiter)[0] || gopath;
  } catch {
    // no go on PATH: $GOPATH, else go's default
  }
  const p = path.join(gopath || path.join(os.homedir(), 'go'), 'bin', 'versitygw');
  if (existsSync(p)) return p;
  throw new Error(`versitygw is neither on PATH nor at ${p}: run scripts/test-deps.sh, or set VERSITYGW_BIN`);
}

async function safe(fn) {
  try {
    return await fn();
  } catch (err) {
    return `(report failed: ${err.message})`;
  }
}
