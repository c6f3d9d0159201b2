// infrastream console: the live event log of the server that serves this page.
//
// Decision: dependency-free. Plain modern JavaScript ES modules (this file, api.js, charts.js),
// one stylesheet and one HTML page, embedded in the binary; no framework, no build step, no
// CDN. The page talks only to its own origin: GraphQL over HTTP and graphql-transport-ws on
// /graphql, /api/auth/*, /metrics.
//
// Model: every event received (live or from history) is kept, sorted by id (ids are UUIDv7,
// so id order is log order) and indexed by id; a duplicate is dropped by id. The list renders
// a bounded window of WINDOW rows at most once per animation frame (only the new rows when
// following the live end), and says how many held events are not rendered.
// Resume: the cursor (id of the newest event delivered by the subscription, or the log's
// newest event when the feed started) is kept in sessionStorage with the filters; every
// subscribe, after a reload or a dropped connection, passes it as `after`, so the server
// replays exactly what came after it.

import { ApiError, EVENT_FIELDS, EventStream, Session } from './api.js';
import { MetricsCharts } from './charts.js';

const WINDOW = 200;
const PAGE = 50; // InfrahubEvent's default event_page_max
const VIEW_KEY = 'infrastream.console.view';

const $ = (id) => document.getElementById(id);

/** `el('td', {class: 'x'}, 'text', child)`: attributes then children (text is never HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === 'onclick') node.addEventListener('click', v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

const short = (id) => (id ? (id.length > 13 ? `…${id.slice(-12)}` : id) : '');
const list = (text) => {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  return items.length ? items : null;
};

const S = {
  events: [], // sorted by id
  byId: new Map(),
  cursor: null,
  filters: { eventType: '', branch: '', node: '', account: '' },
  epoch: 0, // bumped by every reset: late answers of an older feed are ignored
  follow: true, // the window shows the newest events
  end: 0, // when not following: index after the newest row shown
  renderedN: 0,
  dirtyFull: true,
  frame: 0,
  historyDone: false,
  loadingOlder: null,
  selected: null,
  received: 0,
  duplicates: 0,
  latency: null, // ms between commit and receipt of the last live event
  types: new Set(),
  tab: 'events',
  persisted: null,
};

const session = new Session();
const stream = new EventStream(session, {
  after: () => S.cursor,
  filters: filterVars,
  onEvent: onLiveEvent,
  onState: setState,
  onError: onStreamError,
});
const charts = new MetricsCharts(
  session,
  { events: $('chart-events'), deliveries: $('chart-deliveries'), latency: $('chart-latency'), status: $('metrics-status') },
  () => S.received,
  // Not while the connection is down: the server is likely unreachable, and a rate across a
  // restart would mean nothing.
  () => ['live', 'connecting'].includes($('conn-state').dataset.state),
);

// ---- model ---------------------------------------------------------------------------------

function filterVars() {
  const f = S.filters;
  return {
    event_type: list(f.eventType),
    branches: list(f.branch),
    primary_node__ids: list(f.node),
    account__ids: list(f.account),
  };
}

/** Adds an event unless held already; keeps the order and the window's anchor. */
function addEvent(e) {
  if (S.byId.has(e.id)) {
    S.duplicates += 1;
    return false;
  }
  S.byId.set(e.id, e);
  const a = S.events;
  if (!a.length || a[a.length - 1].id < e.id) {
    a.push(e);
  } else {
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid].id < e.id) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, e);
    if (!S.follow && lo < S.end) S.end += 1;
    S.dirtyFull = true;
  }
  if (!S.types.has(e.event)) {
    S.types.add(e.event);
    $('known-types').append(el('option', { value: e.event }));
  }
  return true;
}

function onLiveEvent(e) {
  S.received += 1;
  S.cursor = e.id;
  S.latency = Date.now() - Date.parse(e.occurred_at);
  addEvent(e);
  schedule();
}

function persist() {
  const text = JSON.stringify({ filters: S.filters, cursor: S.cursor });
  if (text !== S.persisted) {
    sessionStorage.setItem(VIEW_KEY, text);
    S.persisted = text;
  }
}

const HISTORY = `query ConsoleHistory($limit: Int, $offset: Int, $until: DateTime, $event_type: [String!],
  $branches: [String!], $primary_node__ids: [String!], $account__ids: [String!], $ids: [String!],
  $parent__ids: [String!], $order: EventSortOrder) {
  InfrahubEvent(limit: $limit, offset: $offset, until: $until, event_type: $event_type,
    branches: $branches, primary_node__ids: $primary_node__ids, account__ids: $account__ids,
    ids: $ids, parent__ids: $parent__ids, order: $order) {
    count edges { node { ${EVENT_FIELDS} } }
  }
}`;

/** Starts the feed afresh (filters changed, first start, or a pruned cursor). */
async function resetFeed(keepCursor) {
  const epoch = ++S.epoch;
  stream.pause();
  Object.assign(S, { events: [], follow: true, end: 0, historyDone: false, loadingOlder: null, dirtyFull: true });
  S.byId.clear();
  $('details').hidden = true;
  S.selected = null;
  schedule();
  try {
    if (!keepCursor || !S.cursor) {
      // Resume after the log's newest event: older matching ones come from history.
      const data = await session.gql('{ InfrahubEvent(limit: 1, order: DESC) { edges { node { id } } } }');
      if (epoch !== S.epoch) return;
      S.cursor = data.InfrahubEvent.edges[0]?.node?.id ?? null;
    }
    persist();
    await loadOlder();
  } catch (e) {
    if (epoch !== S.epoch) return;
    status(`history: ${e.message}`, true);
  }
  if (epoch !== S.epoch) return;
  const startedEmpty = !S.cursor;
  stream.start();
  // An empty log has no event to resume after: what was committed before the subscription
  // took hold comes from history again (duplicates are dropped by id).
  if (startedEmpty) setTimeout(() => epoch === S.epoch && loadNewest(epoch), 1000);
}

async function loadNewest(epoch) {
  const data = await session.gql(HISTORY, { ...filterVars(), limit: PAGE, order: 'DESC' }).catch(() => null);
  if (data && epoch === S.epoch) data.InfrahubEvent.edges.forEach((x) => addEvent(x.node));
  schedule();
}

/** One page of events older than the oldest held (InfrahubEvent, newest first). */
function loadOlder() {
  if (S.historyDone) return Promise.resolve();
  if (S.loadingOlder) return S.loadingOlder;
  const epoch = S.epoch;
  const vars = { ...filterVars(), limit: PAGE, order: 'DESC', offset: 0 };
  const oldest = S.events[0];
  if (oldest) {
    // `until` is inclusive: skip the held events of that same instant.
    vars.until = oldest.occurred_at;
    while (vars.offset < S.events.length && S.events[vars.offset].occurred_at === oldest.occurred_at) vars.offset += 1;
  }
  status('loading history…');
  S.loadingOlder = session
    .gql(HISTORY, vars)
    .then((data) => {
      if (epoch !== S.epoch) return;
      const page = data.InfrahubEvent;
      page.edges.forEach((x) => addEvent(x.node));
      if (vars.offset + page.edges.length >= page.count) S.historyDone = true;
      status(S.historyDone ? 'all matching history loaded' : '');
    })
    .finally(() => {
      if (epoch === S.epoch) S.loadingOlder = null;
      schedule();
    });
  return S.loadingOlder;
}

function status(text, error = false) {
  const p = $('history-status');
  p.textContent = text;
  p.classList.toggle('error', error);
}

// ---- connection state, errors, lag ---------------------------------------------------------

function setState(state, detail = '') {
  const s = $('conn-state');
  s.dataset.state = state;
  s.textContent = state;
  s.title = detail;
}

function onStreamError(err) {
  if (err.code === 'CURSOR_PRUNED') {
    status(`resumed from the oldest retained event: ${err.message}`, true);
    resetFeed(false);
    return;
  }
  setState('error', err.message);
  status(`subscription: ${err.message}`, true);
}

function showLag() {
  const newest = S.events.at(-1);
  const parts = [];
  if (newest) parts.push(`newest ${((Date.now() - Date.parse(newest.occurred_at)) / 1000).toFixed(1)} s ago`);
  if (S.latency != null) parts.push(`last delivery ${S.latency} ms after commit`);
  parts.push(`${S.received} received`);
  $('lag').textContent = parts.join(' · ');
}

// ---- the list ------------------------------------------------------------------------------

function schedule() {
  if (!S.frame) S.frame = requestAnimationFrame(render);
}

function row(e) {
  const node = e.primary_node;
  const tr = el(
    'tr',
    { 'data-event-id': e.id, 'data-testid': 'event-row', 'data-event': e.event },
    el('td', { class: 'mono' }, e.occurred_at.replace('T', ' ').replace('Z', '')),
    el('td', {}, e.event),
    el('td', {}, e.branch ?? ''),
    el('td', { title: node ? `${node.kind} ${node.id}` : null }, node ? `${node.kind} ${short(node.id)}` : ''),
    el('td', { class: 'mono', title: e.account_id }, short(e.account_id)),
    el('td', { class: 'mono id', title: e.id }, short(e.id)),
  );
  if (e.id === S.selected) tr.classList.add('selected');
  return tr;
}

function render() {
  S.frame = 0;
  persist();
  const tbody = $('event-rows');
  const n = S.events.length;
  if (S.follow) S.end = n;
  const start = Math.max(0, S.end - WINDOW);
  if (S.follow && !S.dirtyFull) {
    const frag = document.createDocumentFragment();
    for (let i = n - 1; i >= Math.max(S.renderedN, start); i -= 1) frag.append(row(S.events[i]));
    tbody.prepend(frag);
    while (tbody.rows.length > WINDOW) tbody.lastChild.remove();
  } else {
    const frag = document.createDocumentFragment();
    for (let i = S.end - 1; i >= start; i -= 1) frag.append(row(S.events[i]));
    tbody.replaceChildren(frag);
  }
  S.renderedN = n;
  S.dirtyFull = false;
  const shown = S.end - start;
  $('held').textContent = `${n} events held`;
  $('not-rendered').textContent = n > shown ? `${n - shown} events not rendered` : '';
  $('not-rendered').dataset.count = String(n - shown);
  $('follow').disabled = S.follow;
  $('newer').disabled = S.follow;
  $('older').disabled = start === 0 && S.historyDone;
  showLag();
}

async function older() {
  if (S.follow) {
    S.follow = false;
    S.end = S.events.length;
  }
  if (S.end - 2 * WINDOW < 0 && !S.historyDone) await loadOlder().catch((e) => status(`history: ${e.message}`, true));
  S.end = Math.max(Math.min(WINDOW, S.events.length), S.end - WINDOW);
  S.dirtyFull = true;
  schedule();
}

function newer() {
  S.end = Math.min(S.events.length, S.end + WINDOW);
  S.follow = S.end >= S.events.length;
  S.dirtyFull = true;
  schedule();
}

function followLive() {
  S.follow = true;
  S.dirtyFull = true;
  schedule();
}

// ---- details -------------------------------------------------------------------------------

function eventLink(id, label) {
  return el('a', { class: 'event-link', 'data-event-link': id, onclick: () => showDetails(id) }, label ?? id);
}

async function fetchEvent(id) {
  if (S.byId.has(id)) return S.byId.get(id);
  const data = await session.gql(HISTORY, { ids: [id], limit: 1 });
  return data.InfrahubEvent.edges[0]?.node ?? null;
}

async function showDetails(id) {
  if (S.tab !== 'events') showTab('events');
  const pane = $('details');
  pane.hidden = false;
  S.selected = id;
  for (const tr of $('event-rows').querySelectorAll('tr.selected')) tr.classList.remove('selected');
  $('event-rows').querySelector(`tr[data-event-id="${CSS.escape(id)}"]`)?.classList.add('selected');
  let e;
  try {
    e = await fetchEvent(id);
  } catch (err) {
    pane.replaceChildren(el('p', { class: 'error' }, err.message));
    return;
  }
  if (S.selected !== id) return;
  if (!e) {
    pane.replaceChildren(el('p', { class: 'error' }, `event ${id} not found`));
    return;
  }
  const node = (n) => (n ? `${n.kind} ${n.id}` : '—');
  // `has_children` of an event received live may be stale (children come later): always ask.
  const children = el('div', { 'data-testid': 'details-children' }, 'loading…');
  pane.replaceChildren(
    el('h3', { 'data-testid': 'details-event' }, e.event),
    el(
      'dl',
      {},
      el('dt', {}, 'id'), el('dd', { class: 'mono', 'data-testid': 'details-id' }, e.id),
      el('dt', {}, 'occurred at'), el('dd', {}, e.occurred_at),
      el('dt', {}, 'branch'), el('dd', {}, e.branch ?? '— (global)'),
      el('dt', {}, 'account'), el('dd', { class: 'mono' }, e.account_id ?? '—'),
      el('dt', {}, 'level'), el('dd', {}, String(e.level)),
      el('dt', {}, 'parent'), el('dd', { 'data-testid': 'details-parent' }, e.parent_id ? eventLink(e.parent_id) : '—'),
      el('dt', {}, 'primary node'), el('dd', {}, node(e.primary_node)),
      el('dt', {}, 'related nodes'), el('dd', {}, e.related_nodes.length ? e.related_nodes.map(node).join(', ') : '—'),
      el('dt', {}, 'children'), el('dd', {}, children),
    ),
    el('h4', {}, 'payload'),
    el('pre', { 'data-testid': 'details-payload' }, JSON.stringify(e.payload, null, 2)),
  );
  try {
    const data = await session.gql(HISTORY, { parent__ids: [e.id], limit: PAGE, order: 'ASC' });
    const page = data.InfrahubEvent;
    if (page.count) e.has_children = true;
    children.replaceChildren(
      ...page.edges.map((x) => el('span', { class: 'mini' }, eventLink(x.node.id, `${x.node.event} ${short(x.node.id)}`))),
      page.count > page.edges.length ? `… ${page.count - page.edges.length} more` : '',
    );
    if (!page.count) children.textContent = 'none';
  } catch (err) {
    children.textContent = err.message;
  }
}

// ---- small views ---------------------------------------------------------------------------

const VIEWS = {
  branches: {
    query: '{ Branch { id name status branched_from created_at } }',
    items: (d) => d.Branch.map((b) => ({ id: b.id, name: b.name, cols: [b.status, b.branched_from ?? ''] })),
    heads: ['status', 'branched from'],
    matches: (e, it) => {
      const d = e.payload?.data ?? {};
      return e.branch === it.name || [d.created_branch, d.deleted_branch, d.source_branch, d.rebased_branch].includes(it.name);
    },
    filter: (it) => ({ branch: it.name }),
  },
  artifacts: {
    query: '{ CoreArtifact { edges { node { id name { value } status { value } checksum { value } branch target { id kind } } } } }',
    items: (d) =>
      d.CoreArtifact.edges.map(({ node: a }) => ({
        id: a.id,
        name: a.name?.value ?? a.id,
        cols: [a.status?.value ?? '', a.branch, `${a.target?.kind ?? ''} ${short(a.target?.id)}`, short(a.checksum?.value)],
      })),
    heads: ['status', 'branch', 'target', 'checksum'],
    matches: (e, it) => nodeMatch(e, it.id),
    filter: (it) => ({ node: it.id }),
  },
  repositories: {
    query: '{ CoreRepository { edges { node { id name { value } location { value } commit { value } sync_status { value } } } } }',
    items: (d) =>
      d.CoreRepository.edges.map(({ node: r }) => ({
        id: r.id,
        name: r.name?.value ?? r.id,
        cols: [r.location?.value ?? '', short(r.commit?.value), r.sync_status?.value ?? ''],
      })),
    heads: ['location', 'commit', 'sync status'],
    matches: (e, it) => nodeMatch(e, it.id) || e.payload?.data?.repository_id === it.id,
    filter: (it) => ({ node: it.id }),
  },
};

function nodeMatch(e, id) {
  return e.primary_node?.id === id || e.related_nodes.some((n) => n.id === id);
}

const viewItems = {};

async function loadView(name) {
  const box = $(`view-${name}`);
  try {
    viewItems[name] = VIEWS[name].items(await session.gql(VIEWS[name].query));
    renderView(name);
  } catch (err) {
    box.replaceChildren(el('p', { class: 'error' }, `${name}: ${err.message}`));
  }
}

/** The items with their latest few events among those the page holds. */
function renderView(name) {
  const v = VIEWS[name];
  const items = viewItems[name] ?? [];
  const latest = new Map(items.map((it) => [it.id, []]));
  for (let i = S.events.length - 1, scanned = 0; i >= 0 && scanned < 20000; i -= 1, scanned += 1) {
    const e = S.events[i];
    for (const it of items) {
      const l = latest.get(it.id);
      if (l.length < 3 && v.matches(e, it)) l.push(e);
    }
  }
  const body = items.map((it) =>
    el(
      'tr',
      { 'data-item-id': it.id },
      el('td', {}, el('a', { class: 'node-link', title: 'filter the events by it', onclick: () => applyFilters({ ...S.filters, ...v.filter(it) }) }, it.name)),
      ...it.cols.map((c) => el('td', {}, c)),
      el('td', { class: 'events' }, ...latest.get(it.id).map((e) => el('span', { class: 'mini' }, eventLink(e.id, `${e.occurred_at.slice(11, 19)} ${e.event}`)))),
    ),
  );
  $(`view-${name}`).replaceChildren(
    el('button', { type: 'button', onclick: () => loadView(name) }, 'Refresh'),
    el('p', { class: 'note' }, `${items.length} ${name}; latest events among the ${S.events.length} held by this page`),
    el(
      'table',
      { class: 'item-table', 'data-testid': `${name}-table` },
      el('thead', {}, el('tr', {}, el('th', {}, 'name'), ...v.heads.map((h) => el('th', {}, h)), el('th', {}, 'latest events'))),
      el('tbody', {}, ...body),
    ),
  );
}

function showTab(name) {
  S.tab = name;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const s of document.querySelectorAll('main > section[data-view]')) s.hidden = s.dataset.view !== name;
  if (name !== 'events') loadView(name);
}

// ---- filters, login, start -----------------------------------------------------------------

function applyFilters(f) {
  S.filters = { ...f };
  $('filter-event-type').value = f.eventType;
  $('filter-branch').value = f.branch;
  $('filter-node').value = f.node;
  $('filter-account').value = f.account;
  if (S.tab !== 'events') showTab('events');
  resetFeed(false);
}

function readFilters() {
  return {
    eventType: $('filter-event-type').value.trim(),
    branch: $('filter-branch').value.trim(),
    node: $('filter-node').value.trim(),
    account: $('filter-account').value.trim(),
  };
}

function showLogin(message = '') {
  $('app').hidden = true;
  $('login').hidden = false;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('login-error').textContent = message;
}

function startApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `${session.auth.user ?? ''} (${session.auth.kind === 'token' ? 'API token' : 'password'})`;
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(VIEW_KEY) || 'null');
  } catch {
    saved = null;
  }
  S.filters = { ...S.filters, ...(saved?.filters ?? {}) };
  S.cursor = saved?.cursor ?? null;
  applyFiltersToInputs();
  resetFeed(!!S.cursor);
  charts.start();
}

function applyFiltersToInputs() {
  $('filter-event-type').value = S.filters.eventType;
  $('filter-branch').value = S.filters.branch;
  $('filter-node').value = S.filters.node;
  $('filter-account').value = S.filters.account;
}

function stopApp() {
  S.epoch += 1;
  stream.stop();
  charts.stop();
  sessionStorage.removeItem(VIEW_KEY);
  S.persisted = null;
  S.cursor = null;
  S.events = [];
  S.byId.clear();
  S.dirtyFull = true;
  schedule();
}

async function login(fn) {
  $('login-error').textContent = '';
  try {
    await fn();
    startApp();
  } catch (e) {
    $('login-error').textContent = e instanceof ApiError ? e.message : `login failed: ${e.message}`;
  }
}

$('login-token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  login(() => session.loginToken($('token').value));
  $('token').value = '';
});
$('login-password-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  login(() => session.loginPassword($('username').value, $('password').value));
  $('password').value = '';
});
$('logout').addEventListener('click', async () => {
  stopApp();
  await session.logout();
  showLogin();
});
session.onLost = (err) => {
  stopApp();
  session.auth = null;
  session.save();
  showLogin(`Logged out: ${err.message}`);
};
$('filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  applyFilters(readFilters());
});
$('filter-clear').addEventListener('click', () => applyFilters({ eventType: '', branch: '', node: '', account: '' }));
$('event-rows').addEventListener('click', (ev) => {
  const tr = ev.target.closest('tr[data-event-id]');
  if (tr) showDetails(tr.dataset.eventId);
});
$('older').addEventListener('click', older);
$('newer').addEventListener('click', newer);
$('follow').addEventListener('click', followLive);
for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
setInterval(() => {
  showLag();
  if (S.tab !== 'events' && viewItems[S.tab]) renderView(S.tab);
}, 1000);

if (session.loggedIn) startApp();
else showLogin();
