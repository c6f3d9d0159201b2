// GraphQL-over-HTTP conformance audit of infrastream with graphql-http's serverAudits.
//
// Usage: INFRASTREAM_URL=http://127.0.0.1:8000 INFRASTREAM_TOKEN=<api token> node audit.mjs
// Optional: AUDIT_PATHS (comma separated, default "/graphql,/graphql/main"): the endpoints
//           audited; SPEC §4 makes /graphql and /graphql/{branch} the same GraphQL-over-HTTP
//           endpoint, and infrahub-sdk only ever posts to /graphql/<branch>.
//           AUDIT_TIMEOUT_MS (default 15000): per-request timeout.
//
// Prints every result (id, requirement, status, name; reason and response for failures),
// then a summary. Exits 1 if any MUST audit fails or any audit crashes (fetch error, timeout,
// connection reset: graphql-http treats those as fatal), 0 otherwise (SHOULD failures are
// warnings, MAY failures notices).
import { serverAudits } from 'graphql-http';

const base = process.env.INFRASTREAM_URL;
const token = process.env.INFRASTREAM_TOKEN;
if (!base || !token) {
  console.error('audit.mjs: INFRASTREAM_URL and INFRASTREAM_TOKEN must be set');
  process.exit(2);
}
const paths = (process.env.AUDIT_PATHS || '/graphql,/graphql/main')
  .split(',')
  .map((p) => p.trim())
  .filter(Boolean);
const timeoutMs = Number(process.env.AUDIT_TIMEOUT_MS || 15000);

// Some audits call fetchFn(url) with no init at all (the GET ones), so init may be undefined.
// Headers given by audits are plain objects; go through Headers to be safe either way.
const fetchFn = (input, init) => {
  const headers = new Headers(init?.headers ?? undefined);
  headers.set('X-INFRAHUB-KEY', token);
  return fetch(input, {
    ...(init ?? {}),
    headers,
    signal: init?.signal ?? AbortSignal.timeout(timeoutMs),
  });
};

function requirement(name) {
  return name.split(' ', 1)[0]; // MUST | SHOULD | MAY
}

async function describeResponse(res) {
  if (!res || typeof res !== 'object') return String(res);
  const lines = [];
  try {
    lines.push(`HTTP ${res.status} ${res.statusText ?? ''}`.trim());
    for (const [k, v] of res.headers) {
      if (['content-type', 'allow', 'content-length'].includes(k.toLowerCase())) {
        lines.push(`${k}: ${v}`);
      }
    }
  } catch (e) {
    lines.push(`(could not read status/headers: ${e})`);
  }
  try {
    let body = await res.text();
    if (body.length > 1000) body = body.slice(0, 1000) + `... (${body.length} chars)`;
    lines.push(`body: ${body.replace(/\n/g, '\n        ')}`);
  } catch (e) {
    lines.push(`(body not readable: ${e.message ?? e})`);
  }
  return lines.join('\n        ');
}

let mustFailures = 0;
let shouldWarnings = 0;
let mayNotices = 0;
let fatal = 0;
let ok = 0;

for (const path of paths) {
  const url = base.replace(/\/+$/, '') + path;
  console.log(`\n=== graphql-http serverAudits against ${url}`);
  // Run sequentially (auditServer runs them all concurrently) so output is ordered and a
  // failure's log lines on the server side can be matched to one audit.
  for (const a of serverAudits({ url, fetchFn })) {
    let result;
    try {
      result = await a.fn();
    } catch (err) {
      fatal += 1;
      console.log(`FATAL ${a.id} [${requirement(a.name)}] ${a.name}`);
      console.log(`        ${err?.stack ?? err}`);
      if (err?.cause) console.log(`        cause: ${err.cause}`);
      continue;
    }
    const tag = { ok: 'ok   ', warn: 'WARN ', error: 'ERROR', notice: 'note ' }[result.status];
    console.log(`${tag} ${result.id} [${requirement(result.name)}] ${result.name}`);
    if (result.status === 'ok') {
      ok += 1;
      continue;
    }
    if (result.status === 'error') mustFailures += 1;
    else if (result.status === 'warn') shouldWarnings += 1;
    else mayNotices += 1;
    console.log(`        reason: ${result.reason}`);
    console.log(`        ${await describeResponse(result.response)}`);
  }
}

console.log(
  `\ngraphql-http audit: ${ok} ok, ${mustFailures} MUST failures, ${shouldWarnings} SHOULD warnings, ` +
    `${mayNotices} MAY notices, ${fatal} fatal (paths: ${paths.join(', ')})`,
);
process.exit(mustFailures > 0 || fatal > 0 ? 1 : 0);
