// Typed GraphQL variables against infrastream with the npm `graphql-request` HTTP client, in its
// default configuration (`new GraphQLClient(url, { headers })`, POST, JSON). Clients generated
// from Infrahub's schema declare their variables with Infrahub's input type names, so these names
// must exist on the server with the same shape; a wrong name fails validation ("Unknown type").
//
// Cases, in order (each named in the output):
//   CoreGraphQLQueryCreate($d: CoreGraphQLQueryCreateInput!)
//   CoreGraphQLQueryUpdate($d: CoreGraphQLQueryUpdateInput!)
//   CoreGraphQLQueryUpsert($d: CoreGraphQLQueryUpsertInput!)
//   CoreGraphQLQueryDelete($d: DeleteInput!)
//   BranchCreate($d: BranchCreateInput!)
//   BranchRebase($d: BranchNameInput!)
//   BranchDelete($d: BranchDeleteInput!)
//   InfrahubEvent($order: EventSortOrder) with $order omitted (nullable: newest first)
//   InfrahubEvent($order: EventSortOrder) with $order: ASC
//   InfrahubEvent($order: EventSortOrder) with $order: null (nullable: newest first)
// Every mutation's effect is read back over HTTP. Later cases use what earlier ones created, so
// a failing case makes the ones depending on it fail too (each failure is reported).
//
// Environment: INFRASTREAM_URL (e.g. http://127.0.0.1:8000), INFRASTREAM_TOKEN (admin API token).
// Run: node typed-variables.mjs   (see conformance/run.sh). Exit status 0 iff every case passed.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ClientError, GraphQLClient, gql } from 'graphql-request';

const URL_BASE = (process.env.INFRASTREAM_URL || '').replace(/\/+$/, '');
const TOKEN = process.env.INFRASTREAM_TOKEN || '';
if (!URL_BASE || !TOKEN) {
  console.error('INFRASTREAM_URL and INFRASTREAM_TOKEN must be set');
  process.exit(2);
}

const client = new GraphQLClient(`${URL_BASE}/graphql`, { headers: { 'X-INFRAHUB-KEY': TOKEN } });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const S = randomBytes(4).toString('hex');
const state = {};

const savedQuery = async (id) => {
  const data = await client.request(
    gql`
      query ($ids: [ID]) {
        CoreGraphQLQuery(ids: $ids) {
          count
          edges {
            node {
              id
              name {
                value
              }
              query {
                value
              }
            }
          }
        }
      }
    `,
    { ids: [id] },
  );
  return data.CoreGraphQLQuery;
};

const branchNames = async () => {
  const data = await client.request(gql`
    query {
      Branch {
        name
      }
    }
  `);
  return data.Branch.map((b) => b.name);
};

const EVENTS = gql`
  query ($t: [String!], $order: EventSortOrder) {
    InfrahubEvent(event_type: $t, order: $order) {
      count
      edges {
        node {
          id
        }
      }
    }
  }
`;

const CASES = [
  [
    'CoreGraphQLQueryCreate($d: CoreGraphQLQueryCreateInput!)',
    async () => {
      const data = await client.request(
        gql`
          mutation ($d: CoreGraphQLQueryCreateInput!) {
            CoreGraphQLQueryCreate(data: $d) {
              ok
              object {
                id
              }
            }
          }
        `,
        { d: { name: { value: `tv-${S}` }, query: { value: 'query { Branch { name } }' } } },
      );
      assert.equal(data.CoreGraphQLQueryCreate.ok, true);
      const id = data.CoreGraphQLQueryCreate.object.id;
      assert.match(id, UUID);
      const found = await savedQuery(id);
      assert.equal(found.count, 1, JSON.stringify(found));
      assert.equal(found.edges[0].node.name.value, `tv-${S}`);
      state.queryId = id;
    },
  ],
  [
    'CoreGraphQLQueryUpdate($d: CoreGraphQLQueryUpdateInput!)',
    async () => {
      assert.ok(state.queryId, 'needs the query created by the first case');
      const data = await client.request(
        gql`
          mutation ($d: CoreGraphQLQueryUpdateInput!) {
            CoreGraphQLQueryUpdate(data: $d) {
              ok
            }
          }
        `,
        { d: { id: state.queryId, query: { value: 'query { Branch { name id } }' } } },
      );
      assert.equal(data.CoreGraphQLQueryUpdate.ok, true);
      const found = await savedQuery(state.queryId);
      assert.equal(found.edges[0]?.node.query.value, 'query { Branch { name id } }', JSON.stringify(found));
    },
  ],
  [
    'CoreGraphQLQueryUpsert($d: CoreGraphQLQueryUpsertInput!)',
    async () => {
      const mutation = gql`
        mutation ($d: CoreGraphQLQueryUpsertInput!) {
          CoreGraphQLQueryUpsert(data: $d) {
            ok
            object {
              id
            }
          }
        }
      `;
      const first = await client.request(mutation, {
        d: { name: { value: `tv-up-${S}` }, query: { value: 'query { Branch { name } }' } },
      });
      assert.equal(first.CoreGraphQLQueryUpsert.ok, true);
      const id = first.CoreGraphQLQueryUpsert.object.id;
      // The same name again updates the same node.
      const second = await client.request(mutation, {
        d: { name: { value: `tv-up-${S}` }, query: { value: 'query { Branch { id } }' } },
      });
      assert.equal(second.CoreGraphQLQueryUpsert.object.id, id, 'upsert by name found the existing node');
      const found = await savedQuery(id);
      assert.equal(found.edges[0]?.node.query.value, 'query { Branch { id } }', JSON.stringify(found));
    },
  ],
  [
    'CoreGraphQLQueryDelete($d: DeleteInput!)',
    async () => {
      assert.ok(state.queryId, 'needs the query created by the first case');
      const data = await client.request(
        gql`
          mutation ($d: DeleteInput!) {
            CoreGraphQLQueryDelete(data: $d) {
              ok
            }
          }
        `,
        { d: { id: state.queryId } },
      );
      assert.equal(data.CoreGraphQLQueryDelete.ok, true);
      assert.equal((await savedQuery(state.queryId)).count, 0, 'deleted');
    },
  ],
  [
    'BranchCreate($d: BranchCreateInput!)',
    async () => {
      const data = await client.request(
        gql`
          mutation ($d: BranchCreateInput!) {
            BranchCreate(data: $d) {
              ok
              object {
                name
                description
              }
            }
          }
        `,
        { d: { name: `tv-${S}`, description: 'typed variables' } },
      );
      assert.equal(data.BranchCreate.ok, true);
      assert.deepEqual(data.BranchCreate.object, { name: `tv-${S}`, description: 'typed variables' });
      assert.ok((await branchNames()).includes(`tv-${S}`));
    },
  ],
  [
    'BranchRebase($d: BranchNameInput!)',
    async () => {
      const data = await client.request(
        gql`
          mutation ($d: BranchNameInput!) {
            BranchRebase(data: $d) {
              ok
            }
          }
        `,
        { d: { name: `tv-${S}` } },
      );
      assert.equal(data.BranchRebase.ok, true);
    },
  ],
  [
    'BranchDelete($d: BranchDeleteInput!)',
    async () => {
      const data = await client.request(
        gql`
          mutation ($d: BranchDeleteInput!) {
            BranchDelete(data: $d) {
              ok
            }
          }
        `,
        { d: { name: `tv-${S}` } },
      );
      assert.equal(data.BranchDelete.ok, true);
      assert.ok(!(await branchNames()).includes(`tv-${S}`), 'deleted');
    },
  ],
  [
    'InfrahubEvent($order: EventSortOrder) with $order omitted',
    async () => {
      // Two events of a fresh type, in this order.
      const emit = gql`
        mutation ($e: String!) {
          EventEmit(data: { event: $e }) {
            ok
            object {
              id
            }
          }
        }
      `;
      const t = `tv.${S}`;
      const e1 = (await client.request(emit, { e: t })).EventEmit.object.id;
      const e2 = (await client.request(emit, { e: t })).EventEmit.object.id;
      state.events = { t, e1, e2 };
      const data = await client.request(EVENTS, { t: [t] });
      assert.equal(data.InfrahubEvent.count, 2, JSON.stringify(data));
      assert.deepEqual(
        data.InfrahubEvent.edges.map((e) => e.node.id),
        [e2, e1],
        'no order given: newest first',
      );
    },
  ],
  [
    'InfrahubEvent($order: EventSortOrder) with $order: ASC',
    async () => {
      assert.ok(state.events, 'needs the events emitted by the previous case');
      const { t, e1, e2 } = state.events;
      const data = await client.request(EVENTS, { t: [t], order: 'ASC' });
      assert.deepEqual(
        data.InfrahubEvent.edges.map((e) => e.node.id),
        [e1, e2],
        'ASC: oldest first',
      );
    },
  ],
  [
    'InfrahubEvent($order: EventSortOrder) with $order: null',
    async () => {
      assert.ok(state.events, 'needs the events emitted by a previous case');
      const { t, e1, e2 } = state.events;
      const data = await client.request(EVENTS, { t: [t], order: null });
      assert.deepEqual(
        data.InfrahubEvent.edges.map((e) => e.node.id),
        [e2, e1],
        'order null: as if not given, newest first',
      );
    },
  ],
];

const describe = (e) =>
  e instanceof ClientError ? `HTTP ${e.response.status}: ${JSON.stringify(e.response.errors ?? e.response)}` : e?.stack || String(e);

let passed = 0;
let failed = 0;
for (const [name, run] of CASES) {
  const started = Date.now();
  try {
    await run();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${describe(e)}`);
  }
}
console.log(`graphql-request: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
