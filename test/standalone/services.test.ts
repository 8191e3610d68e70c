// Workflow services wired into the standalone controller: validation conditions, cron and
// artifact triggers, concurrency admission, webhook notifications.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyManifests } from '../../src/controller/manifests.ts';
import { createStandalone, type StandaloneOptions } from '../../src/controller/standalone.ts';
import type { Workflow, WorkflowRun } from '../../src/crds/index.ts';
import type { HttpRequest } from '../../src/notify/index.ts';
import type { Stored } from '../../src/store/types.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(opts: Partial<StandaloneOptions> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'meson-svc-'));
  const s = createStandalone({ dataDir: join(root, 'data'), cwd: root, pollMs: 50, ...opts });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  return s;
}

function wf(name: string, spec: Record<string, unknown>): Workflow {
  return {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace: 'default' },
    spec,
  } as Workflow;
}

function load(s: ReturnType<typeof setup>, ...workflows: Workflow[]) {
  applyManifests(s.store, { workflows, artifacts: [], runs: [], errors: [] }, Date.now());
}

function runs(s: ReturnType<typeof setup>, workflow: string): Stored<WorkflowRun>[] {
  return s.store
    .list<WorkflowRun>('WorkflowRun', 'default')
    .items.filter((r) => r.spec.workflow === workflow);
}

async function until<T>(what: string, f: () => T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const noopDef = { step: { name: 'a', noop: {} } };

describe('workflow services', () => {
  it('gives an invalid Workflow a Ready=False condition instead of a version, and keeps going', async () => {
    const s = setup();
    s.start();
    s.store.create(
      'Workflow',
      wf('broken', { definition: { step: { name: 'a', shell: { script: 'echo ${nope}' } } } }),
    );
    s.store.create('Workflow', wf('fine', { definition: noopDef }));
    const broken = await until('a condition', () => {
      const w = s.store.get<Workflow>('Workflow', 'default', 'broken');
      return w?.status?.conditions ? w : undefined;
    });
    expect(broken.status?.conditions?.[0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'Invalid',
    });
    expect(broken.status?.conditions?.[0]?.message).toMatch(/spec\.definition/);
    expect(broken.status?.latestVersion).toBeUndefined();
    await until(
      'the valid one versioned',
      () => s.store.get<Workflow>('Workflow', 'default', 'fine')?.status?.latestVersion === 1,
    );
    // a run of the broken workflow fails with a message; the controller keeps running
    const run = s.store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'r1', namespace: 'default' },
      spec: { workflow: 'broken' },
    });
    const failed = await until('the run to fail', () => {
      const r = s.store.get<WorkflowRun>('WorkflowRun', 'default', run.metadata.name);
      return r?.status?.phase === 'Failed' ? r : undefined;
    });
    expect(failed.status?.message).toMatch(/no version/);
  });

  it('fires a cron trigger once per slot and persists the last fire across a restart', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const root = mkdtempSync(join(tmpdir(), 'meson-cron-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const make = () =>
      createStandalone({ dataDir: join(root, 'data'), cwd: root, now: () => now, cronTickMs: 20 });
    let s = make();
    load(s, wf('minutely', { definition: noopDef, triggers: { cron: [{ schedule: '* * * * *' }] } }));
    s.start();
    await new Promise((r) => setTimeout(r, 100)); // first sight: cursor = now, nothing fires
    expect(runs(s, 'minutely')).toHaveLength(0);
    now += 60_000;
    await until('one cron run', () => runs(s, 'minutely').length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(runs(s, 'minutely')).toHaveLength(1);
    // the run knows its slot exactly (TRIGGER.scheduledTime), not the moment the tick saw it
    expect(runs(s, 'minutely')[0]?.spec.initiator).toEqual({
      type: 'cron',
      scheduledTime: new Date(now - (now % 60_000)).toISOString(),
    });
    s.stop();
    // down for 3 minutes: on restart the catch-up policy (latest) fires once, not three times
    now += 3 * 60_000;
    s = make();
    cleanups.push(() => s.stop());
    s.start();
    await until('the catch-up run', () => runs(s, 'minutely').length === 2);
    await new Promise((r) => setTimeout(r, 150));
    expect(runs(s, 'minutely')).toHaveLength(2);
  });

  it('starts one run per distinct matching artifact partition', async () => {
    const s = setup();
    load(
      s,
      wf('onviews', {
        definition: noopDef,
        triggers: { artifacts: [{ name: 'views', partition: { country: 'US' } }] },
      }),
    );
    s.start();
    const announce = (partition: Record<string, string>) =>
      s.store.create('DataArtifact', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'DataArtifact',
        metadata: { generateName: 'views-', namespace: 'default' },
        spec: { name: 'views', partition },
      });
    announce({ country: 'US', dateint: '20240101' });
    announce({ country: 'CA', dateint: '20240101' });
    await until('a run', () => runs(s, 'onviews').length === 1);
    announce({ country: 'US', dateint: '20240102' });
    await until('a second run', () => runs(s, 'onviews').length === 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(runs(s, 'onviews').map((r) => r.spec.initiator?.type)).toEqual(['artifact', 'artifact']);
  });

  it('queues runs beyond maxActiveRuns and starts them when a slot frees', async () => {
    const s = setup();
    load(
      s,
      wf('one-at-a-time', {
        definition: { step: { name: 'a', shell: { script: 'sleep 1.5' } } },
        concurrency: { maxActiveRuns: 1, policy: 'queue' },
      }),
    );
    s.start();
    // watched, not polled: on a loaded machine a poll can miss the second run's time in the queue
    let secondQueued: Stored<WorkflowRun> | undefined;
    s.store.watch((c) => {
      const r = c.object as Stored<WorkflowRun>;
      if (
        c.kind === 'WorkflowRun' &&
        (r.metadata.name === 'q1' || r.metadata.name === 'q2') &&
        r.status?.conditions?.[0]?.type === 'Queued'
      )
        secondQueued ??= r;
    });
    // created together (one transaction, same timestamp): still one at a time
    s.store.transaction((w) => {
      for (const n of ['q2', 'q1']) {
        w.create('WorkflowRun', {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'WorkflowRun',
          metadata: { name: n, namespace: 'default', creationTimestamp: 'ignored' },
          spec: { workflow: 'one-at-a-time' },
        });
      }
    });
    const queued = await until('one of q1, q2 queued', () => secondQueued);
    expect(queued.status?.phase).toBe('Pending');
    // a third one, stopped while it waits, never starts
    s.store.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'q3', namespace: 'default' },
      spec: { workflow: 'one-at-a-time' },
    });
    await until(
      'q3 queued',
      () => s.store.get<WorkflowRun>('WorkflowRun', 'default', 'q3')?.status?.phase === 'Pending',
    );
    const q3 = s.store.get<WorkflowRun>('WorkflowRun', 'default', 'q3')!;
    s.store.update('WorkflowRun', { ...q3, spec: { ...q3.spec, stop: true } });
    await until(
      'q3 stopped',
      () => s.store.get<WorkflowRun>('WorkflowRun', 'default', 'q3')?.status?.phase === 'Stopped',
    );
    expect(s.store.getStepInstances('default', 'q3').items).toHaveLength(0);
    await until('both done', () =>
      ['q1', 'q2'].every(
        (n) => s.store.get<WorkflowRun>('WorkflowRun', 'default', n)?.status?.phase === 'Succeeded',
      ),
    );
    const [q1, q2] = ['q1', 'q2'].map((n) => s.store.get<WorkflowRun>('WorkflowRun', 'default', n)!);
    const [first, second] = queued.metadata.name === 'q2' ? [q1!, q2!] : [q2!, q1!];
    // one at a time: the queued one starts after the other ended
    expect(Date.parse(second.status!.startTime!)).toBeGreaterThanOrEqual(Date.parse(first.status!.endTime!));
    // the older goes first; at the same creation time (the clock did not tick between the two
    // creates of the transaction), the name breaks the tie, so q1 goes first
    const created = (r: Stored<WorkflowRun>) => Date.parse(r.metadata.creationTimestamp ?? '');
    if (created(q1!) === created(q2!)) expect(second.metadata.name).toBe('q2');
    else expect(created(first)).toBeLessThan(created(second));
  }, 60_000); // two real 1.5 s steps one after the other, plus process start-up, on a loaded machine

  it('posts webhook notifications on start and success', async () => {
    const calls: { url: string; body: Record<string, unknown> }[] = [];
    // a public address for hooks.example, and a transport that records instead of connecting
    const webhook = {
      lookup: async () => [{ address: '93.184.216.34', family: 4 }],
      transport: async (req: HttpRequest) => {
        calls.push({ url: req.url.href, body: JSON.parse(String(req.body)) });
        return { status: 200 };
      },
    };
    const logged: Record<string, unknown>[] = [];
    const keep = (o: object, msg?: string) => void logged.push({ ...o, msg });
    const s = setup({ webhook, logger: { info: keep, warn: keep, error: keep, debug: keep } });
    load(
      s,
      wf('notified', {
        parameters: [{ name: 'code', type: 'long', value: 0 }],
        definition: { step: { name: 'a', shell: { script: 'exit ${code}' } } },
        notifications: [
          { on: ['start', 'success', 'failure'], webhook: { url: 'http://hooks.example/meson' } },
        ],
      }),
    );
    s.start();
    s.store.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'n1', namespace: 'default' },
      spec: { workflow: 'notified' },
    });
    s.store.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'n2', namespace: 'default' },
      spec: { workflow: 'notified', parameters: [{ name: 'code', value: 3 }] },
    });
    await until('four notifications', () => calls.length >= 4);
    await new Promise((r) => setTimeout(r, 100));
    const failure = calls.find((c) => c.body.event === 'failure');
    expect(failure?.body).toMatchObject({ run: 'n2', failedSteps: [{ id: 'a', exitCode: 3 }] });
    calls.splice(calls.indexOf(failure!), 1);
    calls.splice(
      calls.findIndex((c) => c.body.run === 'n2'),
      1,
    );
    expect(calls.map((c) => c.body.event)).toEqual(['start', 'success']);
    // the webhook's log lines say which run and event they are about
    expect(logged.find((l) => l.msg === 'webhook delivered' && l.event === 'failure')).toMatchObject({
      run: 'default/n2',
      workflow: 'notified',
    });
    expect(calls[1]).toMatchObject({
      url: 'http://hooks.example/meson',
      body: { run: 'n1', workflow: 'notified', phase: 'Succeeded' },
    });
  });
});
