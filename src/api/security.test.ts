// The REST API against hostile clients, through inject(): auth on the matched route whatever the
// encoding, Host/Origin checks (DNS rebinding, CSRF), names that would leave their directory,
// system-owned fields, and body limits. Every attack is tried in several forms.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createStandalone, type Standalone } from '../controller/standalone.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import { type ApiDeps, buildApp, tokenMatches } from './app.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  opts: Omit<ApiDeps, 'store'> & { start?: boolean } = {},
): Promise<{ app: FastifyInstance; s: Standalone; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'meson-api-sec-'));
  const s = createStandalone({ dataDir: join(root, 'data'), cwd: root, pollMs: 50 });
  if (opts.start) s.start();
  const { start: _s, ...deps } = opts;
  const app = await buildApp({ store: new SqliteAsyncStore(s.store), ...deps });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  cleanups.push(() => app.close());
  return { app, s, root };
}

const TOKEN = 's3cret-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

function workflow(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name },
    spec: { definition: { step: { name: 'a', shell: { script: 'echo hi' } } }, ...extra },
  };
}

async function putWorkflow(app: FastifyInstance, ns: string, name: string, headers = {}) {
  const res = await app.inject({
    method: 'PUT',
    url: `/api/v1/namespaces/${ns}/workflows/${name}`,
    headers,
    payload: workflow(name),
  });
  expect(res.statusCode, res.body).toBeLessThan(300);
}

function counts(s: Standalone) {
  return {
    workflows: s.store.list('Workflow', undefined).items.length,
    runs: s.store.list('WorkflowRun', undefined).items.length,
    artifacts: s.store.list('DataArtifact', undefined).items.length,
  };
}

describe('auth (MESON_API_TOKEN)', () => {
  // the same two writes, spelled so that a check on the raw URL would miss them
  const WRITE_FORMS = [
    '/api/v1/namespaces/default/workflows/x',
    '/%61pi/v1/namespaces/default/workflows/x',
    '/%61%70%69/v1/namespaces/default/workflows/x',
    '/api/v%31/namespaces/default/workflows/x',
    '/api%2Fv1/namespaces/default/workflows/x',
    '//api/v1/namespaces/default/workflows/x',
    '/api//v1/namespaces/default/workflows/x',
    '/api/v1/namespaces/default/workflows/x/',
    '/API/v1/namespaces/default/workflows/x',
    '/Api/v1/namespaces/default/workflows/x',
    '/api;a=b/v1/namespaces/default/workflows/x',
    '/api/v1/namespaces/default/workflows/x;a=b',
    '/x/../api/v1/namespaces/default/workflows/x',
    '/x/%2e%2e/api/v1/namespaces/default/workflows/x',
    '/./api/v1/namespaces/default/workflows/x',
    '/api/v1/namespaces/default/workflows/x?token=s3cret-token',
    '/api/v1/namespaces/default/workflows/x#frag',
    '/healthz/../api/v1/namespaces/default/workflows/x',
    '/openapi.json/../api/v1/namespaces/default/workflows/x',
  ];

  it('refuses every spelling of a write without the token, and writes nothing', async () => {
    const { app, s } = await setup({ token: TOKEN });
    await putWorkflow(app, 'default', 'x', AUTH);
    const before = counts(s);
    for (const url of WRITE_FORMS) {
      for (const method of ['PUT', 'POST', 'DELETE', 'PATCH'] as const) {
        const res = await app.inject({ method, url, payload: workflow('x') });
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(401);
      }
      const run = await app.inject({ method: 'POST', url: `${url}/runs`, payload: {} });
      expect(run.statusCode, `POST ${url}/runs`).toBe(401);
      const run2 = await app.inject({
        method: 'POST',
        url: url.replace('workflows/x', 'runs'),
        payload: { spec: { workflow: 'x' } },
      });
      expect(run2.statusCode, `POST ${url} -> runs`).toBe(401);
    }
    expect(counts(s)).toEqual(before);
  });

  it('answers 401, not 404, for unknown routes and methods without the token (no route map for strangers)', async () => {
    const { app } = await setup({ token: TOKEN });
    for (const [method, url] of [
      ['GET', '/nope'],
      ['GET', '/api/v2/namespaces/default/workflows'],
      ['OPTIONS', '/api/v1/namespaces/default/workflows'],
      ['HEAD', '/api/v1/namespaces/default/workflows'],
      ['GET', '/healthz/'],
      ['GET', '/healthz;x'],
      ['POST', '/healthz'],
      ['PATCH', '/api/v1/namespaces/default/workflows/x'],
    ] as const) {
      const anon = await app.inject({ method, url });
      expect(anon.statusCode, `${method} ${url}`).toBe(401);
      const authed = await app.inject({ method, url, headers: AUTH });
      expect([200, 404], `${method} ${url} with token`).toContain(authed.statusCode);
    }
  });

  it('keeps only the explicit public routes open, in any method the router maps to them', async () => {
    const { app } = await setup({ token: TOKEN });
    for (const url of ['/healthz', '/readyz', '/openapi.json', '/%68ealthz']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
      expect((await app.inject({ method: 'HEAD', url })).statusCode, `HEAD ${url}`).toBe(200);
    }
    // public, but not a place for unknown query parameters either
    expect((await app.inject({ method: 'GET', url: '/openapi.json?x=1' })).statusCode).toBe(400);
  });

  it('accepts only the exact token, compared whatever its length', async () => {
    const { app } = await setup({ token: TOKEN });
    const url = '/api/v1/namespaces/default/workflows';
    for (const authorization of [
      '',
      'Bearer',
      'Bearer ',
      'Bearer s3cret',
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Bearer ${'s'.repeat(TOKEN.length)}`,
      `Bearer ${'x'.repeat(10_000)}`,
      `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`,
      TOKEN,
      `Token ${TOKEN}`,
      `Bearer ${TOKEN} extra`,
    ]) {
      const res = await app.inject({ method: 'GET', url, headers: { authorization } });
      expect(res.statusCode, authorization.slice(0, 40)).toBe(401);
      expect(res.json()).toMatchObject({ code: 'API_UNAUTHORIZED' });
    }
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `Bearer  ${TOKEN} `]) {
      expect((await app.inject({ method: 'GET', url, headers: { authorization } })).statusCode).toBe(200);
    }
    expect(tokenMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(tokenMatches('Bearer a', 'much-longer-token')).toBe(false);
    expect(tokenMatches(undefined, TOKEN)).toBe(false);
  });
});

describe('Host and Origin (DNS rebinding, cross-site requests)', () => {
  it('refuses foreign Host headers on a loopback server, for reads and writes', async () => {
    const { app, s } = await setup();
    for (const host of [
      'evil.example',
      'evil.example:8080',
      'localhost.evil.example',
      '127.0.0.1.nip.io',
      'localhost@evil.example',
      '127.0.0.2',
      '0.0.0.0:8080',
      '[::2]:8080',
      'localhost:8080:8080',
      'localhost/x',
    ]) {
      const get = await app.inject({
        method: 'GET',
        url: '/api/v1/namespaces/default/workflows',
        headers: { host },
      });
      expect(get.statusCode, `GET with Host ${host}`).toBe(403);
      const put = await app.inject({
        method: 'PUT',
        url: '/api/v1/namespaces/default/workflows/x',
        headers: { host },
        payload: workflow('x'),
      });
      expect(put.statusCode, `PUT with Host ${host}`).toBe(403);
      expect(put.json()).toMatchObject({ code: 'API_FORBIDDEN' });
    }
    expect(counts(s).workflows).toBe(0);
    for (const host of [
      'localhost',
      'localhost:8080',
      'LOCALHOST:1',
      '127.0.0.1:9',
      '[::1]:8080',
      'localhost.',
    ]) {
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/namespaces/default/workflows',
        headers: { host },
      });
      expect(res.statusCode, host).toBe(200);
    }
  });

  it('answers to the configured extra host names, or to any when told so', async () => {
    const extra = await setup({ allowedHosts: ['meson.internal'] });
    const get = (app: FastifyInstance, host: string) =>
      app.inject({ method: 'GET', url: '/healthz', headers: { host } });
    expect((await get(extra.app, 'meson.internal:8080')).statusCode).toBe(200);
    expect((await get(extra.app, 'evil.example')).statusCode).toBe(403);
    const any = await setup({ allowedHosts: 'any', token: TOKEN });
    expect((await get(any.app, 'evil.example')).statusCode).toBe(200);
  });

  it('refuses cross-origin and form-like writes that a web page could send', async () => {
    const { app, s } = await setup();
    await putWorkflow(app, 'default', 'x');
    const before = counts(s);
    const post = (headers: Record<string, string>, payload = '{}') =>
      app.inject({ method: 'POST', url: '/api/v1/namespaces/default/workflows/x/runs', headers, payload });
    const crossSite: Record<string, string>[] = [
      { origin: 'http://evil.example', 'content-type': 'application/json' },
      { origin: 'http://evil.example:80', 'content-type': 'application/json' },
      { origin: 'null', 'content-type': 'application/json' },
      { origin: 'http://localhost:8081', 'content-type': 'application/json' },
      { origin: 'not a url', 'content-type': 'application/json' },
      { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' },
      { 'sec-fetch-site': 'same-site', 'content-type': 'application/json' },
    ];
    for (const headers of crossSite) {
      const res = await post(headers);
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
    }
    // what an HTML form or a no-preflight fetch can send, with or without a body
    for (const type of [
      'text/plain',
      'text/plain; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      expect((await post({ 'content-type': type })).statusCode, type).toBe(415);
      expect((await post({ 'content-type': type }, '')).statusCode, `${type} empty`).toBe(415);
    }
    expect(counts(s)).toEqual(before);
    // the same origin, a CLI without Origin, and a top-level navigation are fine
    expect((await post({ origin: 'http://localhost', 'content-type': 'application/json' })).statusCode).toBe(
      201,
    );
    expect((await post({ 'content-type': 'application/json' })).statusCode).toBe(201);
    expect(
      (await post({ 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' })).statusCode,
    ).toBe(201);
  });
});

describe('names (path traversal)', () => {
  // forms of a name that leaves its directory, or is not a Kubernetes name at all
  // (`..`, `%2e%2e` and `.` are resolved by inject's URL parser: see the raw HTTP test below)
  const BAD_SEGMENTS = [
    '..%2Fteam-victim',
    '..%2F..%2F..%2Foutside',
    '..%5Cteam-victim',
    '...',
    'Team-A',
    'a_b',
    '-a',
    '%00',
    'a%00b',
    `${'x'.repeat(254)}`,
    '%C3%A9',
  ];

  it('answers 400 naming the path parameter for every route and every bad form', async () => {
    const { app } = await setup();
    const routes = [
      ['GET', '/api/v1/namespaces/{}/workflows', 'ns'],
      ['PUT', '/api/v1/namespaces/default/workflows/{}', 'name'],
      ['GET', '/api/v1/namespaces/default/workflows/{}/versions', 'name'],
      ['POST', '/api/v1/namespaces/{}/runs', 'ns'],
      ['POST', '/api/v1/namespaces/default/workflows/{}/runs', 'name'],
      ['POST', '/api/v1/namespaces/default/workflows/{}/backfill', 'name'],
      ['GET', '/api/v1/namespaces/default/runs/{}', 'run'],
      ['GET', '/api/v1/namespaces/default/runs/{}/steps/a/logs', 'run'],
      ['GET', '/api/v1/namespaces/default/runs/r/steps/{}/logs', 'step'],
      ['GET', '/api/v1/namespaces/default/runs/r/steps/{}/attempts', 'step'],
      ['DELETE', '/api/v1/namespaces/default/runs/{}', 'run'],
      ['GET', '/api/v1/namespaces/default/artifacts/{}', 'name'],
      ['GET', '/api/v1/namespaces/default/artifacts/{}/consumers', 'name'],
    ] as const;
    for (const [method, pattern, param] of routes) {
      for (const seg of BAD_SEGMENTS) {
        // a step id may hold upper case and '_' (a step name with [i] indices)
        if (param === 'step' && ['Team-A', 'a_b'].includes(seg)) continue;
        const url = pattern.replace('{}', seg);
        const res = await app.inject({ method, url, payload: {} });
        expect(res.statusCode, `${method} ${url}`).toBe(400);
        expect(res.json().issues?.[0], `${method} ${url}`).toMatchObject({
          path: `params.${param}`,
          code: 'NAME_INVALID',
        });
      }
    }
  });

  it('refuses dot segments sent raw over HTTP (no client-side normalisation), and the token still applies', async () => {
    const { app } = await setup({ token: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    const raw = (method: string, path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end(method === 'GET' ? undefined : '{}');
      });
    const json = { ...AUTH, 'content-type': 'application/json' };
    for (const [method, path, param] of [
      ['GET', '/api/v1/namespaces/../workflows', 'ns'],
      ['GET', '/api/v1/namespaces/%2e%2e/workflows', 'ns'],
      ['GET', '/api/v1/namespaces/./workflows', 'ns'],
      ['GET', '/api/v1/namespaces/default/runs/../steps/a/logs', 'run'],
      ['GET', '/api/v1/namespaces/default/runs/%2E%2E/steps/a/logs', 'run'],
      ['GET', '/api/v1/namespaces/default/runs/r/steps/../logs', 'step'],
      ['GET', '/api/v1/namespaces/default/runs/r/steps/%2e%2e/attempts', 'step'],
      ['POST', '/api/v1/namespaces/../runs', 'ns'],
      ['PUT', '/api/v1/namespaces/default/workflows/..', 'name'],
    ] as const) {
      const res = await raw(method, path, json);
      expect(res.status, `${method} ${path}: ${res.body}`).toBe(400);
      expect(JSON.parse(res.body).issues[0]).toMatchObject({ path: `params.${param}` });
      expect((await raw(method, path, { 'content-type': 'application/json' })).status, path).toBe(401);
    }
    for (const path of [
      '/x/../api/v1/namespaces/default/workflows/x',
      '/healthz/../api/v1/namespaces/default/workflows/x',
    ]) {
      expect((await raw('PUT', path, { 'content-type': 'application/json' })).status, path).toBe(401);
      expect((await raw('PUT', path, json)).status, path).toBe(404);
    }
  });

  it("refuses a run whose name or references would read another namespace's files", async () => {
    const { app, s, root } = await setup();
    await putWorkflow(app, 'default', 'w');
    const post = (body: object) =>
      app.inject({ method: 'POST', url: '/api/v1/namespaces/default/runs', payload: body });
    const cases: [object, string][] = [
      [{ metadata: { name: '../team-victim/r' }, spec: { workflow: 'w' } }, 'metadata.name'],
      [{ metadata: { name: '../../../../outside/evil' }, spec: { workflow: 'w' } }, 'metadata.name'],
      [{ metadata: { name: '..' }, spec: { workflow: 'w' } }, 'metadata.name'],
      [{ metadata: { name: 'a/b' }, spec: { workflow: 'w' } }, 'metadata.name'],
      [{ metadata: { generateName: '../team-victim/' }, spec: { workflow: 'w' } }, 'metadata.generateName'],
      [{ metadata: { generateName: 'UP-' }, spec: { workflow: 'w' } }, 'metadata.generateName'],
      [{ spec: { workflow: '../w' } }, 'spec.workflow'],
      [
        { spec: { workflow: 'w', restartOf: { run: '../team-victim/r', from: 'failed' } } },
        'spec.restartOf.run',
      ],
    ];
    for (const [body, field] of cases) {
      const res = await post(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(422);
      expect(
        res.json().issues.map((i: { path: string }) => i.path),
        JSON.stringify(body),
      ).toContain(field);
    }
    // metadata.namespace must be the path's
    expect((await post({ metadata: { namespace: '../x' }, spec: { workflow: 'w' } })).statusCode).toBe(400);
    expect(counts(s).runs).toBe(0);
    expect(readdirSync(root).sort()).toEqual(['data']);
  });

  it('refuses bad names in workflow and artifact bodies too', async () => {
    const { app, s } = await setup();
    for (const name of ['../evil', 'Evil', 'a/b', '..']) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/namespaces/default/workflows',
        payload: workflow(name),
      });
      expect(res.statusCode, name).toBe(422);
      expect(res.json().issues[0]).toMatchObject({ path: 'metadata.name', code: 'NAME_INVALID' });
      const art = await app.inject({
        method: 'POST',
        url: '/api/v1/namespaces/default/artifacts',
        payload: { name: 'a', metadata: { name } },
      });
      expect(art.statusCode, name).toBe(422);
      expect(art.json().issues[0]).toMatchObject({ path: 'metadata.name' });
    }
    // an artifact's logical name is free text, its generated object name is not
    const art = await app.inject({
      method: 'POST',
      url: '/api/v1/namespaces/default/artifacts',
      payload: { name: '../../Views_Daily' },
    });
    expect(art.statusCode).toBe(201);
    expect(art.json().metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(counts(s)).toMatchObject({ workflows: 0, artifacts: 1 });
  });
});

describe('system-owned fields', () => {
  it('refuses an initiator, a parent or meson.dev/ labels set by a client (422 naming the field)', async () => {
    const { app, s } = await setup();
    await putWorkflow(app, 'default', 'w');
    const start = (body: object) =>
      app.inject({ method: 'POST', url: '/api/v1/namespaces/default/workflows/w/runs', payload: body });
    const create = (body: object) =>
      app.inject({ method: 'POST', url: '/api/v1/namespaces/default/runs', payload: body });
    for (const type of ['subworkflow', 'cron', 'backfill', 'restart', 'artifact']) {
      const a = await start({ initiator: { type } });
      expect(a.statusCode, type).toBe(422);
      expect(a.json().issues[0]).toMatchObject({ path: 'initiator.type', code: 'SYSTEM_FIELD' });
      const b = await create({ spec: { workflow: 'w', initiator: { type } } });
      expect(b.statusCode, type).toBe(422);
      expect(b.json().issues[0]).toMatchObject({ path: 'spec.initiator.type', code: 'SYSTEM_FIELD' });
    }
    const parent = { run: 'victim', step: 'sub' };
    expect((await start({ initiator: { type: 'api', parent } })).json().issues[0]).toMatchObject({
      path: 'initiator.parent',
    });
    expect(
      (await create({ spec: { workflow: 'w', initiator: { type: 'manual', parent } } })).statusCode,
    ).toBe(422);
    for (const key of [
      'meson.dev/backfill',
      'meson.dev/workflow',
      'meson.dev/parent-run',
      'MESON.DEV/x',
      'a.meson.dev/b',
    ]) {
      expect((await start({ labels: { [key]: 'x' } })).statusCode, key).toBe(422);
      expect(
        (await create({ metadata: { labels: { [key]: 'x' } }, spec: { workflow: 'w' } })).statusCode,
      ).toBe(422);
      expect(
        (await create({ metadata: { annotations: { [key]: '100' } }, spec: { workflow: 'w' } })).statusCode,
      ).toBe(422);
      const art = await app.inject({
        method: 'POST',
        url: '/api/v1/namespaces/default/artifacts',
        payload: { name: 'a', metadata: { labels: { [key]: 'x' } } },
      });
      expect(art.statusCode, key).toBe(422);
    }
    expect(counts(s)).toMatchObject({ runs: 0, artifacts: 0 });
    // what a client may say is kept; the server's metadata is the server's
    const ok = await create({
      metadata: { name: 'mine', uid: 'forged', ownerReferences: [{ name: 'x' }], labels: { team: 'a' } },
      spec: { workflow: 'w', initiator: { type: 'manual', user: 'me' } },
    });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json().metadata.uid).not.toBe('forged');
    expect(ok.json().metadata.ownerReferences).toBeUndefined();
    expect(ok.json().metadata.labels).toEqual({ team: 'a', 'meson.dev/workflow': 'w' });
    expect(ok.json().spec.initiator).toEqual({ type: 'manual', user: 'me' });
    expect((await start({ labels: { team: 'b' } })).json().spec.initiator).toEqual({ type: 'api' });
  });
});

describe('bodies', () => {
  const billionLaughs = [
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    'parameters: [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
  ].join('\n');
  // the same bomb with maps and merge keys
  const mapLaughs = [
    'a: &a {x: 1, y: 2}',
    'b: &b {a1: *a, a2: *a, a3: *a, a4: *a, a5: *a, a6: *a, a7: *a, a8: *a, a9: *a}',
    'c: &c {b1: *b, b2: *b, b3: *b, b4: *b, b5: *b, b6: *b, b7: *b, b8: *b, b9: *b}',
    'd: &d {c1: *c, c2: *c, c3: *c, c4: *c, c5: *c, c6: *c, c7: *c, c8: *c, c9: *c}',
    `e: {${Array.from({ length: 120 }, (_, i) => `d${i}: *d`).join(', ')}}`,
  ].join('\n');

  it('answers an alias bomb with 400, on every route that takes YAML', async () => {
    const { app } = await setup();
    await putWorkflow(app, 'default', 'w');
    for (const [url, method] of [
      ['/api/v1/namespaces/default/workflows/w/runs', 'POST'],
      ['/api/v1/namespaces/default/workflows', 'POST'],
      ['/api/v1/namespaces/default/workflows/w', 'PUT'],
      ['/api/v1/namespaces/default/runs', 'POST'],
      ['/api/v1/namespaces/default/artifacts', 'POST'],
    ] as const) {
      for (const payload of [billionLaughs, mapLaughs]) {
        for (const type of ['application/yaml', 'text/yaml', 'application/x-yaml']) {
          const res = await app.inject({ method, url, headers: { 'content-type': type }, payload });
          expect(res.statusCode, `${method} ${url} ${type}`).toBe(400);
          expect(res.json()).toMatchObject({ code: 'API_BAD_REQUEST' });
        }
      }
    }
  });

  it('answers 413 for a body over the limit (1 MiB by default, configurable)', async () => {
    const { app } = await setup();
    const big = JSON.stringify({ parameters: { x: 'a'.repeat(50 * 1024 * 1024) } });
    const url = '/api/v1/namespaces/default/workflows/w/runs';
    for (const type of ['application/json', 'application/yaml']) {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload: big });
      expect(res.statusCode, type).toBe(413);
      expect(res.json()).toMatchObject({
        code: 'API_PAYLOAD_TOO_LARGE',
        detail: expect.stringMatching(/1048576/),
      });
    }
    const just = JSON.stringify({ parameters: { x: 'a'.repeat(1024 * 1024 + 1) } });
    expect(
      (
        await app.inject({
          method: 'POST',
          url,
          headers: { 'content-type': 'application/json' },
          payload: just,
        })
      ).statusCode,
    ).toBe(413);
    const small = await setup({ bodyLimit: 100 });
    const res = await small.app.inject({
      method: 'POST',
      url,
      payload: { parameters: { x: 'a'.repeat(200) } },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().detail).toMatch(/100 bytes/);
  });

  it('refuses __proto__ keys the same way in JSON, YAML and list bodies, and pollutes nothing', async () => {
    const { app, s } = await setup();
    await putWorkflow(app, 'default', 'w');
    const start = '/api/v1/namespaces/default/workflows/w/runs';
    const json = { 'content-type': 'application/json' };
    const yaml = { 'content-type': 'application/yaml' };
    const cases: [string, Record<string, string>, string, string][] = [
      [start, json, '{"__proto__": {"polluted": 1}}', 'body.__proto__'],
      [start, yaml, '__proto__: {polluted: 1}\n', 'body.__proto__'],
      [start, json, '{"parameters": {"__proto__": {"polluted": 1}}}', 'body.parameters.__proto__'],
      [start, yaml, 'parameters:\n  __proto__: {polluted: 1}\n', 'body.parameters.__proto__'],
      [start, yaml, 'parameters: {"__proto__": 1}\n', 'body.parameters.__proto__'],
      [
        start,
        json,
        '{"parameters": [{"name": "__proto__", "value": {"polluted": 1}}]}',
        'body.parameters[0].name',
      ],
      [start, yaml, 'parameters:\n  - {name: __proto__, value: 1}\n', 'body.parameters[0].name'],
      [start, json, '{"labels": {"__proto__": "x"}}', 'body.labels.__proto__'],
      [
        '/api/v1/namespaces/default/runs',
        json,
        '{"spec": {"workflow": "w", "parameters": [{"name": "__proto__", "value": 1}]}}',
        'body.spec.parameters[0].name',
      ],
      [
        '/api/v1/namespaces/default/workflows',
        json,
        JSON.stringify(workflow('p')).replace('{', '{"__proto__":{},'),
        'body.__proto__',
      ],
      [
        '/api/v1/namespaces/default/artifacts',
        yaml,
        'name: a\npartition: {__proto__: {x: 1}}\n',
        'body.partition.__proto__',
      ],
    ];
    // a restart's parameters too
    const prev = await app.inject({ method: 'POST', url: start, payload: {} });
    s.store.updateStatus('WorkflowRun', {
      ...s.store.get('WorkflowRun', 'default', prev.json().metadata.name)!,
      status: { phase: 'Failed' },
    });
    const restart = `/api/v1/namespaces/default/runs/${prev.json().metadata.name}/restart`;
    cases.push(
      [restart, json, '{"parameters": [{"name": "__proto__", "value": 1}]}', 'body.parameters[0].name'],
      [restart, yaml, 'parameters: {__proto__: 1}\n', 'body.parameters.__proto__'],
    );
    for (const [url, headers, payload, path] of cases) {
      const res = await app.inject({ method: 'POST', url, headers, payload });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().issues[0], payload).toMatchObject({ path, code: 'BODY_FORBIDDEN_KEY' });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(counts(s)).toMatchObject({ runs: 1, artifacts: 0, workflows: 1 });
  });

  it('parses a 1 MiB YAML map in linear time, and still refuses duplicate keys naming the line', async () => {
    const { app } = await setup();
    await putWorkflow(app, 'default', 'w');
    const url = '/api/v1/namespaces/default/workflows/w/runs';
    const headers = { 'content-type': 'application/yaml' };
    // 50,000 keys: the yaml library's own unique-key check is quadratic (minutes here); the
    // workflow does not exist, so the time is the parse's
    const keys = Array.from({ length: 50_000 }, (_, i) => `  k${i}: ${i}`);
    for (const payload of [`parameters:\n${keys.join('\n')}\n`, `parameters: {${keys.join(', ')}}\n`]) {
      const t = Date.now();
      const res = await app.inject({ method: 'POST', url: url.replace('/w/', '/nope/'), headers, payload });
      expect(res.statusCode).toBe(404);
      expect(Date.now() - t).toBeLessThan(30_000);
    }
    for (const payload of ['parameters: {p: 1, p: 2}\n', 'labels:\n  a: x\n  b: y\n  a: z\n']) {
      const res = await app.inject({ method: 'POST', url, headers, payload });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().detail, payload).toMatch(/line \d+, column \d+: duplicate key "(p|a)"/);
    }
    // the depth bound reads brackets as the YAML lexer does: not inside quotes or block
    // scalars, and a quote inside a block scalar hides nothing
    const shallow = await setup({ maxBodyDepth: 3 });
    const quoted = `labels: {a: '[[[[', b: "{{{{"}\nparameters:\n  p: |\n    [[[[ {{{{ ${'${a[0]}'}\n`;
    const ok = await shallow.app.inject({ method: 'POST', url, headers, payload: quoted });
    expect(ok.json().issues?.[0]?.code, ok.body).not.toBe('BODY_TOO_DEEP');
    const hidden = `parameters:\n  a: |\n    '\n  b: ${'['.repeat(1000)}${']'.repeat(1000)}\n`;
    const res = await app.inject({ method: 'POST', url, headers, payload: hidden });
    expect(res.statusCode).toBe(400);
    expect(res.json().issues?.[0]?.code).toBe('BODY_TOO_DEEP');
  });

  it('answers deeply nested bodies with 400, not a stack overflow', async () => {
    const { app } = await setup();
    const url = '/api/v1/namespaces/default/workflows/w/runs';
    const deepArray = `{"parameters": {"x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    const deepObject = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    const deepYaml = `parameters: {x: ${'['.repeat(20_000)}${']'.repeat(20_000)}}\n`;
    for (const [type, payload] of [
      ['application/json', deepArray],
      ['application/json', deepObject],
      ['application/yaml', deepYaml],
      ['application/yaml', deepArray],
    ] as const) {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload });
      expect(res.statusCode, `${type} ${payload.slice(0, 20)}`).toBe(400);
    }
  });
});
