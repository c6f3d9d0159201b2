// Browser test of the live event console (/console), in chromium with the network limited to
// the server.
//
// Usage: node browser/console.test.mjs path/to/infrastream-binary   (exits non-zero on failure)
//
// Steps, each with a screenshot in target/browser-screenshots/console-*.png:
//   1. /console logs in with the admin API token (kept in sessionStorage, not in the URL)
//      and shows the connection state "live";
//   2. an event committed over HTTP after the page opened (BranchCreate) shows as a row within
//      1 s of the commit's response;
//   3. filtering by event type: of one matching and one non-matching event committed after the
//      filter was set, only the matching one shows;
//   4. the server restarts; events committed right after the restart (before the page
//      reconnects) and after it reconnected show exactly once each, and the rows are exactly
//      the events InfrahubEvent lists over HTTP; the same again after a page reload (resume
//      from the cursor kept in sessionStorage);
//   5. clicking an event shows its details (payload fields, id), its parent link and children;
//   6. the Branches, Artifacts and Repositories tabs list their items; the charts read
//      /metrics with the page's credential (the server has a metrics token); log out (the token
//      leaves sessionStorage) and in again with the admin password (JWT); then no request went
//      to another host, and no console error (but the browser's own reports of refused
//      connections to the server while it was restarting, if any).

import assert from 'node:assert/strict';
import { gql, launchBrowser, newPage, screenshot, startServer } from './lib.mjs';

const binary = process.argv[2] ?? process.env.INFRASTREAM_BINARY;
if (!binary) {
  console.error('usage: node browser/console.test.mjs path/to/infrastream-binary');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const step = (msg) => console.error(`  - ${msg}`);

async function ok(server, query, variables) {
  const body = await gql(server, query, variables);
  assert.ok(!body.errors, `GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function emit(server, event, extra = {}) {
  const data = await ok(
    server,
    'mutation($data: EventEmitInput!) { EventEmit(data: $data) { ok object { id event } } }',
    { data: { event, ...extra } },
  );
  return data.EventEmit.object.id;
}

/** Ids of the rendered rows, top to bottom. */
const rowIds = (page) =>
  page.$$eval('#event-rows tr[data-event-id]', (trs) => trs.map((tr) => tr.dataset.eventId));

const waitLive = (page, timeout = 15000) =>
  page.waitForSelector('[data-testid="connection-state"][data-state="live"]', { timeout });

/** Waits until every id in `ids` has a row. */
function waitRows(page, ids, timeout = 10000) {
  return page.waitForFunction(
    (want) => want.every((id) => document.querySelector(`#event-rows tr[data-event-id="${id}"]`)),
    { timeout, polling: 'raf' },
    ids,
  );
}

/** Every event the server lists (newest first), by id. */
async function allEventIds(server) {
  const data = await ok(server, '{ InfrahubEvent(limit: 50, order: DESC) { count edges { node { id } } } }');
  assert.ok(data.InfrahubEvent.count <= 50, 'the test expects at most 50 events in the log');
  return data.InfrahubEvent.edges.map((e) => e.node.id);
}

/** Rows are unique by id and exactly the server's events; nothing is left unrendered. */
async function assertRowsMatchServer(page, server, label) {
  // Wait for the page to have caught up with the server's list first.
  const want = await allEventIds(server);
  await waitRows(page, want).catch(() => {});
  const ids = await rowIds(page);
  const dupes = ids.filter((id, i) => ids.indexOf(id) !== i);
  assert.deepEqual(dupes, [], `${label}: duplicate rows`);
  const missing = want.filter((id) => !ids.includes(id));
  assert.deepEqual(missing, [], `${label}: events missing from the page`);
  const extra = ids.filter((id) => !want.includes(id));
  assert.deepEqual(extra, [], `${label}: rows the server does not list`);
  assert.deepEqual(ids, want, `${label}: rows in log order, newest first`);
  const notRendered = await page.$eval('[data-testid="not-rendered"]', (e) => e.dataset.count);
  assert.equal(notRendered, '0', `${label}: every held event is rendered`);
  step(`${label}: ${ids.length} rows, each event of the server's log exactly once`);
}

// With a metrics token set, /metrics also takes the account credential the page sends.
const server = await startServer(binary, { args: ['--set', `metrics_token=${'m'.repeat(8)}-${Date.now()}`] });
let browser;
let page;
let failed = false;
try {
  browser = await launchBrowser(server);
  page = await newPage(browser);
  const port = new URL(server.url).port;

  // ---- 1. log in ------------------------------------------------------------------------
  await page.goto(`${server.url}/console`, { waitUntil: 'load' });
  await page.waitForSelector('[data-testid="login-form"]', { visible: true, timeout: 10000 });
  await screenshot(page, 'console-0-login');
  await page.type('[data-testid="token-input"]', server.token);
  await page.click('[data-testid="login-submit"]');
  await waitLive(page);
  const who = await page.$eval('[data-testid="who"]', (e) => e.textContent);
  assert.match(who, /admin/, 'the logged-in account is shown');
  assert.ok(!page.url().includes(server.token), 'the token is not in the URL');
  const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }));
  assert.ok(stored.includes(server.token), 'the token is kept in sessionStorage');
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  await screenshot(page, 'console-1-logged-in');
  step('1. logged in with the admin token; connection state live');

  // ---- 2. an event committed over HTTP shows within 1 s ----------------------------------
  const before = await rowIds(page);
  const created = await ok(
    server,
    'mutation { BranchCreate(data: {name: "console-test", description: "browser test"}) { ok object { id name } } }',
  );
  const committedAt = Date.now();
  await page.waitForFunction(
    (known) =>
      [...document.querySelectorAll('#event-rows tr[data-event="infrahub.branch.created"]')].some(
        (tr) => !known.includes(tr.dataset.eventId),
      ),
    { timeout: 5000, polling: 'raf' },
    before,
  );
  const shownAfter = Date.now() - committedAt;
  const [branchEvent] = (
    await ok(
      server,
      '{ InfrahubEvent(event_type: ["infrahub.branch.created"], limit: 1) { edges { node { id ... on BranchCreatedEvent { created_branch } } } } }',
    )
  ).InfrahubEvent.edges.map((e) => e.node);
  assert.equal(branchEvent.created_branch, created.BranchCreate.object.name);
  assert.ok((await rowIds(page)).includes(branchEvent.id), 'the BranchCreate event has its row');
  await screenshot(page, 'console-2-live-event');
  assert.ok(shownAfter < 1000, `the row appeared ${shownAfter} ms after the commit (limit 1000 ms)`);
  step(`2. BranchCreate's event shown ${shownAfter} ms after the commit's response`);

  // ---- 3. filter by event type -----------------------------------------------------------
  await page.$eval('[data-testid="filter-event-type"]', (e) => (e.value = ''));
  await page.type('[data-testid="filter-event-type"]', 'acme.console.match');
  await page.click('[data-testid="filter-apply"]');
  // The list restarts for the filter: no history of that type yet.
  await page.waitForFunction(
    () => document.querySelectorAll('#event-rows tr').length === 0 && document.querySelector('#held').textContent === '0 events held',
    { timeout: 5000 },
  );
  await waitLive(page);
  await sleep(200);
  const matching = await emit(server, 'acme.console.match', { payload: { n: 1 } });
  const other = await emit(server, 'acme.console.other', { payload: { n: 2 } });
  const matching2 = await emit(server, 'acme.console.match', { payload: { n: 3 } });
  await waitRows(page, [matching, matching2]);
  await sleep(500); // time for a wrong row to show
  const filtered = await page.$$eval('#event-rows tr[data-event-id]', (trs) =>
    trs.map((tr) => ({ id: tr.dataset.eventId, event: tr.dataset.event })),
  );
  assert.deepEqual(
    filtered.map((r) => r.id),
    [matching2, matching],
    'only the matching events, newest first',
  );
  assert.ok(!filtered.some((r) => r.id === other), 'the non-matching event is not shown');
  await screenshot(page, 'console-3-filtered');
  step('3. the event-type filter shows the matching events only');

  await page.click('[data-testid="filter-clear"]');
  await page.waitForFunction((id) => document.querySelector(`#event-rows tr[data-event-id="${id}"]`), { timeout: 5000 }, other);
  await waitLive(page);
  await assertRowsMatchServer(page, server, '3. filter cleared');

  // ---- 4. server restart: every event exactly once ---------------------------------------
  const errorsBeforeRestart = page.consoleErrors.length;
  await server.restart();
  const early = [];
  for (let i = 0; i < 5; i++) early.push(await emit(server, 'acme.console.restart', { payload: { phase: 'early', i } }));
  const stateAtEarly = await page.$eval('[data-testid="connection-state"]', (e) => e.dataset.state);
  step(`4. restarted; 5 events committed while the page was ${stateAtEarly}`);
  await screenshot(page, 'console-4a-reconnecting');
  await waitLive(page, 30000);
  const late = [];
  for (let i = 0; i < 5; i++) late.push(await emit(server, 'acme.console.restart', { payload: { phase: 'late', i } }));
  await waitRows(page, [...early, ...late]);
  const restartErrors = page.consoleErrors.slice(errorsBeforeRestart);
  await assertRowsMatchServer(page, server, '4. after the restart');
  await screenshot(page, 'console-4b-after-restart');

  // A reload resumes from the cursor in sessionStorage, with events committed meanwhile.
  await page.reload({ waitUntil: 'load' });
  const duringReload = await emit(server, 'acme.console.reload', { payload: { phase: 'reload' } });
  await waitLive(page);
  const afterReload = await emit(server, 'acme.console.reload', { payload: { phase: 'after' } });
  await waitRows(page, [duringReload, afterReload]);
  await assertRowsMatchServer(page, server, '4. after a reload');
  await screenshot(page, 'console-4c-after-reload');

  // ---- 5. event details -------------------------------------------------------------------
  const parent = await emit(server, 'acme.console.parent', { payload: { build: 42, stage: 'deploy' } });
  const child = await emit(server, 'acme.console.child', { parent_id: parent, payload: { step: 'one' } });
  await waitRows(page, [parent, child]);
  await page.click(`#event-rows tr[data-event-id="${branchEvent.id}"]`);
  await page.waitForFunction(
    (id) => document.querySelector('[data-testid="details-id"]')?.textContent === id,
    { timeout: 5000 },
    branchEvent.id,
  );
  const branchPayload = JSON.parse(await page.$eval('[data-testid="details-payload"]', (e) => e.textContent));
  assert.equal(branchPayload.data.created_branch, 'console-test', 'the payload of the BranchCreate event');
  assert.equal(await page.$eval('[data-testid="details-event"]', (e) => e.textContent), 'infrahub.branch.created');

  await page.click(`#event-rows tr[data-event-id="${child}"]`);
  await page.waitForFunction(
    (id) => document.querySelector('[data-testid="details-id"]')?.textContent === id,
    { timeout: 5000 },
    child,
  );
  assert.deepEqual(
    JSON.parse(await page.$eval('[data-testid="details-payload"]', (e) => e.textContent)).data,
    { step: 'one' },
  );
  const parentLink = await page.$eval('[data-testid="details-parent"] a', (a) => a.dataset.eventLink);
  assert.equal(parentLink, parent, 'the child links to its parent');
  await page.click('[data-testid="details-parent"] a');
  await page.waitForFunction(
    (id) => document.querySelector('[data-testid="details-id"]')?.textContent === id,
    { timeout: 5000 },
    parent,
  );
  await page.waitForFunction(
    (id) => document.querySelector(`[data-testid="details-children"] a[data-event-link="${id}"]`),
    { timeout: 5000 },
    child,
  );
  const parentPayload = JSON.parse(await page.$eval('[data-testid="details-payload"]', (e) => e.textContent));
  assert.deepEqual(parentPayload.data, { build: 42, stage: 'deploy' });
  const detailsText = await page.$eval('[data-testid="details"]', (e) => e.innerText);
  assert.match(detailsText, /"build": 42/, 'the payload fields are visible');
  await screenshot(page, 'console-5-details');
  step('5. details: payload, parent link and children');

  // ---- 6. nothing from another host, no console errors ------------------------------------
  for (const tab of ['branches', 'artifacts', 'repositories']) {
    await page.click(`[data-testid="tab-${tab}"]`);
    await page.waitForSelector(`[data-testid="${tab}-table"]`, { visible: true, timeout: 5000 });
    if (tab === 'branches') {
      const latest = await page.$$eval('[data-testid="branches-table"] tbody tr', (trs) =>
        trs.map((tr) => [tr.cells[0].textContent, tr.cells[tr.cells.length - 1].textContent]),
      );
      const row = latest.find(([name]) => name === 'console-test');
      assert.ok(row, 'the branch console-test is listed');
      assert.match(row[1], /infrahub\.branch\.created/, 'with its latest event');
    }
    await screenshot(page, `console-6-${tab}`);
  }
  await page.click('[data-testid="tab-events"]');
  // The charts scrape /metrics with the page's credential (a metrics token is set).
  await page.waitForFunction(() => Number(document.querySelector('#metrics-status').dataset.scrapes ?? 0) >= 2, {
    timeout: 10000,
  });
  assert.equal(await page.$eval('#metrics-status', (e) => e.textContent), '', 'metrics readable');
  await screenshot(page, 'console-6-final');

  // Log out, then in with the admin password (a JWT, over HTTP and on the WebSocket).
  await page.click('[data-testid="logout"]');
  await page.waitForSelector('[data-testid="login-form"]', { visible: true, timeout: 5000 });
  const storedAfterLogout = await page.evaluate(() => JSON.stringify({ ...sessionStorage }));
  assert.ok(!storedAfterLogout.includes(server.token), 'logging out forgets the token');
  const password = /Created account 'admin' with password: (\S+)/.exec(server.log())?.[1];
  assert.ok(password, 'the admin password is in the server log');
  await page.type('[data-testid="username-input"]', 'admin');
  await page.type('[data-testid="password-input"]', password);
  await page.click('[data-testid="login-password-submit"]');
  await waitLive(page);
  assert.match(await page.$eval('[data-testid="who"]', (e) => e.textContent), /admin \(password\)/);
  const withJwt = await emit(server, 'acme.console.jwt');
  await waitRows(page, [withJwt]);
  await screenshot(page, 'console-6b-password-login');
  step('6. (also) logged out, then in with the password: live events arrive over the JWT');
  assert.deepEqual(page.blockedRequests, [], 'no request to another host');
  // While the server restarted, chromium itself reports the refused connections to it.
  const refused = new RegExp(
    `^(WebSocket connection to 'ws://127\\.0\\.0\\.1:${port}/graphql' failed|Failed to load resource: net::ERR_CONNECTION_REFUSED)`,
  );
  const expected = restartErrors.filter((m) => refused.test(m));
  const unexpected = page.consoleErrors.filter((m) => !expected.includes(m));
  if (expected.length) step(`6. ${expected.length} refused connection(s) while the server restarted (expected)`);
  assert.deepEqual(unexpected, [], 'no console errors');
  step('6. no request to another host, no console error');
} catch (err) {
  failed = true;
  console.error(`FAIL console: ${err?.stack ?? err}`);
  if (page) {
    await screenshot(page, 'console-failure').catch(() => {});
    console.error('page console errors:', page.consoleErrors);
    console.error('blocked requests:', page.blockedRequests);
  }
  console.error('---- server log (tail) ----');
  console.error(server.log().split('\n').slice(-40).join('\n'));
} finally {
  await browser?.close().catch(() => {});
  await server.stop();
}
if (failed) process.exit(1);
console.error('console: all steps passed');
