// GraphiQL on GET /graphql works offline: it renders from the embedded assets with the network
// to every other host blocked (and never even tries another host), shows the server's auth
// error without a credential, runs a query with the API token of the bar, streams a
// subscription over the WebSocket while events are committed over HTTP, talks to
// /graphql/<branch> on a branch's page, and logs in with a username and password.
//
// Usage: node browser/graphiql.test.mjs path/to/infrastream  (browser/run.sh does this)

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer, gql, launchBrowser, newPage, screenshot, test } from './lib.mjs';

const binary = process.argv[2] || process.env.BROWSER_TEST_BINARY;
if (!binary) {
  console.error('usage: node browser/graphiql.test.mjs path/to/infrastream');
  process.exit(2);
}

const TIMEOUT = 8000; // per wait; the page is local, these are generous
const ADMIN_PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

const server = await startServer(binary, { env: { INFRASTREAM_INITIAL_ADMIN_PASSWORD: ADMIN_PASSWORD } });
let browser;
let page;
const ws = { created: [], sent: [], received: [], closed: [] }; // WebSocket traffic of the page
const posts = []; // {url, headers, body} of the page's POSTs

// ---- helpers on the page -------------------------------------------------------------------

async function setEditor(query) {
  await page.evaluate((q) => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror');
    if (!cm || !cm.CodeMirror) throw new Error('no query editor (CodeMirror) on the page');
    cm.CodeMirror.setValue(q);
  }, query);
}

function responseText() {
  return page.evaluate(() => {
    const cm = document.querySelector('.graphiql-response .CodeMirror');
    return cm && cm.CodeMirror ? cm.CodeMirror.getValue() : null;
  });
}

async function clearResponse() {
  await page.evaluate(() => {
    const cm = document.querySelector('.graphiql-response .CodeMirror');
    if (cm && cm.CodeMirror) cm.CodeMirror.setValue('');
  });
}

/** Waits until the response pane's text satisfies pred; the error names what it last saw. */
async function waitForResponse(pred, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last = null;
  while (Date.now() < deadline) {
    last = await responseText();
    if (last != null && pred(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the result pane did not show ${what} within ${timeout} ms; it shows: ${JSON.stringify(last)}`);
}

async function waitFor(pred, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not happen within ${timeout} ms`);
}

async function executeButtonLabel() {
  return page.$eval('.graphiql-execute-button', (b) => b.getAttribute('aria-label'));
}

async function run() {
  await page.click('.graphiql-execute-button');
}

async function waitForGraphiQL() {
  await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout: TIMEOUT });
  await page.waitForSelector('.graphiql-execute-button', { timeout: TIMEOUT });
}

function assertNothingElsewhere() {
  assert.deepEqual(page.blockedRequests, [], 'the page tried to reach another host');
}

async function lastEventId() {
  const r = await gql(server, '{ InfrahubEvent(order: DESC, limit: 1) { edges { node { id } } } }');
  assert.ok(!r.errors, JSON.stringify(r.errors));
  return r.data.InfrahubEvent.edges[0]?.node.id ?? null;
}

async function createBranch(name) {
  const r = await gql(server, `mutation { BranchCreate(data: {name: "${name}"}) { ok } }`);
  assert.ok(!r.errors && r.data.BranchCreate.ok, JSON.stringify(r));
}

// ---- steps -----------------------------------------------------------------------------------

try {
  await test('GraphiQL renders from the embedded assets with every other host blocked', async () => {
    browser = await launchBrowser(server);
    page = await newPage(browser);
    page.on('request', (req) => {
      if (req.method() === 'POST') posts.push({ url: req.url(), headers: req.headers(), body: req.postData() ?? '' });
    });
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketCreated', (e) => ws.created.push(e.url));
    cdp.on('Network.webSocketFrameSent', (e) => ws.sent.push(e.response.payloadData));
    cdp.on('Network.webSocketFrameReceived', (e) => ws.received.push(e.response.payloadData));
    cdp.on('Network.webSocketClosed', () => ws.closed.push(Date.now()));

    const res = await page.goto(`${server.url}/graphql`, { waitUntil: 'load', timeout: TIMEOUT });
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'], /^text\/html/);
    await waitForGraphiQL();
    const body = await page.evaluate(() => document.body.innerText);
    assert.ok(!body.includes('Loading GraphiQL'), 'still "Loading GraphiQL…"');
    await screenshot(page, 'graphiql-1-loaded');
    assertNothingElsewhere();
    assert.deepEqual(page.consoleErrors.filter((e) => !/status of 401/.test(e)), [], 'console errors');
    // Every script and stylesheet came from /graphiql/ on this server.
    const sources = await page.evaluate(() =>
      [...document.querySelectorAll('script[src], link[rel=stylesheet]')].map((e) => e.src || e.href),
    );
    assert.equal(sources.length, 5, JSON.stringify(sources));
    for (const s of sources) assert.ok(s.startsWith(`${server.url}/graphiql/`), s);
  });

  await test('without a credential a query shows the server auth error', async () => {
    await setEditor('{ Branch { name } }');
    await clearResponse();
    const before = posts.length;
    await run();
    const text = await waitForResponse((t) => t.includes('UNAUTHENTICATED'), 'the UNAUTHENTICATED error');
    assert.match(text, /Authentication is required/);
    const mine = posts.slice(before).filter((p) => p.body.includes('Branch { name }'));
    assert.equal(mine.length, 1, 'the query was POSTed once');
    assert.equal(mine[0].headers['x-infrahub-key'], undefined);
    assert.equal(mine[0].headers.authorization, undefined);
    await screenshot(page, 'graphiql-2-no-credential');
  });

  await test('with the API token of the bar a query shows main', async () => {
    await page.type('#infrastream-token', server.token);
    await page.click('#infrastream-use-token');
    await waitFor(
      async () => (await page.$eval('#infrastream-auth-status', (e) => e.textContent)).includes('API token'),
      'the bar saying an API token is used',
    );
    await waitForGraphiQL();
    await setEditor('{ Branch { name } }');
    await clearResponse();
    const before = posts.length;
    await run();
    await waitForResponse((t) => /"name":\s*"main"/.test(t), '"name": "main"');
    const mine = posts.slice(before).filter((p) => p.body.includes('Branch { name }'));
    assert.equal(mine.length, 1);
    assert.equal(mine[0].url, `${server.url}/graphql`);
    assert.equal(mine[0].headers['x-infrahub-key'], server.token);
    // Kept in sessionStorage, not in localStorage, not in the URL.
    const storage = await page.evaluate(() => ({
      session: JSON.stringify(Object.entries(sessionStorage)),
      local: JSON.stringify(Object.entries(localStorage)),
      href: location.href,
    }));
    assert.ok(storage.session.includes(server.token), 'the token is not in sessionStorage');
    assert.ok(!storage.local.includes(server.token), 'the token is in localStorage');
    assert.ok(!storage.href.includes(server.token), 'the token is in the URL');
    await screenshot(page, 'graphiql-3-query');
    assertNothingElsewhere();
  });

  await test('a subscription streams the events committed over HTTP while it runs', async () => {
    // Resume after the newest event: an event committed right after `subscribe` is then
    // delivered even if it raced the subscription's start (no timing assumption).
    await createBranch(`warmup-${randomBytes(4).toString('hex')}`);
    const after = await lastEventId();
    assert.ok(after, 'no event in the log');
    const first = `browser-${randomBytes(4).toString('hex')}`;
    const second = `browser-${randomBytes(4).toString('hex')}`;
    await setEditor(
      `subscription {\n  events(event_type: ["infrahub.branch.created"], after: "${after}") {\n` +
        '    id event branch\n    ... on BranchCreatedEvent { created_branch }\n  }\n}\n',
    );
    await clearResponse();
    const wsBefore = ws.created.length;
    await run();
    await waitFor(() => ws.sent.some((f) => JSON.parse(f).type === 'subscribe'), 'the subscribe message');
    assert.equal(ws.created.length, wsBefore + 1, 'one WebSocket for the subscription');
    assert.equal(ws.created.at(-1), `${server.wsUrl}/graphql`);
    const init = ws.sent.map((f) => JSON.parse(f)).find((m) => m.type === 'connection_init');
    assert.equal(init?.payload?.['X-INFRAHUB-KEY'], server.token, 'connection_init carries the token');
    assert.ok(ws.received.some((f) => JSON.parse(f).type === 'connection_ack'), 'connection_ack');
    assert.equal(await executeButtonLabel(), 'Stop query (Ctrl-Enter)', 'the subscription is running');

    await createBranch(first);
    let text = await waitForResponse((t) => t.includes(first), `the created event of ${first}`);
    assert.match(text, /infrahub\.branch\.created/);
    await screenshot(page, 'graphiql-4-subscription-first-event');
    await createBranch(second);
    text = await waitForResponse((t) => t.includes(second), `the created event of ${second}`);
    assert.equal(await executeButtonLabel(), 'Stop query (Ctrl-Enter)', 'still running');
    await screenshot(page, 'graphiql-5-subscription-second-event');

    // Stopping it closes the WebSocket.
    const closedBefore = ws.closed.length;
    await run();
    await waitFor(() => ws.closed.length > closedBefore, 'the WebSocket closing after Stop');
    await waitFor(async () => (await executeButtonLabel()).startsWith('Execute'), 'the Execute button coming back');
    assertNothingElsewhere();
  });

  await test('on /graphql/<branch> queries and subscriptions use that path', async () => {
    const branch = `page-${randomBytes(4).toString('hex')}`;
    await createBranch(branch);
    await page.goto(`${server.url}/graphql/${branch}`, { waitUntil: 'load', timeout: TIMEOUT });
    await waitForGraphiQL();
    // The credential survived the navigation (sessionStorage).
    assert.match(await page.$eval('#infrastream-auth-status', (e) => e.textContent), /API token/);
    await setEditor('{ Branch { name } }');
    await clearResponse();
    const before = posts.length;
    await run();
    await waitForResponse((t) => t.includes(branch), `the branch ${branch} in the result`);
    const mine = posts.slice(before).filter((p) => p.body.includes('Branch { name }'));
    assert.equal(mine.at(-1).url, `${server.url}/graphql/${branch}`);

    const after = await lastEventId();
    const created = `onpage-${randomBytes(4).toString('hex')}`;
    await setEditor(
      `subscription { events(event_type: ["infrahub.branch.created"], after: "${after}") { id event ... on BranchCreatedEvent { created_branch } } }`,
    );
    await clearResponse();
    const wsBefore = ws.created.length;
    const sentBefore = ws.sent.length;
    await run();
    await waitFor(
      () => ws.sent.slice(sentBefore).some((f) => JSON.parse(f).type === 'subscribe'),
      'the subscribe message',
    );
    assert.equal(ws.created[wsBefore], `${server.wsUrl}/graphql/${branch}`);
    await createBranch(created);
    await waitForResponse((t) => t.includes(created), `the created event of ${created}`);
    await screenshot(page, 'graphiql-6-branch-page');
    await run(); // stop
    assertNothingElsewhere();
  });

  await test('log in with username and password, then query with the access token', async () => {
    await page.click('#infrastream-forget');
    await waitFor(
      async () => (await page.$eval('#infrastream-auth-status', (e) => e.textContent)).includes('No credential'),
      'the bar saying no credential',
    );
    // A wrong password is refused and said so.
    await page.type('#infrastream-username', 'admin');
    await page.type('#infrastream-password', 'wrong-password');
    await page.click('#infrastream-login');
    await waitFor(
      async () => (await page.$eval('#infrastream-auth-status', (e) => e.className)) === 'error',
      'the bar showing the refused login',
    );
    await page.$eval('#infrastream-password', (e) => (e.value = ''));
    await page.type('#infrastream-password', ADMIN_PASSWORD);
    await page.click('#infrastream-login');
    await waitFor(
      async () => (await page.$eval('#infrastream-auth-status', (e) => e.textContent)).includes('Logged in as admin'),
      'the bar saying logged in as admin',
    );
    await page.goto(`${server.url}/graphql`, { waitUntil: 'load', timeout: TIMEOUT });
    await waitForGraphiQL();
    await setEditor('{ Branch { name } }');
    await clearResponse();
    const before = posts.length;
    await run();
    await waitForResponse((t) => /"name":\s*"main"/.test(t), '"name": "main"');
    const mine = posts.slice(before).filter((p) => p.body.includes('Branch { name }'));
    assert.match(mine.at(-1).headers.authorization ?? '', /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(mine.at(-1).headers['x-infrahub-key'], undefined);
    const local = await page.evaluate(() => JSON.stringify(Object.entries(localStorage)));
    assert.ok(!local.includes(mine.at(-1).headers.authorization.slice(7)), 'the access token is in localStorage');
    await screenshot(page, 'graphiql-7-logged-in');
    assertNothingElsewhere();
  });
} catch {
  // test() printed it and set the exit code
} finally {
  if (process.exitCode) {
    if (page) await screenshot(page, 'graphiql-failure').catch(() => {});
    console.error('----- server log -----');
    console.error(server.log());
    if (page) console.error('page console errors:', page.consoleErrors, 'blocked:', page.blockedRequests);
  }
  await browser?.close().catch(() => {});
  await server.stop();
}
