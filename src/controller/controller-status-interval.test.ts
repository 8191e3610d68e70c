// The controller's statusIntervalMs: a running run's observed progress is written at most once
// per interval, while what must be stored before a side effect (a launch's task record, with its
// step's attempt; an attempt's end before its Pod is collected) is never held back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addWorkflow, finished, reportKilled, startRun, until } from '../../test/support/standalone-runs.ts';
import type { DefinitionNode, WorkflowRun } from '../crds/index.ts';
import {
  type AttemptKey,
  type AttemptUpdate,
  attemptKey,
  type Launcher,
  type LaunchRecord,
  type LaunchRequest,
} from '../launchers/types.ts';
import { createStandalone, type Standalone } from './standalone.ts';

const GiB = 1024 ** 3;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

interface LaunchSeen {
  instance: string;
  attempt: number;
  /** The task record and the step instance as stored when the launcher was asked to launch. */
  taskState: string | undefined;
  taskAttempt: number | undefined;
  storedAttempt: number | undefined;
}

/**
 * Runs each attempt for `runMs` (staggered by launch order): running at once, then Succeeded,
 * or Failed for instances in `failFirst` on their first attempt. Instances in `forever` keep
 * running until killed. Records what the store held at each launch and each `settled`.
 */
class ScriptedLauncher implements Launcher {
  launches: LaunchSeen[] = [];
  settledPhases: (string | undefined)[] = [];
  failFirst = new Set<string>();
  forever = new Set<string>();
  runMs = 30;
  store: Standalone['store'] | undefined;
  private n = 0;
  private readonly onUpdate: (u: AttemptUpdate) => void;
  constructor(onUpdate: (u: AttemptUpdate) => void) {
    this.onUpdate = onUpdate;
  }
  private stored(key: AttemptKey) {
    const inst = this.store?.getStepInstances(key.namespace, key.run).items.find((i) => i.id === key.instance)
      ?.data as { attempts?: number; phase?: string } | undefined;
    return inst;
  }
  prepare(): LaunchRecord {
    return { launchId: `scripted-${++this.n}`, launchedAt: Date.now() };
  }
  launch(req: LaunchRequest, record: LaunchRecord): void {
    const key = attemptKey(req);
    const task = this.store
      ?.listTasks({ namespace: req.namespace, run: req.run })
      .find((t) => t.instance === req.instance);
    this.launches.push({
      instance: req.instance,
      attempt: req.attempt,
      taskState: task?.state,
      taskAttempt: task?.attempt,
      storedAttempt: this.stored(key)?.attempts,
    });
    const status = { launchId: record.launchId, pid: 0, milestones: {} };
    const order = this.launches.length;
    setImmediate(() => this.onUpdate({ type: 'running', key, status: { ...status, phase: 'Running' } }));
    if (this.forever.has(req.instance)) return;
    const fail = req.attempt === 1 && this.failFirst.has(req.instance);
    setTimeout(
      () =>
        this.onUpdate({
          type: 'finished',
          key,
          status: { ...status, phase: fail ? 'Failed' : 'Succeeded', ...(fail ? { message: 'exit 1' } : {}) },
        }),
      this.runMs + (order % 10) * 5,
    );
  }
  adopt(): void {}
  settled(key: AttemptKey): void {
    this.settledPhases.push(this.stored(key)?.phase);
  }
  kill(key: AttemptKey, record: LaunchRecord): void {
    reportKilled(this.onUpdate, key, record);
  }
  close(): void {}
}

function setup(statusIntervalMs: number) {
  const root = mkdtempSync(join(tmpdir(), 'meson-status-interval-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  let fake: ScriptedLauncher | undefined;
  const s: Standalone = createStandalone({
    dataDir: root,
    capacity: { cpuMillis: 64_000, memoryBytes: 64 * GiB },
    hostname: 'box',
    retention: false,
    triggers: false,
    statusIntervalMs,
    wrapLauncher: (_local, onUpdate) => {
      fake = new ScriptedLauncher(onUpdate);
      return fake;
    },
  });
  fake!.store = s.store;
  cleanups.push(() => s.stop());
  let runWrites = 0;
  const unwatch = s.store.watch((c) => {
    if (c.kind === 'WorkflowRun' && c.type === 'MODIFIED') runWrites++;
  });
  cleanups.push(unwatch);
  s.start();
  return { s, fake: fake!, runWrites: () => runWrites };
}

function storedSteps(s: Standalone, run: string) {
  return s.store
    .getStepInstances('default', run)
    .items.map((i) => i.data as { id: string; phase: string; attempts?: number })
    .sort((a, b) => a.id.localeCompare(b.id));
}

const WIDE: DefinitionNode = {
  foreach: {
    items: 'range(40)',
    as: 'i',
    parallelism: 8,
    do: { step: { name: 'each', shell: { script: 'true' } } },
  },
};

describe('statusIntervalMs', () => {
  it('writes a running run far less often, and stores the same end', async () => {
    const results: { writes: number; steps: ReturnType<typeof storedSteps>; tasks: number }[] = [];
    for (const interval of [0, 300]) {
      const { s, fake, runWrites } = setup(interval);
      fake.runMs = 40;
      addWorkflow(s, 'wide', WIDE);
      const run = startRun(s, 'wide');
      const done = await finished(s, run.metadata.name);
      expect(done.status?.phase).toBe('Succeeded');
      results.push({
        writes: runWrites(),
        steps: storedSteps(s, run.metadata.name).map(({ id, phase, attempts }) => ({ id, phase, attempts })),
        tasks: s.store.listTasks({ namespace: 'default', run: run.metadata.name }).length,
      });
    }
    const [every, held] = results as [(typeof results)[0], (typeof results)[0]];
    // 40 steps, 8 at a time: every pass wrote the status; held, about one write per 300 ms
    expect(every.writes).toBeGreaterThan(20);
    expect(held.writes).toBeLessThan(every.writes / 2);
    expect(held.steps).toEqual(every.steps);
    expect(held.steps.filter((st) => st.phase === 'Succeeded')).toHaveLength(40);
    expect(held.tasks).toBe(0);
  });

  it("never stores a launch's task record ahead of its step's attempt, retries included", async () => {
    // an interval longer than the test: only what must be written goes before the run's end
    const { s, fake } = setup(60_000);
    fake.failFirst = new Set(['each[1]', 'each[4]']);
    addWorkflow(s, 'retry', {
      foreach: {
        items: 'range(6)',
        as: 'i',
        parallelism: 2,
        do: {
          step: {
            name: 'each',
            shell: { script: 'true' },
            retry: { limit: 1, backoff: { initialSeconds: 0 } },
          },
        },
      },
    });
    const run = startRun(s, 'retry');
    const done = await finished(s, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    expect(fake.launches.length).toBe(8);
    for (const l of fake.launches) {
      expect(l, `${l.instance} attempt ${l.attempt}`).toMatchObject({
        taskState: 'launched',
        taskAttempt: l.attempt,
        storedAttempt: l.attempt,
      });
    }
    expect(fake.launches.filter((l) => l.attempt === 2).map((l) => l.instance)).toEqual(
      expect.arrayContaining(['each[1]', 'each[4]']),
    );
    // each attempt's end was stored before the launcher could collect its Pod
    expect(fake.settledPhases.length).toBe(8);
    for (const phase of fake.settledPhases) expect(['Succeeded', 'Failed']).toContain(phase);
  });

  it('writes held progress once the interval is over, with no later event', async () => {
    const { s, fake } = setup(250);
    fake.forever = new Set(['long']);
    addWorkflow(s, 'long', { step: { name: 'long', shell: { script: 'sleep 600' } } });
    const run = startRun(s, 'long');
    const name = run.metadata.name;
    await until(() => fake.launches.length === 1 || undefined, 'the launch');
    // "running" is reported right after the launch, in a pass within the interval: held, then
    // written by the pass the interval's end brings
    await until(() => storedSteps(s, name)[0]?.phase === 'Running' || undefined, 'Running stored', 5_000);
    s.store.update<WorkflowRun>('WorkflowRun', {
      ...s.store.get<WorkflowRun>('WorkflowRun', 'default', name)!,
      spec: { workflow: 'long', stop: true },
    });
    const done = await finished(s, name);
    expect(done.status?.phase).toBe('Stopped');
    expect(storedSteps(s, name)[0]?.phase).not.toBe('Running');
  });
});
