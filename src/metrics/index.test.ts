import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../api/app.ts';
import { createStandalone } from '../controller/standalone.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import type { StepInstanceRecord } from '../store/types.ts';
import { createMetrics, OTHER } from './index.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(opts: Parameters<typeof createMetrics>[0] = {}) {
  const store = new SqliteStore({ dir: ':memory:' });
  const metrics = createMetrics({ processMetrics: false, ...opts });
  const stop = metrics.observe(store);
  cleanups.push(() => store.close());
  cleanups.push(stop);
  return { store, metrics };
}

function run(ns: string, name: string, workflow: string) {
  return {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { name, namespace: ns },
    spec: { workflow },
  };
}

function setPhase(store: SqliteStore, ns: string, name: string, status: Record<string, unknown>) {
  const cur = store.get('WorkflowRun', ns, name)!;
  store.updateStatus('WorkflowRun', { ...cur, status });
}

function step(
  ns: string,
  r: string,
  id: string,
  phase: string,
  data: Record<string, unknown> = {},
): StepInstanceRecord {
  return { namespace: ns, run: r, id, phase, data: { id, step: id, phase, ...data } };
}

/** The value of one sample line, e.g. value(text, 'meson_runs_created_total{namespace="a",workflow="w"}'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('run metrics', () => {
  it('counts runs created, started and finished by workflow and phase, with their duration', async () => {
    const { store, metrics } = setup();
    store.create('WorkflowRun', run('team', 'r1', 'etl'));
    store.create('WorkflowRun', run('team', 'r2', 'etl'));
    setPhase(store, 'team', 'r1', { phase: 'Running', startTime: '2026-01-01T00:00:00Z' });
    setPhase(store, 'team', 'r1', {
      phase: 'Succeeded',
      startTime: '2026-01-01T00:00:00Z',
      endTime: '2026-01-01T00:00:42Z',
    });
    // a finished run written again (labels, status refresh) does not count twice
    setPhase(store, 'team', 'r1', {
      phase: 'Succeeded',
      startTime: '2026-01-01T00:00:00Z',
      endTime: '2026-01-01T00:00:42Z',
      message: 'x',
    });
    setPhase(store, 'team', 'r2', { phase: 'Running' });
    const { body, contentType } = await metrics.scrape();
    expect(contentType).toContain('text/plain');
    expect(value(body, 'meson_runs_created_total{namespace="team",workflow="etl"}')).toBe(2);
    expect(value(body, 'meson_runs_started_total{namespace="team",workflow="etl"}')).toBe(2);
    expect(value(body, 'meson_runs_finished_total{namespace="team",workflow="etl",phase="Succeeded"}')).toBe(
      1,
    );
    expect(
      value(body, 'meson_run_duration_seconds_sum{namespace="team",workflow="etl",phase="Succeeded"}'),
    ).toBe(42);
    // gauges at scrape time: r2 is the only unfinished run
    expect(value(body, 'meson_runs_active{namespace="team",workflow="etl",phase="Running"}')).toBe(1);
    // no run name is ever a label
    expect(body).not.toContain('r1');
    expect(body).not.toContain('"r2"');
  });

  it('forgets deleted runs and keeps no series for them in the active gauge', async () => {
    const { store, metrics } = setup();
    store.create('WorkflowRun', run('a', 'r', 'w'));
    expect(
      value((await metrics.scrape()).body, 'meson_runs_active{namespace="a",workflow="w",phase="Pending"}'),
    ).toBe(1);
    store.delete('WorkflowRun', 'a', 'r');
    expect((await metrics.scrape()).body).not.toContain('meson_runs_active{');
  });
});

describe('step metrics', () => {
  it('counts each ended attempt once by phase, with its duration', async () => {
    const { store, metrics } = setup();
    store.create('WorkflowRun', run('ns', 'r', 'train'));
    const t = { startTime: '2026-01-01T00:00:00Z', endTime: '2026-01-01T00:00:03Z' };
    store.putStepInstances([step('ns', 'r', 'a', 'Running')]);
    store.putStepInstances([step('ns', 'r', 'a', 'Failed', { attempts: 1, ...t })]);
    store.putStepInstances([step('ns', 'r', 'a', 'Failed', { attempts: 1, ...t })]); // rewritten: same attempt
    store.transaction((w) => w.putStepInstances([step('ns', 'r', 'a', 'Succeeded', { attempts: 2, ...t })]));
    const body = (await metrics.scrape()).body;
    expect(value(body, 'meson_step_attempts_total{namespace="ns",workflow="train",phase="Failed"}')).toBe(1);
    expect(value(body, 'meson_step_attempts_total{namespace="ns",workflow="train",phase="Succeeded"}')).toBe(
      1,
    );
    expect(
      value(body, 'meson_step_duration_seconds_count{namespace="ns",workflow="train",phase="Failed"}'),
    ).toBe(1);
    expect(
      value(body, 'meson_step_duration_seconds_sum{namespace="ns",workflow="train",phase="Succeeded"}'),
    ).toBe(3);
    expect(
      value(body, 'meson_store_transaction_duration_seconds_count{outcome="commit"}'),
    ).toBeGreaterThanOrEqual(1);
  });

  it('counts nothing for a transaction that rolls back, and times it as an error', async () => {
    const { store, metrics } = setup();
    store.create('WorkflowRun', run('ns', 'r', 'w'));
    expect(() =>
      store.transaction((w) => {
        w.putStepInstances([step('ns', 'r', 'a', 'Succeeded', { attempts: 1 })]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    const body = (await metrics.scrape()).body;
    expect(body).not.toContain('meson_step_attempts_total{');
    expect(value(body, 'meson_store_transaction_duration_seconds_count{outcome="error"}')).toBe(1);
  });

  it('counts the step instances of unfinished runs by phase (why steps are not running)', async () => {
    const { store, metrics } = setup();
    store.create('WorkflowRun', run('ns', 'r', 'w'));
    store.create('WorkflowRun', run('ns', 'done', 'w'));
    store.putStepInstances([
      step('ns', 'r', 'a', 'WaitingForInputs'),
      step('ns', 'r', 'b', 'WaitingForInputs'),
      step('ns', 'r', 'c', 'Queued'),
      step('ns', 'done', 'a', 'Queued'),
    ]);
    setPhase(store, 'ns', 'done', { phase: 'Failed' });
    const body = (await metrics.scrape()).body;
    expect(value(body, 'meson_step_instances{namespace="ns",workflow="w",phase="WaitingForInputs"}')).toBe(2);
    // the finished run's instances are not counted
    expect(value(body, 'meson_step_instances{namespace="ns",workflow="w",phase="Queued"}')).toBe(1);
  });

  it('counts queued and launched tasks by namespace at scrape time', async () => {
    const { store, metrics } = setup();
    store.putTasks([
      { namespace: 'a', run: 'r', instance: 'x', attempt: 1, state: 'queued', data: {} },
      { namespace: 'a', run: 'r', instance: 'y', attempt: 1, state: 'queued', data: {} },
      { namespace: 'a', run: 'r', instance: 'z', attempt: 1, state: 'launched', data: {} },
    ]);
    const body = (await metrics.scrape()).body;
    expect(value(body, 'meson_tasks{namespace="a",state="queued"}')).toBe(2);
    expect(value(body, 'meson_tasks{namespace="a",state="launched"}')).toBe(1);
  });

  it('restores the store methods it wrapped when it stops observing', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    cleanups.push(() => store.close());
    const tx = store.transaction;
    const stop = createMetrics({ processMetrics: false }).observe(store);
    expect(store.transaction).not.toBe(tx);
    stop();
    expect(store.transaction).toBe(tx);
    expect(Object.hasOwn(store, 'putStepInstances')).toBe(false);
  });
});

describe('label cardinality (whoever may create workflows or namespaces cannot grow the scrape unboundedly)', () => {
  it('folds workflows past the bound into _other, through runs', async () => {
    const { store, metrics } = setup({ maxWorkflows: 2 });
    for (let i = 0; i < 50; i++) store.create('WorkflowRun', run('ns', `r${i}`, `wf-${i}`));
    const body = (await metrics.scrape()).body;
    const created = body.split('\n').filter((l) => l.startsWith('meson_runs_created_total{'));
    expect(created).toHaveLength(3);
    expect(value(body, `meson_runs_created_total{namespace="${OTHER}",workflow="${OTHER}"}`)).toBe(48);
  });

  it('folds namespaces past the bound into _other, through runs and tasks', async () => {
    const { store, metrics } = setup({ maxWorkflows: 3 });
    for (let i = 0; i < 20; i++) {
      store.create('WorkflowRun', run(`ns-${i}`, 'r', 'w'));
      store.putTasks([
        { namespace: `ns-${i}`, run: 'r', instance: 'x', attempt: 1, state: 'queued', data: {} },
      ]);
    }
    const body = (await metrics.scrape()).body;
    const series = body.split('\n').filter((l) => /^meson_(runs_created_total|runs_active|tasks)\{/.test(l));
    const namespaces = new Set(series.map((l) => /namespace="([^"]*)"/.exec(l)![1]));
    expect(namespaces.size).toBeLessThanOrEqual(4);
    expect(value(body, `meson_tasks{namespace="${OTHER}",state="queued"}`)).toBe(17);
  });

  it('folds step attempts of runs in other workflows into _other too', async () => {
    const { store, metrics } = setup({ maxWorkflows: 1 });
    store.create('WorkflowRun', run('ns', 'r1', 'w1'));
    store.create('WorkflowRun', run('ns', 'r2', 'w2'));
    store.putStepInstances([step('ns', 'r2', 'a', 'Succeeded', { attempts: 1 })]);
    const body = (await metrics.scrape()).body;
    expect(
      value(body, `meson_step_attempts_total{namespace="${OTHER}",workflow="${OTHER}",phase="Succeeded"}`),
    ).toBe(1);
  });
});

describe('GET /metrics', () => {
  it('is served through inject() behind the API token, with process metrics', async () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const metrics = createMetrics();
    const stop = metrics.observe(store);
    const app = await buildApp({ store: new SqliteAsyncStore(store), token: 'tok', metrics });
    cleanups.push(
      () => store.close(),
      stop,
      () => app.close(),
    );
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: 'Basic dG9r' }]) {
      const res = await app.inject({ method: 'GET', url: '/metrics', headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(res.body).not.toContain('meson_');
    }
    // the router's decoding does not open a way around the token
    for (const url of ['/%6detrics', '/metrics?x=1', '//metrics']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(401);
    }
    const res = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer tok' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('# TYPE meson_runs_finished_total counter');
    expect(res.body).toContain('meson_process_resident_memory_bytes');
  });

  it('is absent without metrics', async () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const app = await buildApp({ store: new SqliteAsyncStore(store) });
    cleanups.push(
      () => store.close(),
      () => app.close(),
    );
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
  });

  it('one real scrape of a running standalone server after a run succeeded', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meson-metrics-'));
    const s = createStandalone({ dataDir: join(root, 'data'), cwd: root, pollMs: 20 });
    const metrics = createMetrics();
    const stop = metrics.observe(s.store);
    s.start();
    const app = await buildApp({ store: new SqliteAsyncStore(s.store), metrics });
    cleanups.push(
      () => rmSync(root, { recursive: true, force: true }),
      () => s.stop(),
      stop,
      () => app.close(),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const json = { 'content-type': 'application/json' };
    const wf = {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'hello' },
      spec: { definition: { step: { name: 'a', shell: { script: 'echo hi' } } } },
    };
    const created = await fetch(`${base}/api/v1/namespaces/default/workflows`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(wf),
    });
    expect(created.status).toBe(201);
    const started = await fetch(`${base}/api/v1/namespaces/default/workflows/hello/runs`, {
      method: 'POST',
      headers: json,
      body: '{}',
    });
    expect(started.status).toBe(201);
    const series = 'meson_runs_finished_total{namespace="default",workflow="hello",phase="Succeeded"}';
    let body = '';
    for (let i = 0; i < 200 && value(body, series) !== 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      body = await res.text();
    }
    expect(value(body, series)).toBe(1);
    expect(
      value(body, 'meson_step_attempts_total{namespace="default",workflow="hello",phase="Succeeded"}'),
    ).toBe(1);
    expect(value(body, 'meson_store_transaction_duration_seconds_count{outcome="commit"}')).toBeGreaterThan(
      0,
    );
  }, 20_000);
});
