// infrastream console: talking to the server (same origin only, no dependency).
//
// Session   the credential (API token, or JWT access + refresh token from /api/auth/login),
//           kept in sessionStorage only; GraphQL over HTTP; /metrics.
// EventStream  the `events` subscription over graphql-transport-ws on /graphql, resumed with
//           `after` = the caller's cursor on every (re)connect, with backoff.

const AUTH_KEY = 'infrastream.console.auth';

export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

async function body(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return { errors: [{ message: text || `HTTP ${res.status}` }] };
  }
}

function firstError(json, status) {
  const e = json?.errors?.[0];
  return new ApiError(e?.message ?? `HTTP ${status}`, e?.extensions?.code, status);
}

export class Session {
  constructor() {
    this.auth = null; // {kind: 'token'|'jwt', value, refresh?, user?}
    this.onLost = () => {};
    try {
      this.auth = JSON.parse(sessionStorage.getItem(AUTH_KEY) || 'null');
    } catch {
      this.auth = null;
    }
  }

  get loggedIn() {
    return !!this.auth;
  }

  save() {
    if (this.auth) sessionStorage.setItem(AUTH_KEY, JSON.stringify(this.auth));
    else sessionStorage.removeItem(AUTH_KEY);
  }

  headers() {
    if (!this.auth) return {};
    return this.auth.kind === 'token'
      ? { 'X-INFRAHUB-KEY': this.auth.value }
      : { Authorization: `Bearer ${this.auth.value}` };
  }

  /** The `connection_init` payload: the same credential as over HTTP. */
  initPayload() {
    return this.headers();
  }

  async loginToken(token) {
    this.auth = { kind: 'token', value: token.trim() };
    await this.checkProfile();
  }

  async loginPassword(username, password) {
    const res = await fetch('/api/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const json = await body(res);
    if (!res.ok) throw firstError(json, res.status);
    this.auth = { kind: 'jwt', value: json.access_token, refresh: json.refresh_token };
    await this.checkProfile();
  }

  async checkProfile() {
    try {
      const data = await this.gql('{ AccountProfile { id display_label } }', {}, false);
      this.auth.user = data.AccountProfile?.display_label ?? '?';
      this.auth.accountId = data.AccountProfile?.id;
      this.save();
    } catch (e) {
      this.auth = null;
      this.save();
      throw e;
    }
  }

  async logout() {
    const auth = this.auth;
    this.auth = null;
    this.save();
    if (auth?.kind === 'jwt') {
      await fetch('/api/auth/logout', {
        method: 'POST',
        headers: { Authorization: `Bearer ${auth.value}` },
      }).catch(() => {});
    }
  }

  /** A new access token from the refresh token; false when there is none or it is refused. */
  async refresh() {
    if (this.auth?.kind !== 'jwt' || !this.auth.refresh) return false;
    const res = await fetch('/api/auth/refresh', {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.auth.refresh}` },
    }).catch(() => null);
    if (!res?.ok) return false;
    const json = await body(res);
    if (!json.access_token) return false;
    this.auth.value = json.access_token;
    this.save();
    return true;
  }

  /** POST /graphql; resolves to `data`, rejects with the first error. */
  async gql(query, variables = {}, retry = true) {
    const res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...this.headers() },
      body: JSON.stringify({ query, variables }),
    });
    const json = await body(res);
    if (res.status === 401 && retry && (await this.refresh())) return this.gql(query, variables, false);
    if (res.status === 401) this.onLost(firstError(json, res.status));
    if (!res.ok || json.errors?.length) throw firstError(json, res.status);
    return json.data;
  }

  /** GET /metrics as text (the same credential). */
  async metrics() {
    const res = await fetch('/metrics', { headers: this.headers() });
    if (!res.ok) throw new ApiError(`HTTP ${res.status}`, 'METRICS', res.status);
    return res.text();
  }
}

/** Fields of an event, as the list, the details pane and the views use them. */
export const EVENT_FIELDS = `id event branch account_id occurred_at level parent_id has_children
  primary_node { id kind } related_nodes { id kind } payload`;

// Anonymous on purpose: the server hands anonymous `events` operations to its shared fan-out
// (a named one stays on its session's own stream, without delivery-latency observations).
const SUBSCRIPTION = `subscription ($after: String, $event_type: [String!],
  $branches: [String!], $primary_node__ids: [String!], $account__ids: [String!]) {
  events(after: $after, event_type: $event_type, branches: $branches,
    primary_node__ids: $primary_node__ids, account__ids: $account__ids) { ${EVENT_FIELDS} }
}`;

/**
 * The live feed. `opts.after()` gives the id to resume after (the newest event the page
 * holds), read at every subscribe; `opts.filters()` the filter variables. Events go to
 * `opts.onEvent(e)` in log order; `opts.onState(state, detail)` hears connecting, live,
 * reconnecting, error; `opts.onError(err)` hears subscription errors (e.g. CURSOR_PRUNED).
 */
export class EventStream {
  constructor(session, opts) {
    this.session = session;
    this.opts = opts;
    this.ws = null;
    this.subId = null;
    this.seq = 0;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.paused = false;
    this.acked = false;
  }

  /** Subscribes (again) with the current cursor and filters, connecting first if needed. */
  start() {
    this.stopped = false;
    this.paused = false;
    if (this.ws && this.acked) this.subscribe();
    else if (!this.ws) this.connect();
  }

  /** Ends the subscription but keeps the connection (until `start`). */
  pause() {
    this.paused = true;
    if (this.subId && this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ id: this.subId, type: 'complete' }));
    }
    this.subId = null;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'bye');
    }
    this.opts.onState('stopped');
  }

  connect() {
    clearTimeout(this.timer);
    this.acked = false;
    this.opts.onState(this.attempt ? 'reconnecting' : 'connecting');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
    const ws = new WebSocket(url, 'graphql-transport-ws');
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'connection_init', payload: this.session.initPayload() }));
    };
    ws.onmessage = (m) => this.message(ws, m.data);
    ws.onclose = (c) => this.closed(ws, c);
  }

  subscribe() {
    if (this.subId) this.ws.send(JSON.stringify({ id: this.subId, type: 'complete' }));
    this.subId = `events-${++this.seq}`;
    const variables = { ...this.opts.filters(), after: this.opts.after() };
    this.ws.send(
      JSON.stringify({ id: this.subId, type: 'subscribe', payload: { query: SUBSCRIPTION, variables } }),
    );
  }

  message(ws, raw) {
    if (ws !== this.ws) return;
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'connection_ack':
        this.acked = true;
        this.attempt = 0;
        this.subId = null;
        this.opts.onState('live');
        if (!this.paused) this.subscribe();
        break;
      case 'ping':
        ws.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'next':
        if (msg.id !== this.subId) return;
        if (msg.payload?.errors?.length) {
          this.opts.onError(firstError(msg.payload, 0));
        } else if (msg.payload?.data?.events) {
          this.opts.onEvent(msg.payload.data.events);
        }
        break;
      case 'error':
        if (msg.id !== this.subId) return;
        this.subId = null;
        this.opts.onError(firstError({ errors: msg.payload }, 0));
        break;
      case 'complete':
        if (msg.id === this.subId) this.subId = null;
        break;
    }
  }

  async closed(ws, c) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.subId = null;
    this.acked = false;
    if (this.stopped) return;
    if (c.code === 4403 || c.code === 4401) {
      // Credential refused or expired: a JWT session may be refreshed once, else log in again.
      if (!(await this.session.refresh())) {
        this.opts.onState('error', `credential refused (${c.code} ${c.reason})`);
        this.session.onLost(new ApiError(c.reason || 'credential refused', 'UNAUTHENTICATED', c.code));
        return;
      }
    }
    this.attempt += 1;
    const delay = Math.min(15000, 250 * 2 ** Math.min(this.attempt - 1, 6)) * (0.75 + Math.random() / 2);
    this.opts.onState('reconnecting', `closed ${c.code}${c.reason ? ` ${c.reason}` : ''}; retry in ${Math.round(delay)} ms`);
    this.timer = setTimeout(() => !this.stopped && this.connect(), delay);
  }
}
