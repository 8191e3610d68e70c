// The API's writes on the store port: what a concurrent writer (the controller, kubectl) or a
// failing backend does to them. The store is SQLite here; the same paths run in operator mode.
import { describe, expect, it } from 'vitest';
import { ensureVersion } from '../controller/workflows.ts';
import type { Workflow, WorkflowRun } from '../crds/index.ts';
import type { WriteBatch } from '../store/port.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import { StoreError } from '../store/types.ts';
import { buildApp } from './app.ts';

const NS = '/api/v1/namespaces/default';
const WORKFLOW = {
  metadata: { name: 'hello' },
  spec: { definition: { step: { name: 'greet', shell: { script: 'echo hi' } } } },
};
const json = (body: unknown) => ({
  payload: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

/** A SqliteAsyncStore whose n-th commit first runs `before` (another writer), or fails. */
function racing(before: Record<number, (s: SqliteAsyncStore) => void>) {
  const store = new SqliteAsyncStore({ dir: ':memory:' });
  const commit = store.transaction.bind(store);
  let n = 0;
  store.transaction = <R>(fn: (w: WriteBatch) => R): Promise<R> => {
    n++;
    before[n]?.(store);
    return commit(fn);
  };
  return store;
}

describe('API writes on the store port', () => {
  it('versions a Workflow the controller versioned meanwhile: one version, Ready, 201', async () => {
    const store = racing({
      // the controller saw the Workflow written and made its version first
      2: (s) => {
        const wf = s.get<Workflow>('Workflow', 'default', 'hello')!;
        s.sync.transaction((w) => ensureVersion(s.sync, w, wf, Date.now()));
      },
    });
    const app = await buildApp({ store });
    const res = await app.inject({ method: 'PUT', url: `${NS}/workflows/hello`, ...json(WORKFLOW) });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().status).toMatchObject({ latestVersion: 1, conditions: [{ status: 'True' }] });
    expect(store.list('WorkflowVersion', 'default').items.map((v) => v.metadata.name)).toEqual(['hello-v1']);
  });

  it('refuses an unversionable Workflow before writing anything', async () => {
    const store = new SqliteAsyncStore({ dir: ':memory:' });
    const app = await buildApp({ store });
    const bad = { ...WORKFLOW, spec: { ...WORKFLOW.spec, activeVersion: 7 } };
    for (const [method, url] of [
      ['PUT', `${NS}/workflows/hello`],
      ['POST', `${NS}/workflows`],
    ] as const) {
      const res = await app.inject({ method, url, ...json(bad) });
      expect(res.statusCode).toBe(422);
      expect(res.json().detail).toContain('spec.activeVersion');
    }
    expect(store.get('Workflow', 'default', 'hello')).toBeUndefined();
    expect(store.list('WorkflowVersion', 'default').items).toEqual([]);
  });

  it('stops a run whose status the controller wrote meanwhile, keeping that status', async () => {
    let runName = '';
    const store = racing({
      4: (s) => {
        const run = s.get<WorkflowRun>('WorkflowRun', 'default', runName)!;
        s.sync.updateStatus('WorkflowRun', { ...run, status: { phase: 'Running' } });
      },
    });
    const app = await buildApp({ store });
    await app.inject({ method: 'PUT', url: `${NS}/workflows/hello`, ...json(WORKFLOW) }); // commits 1, 2 (and 3: the run)
    const run = await app.inject({ method: 'POST', url: `${NS}/workflows/hello/runs`, ...json({}) });
    runName = run.json().metadata.name;
    // commit 4 is the stop: it loses to the status write, is re-read and written again
    const stop = await app.inject({ method: 'POST', url: `${NS}/runs/${runName}/stop` });
    expect(stop.statusCode, stop.body).toBe(202);
    expect(store.get<WorkflowRun>('WorkflowRun', 'default', runName)).toMatchObject({
      spec: { stop: true },
      status: { phase: 'Running' },
    });
  });

  it('answers 503 when the backend is unreachable, 409 on a conflict, both as problems', async () => {
    const store = new SqliteAsyncStore({ dir: ':memory:' });
    const app = await buildApp({ store });
    await app.inject({ method: 'PUT', url: `${NS}/workflows/hello`, ...json(WORKFLOW) });
    for (const [code, status, apiCode] of [
      ['STORE_UNAVAILABLE', 503, 'API_UNAVAILABLE'],
      ['STORE_CONFLICT', 409, 'API_CONFLICT'],
      ['STORE_TOO_LARGE', 413, 'API_PAYLOAD_TOO_LARGE'],
    ] as const) {
      store.transaction = async () => {
        throw new StoreError(code, 'the backend said no');
      };
      for (const req of [
        { method: 'POST' as const, url: `${NS}/workflows/hello/runs`, ...json({}) },
        { method: 'DELETE' as const, url: `${NS}/workflows/hello` },
        { method: 'POST' as const, url: `${NS}/artifacts`, ...json({ name: 'a' }) },
      ]) {
        const res = await app.inject(req);
        expect(res.statusCode, `${code} ${req.method} ${req.url}`).toBe(status);
        expect(res.headers['content-type']).toContain('application/problem+json');
        expect(res.json()).toMatchObject({ status, code: apiCode });
      }
    }
  });
});
