// Shared helpers of the browser tests (browser/*.test.mjs, run by browser/run.sh).
//
//   startServer(binary, opts)  the infrastream binary on a free 127.0.0.1 port, fresh data dir
//   gql(server, query, vars)   POST /graphql with the admin token, parsed JSON body
//   launchBrowser(server)      Debian's chromium, headless, network limited to the server
//   newPage(browser)           a page with that limit applied, recording what it blocked
//   screenshot(page, name)     target/browser-screenshots/<name>.png
//   test(name, fn)             optional tiny step runner (sets a non-zero exit code on failure)
//
// Every server and browser started here is stopped when the process exits, also on an uncaught
// error or SIGINT/SIGTERM.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, chmodSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// ---- cleanup of everything started here ---------------------------------------------------

const liveChildren = new Set(); // server ChildProcess objects still running
const liveBrowsers = new Set();
const tempDirs = new Set();

function killAllSync() {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const browser of liveBrowsers) {
    try {
      browser.process()?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveBrowsers.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllSync();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

// ---- server ------------------------------------------------------------------------------

function freePort() {
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `binary serve --listen 127.0.0.1:<free port> --data-dir <fresh dir>` with
 * INFRASTREAM_INITIAL_ADMIN_TOKEN set to a fresh admin API token, and waits for GET /health.
 *
 * opts.env:  extra environment variables for the server (merged over process.env)
 * opts.args: extra command line arguments after `serve ...` (e.g. ['--set', 'x=y'])
 * opts.timeoutMs: how long to wait for /health (default 30000)
 *
 * Returns {
 *   url:     'http://127.0.0.1:<port>'   (no trailing slash; GraphQL is `${url}/graphql`)
 *   wsUrl:   'ws://127.0.0.1:<port>'     (no trailing slash; WebSocket is `${wsUrl}/graphql`)
 *   token:   the admin API token (send as X-INFRAHUB-KEY)
 *   dataDir: the data directory (inside a fresh mode-0700 temp directory)
 *   port:    the port number
 *   stop():    SIGTERM (SIGKILL after 5 s), waits for the exit, deletes the temp directory
 *   restart(): SIGTERM, waits, starts again on the same port with the same data dir and
 *              token; resolves when /health answers
 *   log():     what the server wrote (stderr and stdout) so far, over all its runs
 * }
 */
export async function startServer(binary, opts = {}) {
  const bin = path.resolve(binary);
  const port = await freePort();
  const parent = mkdtempSync(path.join(os.tmpdir(), 'infrastream-browser-'));
  chmodSync(parent, 0o700);
  tempDirs.add(parent);
  const dataDir = path.join(parent, 'data');
  const token = randomBytes(32).toString('hex');
  const url = `http://127.0.0.1:${port}`;
  const timeoutMs = opts.timeoutMs ?? 30000;
  let logText = '';
  let child = null;
  let exited = null; // promise resolving when the current child exits

  function spawnOnce() {
    logText += `---- ${new Date().toISOString()} starting ${bin} on 127.0.0.1:${port}\n`;
    const c = spawn(
      bin,
      ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...(opts.args ?? [])],
      {
        env: {
          ...process.env,
          INFRASTREAM_INITIAL_ADMIN_TOKEN: token,
          ...(opts.env ?? {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    c.stdout.setEncoding('utf8');
    c.stderr.setEncoding('utf8');
    c.stdout.on('data', (d) => (logText += d));
    c.stderr.on('data', (d) => (logText += d));
    liveChildren.add(c);
    exited = new Promise((resolve) => {
      c.on('exit', (code, signal) => {
        liveChildren.delete(c);
        logText += `---- server exited (code ${code}, signal ${signal})\n`;
        resolve({ code, signal });
      });
      c.on('error', (err) => {
        liveChildren.delete(c);
        logText += `---- could not start the server: ${err.message}\n`;
        resolve({ code: null, signal: null, error: err });
      });
    });
    child = c;
  }

  async function waitHealthy() {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    exited.then(() => (gone = true));
    while (Date.now() < deadline) {
      if (gone) return false;
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return true;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`GET ${url}/health did not answer 200 within ${timeoutMs} ms\n${logText}`);
  }

  async function start(retries) {
    for (let attempt = 0; ; attempt++) {
      spawnOnce();
      if (await waitHealthy()) return;
      // Exited before answering. After a restart the port may linger a moment: retry a few times.
      if (attempt >= retries) {
        throw new Error(`the server exited before answering GET /health\n${logText}`);
      }
      await sleep(250);
    }
  }

  async function kill() {
    if (!child || !liveChildren.has(child)) return;
    const c = child;
    c.kill('SIGTERM');
    const timer = setTimeout(() => {
      logText += '---- no exit within 5 s of SIGTERM, sending SIGKILL\n';
      c.kill('SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(timer);
  }

  try {
    await start(0);
  } catch (err) {
    await kill();
    rmSync(parent, { recursive: true, force: true });
    tempDirs.delete(parent);
    throw err;
  }

  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    token,
    dataDir,
    port,
    async stop() {
      await kill();
      rmSync(parent, { recursive: true, force: true });
      tempDirs.delete(parent);
    },
    async restart() {
      await kill();
      await start(20);
    },
    log() {
      return logText;
    },
  };
}

/**
 * POST `${server.url}/graphql` (or `/graphql/<opts.branch>`) with the admin token as
 * X-INFRAHUB-KEY; returns the parsed JSON body (GraphQL errors are in it, not thrown).
 * Throws when the HTTP status is not 2xx. opts.token overrides the token.
 */
export async function gql(server, query, variables, opts = {}) {
  const target = `${server.url}/graphql${opts.branch ? `/${encodeURIComponent(opts.branch)}` : ''}`;
  const res = await fetch(target, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      'X-INFRAHUB-KEY': opts.token ?? server.token,
    },
    body: JSON.stringify(variables === undefined ? { query } : { query, variables }),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${target}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text);
}

// ---- browser -----------------------------------------------------------------------------

const prepared = new WeakSet();

function allowedUrl(raw, hostPort) {
  let u;
  try {
    u = new URL(raw);
  } catch {
    return false;
  }
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return false;
  return u.host === hostPort;
}

async function preparePage(page, hostPort) {
  if (prepared.has(page)) return page;
  prepared.add(page);
  page.blockedRequests = [];
  page.consoleErrors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => page.consoleErrors.push(String(err?.stack ?? err)));
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (allowedUrl(req.url(), hostPort)) {
      req.continue();
    } else {
      page.blockedRequests.push(req.url());
      req.abort('blockedbyclient');
    }
  });
  await page.setRequestInterception(true);
  // WebSockets are not seen by request interception: record them from the protocol (the
  // resolver rules of the browser make them fail anyway).
  try {
    const cdp = await page.createCDPSession();
    cdp.on('Network.webSocketCreated', ({ url }) => {
      if (!allowedUrl(url, hostPort)) page.blockedRequests.push(url);
    });
    await cdp.send('Network.enable');
  } catch {
    // the page closed meanwhile
  }
  return page;
}

/**
 * Debian's chromium (/usr/bin/chromium, or $CHROMIUM), headless, --no-sandbox (CI runs as
 * root). Every host name but 127.0.0.1 resolves to nothing, and on every page (opened with
 * newPage or by the page itself) requests to anything but the server's host:port are aborted.
 */
export async function launchBrowser(server) {
  const hostPort = new URL(server.url).host;
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--disable-extensions',
      '--metrics-recording-only',
      '--window-size=1400,900',
    ],
    defaultViewport: { width: 1400, height: 900 },
  });
  liveBrowsers.add(browser);
  browser.on('disconnected', () => liveBrowsers.delete(browser));
  browser.__infrastreamHostPort = hostPort;
  browser.on('targetcreated', async (target) => {
    if (target.type() !== 'page') return;
    try {
      const page = await target.page();
      if (page) await preparePage(page, hostPort);
    } catch {
      // closed meanwhile
    }
  });
  return browser;
}

/**
 * A new page of a browser from launchBrowser with the interception applied:
 * page.blockedRequests (URLs aborted because they were not the server's) and
 * page.consoleErrors (console.error messages and uncaught page errors).
 */
export async function newPage(browser) {
  const page = await browser.newPage();
  return preparePage(page, browser.__infrastreamHostPort);
}

/** Writes target/browser-screenshots/<name>.png (repo-relative); returns its path. */
export async function screenshot(page, name) {
  const dir = path.join(REPO, 'target', 'browser-screenshots');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// ---- optional tiny runner ----------------------------------------------------------------

let chain = Promise.resolve();

/**
 * Runs fn() after the previously registered steps; prints "  ok <name>" or
 * "  FAIL <name>: <error>" to stderr and sets a non-zero exit code on failure. Returns a
 * promise of fn's result (rejecting on failure), so later code may await it.
 */
export function test(name, fn) {
  const run = chain.then(async () => {
    try {
      const result = await fn();
      console.error(`  ok ${name}`);
      return result;
    } catch (err) {
      console.error(`  FAIL ${name}: ${err?.stack ?? err}`);
      process.exitCode = 1;
      throw err;
    }
  });
  chain = run.catch(() => {});
  return run;
}
