// Real-time conformance of infrastream with real npm GraphQL-over-WebSocket clients, each first in
// its DEFAULT configuration (only the URL, the connection params and, Node 20 having no global
// WebSocket, the `ws` implementation), then in explicit variants. Cases, in order:
//   graphql-ws [default]                          createClient({url, connectionParams, webSocketImpl})
//   subscriptions-transport-ws [default]          new SubscriptionClient(url, {connectionParams}, ws)
//   @apollo/client GraphQLWsLink [default]        ApolloClient + InMemoryCache + GraphQLWsLink(createClient(...))
//   @apollo/client WebSocketLink [default]        ApolloClient + InMemoryCache + WebSocketLink({uri, options})
//                                                 (legacy, on subscriptions-transport-ws)
//   @urql/core subscriptionExchange+graphql-ws [default]
//                                                 Client({exchanges: [cacheExchange, fetchExchange,
//                                                 subscriptionExchange({forwardSubscription})]}) as
//                                                 urql documents it, forwarding to graphql-ws
//   graphql-ws [lazy:false keepAlive:500 retryAttempts:0]
//                                                 eager connection, client pings every 500 ms
//                                                 (at least one pong must come back)
//   subscriptions-transport-ws [lazy reconnect:false timeout:30000]
//   @apollo/client GraphQLWsLink [fetchPolicy:no-cache]
// Each case asserts the subprotocol the client offered and the one the server echoed (that is the
// one the client speaks: graphql-ws and subscriptions-transport-ws each speak exactly one).
//
// Environment: INFRASTREAM_URL (e.g. http://127.0.0.1:8000), INFRASTREAM_TOKEN (admin API token),
// CONFORMANCE_CASES (optional: a substring; only the cases whose name contains it run).
// Run: node realtime.mjs   (see conformance/run.sh). Exit status 0 iff every case passed.
//
// Per case, with a fresh random suffix S: a saved query q-S is created over HTTP, then three
// subscriptions are started on one connection:
//   A  events(event_type: [branch created/merged/deleted, "conf.S"])
//   B  events(branches: ["b-S"])
//   C  query(name: "q-S", interval: 300)
// and, once they are established, events are caused over HTTP: BranchCreate b-S, EventEmit
// conf.S on b-S, EventEmit conf.S without branch, BranchRebase b-S, BranchMerge b-S,
// BranchCreate d-S, BranchDelete d-S. A must receive exactly created(b), conf(b), conf(null),
// merged(b), created(d), deleted(d) in that order (branch created/merged/deleted are global
// events with a null `branch`); B exactly conf(b), rebased(b); nothing else within 500 ms after;
// C a first result at once listing main, later results listing b-S.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { WebSocketLink } from '@apollo/client/link/ws';
import { Client as UrqlClient, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import subscriptionsTransportWs from 'subscriptions-transport-ws';
import WebSocket from 'ws';

const { SubscriptionClient } = subscriptionsTransportWs;

const URL_BASE = (process.env.INFRASTREAM_URL || '').replace(/\/+$/, '');
const TOKEN = process.env.INFRASTREAM_TOKEN || '';
if (!URL_BASE || !TOKEN) {
  console.error('INFRASTREAM_URL and INFRASTREAM_TOKEN must be set');
  process.exit(2);
}
const HTTP_URL = `${URL_BASE}/graphql`;
const WS_URL = `${HTTP_URL.replace(/^http/, 'ws')}`;
const CONNECTION_PARAMS = { 'X-INFRAHUB-KEY': TOKEN };

const SETTLE_MS = 300; // time given to the subscriptions to be established
const QUIET_MS = 500; // nothing more may arrive within this time after the last expected event
const TIMEOUT_MS = 10_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function http(query, variables = {}) {
  const res = await fetch(HTTP_URL, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      'X-INFRAHUB-KEY': TOKEN,
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${res.status}: not JSON: ${text}`);
  }
  if (res.status !== 200 || body.errors) {
    throw new Error(`HTTP ${res.status} for ${query}: ${text}`);
  }
  return body.data;
}

async function mutate(name, query, variables) {
  const data = await http(query, variables);
  assert.equal(data?.[name]?.ok, true, `${name} ok: ${JSON.stringify(data)}`);
  return data[name];
}

/** Waits until `cond()` is true, polling every 20 ms; fails after `ms` with `what`. */
async function until(cond, what, ms = TIMEOUT_MS) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// ---- clients ---------------------------------------------------------------------------------

/**
 * A `ws` WebSocket subclass that records the offered and the echoed subprotocols and every text
 * frame. It only observes: the client library's own arguments are passed through unchanged.
 */
function recording() {
  const offered = [];
  const protocols = [];
  const frames = [];
  const record = (dir, data) => {
    let msg;
    try {
      msg = JSON.parse(String(data));
    } catch {
      msg = { unparsable: String(data) };
    }
    frames.push({ dir, at: Date.now(), msg });
    if (process.env.CONFORMANCE_TRACE) console.log(new Date().toISOString().slice(17, 23), dir === 'in' ? '<-' : '->', String(data).slice(0, 160));
  };
  class RecordingWebSocket extends WebSocket {
    constructor(url, protocol, ...rest) {
      super(url, protocol, ...rest);
      offered.push([protocol ?? []].flat().join(', '));
      this.once('upgrade', (res) => protocols.push(res.headers['sec-websocket-protocol']));
      this.on('message', (data, isBinary) => record('in', isBinary ? '<binary>' : data));
    }
    send(data, ...rest) {
      record('out', data);
      return super.send(data, ...rest);
    }
  }
  return { offered, protocols, frames, RecordingWebSocket };
}

const TRANSPORT_WS = 'graphql-transport-ws';
const LEGACY = 'graphql-ws';

/** A sink that turns whatever a client delivers into `{ data, errors }`. */
const plain = (sink, toResult) => ({
  next: (r) => sink.next(toResult(r)),
  error: (e) => sink.error(e),
  complete: () => sink.complete(),
});

/** graphql-ws `createClient` (graphql-transport-ws); `options` on top of the default. */
function graphqlWsCase(label, options = {}, extra = {}) {
  const name = `graphql-ws [${label}]`;
  return { name, make: () => {
    const { offered, protocols, frames, RecordingWebSocket } = recording();
    const client = createClient({ url: WS_URL, connectionParams: CONNECTION_PARAMS, webSocketImpl: RecordingWebSocket, ...options });
    return {
      name,
      expectedOffered: TRANSPORT_WS,
      expectedProtocol: TRANSPORT_WS,
      checkFrames: checkTransportFrames,
      offered,
      protocols,
      frames,
      ...extra,
      subscribe(query, sink) {
        return client.subscribe({ query }, sink);
      },
      async close() {
        await client.dispose();
      },
    };
  } };
}

/** subscriptions-transport-ws `SubscriptionClient` (legacy Apollo graphql-ws). */
function subscriptionsTransportWsCase(label, options = {}) {
  const name = `subscriptions-transport-ws [${label}]`;
  return { name, make: () => {
    const { offered, protocols, frames, RecordingWebSocket } = recording();
    const client = new SubscriptionClient(WS_URL, { connectionParams: CONNECTION_PARAMS, ...options }, RecordingWebSocket);
    const errors = [];
    client.onError((e) => errors.push(e));
    return {
      name,
      expectedOffered: LEGACY,
      expectedProtocol: LEGACY,
      checkFrames: checkLegacyFrames,
      offered,
      protocols,
      frames,
      errors,
      subscribe(query, sink) {
        const sub = client.request({ query }).subscribe(sink);
        return () => sub.unsubscribe();
      },
      async close() {
        client.close(true);
      },
    };
  } };
}

/** Apollo Client results: `{ data, error? }` (errors are a CombinedGraphQLErrors in `error`). */
const apolloResult = (r) => (r.error ? { data: r.data, errors: [String(r.error)] } : { data: r.data });

/** Apollo Client (InMemoryCache) over `link`; `subscribeOptions` added to each `subscribe`. */
function apolloCase(name, makeLink, { expectedOffered, expectedProtocol, checkFrames }, subscribeOptions = {}) {
  return { name, make: () => {
    const { offered, protocols, frames, RecordingWebSocket } = recording();
    const { link, dispose } = makeLink(RecordingWebSocket);
    const client = new ApolloClient({ link, cache: new InMemoryCache() });
    return {
      name,
      expectedOffered,
      expectedProtocol,
      checkFrames,
      offered,
      protocols,
      frames,
      subscribe(query, sink) {
        const sub = client.subscribe({ query: gql(query), ...subscribeOptions }).subscribe(plain(sink, apolloResult));
        return () => sub.unsubscribe();
      },
      async close() {
        client.stop();
        await dispose();
      },
    };
  } };
}

const graphQLWsLink = (webSocketImpl) => {
  const ws = createClient({ url: WS_URL, connectionParams: CONNECTION_PARAMS, webSocketImpl });
  return { link: new GraphQLWsLink(ws), dispose: () => ws.dispose() };
};

const webSocketLink = (webSocketImpl) => {
  const link = new WebSocketLink({ uri: WS_URL, options: { connectionParams: CONNECTION_PARAMS }, webSocketImpl });
  return { link, dispose: async () => link.subscriptionClient.close(true) };
};

/** urql results: `{ data, error? }` (a CombinedError). */
const urqlResult = (r) => (r.error ? { data: r.data, errors: [String(r.error)] } : { data: r.data });

/** @urql/core with the subscriptionExchange forwarding to graphql-ws, as urql documents it. */
function urqlCase(label) {
  const name = `@urql/core subscriptionExchange+graphql-ws [${label}]`;
  return { name, make: () => {
    const { offered, protocols, frames, RecordingWebSocket } = recording();
    const wsClient = createClient({ url: WS_URL, connectionParams: CONNECTION_PARAMS, webSocketImpl: RecordingWebSocket });
    const client = new UrqlClient({
      url: HTTP_URL,
      fetchOptions: { headers: { 'X-INFRAHUB-KEY': TOKEN } },
      exchanges: [
        cacheExchange,
        fetchExchange,
        subscriptionExchange({
          forwardSubscription(request) {
            const input = { ...request, query: request.query || '' };
            return {
              subscribe(sink) {
                const unsubscribe = wsClient.subscribe(input, sink);
                return { unsubscribe };
              },
            };
          },
        }),
      ],
    });
    return {
      name,
      expectedOffered: TRANSPORT_WS,
      expectedProtocol: TRANSPORT_WS,
      checkFrames: checkTransportFrames,
      offered,
      protocols,
      frames,
      subscribe(query, sink) {
        // urql's sources neither error nor complete through this callback: errors arrive as
        // `result.error`, an ended subscription simply stops delivering.
        const { unsubscribe } = client.subscription(query, {}).subscribe((r) => sink.next(urqlResult(r)));
        return unsubscribe;
      },
      async close() {
        await wsClient.dispose();
      },
    };
  } };
}

/** Extra check for the keep-alive variant: the client pinged and got pongs back. */
function checkPinged(frames) {
  const pings = frames.filter((f) => f.dir === 'out' && f.msg.type === 'ping').length;
  const pongs = frames.filter((f) => f.dir === 'in' && f.msg.type === 'pong').length;
  assert.ok(pings >= 1, `keepAlive: the client sent pings (${pings})`);
  assert.ok(pongs >= 1 && pongs <= pings, `keepAlive: the server answered pings with pongs (${pings} pings, ${pongs} pongs)`);
}

const CASES = [
  // Each client in its default configuration first ...
  graphqlWsCase('default'),
  subscriptionsTransportWsCase('default'),
  apolloCase('@apollo/client GraphQLWsLink [default]', graphQLWsLink, {
    expectedOffered: TRANSPORT_WS,
    expectedProtocol: TRANSPORT_WS,
    checkFrames: checkTransportFrames,
  }),
  apolloCase('@apollo/client WebSocketLink [default]', webSocketLink, {
    expectedOffered: LEGACY,
    expectedProtocol: LEGACY,
    checkFrames: checkLegacyFrames,
  }),
  urqlCase('default'),
  // ... then the explicit variants.
  graphqlWsCase('lazy:false keepAlive:500 retryAttempts:0', { lazy: false, keepAlive: 500, retryAttempts: 0 }, { extraChecks: checkPinged }),
  subscriptionsTransportWsCase('lazy reconnect:false timeout:30000', { lazy: true, reconnect: false, timeout: 30_000 }),
  apolloCase(
    '@apollo/client GraphQLWsLink [fetchPolicy:no-cache]',
    graphQLWsLink,
    { expectedOffered: TRANSPORT_WS, expectedProtocol: TRANSPORT_WS, checkFrames: checkTransportFrames },
    { fetchPolicy: 'no-cache' },
  ),
];

// ---- scenario --------------------------------------------------------------------------------

async function scenario(adapter) {
  const S = randomBytes(4).toString('hex');
  const B = `b-${S}`;
  const D = `d-${S}`;
  const CONF = `conf.${S}`;
  const Q = `q-${S}`;

  await mutate(
    'CoreGraphQLQueryCreate',
    'mutation($name: String!, $query: String!) { CoreGraphQLQueryCreate(data: {name: {value: $name}, query: {value: $query}}) { ok } }',
    { name: Q, query: 'query { Branch { name } }' },
  );

  const subA = `subscription { events(event_type: ["infrahub.branch.created", "infrahub.branch.merged", "infrahub.branch.deleted", "${CONF}"]) { __typename id event branch ... on BranchCreatedEvent { created_branch } ... on BranchMergedEvent { source_branch } ... on BranchDeletedEvent { deleted_branch } } }`;
  const subB = `subscription { events(branches: ["${B}"]) { __typename id event branch ... on BranchRebasedEvent { rebased_branch } } }`;
  const subC = `subscription { query(name: "${Q}", interval: 300) }`;

  const got = { A: [], B: [], C: [] };
  const failures = [];
  const completed = new Set();
  const unsubs = [];
  for (const [key, query] of [['A', subA], ['B', subB], ['C', subC]]) {
    unsubs.push(
      adapter.subscribe(query, {
        next: (r) => got[key].push({ at: Date.now(), result: r }),
        error: (e) => failures.push(`${key}: error ${e instanceof Error ? e.message : JSON.stringify(e)}`),
        complete: () => completed.add(key),
      }),
    );
  }

  const branchNames = (r) => {
    assert.equal(r.errors, undefined, `query subscription result has errors: ${JSON.stringify(r)}`);
    const list = r.data?.query?.Branch;
    assert.ok(Array.isArray(list), `query subscription result: ${JSON.stringify(r)}`);
    return list.map((b) => b.name);
  };

  try {
    await until(() => got.C.length > 0 || failures.length > 0, 'the first query(name:) result');
    assert.deepEqual(failures, []);
    const first = branchNames(got.C[0].result);
    assert.ok(first.includes('main'), `first query result lists main: ${first}`);
    assert.ok(!first.includes(B), `first query result does not list ${B} yet: ${first}`);
    await sleep(SETTLE_MS);
    assert.deepEqual(got.A, [], 'A: nothing before the events are caused');
    assert.deepEqual(got.B, [], 'B: nothing before the events are caused');

    // ---- cause events over HTTP ----
    await mutate('BranchCreate', 'mutation($n: String!) { BranchCreate(data: {name: $n}) { ok object { name } } }', { n: B });
    const e1 = await mutate(
      'EventEmit',
      'mutation($e: String!, $b: String) { EventEmit(data: {event: $e, branch: $b}) { ok object { id event branch } } }',
      { e: CONF, b: B },
    );
    const e2 = await mutate(
      'EventEmit',
      'mutation($e: String!) { EventEmit(data: {event: $e}) { ok object { id event branch } } }',
      { e: CONF },
    );
    assert.equal(e1.object.branch, B);
    assert.equal(e2.object.branch, null);
    await mutate('BranchRebase', 'mutation($n: String!) { BranchRebase(data: {name: $n}) { ok } }', { n: B });
    await mutate('BranchMerge', 'mutation($n: String!) { BranchMerge(data: {name: $n}) { ok } }', { n: B });
    await mutate('BranchCreate', 'mutation($n: String!) { BranchCreate(data: {name: $n}) { ok } }', { n: D });
    await mutate('BranchDelete', 'mutation($n: String!) { BranchDelete(data: {name: $n}) { ok } }', { n: D });

    // ---- expectations ----
    const expectedA = [
      { __typename: 'BranchCreatedEvent', event: 'infrahub.branch.created', branch: null, created_branch: B },
      { __typename: 'StandardEvent', event: CONF, branch: B, id: e1.object.id },
      { __typename: 'StandardEvent', event: CONF, branch: null, id: e2.object.id },
      { __typename: 'BranchMergedEvent', event: 'infrahub.branch.merged', branch: null, source_branch: B },
      { __typename: 'BranchCreatedEvent', event: 'infrahub.branch.created', branch: null, created_branch: D },
      { __typename: 'BranchDeletedEvent', event: 'infrahub.branch.deleted', branch: null, deleted_branch: D },
    ];
    const expectedB = [
      { __typename: 'StandardEvent', event: CONF, branch: B, id: e1.object.id },
      { __typename: 'BranchRebasedEvent', event: 'infrahub.branch.rebased', branch: B, rebased_branch: B },
    ];
    await until(
      () => failures.length > 0 || (got.A.length >= expectedA.length && got.B.length >= expectedB.length),
      `${expectedA.length} events on A and ${expectedB.length} on B (got ${got.A.length} and ${got.B.length})`,
    ).catch((e) => {
      throw new Error(`${e.message}\nA: ${JSON.stringify(got.A.map((x) => x.result))}\nB: ${JSON.stringify(got.B.map((x) => x.result))}`);
    });
    await sleep(QUIET_MS);
    await until(() => got.C.some((x) => branchNames(x.result).includes(B)), `a query(name:) result listing ${B}`);
    assert.deepEqual(failures, []);
    assert.deepEqual([...completed], [], 'no subscription completed on its own');

    const check = (label, received, expected) => {
      const events = received.map(({ result }) => {
        assert.equal(result.errors, undefined, `${label}: result has errors: ${JSON.stringify(result)}`);
        return result.data.events;
      });
      const summary = JSON.stringify(events, null, 1);
      assert.equal(events.length, expected.length, `${label}: exactly ${expected.length} events, got ${summary}`);
      expected.forEach((want, i) => {
        const ev = events[i];
        assert.match(ev.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${label}[${i}].id`);
        for (const [k, v] of Object.entries(want)) {
          assert.deepEqual(ev[k], v, `${label}[${i}].${k}: ${summary}`);
        }
      });
      assert.equal(new Set(events.map((e) => e.id)).size, events.length, `${label}: no duplicate ids`);
      return events;
    };
    const a = check('A', got.A, expectedA);
    const b = check('B', got.B, expectedB);
    // The conf(b) event is the same event on both subscriptions.
    assert.equal(a[1].id, b[0].id);

    // The query subscription: every result lists main; ticks keep coming (interval 300 ms).
    for (const { result } of got.C) assert.ok(branchNames(result).includes('main'));
    const last = branchNames(got.C.at(-1).result);
    assert.ok(last.includes(B), `latest query result lists ${B}: ${last}`);
    assert.ok(!last.includes(D), `latest query result does not list deleted ${D}: ${last}`);
    assert.ok(got.C.length >= 3, `query(name:) ticked repeatedly (${got.C.length} results)`);

    // One connection; what the client offered, and the subprotocol the server chose (echoed).
    assert.deepEqual(adapter.offered, [adapter.expectedOffered], 'offered Sec-WebSocket-Protocol');
    assert.deepEqual(adapter.protocols, [adapter.expectedProtocol], 'echoed Sec-WebSocket-Protocol');

    // Unsubscribe, then check the frames on the wire.
    for (const u of unsubs.splice(0)) u();
    await sleep(QUIET_MS);
    assert.deepEqual(failures, []);
    adapter.checkFrames(adapter.frames);
    adapter.extraChecks?.(adapter.frames);

    return { A: a.length, B: b.length, C: got.C.length };
  } finally {
    for (const u of unsubs) {
      try {
        u();
      } catch {
        // already failing
      }
    }
    await adapter.close();
  }
}

const types = (frames, dir) => frames.filter((f) => f.dir === dir).map((f) => f.msg.type);
const ids = (frames, dir, type) => frames.filter((f) => f.dir === dir && f.msg.type === type).map((f) => f.msg.id);

/** graphql-transport-ws: ack first; only next (and ping/pong) after; no echo of a client complete. */
function checkTransportFrames(frames) {
  const inbound = types(frames, 'in');
  const outbound = types(frames, 'out');
  assert.equal(outbound[0], 'connection_init', `first frame sent: ${outbound}`);
  assert.deepEqual(frames.find((f) => f.dir === 'out').msg.payload, CONNECTION_PARAMS);
  assert.equal(inbound[0], 'connection_ack', `first frame received: ${inbound}`);
  const unexpected = inbound.slice(1).filter((t) => !['next', 'ping', 'pong'].includes(t));
  assert.deepEqual(unexpected, [], `only next/ping/pong after the ack (a client complete gets no echo): ${inbound}`);
  const started = ids(frames, 'out', 'subscribe');
  assert.equal(started.length, 3);
  assert.deepEqual(ids(frames, 'out', 'complete').sort(), [...started].sort(), 'client completed each subscription');
}

/** Legacy graphql-ws: ack first; data/ka after; exactly one complete per stop. */
function checkLegacyFrames(frames) {
  const inbound = types(frames, 'in');
  const outbound = types(frames, 'out');
  assert.equal(outbound[0], 'connection_init', `first frame sent: ${outbound}`);
  assert.deepEqual(frames.find((f) => f.dir === 'out').msg.payload, CONNECTION_PARAMS);
  assert.equal(inbound[0], 'connection_ack', `first frame received: ${inbound}`);
  const unexpected = inbound.slice(1).filter((t) => !['data', 'ka', 'complete'].includes(t));
  assert.deepEqual(unexpected, [], `only data/ka/complete after the ack: ${inbound}`);
  const started = ids(frames, 'out', 'start');
  assert.equal(started.length, 3);
  const stopped = ids(frames, 'out', 'stop');
  assert.deepEqual([...stopped].sort(), [...started].sort(), 'client stopped each subscription');
  assert.deepEqual(ids(frames, 'in', 'complete').sort(), [...stopped].sort(), 'one complete per stop');
  // Nothing but the complete follows a stop of that id.
  for (const id of stopped) {
    const stopAt = frames.findIndex((f) => f.dir === 'out' && f.msg.type === 'stop' && f.msg.id === id);
    const after = frames.slice(stopAt + 1).filter((f) => f.dir === 'in' && f.msg.id === id).map((f) => f.msg.type);
    assert.ok(after.length <= 2 && after.at(-1) === 'complete', `after stop ${id}: ${after}`);
  }
}

const only = process.env.CONFORMANCE_CASES || '';
let passed = 0;
let failed = 0;
for (const { name, make } of CASES) {
  if (!name.includes(only)) continue;
  const adapter = make();
  const started = Date.now();
  try {
    const counts = await scenario(adapter);
    if (adapter.errors?.length) throw new Error(`client errors: ${adapter.errors.map(String).join('; ')}`);
    passed += 1;
    console.log(`ok   ${adapter.name}: A=${counts.A} B=${counts.B} C=${counts.C} results (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${adapter.name}: ${e?.stack || e}`);
  }
}
console.log(`node-ws: ${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
