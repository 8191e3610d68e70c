// Property test: random paths, percent-encodings, names, bodies, content types, hosts and
// credentials against a token-protected server with a running controller. Whatever comes in:
// no 5xx, no write without the token, no file outside the data dir.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createStandalone, type Standalone } from '../controller/standalone.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import type { ResourceObject } from '../store/types.ts';
import { buildApp } from './app.ts';

const TOKEN = 'fuzz-token';
const NUM_RUNS = Number(process.env.MESON_FUZZ_RUNS ?? 400);

let root: string;
let s: Standalone;
let app: Awaited<ReturnType<typeof buildApp>>;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meson-api-fuzz-'));
  s = createStandalone({ dataDir: join(root, 'data'), cwd: join(root, 'data'), pollMs: 50 });
  s.start();
  app = await buildApp({ store: new SqliteAsyncStore(s.store), token: TOKEN });
  for (const ns of ['default', 'team-a']) {
    for (const [name, step] of [
      ['w', { name: 'a', shell: { script: 'echo "$MESON_RUN" > out.txt; echo x=1 >> "$MESON_OUTPUTS"' } }],
      ['n', { name: 'a', noop: {} }],
    ] as const) {
      const res = await app.inject({
        method: 'PUT',
        url: `/api/v1/namespaces/${ns}/workflows/${name}`,
        headers: { authorization: `Bearer ${TOKEN}` },
        payload: {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'Workflow',
          metadata: { name },
          spec: { parameters: [{ name: 'p', value: 1 }], definition: { step } },
        },
      });
      expect(res.statusCode, res.body).toBe(201);
    }
  }
});

afterAll(async () => {
  await app?.close();
  s?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** What a request could have changed: objects and their specs (not statuses, which the controller writes). */
function fingerprint(): string {
  const parts: string[] = [];
  for (const kind of ['Workflow', 'WorkflowRun', 'DataArtifact'] as const) {
    for (const o of s.store.list<ResourceObject>(kind, undefined, { limit: 100_000 }).items) {
      parts.push(
        `${kind}/${o.metadata.namespace}/${o.metadata.name}/${o.metadata.generation}/${JSON.stringify(o.spec)}`,
      );
    }
  }
  return parts.sort().join('\n');
}

// --- arbitraries ------------------------------------------------------------------------------

const hostileName = fc.constantFrom(
  '..',
  '.',
  '../team-a',
  '../../../../outside/evil',
  '..\\team-a',
  '/etc/passwd',
  'a/b',
  '__proto__',
  'constructor',
  'W',
  'a_b',
  '-a',
  'x'.repeat(300),
  '',
  ' ',
  '\u0000',
  'é',
  'a;b=c',
  'a?b',
  'a#b',
  'agg[3]',
  'a.b',
);
const goodName = fc.constantFrom('default', 'team-a', 'w', 'n', 'a', 'r1', 'x');
const name = fc.oneof(goodName, hostileName, fc.string({ maxLength: 12 }));

const ROUTES = [
  'api/v1/namespaces/{}/workflows',
  'api/v1/namespaces/{}/workflows/{}',
  'api/v1/namespaces/{}/workflows/{}/versions',
  'api/v1/namespaces/{}/workflows/{}/versions/{}',
  'api/v1/namespaces/{}/workflows/{}/runs',
  'api/v1/namespaces/{}/workflows/{}/backfill',
  'api/v1/namespaces/{}/runs',
  'api/v1/namespaces/{}/runs/{}',
  'api/v1/namespaces/{}/runs/{}/steps',
  'api/v1/namespaces/{}/runs/{}/steps/{}/logs',
  'api/v1/namespaces/{}/runs/{}/steps/{}/attempts',
  'api/v1/namespaces/{}/runs/{}/stop',
  'api/v1/namespaces/{}/runs/{}/restart',
  'api/v1/namespaces/{}/artifacts',
  'api/v1/namespaces/{}/artifacts/{}',
  'api/v1/namespaces/{}/artifacts/{}/consumers',
  'healthz',
  'readyz',
  'openapi.json',
  '{}',
  '{}/{}',
];

/** A path segment, percent-encoded in one of several ways (some invalid on purpose). */
const encodedSegment = (raw: string) =>
  fc.constantFrom('plain', 'component', 'all', 'upper-dots', 'double').map((mode) => {
    switch (mode) {
      case 'plain':
        return /^[A-Za-z0-9._~-]*$/.test(raw) ? raw : encodeURIComponent(raw);
      case 'component':
        return encodeURIComponent(raw);
      case 'all':
        return [...Buffer.from(raw)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
      case 'upper-dots':
        return encodeURIComponent(raw).replace(/\./g, '%2E');
      default:
        return encodeURIComponent(encodeURIComponent(raw));
    }
  });

const path = fc
  .record({
    route: fc.constantFrom(...ROUTES),
    names: fc.array(name, { minLength: 4, maxLength: 4 }),
    slash: fc.constantFrom('/', '/', '/', '//'),
    prefix: fc.constantFrom('', '', '', '/x/..', '/%61pi/..', '/.'),
    apiSpelling: fc.constantFrom('api', 'api', 'api', '%61pi', 'API', 'a%70i'),
    trailing: fc.constantFrom('', '', '/', ';a=b', '%2F'),
    query: fc.constantFrom(
      '',
      '',
      '?limit=2',
      '?limit=-1',
      '?phase=Running',
      '?stream=stderr&attempt=1',
      '?continue=%zz',
      '?__proto__[x]=1',
      '?token=fuzz-token',
    ),
  })
  .chain((p) =>
    fc.tuple(...p.names.map(encodedSegment)).map((segs) => {
      let i = 0;
      const filled = p.route
        .replace(/^api/, p.apiSpelling)
        .split('/')
        .map((part) => (part === '{}' ? segs[i++ % segs.length]! : part))
        .join(p.slash);
      return `${p.prefix}/${filled}${p.trailing}${p.query}`;
    }),
  );

const labels = fc.dictionary(
  fc.oneof(
    fc.constantFrom('meson.dev/backfill', 'meson.dev/workflow', 'team', '__proto__', 'a/b/c'),
    fc.string({ maxLength: 8 }),
  ),
  fc.string({ maxLength: 8 }),
  { maxKeys: 3 },
);
const initiator = fc.record(
  {
    type: fc.constantFrom('api', 'manual', 'subworkflow', 'cron', 'backfill', 'restart', 'artifact', 'x'),
    user: fc.string({ maxLength: 5 }),
    parent: fc.record({ run: name, step: name }),
  },
  { requiredKeys: ['type'] },
);
const parameters = fc.oneof(
  fc.dictionary(
    fc.oneof(fc.constantFrom('p', '__proto__', 'constructor'), fc.string({ maxLength: 5 })),
    fc.jsonValue({ maxDepth: 3 }),
    { maxKeys: 3 },
  ),
  fc.array(
    fc.record({
      name: fc.oneof(fc.constantFrom('p', '__proto__'), fc.string({ maxLength: 5 })),
      value: fc.jsonValue({ maxDepth: 2 }),
    }),
    { maxLength: 3 },
  ),
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 4 }),
  // start a run
  fc.record(
    { parameters, version: fc.integer({ min: -1, max: 3 }), initiator, labels },
    { requiredKeys: [] },
  ),
  // a kubectl-style run
  fc.record(
    {
      metadata: fc.record(
        { name, generateName: name, namespace: name, labels, annotations: labels, uid: fc.string() },
        { requiredKeys: [] },
      ),
      spec: fc.record(
        {
          workflow: fc.oneof(fc.constantFrom('w', 'n'), name),
          initiator,
          parameters: fc.array(
            fc.record({ name: fc.string({ maxLength: 4 }), value: fc.jsonValue({ maxDepth: 2 }) }),
            { maxLength: 2 },
          ),
          restartOf: fc.record({ run: name, from: fc.constantFrom('failed', 'beginning') }),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  ),
  // a workflow
  fc.record({
    apiVersion: fc.constant('meson.dev/v1alpha1'),
    kind: fc.constantFrom('Workflow', 'WorkflowRun'),
    metadata: fc.record({ name, namespace: name }, { requiredKeys: [] }),
    spec: fc.constant({ definition: { step: { name: 'a', noop: {} } } }),
  }),
  // an artifact, a backfill, a restart
  fc.record(
    {
      name: fc.string({ maxLength: 10 }),
      partition: fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 })),
      metadata: fc.record({ name, labels }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      parameter: fc.constantFrom('p', 'x'),
      from: fc.integer({ min: 20240101, max: 20240105 }),
      to: fc.integer({ min: 20240101, max: 20240110 }),
      parallelism: fc.integer({ min: -1, max: 3 }),
    },
    { requiredKeys: [] },
  ),
  fc.record({ from: fc.constantFrom('failed', 'beginning', 'x') }, { requiredKeys: [] }),
);
const yamlText = fc.constantFrom(
  'a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
  '__proto__: {x: 1}\n',
  '--- a\n--- b\n',
  '[[[[[[[[[[[[[[[[[[[[',
  'metadata: {name: ../x}\nspec: {workflow: w}\n',
  '!!binary aGVsbG8=',
  'x: !!js/function "function(){}"',
  '? [a, b]\n: c\n',
  '',
);
const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/yaml',
  'text/yaml',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
);
const anyRequest = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
  path,
  body,
  yaml: fc.oneof(fc.constant(undefined), yamlText),
  contentType,
  auth: fc.constantFrom('none', 'good', 'good', 'good', 'bad', 'lower'),
  host: fc.constantFrom(undefined, undefined, undefined, 'evil.example', '127.0.0.1:8080', '[::1]'),
  origin: fc.constantFrom(
    undefined,
    undefined,
    undefined,
    'http://evil.example',
    'http://localhost:80',
    'null',
  ),
});

// requests that often get through (a token, a known workflow) so that runs really start and
// their steps write files: a name that escaped would show up outside the data dir
const runName = fc.oneof(fc.constantFrom('r1', 'ok-run', 'a.b'), hostileName);
const startRequest = fc.record({
  method: fc.constant('POST'),
  path: fc.oneof(
    fc.constantFrom(
      '/api/v1/namespaces/default/workflows/w/runs',
      '/api/v1/namespaces/team-a/workflows/w/runs',
    ),
    fc.constantFrom('default', 'team-a').map((ns) => `/api/v1/namespaces/${ns}/runs`),
  ),
  body: fc.oneof(
    fc.record({ parameters: fc.constant({ p: 2 }), labels }, { requiredKeys: [] }),
    fc.record({
      metadata: fc.record({ name: runName, generateName: runName, labels }, { requiredKeys: [] }),
      spec: fc.record(
        {
          workflow: fc.oneof(fc.constant('w'), name),
          initiator,
          restartOf: fc.record({ run: runName, from: fc.constantFrom('failed', 'beginning') }),
        },
        { requiredKeys: ['workflow'] },
      ),
    }),
  ),
  yaml: fc.constant(undefined),
  contentType: fc.constantFrom('application/json', 'application/yaml'),
  auth: fc.constant('good'),
  host: fc.constant(undefined),
  origin: fc.constant(undefined),
});
const request = fc.oneof({ arbitrary: anyRequest, weight: 3 }, { arbitrary: startRequest, weight: 1 });

const PUBLIC = /^\/(healthz|readyz|openapi\.json)$/;

/** The path the router sees: dot segments resolved (as the client does), percent-decoded. */
function routedPath(path: string): string {
  const pathname = new URL(path, 'http://localhost').pathname;
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

describe('REST API fuzz', () => {
  it('never answers 5xx, never writes without the token, never writes outside the data dir', async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.auth === 'good') headers.authorization = `Bearer ${TOKEN}`;
        if (r.auth === 'lower') headers.authorization = `bearer ${TOKEN}`;
        if (r.auth === 'bad') headers.authorization = `Bearer ${TOKEN}x`;
        if (r.contentType) headers['content-type'] = r.contentType;
        if (r.host) headers.host = r.host;
        if (r.origin) headers.origin = r.origin;
        let payload: string | undefined;
        if (r.method !== 'GET' && r.method !== 'HEAD') {
          if (r.yaml !== undefined) payload = r.yaml;
          else if (r.body !== undefined)
            payload = r.contentType?.includes('yaml') ? stringify(r.body) : JSON.stringify(r.body);
        }
        const before = r.auth === 'good' || r.auth === 'lower' ? undefined : fingerprint();
        const res = await app.inject({
          method: r.method as 'GET',
          url: r.path,
          headers,
          ...(payload !== undefined ? { payload } : {}),
        });
        expect(res.statusCode, `${r.method} ${r.path}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
        if (before !== undefined) {
          // without the token: nothing but the public routes answers 2xx, and nothing changes
          if (res.statusCode < 300) expect(routedPath(r.path), `${r.method} ${r.path}`).toMatch(PUBLIC);
          expect(fingerprint(), `${r.method} ${r.path}`).toBe(before);
        }
      }),
      { numRuns: NUM_RUNS, interruptAfterTimeLimit: 15_000 },
    );
    // let the runs started meanwhile write their files, then look around the data dir
    await new Promise((res) => setTimeout(res, 1000));
    expect(readdirSync(root)).toEqual(['data']);
    const attempts = join(root, 'data', 'attempts');
    const namespaces = readdirSync(attempts);
    expect(namespaces.length).toBeGreaterThan(0);
    for (const ns of namespaces) {
      expect(['default', 'team-a']).toContain(ns);
      for (const run of readdirSync(join(attempts, ns)))
        expect(run).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
