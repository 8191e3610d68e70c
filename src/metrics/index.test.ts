import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hook } from '../../test/notify/hook.ts';
import { buildApp } from '../api/app.ts';
import { createStandalone } from '../controller/standalone.ts';
import type { StepInstanceStatus, WorkflowRun } from '../crds/index.ts';
import { parseAllowList } from '../notify/address.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import type { StepInstanceRecord, Stored } from '../store/types.ts';
import { createMetrics, gaugeSource, OTHER } from './index.ts';

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

/** A stored run as the controller reports it. */
function storedRun(ns: string, name: string, workflow: string, status: Record<string, unknown> = {}) {
  return {
    ...run(ns, name, workflow),
    metadata: { name, namespace: ns, uid: `${ns}-${name}`, resourceVersion: '1' },
    status,
  } as unknown as Stored<WorkflowRun>;
}

function ended(id: string, phase: string, data: Record<string, unknown> = {}): StepInstanceStatus {
  return { id, step: id, phase, ...data } as unknown as StepInstanceStatus;
}

describe('run metrics (from the run controller)', () => {
  it('counts runs created, started and finished by workflow and phase, with their duration', async () => {
    const { metrics } = setup();
    const c = metrics.controller;
    c.runCreated(storedRun('team', 'r1', 'etl'));
    c.runCreated(storedRun('team', 'r2', 'etl'));
    c.runStarted(storedRun('team', 'r1', 'etl', { phase: 'Running' }));
    c.runStarted(storedRun('team', 'r2', 'etl', { phase: 'Running' }));
    c.runFinished(
      storedRun('team', 'r1', 'etl', {
        phase: 'Succeeded',
        startTime: '2026-01-01T00:00:00Z',
        endTime: '2026-01-01T00:00:42Z',
      }),
    );
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
    // no run name is ever a label
    expect(body).not.toContain('r1');
    expect(body).not.toContain('"r2"');
  });

  it('keeps no gauge series for a deleted run', async () => {
    const { store, metrics } = setup();
    store.create('WorkflowRun', run('a', 'r', 'w'));
    expect(
      value((await metrics.scrape()).body, 'meson_runs_active{namespace="a",workflow="w",phase="Pending"}'),
    ).toBe(1);
    store.delete('WorkflowRun', 'a', 'r');
    expect((await metrics.scrape()).body).not.toContain('meson_runs_active{');
  });

  it('has no gauge series without a source (an operator follower), and gets them from one', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const store = new SqliteStore({ dir: ':memory:' });
    cleanups.push(() => store.close());
    store.create('WorkflowRun', run('a', 'r', 'w'));
    store.putTasks([{ namespace: 'a', run: 'r', instance: 'x', attempt: 1, state: 'queued', data: {} }]);
    let leading = true;
    const source = gaugeSource(new SqliteAsyncStore(store));
    metrics.gaugesFrom(() => (leading ? source : undefined));
    let body = (await metrics.scrape()).body;
    expect(value(body, 'meson_runs_active{namespace="a",workflow="w",phase="Pending"}')).toBe(1);
    expect(value(body, 'meson_tasks{namespace="a",state="queued"}')).toBe(1);
    leading = false; // stepped down: the series go, so sum() over replicas is the leader's
    body = (await metrics.scrape()).body;
    expect(body).not.toContain('meson_runs_active{');
    expect(body).not.toContain('meson_tasks{');
  });
});

describe('step metrics', () => {
  it('counts each ended step instance once by phase, with its duration', async () => {
    const { metrics } = setup();
    const about = { namespace: 'ns', name: 'r', workflow: 'train' };
    const t = { startTime: '2026-01-01T00:00:00Z', endTime: '2026-01-01T00:00:03Z' };
    metrics.controller.stepsEnded(about, [ended('a', 'Failed', { attempts: 1, ...t })]);
    // reported again (the run was rebuilt from the store): the same attempt counts once
    metrics.controller.stepsEnded(about, [ended('a', 'Failed', { attempts: 1, ...t })]);
    metrics.controller.stepsEnded(about, [ended('a', 'Succeeded', { attempts: 2, ...t })]);
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
  });

  it('times store transactions, a rolled-back one as an error', async () => {
    const { store, metrics } = setup();
    store.create('WorkflowRun', run('ns', 'r', 'w'));
    expect(() =>
      store.transaction((w) => {
        w.putStepInstances([step('ns', 'r', 'a', 'Succeeded', { attempts: 1 })]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    const commits = () =>
      metrics
        .scrape()
        .then((r) => value(r.body, 'meson_store_transaction_duration_seconds_count{outcome="commit"}') ?? 0);
    const before = await commits();
    store.transaction((w) => w.putStepInstances([step('ns', 'r', 'a', 'Running')]));
    const body = (await metrics.scrape()).body;
    expect(value(body, 'meson_store_transaction_duration_seconds_count{outcome="error"}')).toBe(1);
    expect(await commits()).toBe(before + 1);
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

  it('restores the store method it wrapped when it stops observing', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    cleanups.push(() => store.close());
    const tx = store.transaction;
    const stop = createMetrics({ processMetrics: false }).observe(store);
    expect(store.transaction).not.toBe(tx);
    stop();
    expect(store.transaction).toBe(tx);
    expect(Object.hasOwn(store, 'transaction')).toBe(false);
  });
});

describe('label cardinality (whoever may create workflows or namespaces cannot grow the scrape unboundedly)', () => {
  it('folds workflows past the bound into _other, through runs', async () => {
    const { metrics } = setup({ maxWorkflows: 2 });
    for (let i = 0; i < 50; i++) metrics.controller.runCreated(storedRun('ns', `r${i}`, `wf-${i}`));
    const body = (await metrics.scrape()).body;
    const created = body.split('\n').filter((l) => l.startsWith('meson_runs_created_total{'));
    expect(created).toHaveLength(3);
    expect(value(body, `meson_runs_created_total{namespace="${OTHER}",workflow="${OTHER}"}`)).toBe(48);
  });

  it('folds namespaces past the bound into _other, through runs and tasks', async () => {
    const { store, metrics } = setup({ maxWorkflows: 3 });
    for (let i = 0; i < 20; i++) {
      store.create('WorkflowRun', run(`ns-${i}`, 'r', 'w'));
      metrics.controller.runCreated(storedRun(`ns-${i}`, 'r', 'w'));
      store.putTasks([
        { namespace: `ns-${i}`, run: 'r', instance: 'x', attempt: 1, state: 'queued', data: {} },
      ]);
    }
    const body = (await metrics.scrape()).body;
    const series = body.split('\n').filter((l) => /^meson_(runs_created_total|runs_active|tasks)\{/.test(l));
    const namespaces = new Set(series.map((l) => /namespace="([^"]*)"/.exec(l)![1]));
    expect(namespaces.size).toBeLessThanOrEqual(4);
    expect(value(body, `meson_tasks{namespace="${OTHER}",state="queued"}`)).toBe(17);
    expect(value(body, `meson_runs_active{namespace="${OTHER}",workflow="${OTHER}",phase="Pending"}`)).toBe(
      17,
    );
  });

  it('folds step attempts and finished runs of other workflows into _other too', async () => {
    const { metrics } = setup({ maxWorkflows: 1 });
    metrics.controller.runCreated(storedRun('ns', 'r1', 'w1'));
    metrics.controller.stepsEnded({ namespace: 'ns', name: 'r2', workflow: 'w2' }, [
      ended('a', 'Succeeded', { attempts: 1 }),
    ]);
    metrics.controller.runFinished(storedRun('ns', 'r2', 'w2', { phase: 'Failed' }));
    const body = (await metrics.scrape()).body;
    expect(
      value(body, `meson_step_attempts_total{namespace="${OTHER}",workflow="${OTHER}",phase="Succeeded"}`),
    ).toBe(1);
    expect(
      value(body, `meson_runs_finished_total{namespace="${OTHER}",workflow="${OTHER}",phase="Failed"}`),
    ).toBe(1);
  });

  it('never makes a label of a run, step or URL, even from hostile names', async () => {
    const { metrics } = setup();
    const evil = 'x"} 1\nmeson_fake 9\n#';
    metrics.controller.runFinished(storedRun('ns', evil, 'w', { phase: 'Failed' }));
    metrics.controller.stepsEnded({ namespace: 'ns', name: evil, workflow: 'w' }, [ended(evil, 'Failed')]);
    metrics.controller.runCreated(storedRun('ns', 'r', evil));
    const body = (await metrics.scrape()).body;
    expect(body).not.toMatch(/^meson_fake/m);
    // a workflow name is a label value, escaped by the exposition format
    expect(body).toContain('workflow="x\\"} 1\\nmeson_fake 9\\n#"');
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

  it('one real scrape of a running standalone server after real runs, steps and webhook deliveries', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meson-metrics-'));
    const metrics = createMetrics();
    // the receiver refuses the first delivery (500: retried) and takes the next
    let answers = 0;
    const receiver = await hook(() => (++answers === 1 ? 500 : 204));
    const s = createStandalone({
      dataDir: join(root, 'data'),
      cwd: root,
      pollMs: 20,
      observer: metrics.controller,
      webhook: {
        allow: parseAllowList('127.0.0.1'),
        retry: { initialDelayMs: 20, maxAttempts: 3 },
        observer: metrics.webhooks,
      },
    });
    const stop = metrics.observe(s.store);
    s.start();
    const app = await buildApp({ store: new SqliteAsyncStore(s.store), metrics });
    cleanups.push(
      () => rmSync(root, { recursive: true, force: true }),
      () => receiver.close(),
      () => s.stop(),
      stop,
      () => app.close(),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const json = { 'content-type': 'application/json' };
    const workflow = async (name: string, spec: Record<string, unknown>) => {
      const res = await fetch(`${base}/api/v1/namespaces/default/workflows`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'Workflow',
          metadata: { name },
          spec,
        }),
      });
      expect(res.status).toBe(201);
      const started = await fetch(`${base}/api/v1/namespaces/default/workflows/${name}/runs`, {
        method: 'POST',
        headers: json,
        body: '{}',
      });
      expect(started.status).toBe(201);
    };
    await workflow('hello', { definition: { step: { name: 'a', shell: { script: 'echo hi' } } } });
    await workflow('broken', {
      definition: { step: { name: 'b', shell: { script: 'exit 3' } } },
      notifications: [
        { on: ['failure'], webhook: { url: receiver.url } },
        // a private address that is not allowed: refused at once, not retried
        { on: ['failure'], webhook: { url: 'http://10.255.255.1/hook' } },
      ],
    });
    const scrape = async () => {
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      return res.text();
    };
    let body = '';
    const done = (b: string) =>
      value(b, 'meson_runs_finished_total{namespace="default",workflow="hello",phase="Succeeded"}') === 1 &&
      value(b, 'meson_runs_finished_total{namespace="default",workflow="broken",phase="Failed"}') === 1 &&
      value(b, 'meson_webhook_deliveries_total{outcome="delivered"}') === 1 &&
      value(b, 'meson_webhook_deliveries_total{outcome="failed"}') === 1;
    for (let i = 0; i < 300 && !done(body); i++) {
      await new Promise((r) => setTimeout(r, 50));
      body = await scrape();
    }
    expect(value(body, 'meson_runs_created_total{namespace="default",workflow="hello"}')).toBe(1);
    expect(value(body, 'meson_runs_started_total{namespace="default",workflow="hello"}')).toBe(1);
    expect(
      value(body, 'meson_runs_finished_total{namespace="default",workflow="hello",phase="Succeeded"}'),
    ).toBe(1);
    expect(
      value(body, 'meson_runs_finished_total{namespace="default",workflow="broken",phase="Failed"}'),
    ).toBe(1);
    expect(
      value(body, 'meson_run_duration_seconds_count{namespace="default",workflow="hello",phase="Succeeded"}'),
    ).toBe(1);
    expect(
      value(body, 'meson_step_attempts_total{namespace="default",workflow="hello",phase="Succeeded"}'),
    ).toBe(1);
    expect(
      value(body, 'meson_step_attempts_total{namespace="default",workflow="broken",phase="Failed"}'),
    ).toBe(1);
    expect(
      value(
        body,
        'meson_step_duration_seconds_count{namespace="default",workflow="hello",phase="Succeeded"}',
      ),
    ).toBe(1);
    expect(value(body, 'meson_step_queue_seconds_count')).toBe(2);
    expect(value(body, 'meson_scheduler_placements_total')).toBe(2);
    expect(value(body, 'meson_store_transaction_duration_seconds_count{outcome="commit"}')).toBeGreaterThan(
      0,
    );
    // webhook deliveries: one refused at first then delivered, one given up (denied address)
    expect(value(body, 'meson_webhook_deliveries_total{outcome="retried"}')).toBe(1);
    expect(value(body, 'meson_webhook_deliveries_total{outcome="delivered"}')).toBe(1);
    expect(value(body, 'meson_webhook_deliveries_total{outcome="failed"}')).toBe(1);
    expect(value(body, 'meson_webhook_deliveries_total{outcome="dropped"}')).toBe(0);
    expect(value(body, 'meson_webhook_delivery_seconds_count{outcome="delivered"}')).toBe(1);
    expect(value(body, 'meson_webhook_attempt_duration_seconds_count')).toBe(3);
    expect(value(body, 'meson_webhook_pending')).toBe(0);
    expect(receiver.bodies).toHaveLength(2);
    // nothing active is left: the gauges have no series
    expect(body).not.toMatch(/^meson_runs_active\{/m);
    // no URL or run name is a label
    expect(body).not.toContain('10.255.255.1');
    expect(body).not.toContain('127.0.0.1');
  }, 30_000);
});
