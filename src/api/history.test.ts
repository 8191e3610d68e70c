// Run history and streaming through inject(): newest first, filters, stable paging, unknown query
// parameters, watches (events, resume, cap, no leaked watchers) and followed logs.
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import type { ResourceObject } from '../store/types.ts';
import { type ApiDeps, buildApp } from './app.ts';
import { ROUTE_QUERY } from './http.ts';
import { buildOpenApi } from './openapi.ts';

const NS = '/api/v1/namespaces/default';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let clock = Date.parse('2026-03-01T00:00:00.000Z');
async function setup(opts: Omit<ApiDeps, 'store'> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'meson-history-'));
  const store = new SqliteStore({ dir: join(root, 'data'), now: () => new Date(clock) });
  const app = await buildApp({ store: new SqliteAsyncStore(store), ...opts });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  cleanups.push(() => app.close());
  return { app, store };
}

function addRun(store: SqliteStore, name: string, spec: Record<string, unknown> = {}, labels = {}) {
  return store.create('WorkflowRun', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { name, namespace: 'default', labels },
    spec: { workflow: 'w', initiator: { type: 'api' }, ...spec },
  } as ResourceObject);
}

function names(body: { items: { metadata: { name: string } }[] }) {
  return body.items.map((r) => r.metadata.name);
}

/** The events of an SSE body. */
function events(body: string): { type: string; object?: { metadata: { name: string } }; step?: unknown }[] {
  return body
    .split('\n\n')
    .map((b) => b.split('\n').find((l) => l.startsWith('data: ')))
    .filter((l) => l !== undefined)
    .map((l) => JSON.parse(l.slice(6)));
}

describe('run history', () => {
  it('lists newest first with filters, and pages stay right while runs are added', async () => {
    const { app, store } = await setup();
    addRun(store, 'old', {}, { team: 'a' });
    clock += 1000;
    addRun(store, 'mid', { initiator: { type: 'schedule' }, version: 3 }, { team: 'b' });
    clock += 1000;
    addRun(store, 'new', { workflow: 'other' });
    const get = async (q: string) => {
      const res = await app.inject({ method: 'GET', url: `${NS}/runs${q}` });
      expect(res.statusCode, res.body).toBe(200);
      return res.json();
    };
    expect(names(await get(''))).toEqual(['new', 'mid', 'old']);
    expect(names(await get('?workflow=w'))).toEqual(['mid', 'old']);
    expect(names(await get('?initiator=schedule'))).toEqual(['mid']);
    expect(names(await get('?version=3'))).toEqual(['mid']);
    expect(names(await get('?phase=Pending&labelSelector=team%3Da'))).toEqual(['old']);
    expect(names(await get('?labelSelector=team,team!%3Da'))).toEqual(['mid']);
    expect(names(await get('?labelSelector=!team'))).toEqual(['new']);
    expect(
      names(await get('?createdAfter=2026-03-01T00:00:01Z&createdBefore=2026-03-01T00:00:02%2B00:00')),
    ).toEqual(['mid']);
    const first = await get('?limit=2');
    expect(names(first)).toEqual(['new', 'mid']);
    expect(first.metadata.resourceVersion).toMatch(/^\d+$/);
    clock += 1000;
    addRun(store, 'newest');
    const second = await get(`?limit=2&continue=${first.continue}`);
    expect(names(second)).toEqual(['old']);
    expect(second.continue).toBeUndefined();
  });

  it('answers 400 naming the parameter for unknown, repeated or malformed query parameters, on every route', async () => {
    const { app } = await setup();
    const bad = [
      `${NS}/runs?phse=Failed`,
      `${NS}/runs?phase=Failed&phase=Running`,
      `${NS}/runs?phase=failed`,
      `${NS}/runs?version=1e3`,
      `${NS}/runs?createdAfter=yesterday`,
      `${NS}/runs?labelSelector=a%3D%22b`,
      `${NS}/runs?labelSelector=a%22%3Db`,
      `${NS}/runs?labelSelector=a+in+(b)`,
      `${NS}/runs?continue=bm9wZQ`,
      `${NS}/runs?watch=maybe`,
      `${NS}/runs?watch=true&phase=Failed`,
      `${NS}/runs?resourceVersion=3`,
      `${NS}/runs/x?stepz=1`,
      `${NS}/workflows?limt=1`,
      `${NS}/workflows/w?x=1`,
      `${NS}/artifacts?partitio=1`,
      `${NS}/runs/x/steps/a/logs?stream=both`,
      `${NS}/runs/x/steps/a/logs?follow=yes`,
      '/healthz?x=1',
      '/openapi.json?__proto__=1',
    ];
    for (const url of bad) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
      expect(res.json().code).toBe('API_BAD_REQUEST');
    }
    const unknown = await app.inject({ method: 'GET', url: `${NS}/runs?phse=Failed` });
    expect(unknown.json().issues[0]).toMatchObject({ path: 'query.phse', code: 'QUERY_UNKNOWN' });
    const post = await app.inject({ method: 'POST', url: `${NS}/workflows/w/runs?dryRun=true`, payload: {} });
    expect(post.statusCode).toBe(400);
    // a prefix parameter of the table is accepted
    expect((await app.inject({ method: 'GET', url: `${NS}/artifacts?partition.date=1` })).statusCode).toBe(
      200,
    );
  });

  it('documents exactly the query parameters the server accepts', () => {
    const doc = buildOpenApi() as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    };
    for (const [route, params] of Object.entries(ROUTE_QUERY)) {
      const [method, url] = route.split(' ') as [string, string];
      const path = url.replace(/:([A-Za-z_]+)/g, '{$1}');
      const op = doc.paths[path]?.[method.toLowerCase()];
      expect(op, route).toBeDefined();
      const documented = (op!.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
      expect(documented.sort(), route).toEqual(
        Object.keys(params)
          .filter((n) => !n.endsWith('.*'))
          .sort(),
      );
    }
  });
});

describe('run watches', () => {
  it('streams ADDED/MODIFIED/DELETED with resourceVersions, resumes, and frees its watcher', async () => {
    const { app, store } = await setup({ streams: { maxMs: 300 } });
    addRun(store, 'a');
    const watching = app.inject({ method: 'GET', url: `${NS}/runs?watch=true&workflow=w` });
    await new Promise((r) => setTimeout(r, 50));
    const b = addRun(store, 'b');
    addRun(store, 'c', { workflow: 'other' });
    store.updateStatus('WorkflowRun', { ...b, status: { phase: 'Running' } });
    store.delete('WorkflowRun', 'default', 'b');
    const res = await watching;
    expect(res.headers['content-type']).toMatch(/text\/event-stream/);
    const got = events(res.body);
    expect(got.map((e) => e.type)).toEqual(['BOOKMARK', 'ADDED', 'MODIFIED', 'DELETED']);
    expect(res.body).toMatch(/^id: \d+$/m);
    expect((app as unknown as { hasStreams?: number }).hasStreams).toBeUndefined();
    // resumed: what was written after the version is replayed first
    const rv = Number(store.get('WorkflowRun', 'default', 'a')!.metadata.resourceVersion);
    const again = await app.inject({ method: 'GET', url: `${NS}/runs?watch=true&resourceVersion=${rv - 1}` });
    expect(events(again.body).map((e) => e.object?.metadata.name)).toEqual(['a', 'c']);
    expect(watchers(store)).toBe(0);
  });

  it('caps the open streams with a 429 and sends heartbeats', async () => {
    const { app } = await setup({ streams: { maxStreams: 1, maxMs: 250, heartbeatMs: 50 } });
    const one = app.inject({ method: 'GET', url: `${NS}/runs?watch=true` });
    await new Promise((r) => setTimeout(r, 30));
    const two = await app.inject({ method: 'GET', url: `${NS}/runs?watch=true` });
    expect(two.statusCode).toBe(429);
    expect(two.json().code).toBe('API_TOO_MANY_REQUESTS');
    expect((await one).body).toMatch(/: heartbeat/);
    // the slot is free again
    const three = await app.inject({ method: 'GET', url: `${NS}/runs?watch=true` });
    expect(three.statusCode).toBe(200);
  });

  it('follows one run and its steps until it ends, and a client that goes away leaves no watcher', async () => {
    const { app, store } = await setup();
    const run = addRun(store, 'r');
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${url}${NS}/runs/r/events`);
    const reader = res.body!.getReader();
    store.transaction((w) => {
      w.putStepInstances([
        { namespace: 'default', run: 'r', id: 'a', phase: 'Running', data: { id: 'a', phase: 'Running' } },
      ]);
      w.updateStatus('WorkflowRun', { ...run, status: { phase: 'Running' } });
    });
    const r2 = store.get('WorkflowRun', 'default', 'r')!;
    store.transaction((w) => {
      w.putStepInstances([
        { namespace: 'default', run: 'r', id: 'a', phase: 'Failed', data: { id: 'a', phase: 'Failed' } },
      ]);
      w.updateStatus('WorkflowRun', { ...r2, status: { phase: 'Failed' } });
    });
    let body = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      body += new TextDecoder().decode(value);
    }
    const got = events(body);
    expect(got.map((e) => `${e.type}:${e.step ? 'step' : 'run'}`)).toEqual([
      'ADDED:run',
      'ADDED:step',
      'MODIFIED:run',
      'MODIFIED:step',
      'MODIFIED:run',
    ]);
    // a client that disconnects mid-stream
    addRun(store, 's');
    const ac = new AbortController();
    const open = await fetch(`${url}${NS}/runs/s/events`, { signal: ac.signal });
    expect(open.status).toBe(200);
    expect(watchers(store)).toBe(1);
    ac.abort();
    for (let i = 0; i < 50 && watchers(store) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(watchers(store)).toBe(0);
  });
});

function watchers(store: SqliteStore): number {
  return (store as unknown as { listeners: Set<unknown> }).listeners.size;
}

describe('hostile query input', () => {
  it('refuses every form of a bad selector, token, version, limit or time with a 400, never a 500', async () => {
    const { app, store } = await setup();
    addRun(store, 'a', {}, { team: 'x' });
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const forms = [
      // label selectors: JSON path injection, quotes, escapes, odd characters, too many terms
      'labelSelector=a%22%5D.b%3Dx',
      'labelSelector=%24.spec%3Dx',
      'labelSelector=a%5C%3Dx',
      'labelSelector=team%3Dx%27%20OR%201%3D1--',
      'labelSelector=t%C3%A9am%3Dx',
      `labelSelector=${'k'.repeat(300)}%3Dv`,
      `labelSelector=${Array.from({ length: 21 }, (_, i) => `k${i}`).join(',')}`,
      'labelSelector=%3Dv',
      'labelSelector=!a%3Db',
      // continue tokens: not base64 JSON, wrong shapes, SQL text
      'continue=%25%25%25',
      `continue=${b64({ a: 1 })}`,
      `continue=${b64([1, 2])}`,
      `continue=${b64(["x' OR 1=1 --"])}`,
      // resourceVersion (watch), limit, version, times
      'watch=true&resourceVersion=-1',
      'watch=true&resourceVersion=0x10',
      'watch=true&resourceVersion=99999999999999999999',
      'limit=0',
      'limit=1001',
      'limit=1e2',
      'limit=-5',
      'version=0',
      'version=%EF%BC%91', // a fullwidth digit
      'createdAfter=2026-13-45T00:00:00Z',
      'createdAfter=2026-01-01%27%20OR%201%3D1',
      'createdBefore=%D9%A2%D9%A0%D9%A2%D9%A6-01-01', // Arabic-Indic digits
      '__proto__=1',
      'constructor=1',
    ];
    for (const q of forms) {
      const res = await app.inject({ method: 'GET', url: `${NS}/runs?${q}` });
      expect(res.statusCode, `${q}: ${res.body}`).toBe(400);
    }
    // a well-formed token holding SQL is a position like any other (bound, never spliced in):
    // after "x' OR..." in descending order comes every run created before it
    const forged = await app.inject({
      method: 'GET',
      url: `${NS}/runs?continue=${b64(["x' OR 1=1 --", 'zz'])}`,
    });
    expect(forged.statusCode).toBe(200);
    expect(names(forged.json())).toEqual(['a']);
    const before = await app.inject({
      method: 'GET',
      url: `${NS}/runs?continue=${b64(['0', "a' OR '1'='1"])}`,
    });
    expect(names(before.json())).toEqual([]);
  });

  it('keeps streams behind the token and inside their namespace, and ends them when the server closes', async () => {
    const { app, store } = await setup({ token: 't0ken', streams: { maxMs: 60_000 } });
    const anon = await app.inject({ method: 'GET', url: `${NS}/runs?watch=true` });
    expect(anon.statusCode).toBe(401);
    addRun(store, 'r');
    const logs = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?follow=true` });
    expect(logs.statusCode).toBe(401);
    const watching = app.inject({
      method: 'GET',
      url: `${NS}/runs?watch=true`,
      headers: { authorization: 'Bearer t0ken' },
    });
    await new Promise((r) => setTimeout(r, 50));
    store.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'elsewhere', namespace: 'other' },
      spec: { workflow: 'w' },
    } as ResourceObject);
    addRun(store, 'here');
    await app.close(); // long before the stream's 60 s bound
    const got = events((await watching).body);
    expect(got.map((e) => e.object?.metadata.name ?? e.type)).toEqual(['BOOKMARK', 'here']);
    expect(watchers(store)).toBe(0);
  });
});

describe('logs', () => {
  it('combines stdout and stderr, and follows until the attempt ends', async () => {
    const { app, store } = await setup({ streams: { pollMs: 20 } });
    addRun(store, 'r');
    store.putStepInstances([
      {
        namespace: 'default',
        run: 'r',
        id: 'a',
        phase: 'Running',
        data: { id: 'a', phase: 'Running', attempts: 1 },
      },
    ]);
    const dir = store.attemptDir('default', 'r', 'a', 1, 'l1');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stdout.log'), 'out 1\n');
    writeFileSync(join(dir, 'stderr.log'), 'err 1\n');
    const all = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?stream=all` });
    expect(all.body).toBe('out 1\nerr 1\n');
    const following = app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?follow=true&stream=all` });
    await new Promise((r) => setTimeout(r, 60));
    appendFileSync(join(dir, 'stdout.log'), 'out 2 é\n');
    await new Promise((r) => setTimeout(r, 60));
    store.putStepInstances([
      {
        namespace: 'default',
        run: 'r',
        id: 'a',
        phase: 'Succeeded',
        data: { id: 'a', phase: 'Succeeded', attempts: 1 },
      },
    ]);
    const res = await following;
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('out 1\nerr 1\nout 2 é\n');
    // a step that never runs: a follow of a skipped step ends at once, saying why
    store.putStepInstances([
      {
        namespace: 'default',
        run: 'r',
        id: 'b',
        phase: 'Skipped',
        data: { id: 'b', phase: 'Skipped', attempts: 0 },
      },
    ]);
    const skipped = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/b/logs?follow=true` });
    expect(skipped.statusCode).toBe(200); // a skipped step says so, even when followed
    expect(skipped.body).toBe('step "b" was skipped: it never ran and has no logs\n');
  });

  it('ends a follow at the time bound of the stream', async () => {
    const { app, store } = await setup({ streams: { pollMs: 20, maxMs: 150 } });
    addRun(store, 'r');
    store.putStepInstances([
      {
        namespace: 'default',
        run: 'r',
        id: 'a',
        phase: 'Running',
        data: { id: 'a', phase: 'Running', attempts: 1 },
      },
    ]);
    const t0 = Date.now();
    const res = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?follow=true` });
    expect(res.statusCode).toBe(200);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
