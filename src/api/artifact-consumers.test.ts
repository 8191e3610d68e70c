// GET /api/v1/namespaces/:ns/artifacts/:name/consumers through inject() on the SQLite store:
// lineage (workflows by trigger and step input, runs the artifact started), paging, bounds.
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import type { ResourceObject } from '../store/types.ts';
import { buildApp } from './app.ts';
import { buildOpenApi } from './openapi.ts';
import { MAX_CONSUMER_SCAN } from './routes/artifacts.ts';

const NS = '/api/v1/namespaces/default';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let clock = Date.parse('2026-03-01T00:00:00.000Z');
async function setup() {
  const store = new SqliteStore({ dir: ':memory:', now: () => new Date(clock) });
  const app = await buildApp({ store: new SqliteAsyncStore(store) });
  cleanups.push(() => store.close());
  cleanups.push(() => app.close());
  return { app, store };
}

const workflow = (name: string, spec: Record<string, unknown>) =>
  ({
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace: 'default' },
    spec: { definition: { step: { name: 'x', noop: {} } }, ...spec },
  }) as ResourceObject;

function triggeredRun(
  store: SqliteStore,
  name: string,
  workflow: string,
  partition: Record<string, unknown>,
) {
  clock += 1000;
  store.create('WorkflowRun', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { name, namespace: 'default' },
    spec: { workflow, initiator: { type: 'artifact', artifacts: [{ name: 'views', partition }] } },
  } as ResourceObject);
}

async function announce(app: Awaited<ReturnType<typeof setup>>['app'], partition: Record<string, unknown>) {
  const res = await app.inject({
    method: 'POST',
    url: `${NS}/artifacts`,
    payload: { name: 'views', partition },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().metadata.name as string;
}

describe('artifact consumers (lineage)', () => {
  it('lists the workflows that wait on it and the runs it started, newest first, paged', async () => {
    const { app, store } = await setup();
    store.create('Workflow', workflow('on-trigger', { triggers: { artifacts: [{ name: 'views' }] } }));
    store.create(
      'Workflow',
      workflow('on-input', {
        definition: {
          sequence: [
            { step: { name: 'wait', noop: {}, inputs: [{ name: 'views', partition: { day: '${day}' } }] } },
          ],
        },
      }),
    );
    store.create(
      'Workflow',
      workflow('other-day', { triggers: { artifacts: [{ name: 'views', partition: { day: '2' } }] } }),
    );
    store.create('Workflow', workflow('unrelated', {}));
    const name = await announce(app, { day: '1' });
    triggeredRun(store, 'r1', 'on-trigger', { day: '1' });
    triggeredRun(store, 'r-other', 'other-day', { day: '2' });
    triggeredRun(store, 'r2', 'on-trigger', { day: 1 }); // a number: the same partition
    const res = await app.inject({ method: 'GET', url: `${NS}/artifacts/${name}/consumers` });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.artifact).toEqual({ name: 'views', partition: { day: '1' } });
    expect(body.workflows).toEqual([
      { workflow: 'on-input', via: 'input', step: 'wait', partition: { day: '${day}' } },
      { workflow: 'on-trigger', via: 'trigger' },
    ]);
    expect(body.runs.map((r: { name: string }) => r.name)).toEqual(['r2', 'r1']);
    expect(body.runs[0]).toMatchObject({ workflow: 'on-trigger', creationTimestamp: expect.any(String) });
    expect(body.continue).toBeUndefined();

    // pages of one run read at a time: each page holds the matches among what it read
    const seen: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const q = new URLSearchParams({ limit: '1', ...(cont ? { continue: cont } : {}) });
      const page = (
        await app.inject({ method: 'GET', url: `${NS}/artifacts/${name}/consumers?${q}` })
      ).json();
      // the workflows come with the first page only
      expect('workflows' in page).toBe(pages === 0);
      seen.push(...page.runs.map((r: { name: string }) => r.name));
      cont = page.continue;
      pages++;
    } while (cont && pages < 10);
    expect(seen).toEqual(['r2', 'r1']);
  });

  it('answers 404 for an unknown artifact and 400 for bad paging, with the field', async () => {
    const { app } = await setup();
    const missing = await app.inject({ method: 'GET', url: `${NS}/artifacts/nope/consumers` });
    expect(missing.statusCode).toBe(404);
    const name = await announce(app, {});
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=abc', 'limit'],
      ['partition=x', 'partition'],
      ['limit=1&limit=2', 'limit'],
    ]) {
      const res = await app.inject({ method: 'GET', url: `${NS}/artifacts/${name}/consumers?${q}` });
      expect(res.statusCode, q).toBe(400);
      expect(res.body, q).toContain(field);
    }
    for (const c of ['garbage', '%00', 'eyJ4Ijp9', 'W10']) {
      const res = await app.inject({ method: 'GET', url: `${NS}/artifacts/${name}/consumers?continue=${c}` });
      expect(res.statusCode, c).toBe(400);
    }
  });

  it('reads at most MAX_CONSUMER_SCAN runs per request, however many artifact runs match nothing', async () => {
    const { app, store } = await setup();
    const name = await announce(app, { day: '1' });
    triggeredRun(store, 'the-one', 'w', { day: '1' });
    store.transaction(() => {
      for (let i = 0; i < MAX_CONSUMER_SCAN + 500; i++) triggeredRun(store, `noise-${i}`, 'w', { day: '2' });
    });
    const first = (
      await app.inject({ method: 'GET', url: `${NS}/artifacts/${name}/consumers?limit=1000` })
    ).json();
    expect(first.runs).toEqual([]);
    expect(first.continue).toEqual(expect.any(String));
    const second = (
      await app.inject({
        method: 'GET',
        url: `${NS}/artifacts/${name}/consumers?limit=1000&continue=${encodeURIComponent(first.continue)}`,
      })
    ).json();
    expect(second.runs.map((r: { name: string }) => r.name)).toEqual(['the-one']);
  });

  it('is in the OpenAPI document with its query parameters', () => {
    const doc = buildOpenApi() as { paths: Record<string, { get?: { parameters?: { name: string }[] } }> };
    const op = doc.paths['/api/v1/namespaces/{ns}/artifacts/{name}/consumers']?.get;
    expect(op?.parameters?.map((p) => p.name).sort()).toEqual(['continue', 'limit']);
  });
});
