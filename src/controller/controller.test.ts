import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { groupAlive } from '../../executors/process.ts';
import { type ExecutorStatus, readStatus } from '../../executors/protocol.ts';
import type { DefinitionNode, Workflow, WorkflowRun } from '../crds/index.ts';
import type { RunLimits } from '../engine/index.ts';
import { LocalLauncher } from '../launchers/local.ts';
import { LocalOfferSource } from '../offer-adapter/local.ts';
import type { Offer } from '../offer-adapter/types.ts';
import type { ControllerStore, ControllerWriteBatch } from '../store/port.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import { type Stored, StoreError } from '../store/types.ts';
import {
  Controller,
  type ControllerDeps,
  type ControllerObserver,
  type OfferSource,
  RUN_QUARANTINED,
} from './controller.ts';
import { ensureVersion } from './workflows.ts';

/**
 * Poison for the quarantine tests: the engine machine of a run of workflow `poison` throws
 * at the stage named here (a bug a run could trigger); every other run is untouched.
 */
const poison: { stage?: 'apply' | 'restore' | 'snapshot' | 'action' } = {};
vi.mock('../engine/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../engine/index.ts')>();
  const boom = (stage: string) => () => {
    throw new Error(`injected engine failure in ${stage}`);
  };
  const poisoned = <T extends { machine: { apply: unknown; snapshot: unknown } }>(
    workflow: string,
    r: T,
  ): T => {
    if (workflow !== 'poison') return r;
    if (poison.stage === 'apply') r.machine.apply = boom('apply');
    if (poison.stage === 'action') {
      // The engine answers an event with an action the controller cannot perform.
      const apply = (r.machine.apply as (...a: unknown[]) => unknown[]).bind(r.machine);
      r.machine.apply = (...a: unknown[]) => [
        ...apply(...a),
        { type: 'WaitForInputs', instanceId: 'x', inputs: null },
      ];
    }
    if (poison.stage === 'snapshot') r.machine.snapshot = boom('snapshot');
    return r;
  };
  return {
    ...real,
    createRun: (input: Parameters<typeof real.createRun>[0]) =>
      poisoned(input.workflow, real.createRun(input)),
    restoreRun: (input: Parameters<typeof real.restoreRun>[0]) => {
      if (input.workflow === 'poison' && poison.stage === 'restore') boom('restoreRun')();
      return poisoned(input.workflow, real.restoreRun(input));
    },
  };
});

/**
 * The SQLite port with a hook on every commit: each one is held `delayMs` longer, and a write of
 * step instances of a run whose name starts with `failRun` is refused (as a store refuses an
 * object too large, or a forbidden write). Counts the commits of reconcile passes in flight.
 */
class HookedStore implements ControllerStore {
  inFlight = 0;
  maxInFlight = 0;
  passes = 0;
  refused = 0;
  /** performance.now() of each refusal. */
  readonly refusedAt: number[] = [];
  private readonly inner: SqliteAsyncStore;
  readonly atomic: boolean;
  private readonly hook: { delayMs?: number; failRun?: string };
  constructor(inner: SqliteAsyncStore, atomic: boolean, hook: { delayMs?: number; failRun?: string }) {
    this.inner = inner;
    this.atomic = atomic;
    this.hook = hook;
  }
  get: ControllerStore['get'] = (...a) => this.inner.get(...a);
  list: ControllerStore['list'] = (...a) => this.inner.list(...a);
  watch: ControllerStore['watch'] = (...a) => this.inner.watch(...a);
  getLive: ControllerStore['getLive'] = (...a) => this.inner.getLive(...a);
  getStepInstances: ControllerStore['getStepInstances'] = (...a) => this.inner.getStepInstances(...a);
  getStepInstance: ControllerStore['getStepInstance'] = (...a) => this.inner.getStepInstance(...a);
  countStepInstances: ControllerStore['countStepInstances'] = (...a) => this.inner.countStepInstances(...a);
  listTasks: ControllerStore['listTasks'] = (...a) => this.inner.listTasks(...a);
  getState: ControllerStore['getState'] = (...a) => this.inner.getState(...a);
  listState: ControllerStore['listState'] = (...a) => this.inner.listState(...a);

  async transaction<R>(fn: (w: ControllerWriteBatch) => R): Promise<R> {
    let pass = false;
    const { failRun } = this.hook;
    const p = this.inner.transaction((w) => {
      const hooked: ControllerWriteBatch = {
        ...w,
        create: (k, o) => w.create(k, o),
        update: (k, o) => w.update(k, o),
        updateStatus: (k, o) => {
          if (k === 'WorkflowRun') pass = true;
          return w.updateStatus(k, o);
        },
        delete: (k, ns, n) => w.delete(k, ns, n),
        putStepInstances: (records) => {
          pass = true;
          if (failRun && records.some((r) => r.run.startsWith(failRun))) {
            this.refused++;
            this.refusedAt.push(performance.now());
            throw new StoreError('STORE_TOO_LARGE', `injected: the step instances of ${records[0]?.run}`);
          }
          w.putStepInstances(records);
        },
        deleteStepInstances: (ns, run) => w.deleteStepInstances(ns, run),
        putTasks: (records) => w.putTasks(records),
        deleteTask: (ns, run, i) => w.deleteTask(ns, run, i),
        setState: (k, v) => w.setState(k, v),
        deleteState: (k) => w.deleteState(k),
      };
      return fn(hooked);
    });
    if (pass) {
      this.passes++;
      this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    }
    try {
      if (this.hook.delayMs) await new Promise((r) => setTimeout(r, this.hook.delayMs));
      return await p;
    } finally {
      if (pass) this.inFlight--;
    }
  }
}

/** Offers of several labelled hosts, as Kubernetes nodes make them (holds are not counted). */
class HostOffers implements OfferSource {
  readonly source = 'kubernetes' as const;
  readonly hostname = 'unknown';
  private seq = 0;
  private readonly hosts: { name: string; labels: Record<string, string> }[];
  constructor(hosts: { name: string; labels: Record<string, string> }[]) {
    this.hosts = hosts;
  }
  offers(now: number): Offer[] {
    return this.hosts.map((h) => ({
      id: `${h.name}-${++this.seq}`,
      source: 'kubernetes' as const,
      hostname: h.name,
      agentId: h.name,
      resources: { cpuMillis: 8000, memoryBytes: 16 * 2 ** 30, diskBytes: 0, gpus: 0 },
      attributes: { ...h.labels, 'kubernetes.io/hostname': h.name },
      receivedAt: now,
    }));
  }
  hold(): void {}
  release(): void {}
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function harness(
  dir?: string,
  runLimits?: Partial<RunLimits>,
  stepLimits?: ControllerDeps['stepLimits'],
  opts: { wrap?: (s: SqliteAsyncStore) => ControllerStore; deps?: Partial<ControllerDeps> } = {},
) {
  const root = dir ?? mkdtempSync(join(tmpdir(), 'meson-ctl-'));
  if (!dir) cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const store = new SqliteStore({ dir: join(root, 'db') });
  let n = 0;
  let controller: Controller;
  const launcher = new LocalLauncher({
    attemptDir: (k, id) => store.attemptDir(k.namespace, k.run, k.instance, k.attempt, id),
    onUpdate: (u) => controller.onAttemptUpdate(u),
    newLaunchId: () => `${Date.now().toString(36)}${++n}`,
    cwd: root,
    pollMs: 50,
  });
  const port = new SqliteAsyncStore(store);
  controller = new Controller({
    ...opts.deps,
    store: opts.wrap ? opts.wrap(port) : port,
    ...(runLimits ? { runLimits } : {}),
    ...(stepLimits ? { stepLimits } : {}),
    launcher,
    offers:
      opts.deps?.offers ??
      new LocalOfferSource({
        hostname: 'test',
        capacity: { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30 },
      }),
  });
  cleanups.push(() => {
    controller.stop();
    store.close();
  });
  return { root, store, controller };
}

function addWorkflow(
  store: SqliteStore,
  name: string,
  definition: DefinitionNode,
  parameters: unknown[] = [],
) {
  const wf = store.create<Workflow>('Workflow', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace: 'default' },
    spec: { definition, parameters } as Workflow['spec'],
  });
  const status = store.transaction((w) => ensureVersion(store, w, wf, Date.now()));
  expect(status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'True' });
}

function startRun(store: SqliteStore, workflow: string, parameters: { name: string; value: unknown }[] = []) {
  return store.create<WorkflowRun>('WorkflowRun', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { generateName: `${workflow}-`, namespace: 'default' },
    spec: { workflow, parameters: parameters as WorkflowRun['spec']['parameters'] },
  } as WorkflowRun);
}

async function waitFor(store: SqliteStore, name: string, ms = 20_000): Promise<Stored<WorkflowRun>> {
  const end = Date.now() + ms;
  for (;;) {
    const r = store.get<WorkflowRun>('WorkflowRun', 'default', name);
    if (r?.status?.phase && ['Succeeded', 'Failed', 'Stopped'].includes(r.status.phase)) return r;
    if (Date.now() > end) throw new Error(`run ${name} did not finish: ${JSON.stringify(r?.status)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('Controller', () => {
  it('runs a sequence of shell steps with output parameters flowing downstream', async () => {
    const { store, controller, root } = harness();
    addWorkflow(
      store,
      'wf',
      {
        sequence: [
          { step: { name: 'a', shell: { script: 'echo "n=3" >> "$MESON_OUTPUTS"' } } },
          { step: { name: 'b', shell: { script: 'echo "got ${steps.a.outputs.n} ${x}" > out.txt' } } },
        ],
      },
      [{ name: 'x', value: 'hello' }],
    );
    controller.start();
    const run = startRun(store, 'wf');
    const done = await waitFor(store, run.metadata.name);
    expect(
      done.status?.phase,
      JSON.stringify([done.status, store.getStepInstances('default', run.metadata.name)]),
    ).toBe('Succeeded');
    expect(readFileSync(join(root, 'out.txt'), 'utf8')).toBe('got 3 hello\n');
    const steps = store.getStepInstances('default', run.metadata.name).items;
    expect(steps.map((s) => [s.id, s.phase])).toEqual([
      ['a', 'Succeeded'],
      ['b', 'Succeeded'],
    ]);
    expect(store.listTasks()).toEqual([]);
    expect(done.status?.duration).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+m\d+s$/);
    expect(store.get('Workflow', 'default', 'wf')?.status).toMatchObject({
      lastRun: run.metadata.name,
      lastRunPhase: 'Succeeded',
    });
  });

  it('fails a run whose step fails, and a run of an unknown workflow with a message', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'bad', { step: { name: 'a', shell: { script: 'exit 4' } } });
    controller.start();
    const r1 = startRun(store, 'bad');
    const r2 = startRun(store, 'nope');
    // an object no API would accept, written straight into the store
    const r3 = store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'garbage', namespace: 'default' },
      spec: { workflow: 42 },
    } as unknown as WorkflowRun);
    expect((await waitFor(store, r1.metadata.name)).status?.phase).toBe('Failed');
    const d2 = await waitFor(store, r2.metadata.name);
    expect(d2.status).toMatchObject({ phase: 'Failed', message: expect.stringMatching(/nope/) });
    const d3 = await waitFor(store, r3.metadata.name);
    expect(d3.status).toMatchObject({ phase: 'Failed', message: expect.stringMatching(/spec\.workflow/) });
  });

  it('with missingWorkflowGraceMs, starts a run that arrived before its Workflow (one kubectl apply, two watches)', async () => {
    const { store, controller } = harness(undefined, undefined, undefined, {
      deps: { missingWorkflowGraceMs: 5_000 },
    });
    controller.start();
    const early = startRun(store, 'later');
    await controller.idle();
    // the store had no Workflow "later" when the run arrived: without the grace it failed here
    expect(
      store.get<WorkflowRun>('WorkflowRun', 'default', early.metadata.name)?.status?.phase,
    ).toBeUndefined();
    await new Promise((r) => setTimeout(r, 200));
    addWorkflow(store, 'later', { step: { name: 'a', noop: {} } });
    const done = await waitFor(store, early.metadata.name);
    expect(done.status, JSON.stringify(done.status)).toMatchObject({ phase: 'Succeeded', version: 1 });
  });

  it('with missingWorkflowGraceMs, fails a run whose Workflow never comes once the grace is over, with the message', async () => {
    const { store, controller } = harness(undefined, undefined, undefined, {
      deps: { missingWorkflowGraceMs: 400 },
    });
    addWorkflow(store, 'other', { step: { name: 'a', noop: {} } });
    controller.start();
    const t = Date.now();
    const orphan = startRun(store, 'nowhere');
    // another Workflow's change re-queues the waiting runs: it must not end (or reset) the grace
    await new Promise((r) => setTimeout(r, 100));
    addWorkflow(store, 'another', { step: { name: 'a', noop: {} } });
    const done = await waitFor(store, orphan.metadata.name, 3_000);
    expect(Date.now() - t).toBeGreaterThanOrEqual(400);
    expect(done.status).toMatchObject({
      phase: 'Failed',
      message: 'spec.workflow: Workflow "nowhere" not found in namespace "default"',
    });
    // a run of a Workflow that exists is not held by the grace
    const fine = startRun(store, 'other');
    expect((await waitFor(store, fine.metadata.name, 2_000)).status?.phase).toBe('Succeeded');
  });

  it('fails a run that overrides an undeclared parameter or gives one twice, naming the field (no webhook checked it)', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'p', { step: { name: 'a', noop: {} } }, [{ name: 'who', value: 'x' }]);
    controller.start();
    const unknown = startRun(store, 'p', [{ name: 'whom', value: 'y' }]);
    const twice = startRun(store, 'p', [
      { name: 'who', value: 'a' },
      { name: 'who', value: 'b' },
    ]);
    const ok = startRun(store, 'p', [{ name: 'who', value: 'z' }]);
    const u = await waitFor(store, unknown.metadata.name);
    expect(u.status?.phase).toBe('Failed');
    expect(u.status?.message).toBe(
      'spec.parameters.whom: unknown parameter "whom": workflow "p" version 1 declares who',
    );
    expect((await waitFor(store, twice.metadata.name)).status?.message).toBe(
      'spec.parameters.who: parameter "who" is given twice',
    );
    expect((await waitFor(store, ok.metadata.name)).status?.phase).toBe('Succeeded');
  });

  it('runs a foreach of noops in-process', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'fe', {
      foreach: { items: 'range(200)', as: 'i', do: { step: { name: 'n', noop: {} } } },
    });
    controller.start();
    const run = startRun(store, 'fe');
    const done = await waitFor(store, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    expect(store.countStepInstances('default', run.metadata.name)).toEqual({ Succeeded: 200 });
  });

  it('stops a running run: the step is killed and the run Stopped', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'slow', { step: { name: 'a', shell: { script: 'sleep 30' } } });
    controller.start();
    const run = startRun(store, 'slow');
    for (let i = 0; i < 200; i++) {
      if (store.getStepInstance('default', run.metadata.name, 'a')?.phase === 'Running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const cur = store.get<WorkflowRun>('WorkflowRun', 'default', run.metadata.name)!;
    store.update('WorkflowRun', { ...cur, spec: { ...cur.spec, stop: true } });
    expect((await waitFor(store, run.metadata.name)).status?.phase).toBe('Stopped');
  });

  it('adopts a running step after a restart instead of running it again', async () => {
    const first = harness();
    const root = first.root;
    addWorkflow(first.store, 'once', {
      sequence: [
        { step: { name: 'a', shell: { script: 'echo a >> log.txt; sleep 1' } } },
        { step: { name: 'b', shell: { script: 'echo b >> log.txt' } } },
      ],
    });
    first.controller.start();
    const run = startRun(first.store, 'once');
    for (let i = 0; i < 200; i++) {
      if (first.store.getStepInstance('default', run.metadata.name, 'a')?.phase === 'Running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    // the "server" goes away without any cleanup; the executor keeps running
    first.controller.stop();
    first.store.close();
    const second = harness(root);
    second.controller.start();
    const done = await waitFor(second.store, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    expect(readFileSync(join(root, 'log.txt'), 'utf8')).toBe('a\nb\n');
  });

  it('runs a subworkflow as a child run and fails the parent step when the child fails', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'child', { step: { name: 'c', shell: { script: 'test "${mode}" = ok' } } }, [
      { name: 'mode', value: 'bad' },
    ]);
    addWorkflow(store, 'parent', {
      sequence: [
        {
          step: {
            name: 'good',
            subworkflow: { workflow: 'child', parameters: [{ name: 'mode', value: 'ok' }] },
          },
        },
        { step: { name: 'bad', subworkflow: { workflow: 'child' } } },
      ],
    });
    controller.start();
    const run = startRun(store, 'parent');
    const done = await waitFor(store, run.metadata.name);
    expect(done.status?.phase).toBe('Failed');
    const steps = store.getStepInstances('default', run.metadata.name).items.map((r) => r.data);
    expect(steps.map((s) => [s.id, s.phase])).toEqual([
      ['good', 'Succeeded'],
      ['bad', 'Failed'],
    ]);
    const children = store
      .list<WorkflowRun>('WorkflowRun', 'default')
      .items.filter((r) => r.spec.initiator?.type === 'subworkflow');
    expect(children.map((c) => [c.spec.initiator?.parent?.step, c.status?.phase]).sort()).toEqual([
      ['bad', 'Failed'],
      ['good', 'Succeeded'],
    ]);
  });

  it('fails a subworkflow step whose merged outputs break the limits each child step kept', async () => {
    const { store, controller } = harness(undefined, undefined, { outputKeys: 3 });
    addWorkflow(store, 'many', {
      foreach: {
        items: 'range(5)',
        as: 'i',
        do: { step: { name: 'k', shell: { script: 'echo "key${i}=1" >> "$MESON_OUTPUTS"' } } },
      },
    });
    addWorkflow(store, 'caller', { step: { name: 'sub', subworkflow: { workflow: 'many' } } });
    controller.start();
    const run = startRun(store, 'caller');
    const done = await waitFor(store, run.metadata.name);
    expect(done.status?.phase).toBe('Failed');
    const sub = store.getStepInstance('default', run.metadata.name, 'sub')?.data;
    expect(sub?.message).toMatch(
      /EXECUTOR_OUTPUTS_TOO_LARGE: .*merged: .*5 parameters, over the limit outputKeys=3/,
    );
    expect(sub?.outputs).toBeUndefined();
  });

  it('does not let a run that claims a parent feed its outputs to that parent', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'slow', {
      step: { name: 'c', shell: { script: 'sleep 1.5; echo "x=genuine" >> "$MESON_OUTPUTS"' } },
    });
    addWorkflow(store, 'forger', {
      step: { name: 'f', shell: { script: 'echo "x=forged" >> "$MESON_OUTPUTS"' } },
    });
    addWorkflow(store, 'parent', {
      sequence: [
        { step: { name: 'sub', subworkflow: { workflow: 'slow' } } },
        { step: { name: 'use', shell: { script: 'echo "got=${steps.sub.outputs.x}" >> "$MESON_OUTPUTS"' } } },
      ],
    });
    controller.start();
    const run = startRun(store, 'parent');
    const forged = (name: string, labels?: Record<string, string>) =>
      store.create<WorkflowRun>('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
        spec: {
          workflow: 'forger',
          initiator: { type: 'subworkflow', parent: { run: run.metadata.name, step: 'sub' } },
        },
      });
    // several forms: any name, a name ending like an attempt, the parent-run label
    const f1 = forged('forged-a1');
    const f2 = forged('forged-two', { 'meson.dev/parent-run': run.metadata.name });
    const f3 = forged(`${run.metadata.name}-sub-a2`, { 'meson.dev/parent-run': run.metadata.name });
    for (const f of [f1, f2, f3])
      expect((await waitFor(store, f.metadata.name)).status?.phase).toBe('Succeeded');
    const done = await waitFor(store, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    const steps = store.getStepInstances('default', run.metadata.name).items.map((r) => r.data);
    expect(steps.find((s) => s.id === 'sub')?.outputs).toEqual({ x: 'genuine' });
    expect(steps.find((s) => s.id === 'use')?.outputs).toEqual({ got: 'genuine' });
  });

  it("fails a subworkflow step whose child's name another run already holds, instead of adopting it", async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'child', {
      step: { name: 'c', shell: { script: 'echo "x=genuine" >> "$MESON_OUTPUTS"' } },
    });
    addWorkflow(store, 'forger', {
      step: { name: 'f', shell: { script: 'echo "x=forged" >> "$MESON_OUTPUTS"' } },
    });
    addWorkflow(store, 'parent', { step: { name: 'sub', subworkflow: { workflow: 'child' } } });
    const squat = (name: string, spec: Partial<WorkflowRun['spec']>, labels?: Record<string, string>) =>
      store.create<WorkflowRun>('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
        spec: { workflow: 'forger', ...spec },
      });
    // the name the parent's step will give its child, taken first: by a plain run, and by one
    // that claims the right parent but lacks the label the controller sets
    squat('p1-sub-a1', { initiator: { type: 'api' } });
    squat('p2-sub-a1', { initiator: { type: 'subworkflow', parent: { run: 'p2', step: 'sub' } } });
    squat(
      'p3-sub-a1',
      { initiator: { type: 'subworkflow', parent: { run: 'other', step: 'sub' } } },
      {
        'meson.dev/parent-run': 'p3',
      },
    );
    for (const p of ['p1', 'p2', 'p3'])
      store.create<WorkflowRun>('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name: p, namespace: 'default' },
        spec: { workflow: 'parent' },
      });
    controller.start();
    for (const p of ['p1', 'p2', 'p3']) {
      const done = await waitFor(store, p, 10_000);
      expect(done.status?.phase, p).toBe('Failed');
      const sub = store.getStepInstance('default', p, 'sub')?.data;
      expect(sub?.message).toMatch(/a run of that name exists that this step did not start/);
      expect(sub?.outputs).toBeUndefined();
    }
  });

  it('retries a failed step after its backoff and enforces timeoutSeconds', async () => {
    const { store, controller, root } = harness();
    addWorkflow(store, 'retry', {
      step: {
        name: 'flaky',
        // fails on the first attempt, succeeds on the second
        shell: { script: 'if [ -f tried ]; then exit 0; fi; touch tried; exit 1' },
        retry: { limit: 2, backoff: { initialSeconds: 0.2 } },
      },
    });
    addWorkflow(store, 'slowpoke', { step: { name: 'z', shell: { script: 'sleep 30' }, timeoutSeconds: 1 } });
    controller.start();
    const r1 = startRun(store, 'retry');
    const r2 = startRun(store, 'slowpoke');
    const d1 = await waitFor(store, r1.metadata.name);
    expect(d1.status?.phase).toBe('Succeeded');
    expect(store.getStepInstance('default', r1.metadata.name, 'flaky')?.data).toMatchObject({ attempts: 2 });
    const d2 = await waitFor(store, r2.metadata.name);
    expect(d2.status?.phase).toBe('Failed');
    expect(store.getStepInstance('default', r2.metadata.name, 'z')?.data.message).toMatch(/time/i);
    expect(readFileSync(join(root, 'tried'), 'utf8')).toBe('');
  });

  it('rebuilds from the store after a failed reconcile pass, running nothing twice', async () => {
    const { store, controller, root } = harness();
    addWorkflow(store, 'bumpy', {
      sequence: ['a', 'b', 'c'].map((n) => ({
        step: { name: n, shell: { script: `echo ${n} >> log.txt` } },
      })),
    });
    // the 4th and 7th transactions fail (e.g. a full disk): their changes never reach the store
    const real = store.transaction.bind(store);
    let calls = 0;
    store.transaction = ((fn: Parameters<typeof real>[0]) => {
      calls++;
      if (calls === 4 || calls === 7) throw new Error('disk full');
      return real(fn);
    }) as typeof store.transaction;
    controller.start();
    const run = startRun(store, 'bumpy');
    const done = await waitFor(store, run.metadata.name, 30_000);
    expect(done.status?.phase).toBe('Succeeded');
    expect(calls).toBeGreaterThan(7);
    expect(readFileSync(join(root, 'log.txt'), 'utf8')).toBe('a\nb\nc\n');
  });

  it('kills the running steps of a deleted run', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'doomed', { step: { name: 'z', shell: { script: 'sleep 30' } } });
    controller.start();
    const run = startRun(store, 'doomed');
    for (let i = 0; i < 200; i++) {
      if (store.getStepInstance('default', run.metadata.name, 'z')?.phase === 'Running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const parent = dirname(store.attemptDir('default', run.metadata.name, 'z', 1, 'x'));
    const [launch] = readdirSync(parent);
    store.delete('WorkflowRun', 'default', run.metadata.name);
    let status: ExecutorStatus | undefined;
    for (let i = 0; i < 200; i++) {
      status = readStatus(join(parent, launch!));
      if (status?.phase !== 'Running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(status).toMatchObject({ phase: 'Failed', message: expect.stringMatching(/killed/) });
  });

  it('fails a step that asks for more than the whole machine instead of leaving it Queued forever', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'big', {
      sequence: [
        { step: { name: 'fits', resources: { cpus: 2, memory: '1Gi' }, shell: { script: 'true' } } },
        { step: { name: 'huge', resources: { cpus: 64, gpus: 1 }, shell: { script: 'true' } } },
      ],
    } as DefinitionNode);
    controller.start();
    const final = await waitFor(store, startRun(store, 'big').metadata.name);
    expect(final.status?.phase).toBe('Failed');
    const huge = store.getStepInstance('default', final.metadata.name, 'huge')?.data as { message?: string };
    expect(huge.message).toContain(
      'cannot run on this machine: the step asks for cpus 64 (the machine has 4), gpus 1',
    );
  });

  it('fails the step of a run whose name cannot be a path, and keeps running the others', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'one', { step: { name: 'a', shell: { script: 'echo ok' } } });
    controller.start();
    // a name the API would refuse, written to the store directly (defence in depth)
    store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: '..', namespace: 'default' },
      spec: { workflow: 'one' },
    } as WorkflowRun);
    const fine = startRun(store, 'one');
    const bad = await waitFor(store, '..');
    expect(bad.status?.phase).toBe('Failed');
    const step = store.getStepInstance('default', '..', 'a')?.data as { message?: string };
    expect(step.message).toMatch(/cannot launch: run "\.\." cannot name a path/);
    expect((await waitFor(store, fine.metadata.name)).status?.phase).toBe('Succeeded');
  });

  it('after kill -9 of an executor, retries only once the whole process group of the attempt is gone, and records its end', async () => {
    const { store, controller, root } = harness();
    addWorkflow(store, 'victim', {
      step: {
        name: 's',
        // a background process too: it is in the step's process group and must die with it
        shell: {
          script: [
            'echo "start $MESON_ATTEMPT $(date +%s%N)" >> times.log',
            'sleep 30 &',
            'if [ "$MESON_ATTEMPT" = 1 ]; then sleep 4; fi',
            'echo "end $MESON_ATTEMPT $(date +%s%N)" >> times.log',
          ].join('\n'),
        },
        retry: { limit: 1, backoff: { initialSeconds: 0.05 } },
      },
    });
    controller.start();
    const run = startRun(store, 'victim');
    const parent = dirname(store.attemptDir('default', run.metadata.name, 's', 1, 'x'));
    let status: ExecutorStatus | undefined;
    let dir = '';
    for (let i = 0; i < 400 && !(status?.childPid && existsSync(join(root, 'times.log'))); i++) {
      await new Promise((r) => setTimeout(r, 25));
      const d = existsSync(parent) ? readdirSync(parent).find((n) => n.startsWith('1-')) : undefined;
      if (d) {
        dir = join(parent, d);
        status = readStatus(dir);
      }
    }
    const pgid = status?.childPid;
    if (!status || !pgid) throw new Error(`attempt 1 never started its step: ${JSON.stringify(status)}`);
    const killedAt = Date.now();
    process.kill(status.pid, 'SIGKILL');
    // watch attempt 1's process group: the last instant it was seen alive
    let lastAlive = killedAt;
    while (groupAlive(pgid) && Date.now() - killedAt < 15_000) {
      lastAlive = Date.now();
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(groupAlive(pgid)).toBe(false);
    const done = await waitFor(store, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    const lines = readFileSync(join(root, 'times.log'), 'utf8').trim().split('\n');
    const at = (what: string) => {
      const line = lines.find((l) => l.startsWith(`${what} `));
      return line ? Number(line.split(' ')[2]) / 1e6 : undefined;
    };
    expect(at('end 1'), lines.join('\n')).toBeUndefined(); // attempt 1 was killed, never finished
    expect(at('start 2'), lines.join('\n')).toBeGreaterThan(lastAlive);
    expect(at('end 2')).toBeDefined();
    // attempt 1 has a real end, not "Running" forever
    const ended = readStatus(dir);
    expect(ended).toMatchObject({ phase: 'Failed', message: expect.stringMatching(/^EXECUTOR_DIED: /) });
    expect(ended?.milestones.finished).toBeGreaterThanOrEqual(killedAt);
    expect(store.getStepInstance('default', run.metadata.name, 's')?.data).toMatchObject({ attempts: 2 });
  });
});

describe('Controller: runs that would take the server down', () => {
  afterEach(() => {
    delete poison.stage;
  });

  async function whenRunning(store: SqliteStore, run: string, step: string): Promise<void> {
    for (let i = 0; i < 400; i++) {
      if (store.getStepInstance('default', run, step)?.phase === 'Running') return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${run}/${step} never ran`);
  }

  it('a nested foreach of 100,000 x 100,000 fails with RUN_LIMIT_STEP_INSTANCES under the default limits', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'nested', {
      foreach: {
        items: 'range(100000)',
        as: 'i',
        do: { foreach: { items: 'range(100000)', as: 'j', do: { step: { name: 'n', noop: {} } } } },
      },
    });
    addWorkflow(store, 'forever', {
      // A body that creates no instance (a foreach over nothing): only iterations count. (The
      // schema refuses more than 1,000,000; the engine test covers 2^53 in a stored version.)
      loop: {
        while: 'true',
        maxIterations: 1_000_000,
        do: { foreach: { items: '[]', as: 'x', do: { step: { name: 'n', noop: {} } } } },
      },
    });
    controller.start();
    const t = Date.now();
    const nested = await waitFor(store, startRun(store, 'nested').metadata.name, 60_000);
    const forever = await waitFor(store, startRun(store, 'forever').metadata.name, 60_000);
    expect(Date.now() - t).toBeLessThan(60_000);
    expect(nested.status?.phase).toBe('Failed');
    expect(nested.status?.message).toMatch(/^RUN_LIMIT_STEP_INSTANCES: .*--max-step-instances/);
    expect(forever.status?.message).toMatch(/^RUN_LIMIT_ITERATIONS: .*--max-iterations/);
  }, 120_000);

  it('passes configured limits to the engine', async () => {
    const first = harness(undefined, { maxStepInstances: 50 });
    addWorkflow(first.store, 'wide', {
      foreach: { items: 'range(51)', as: 'i', do: { step: { name: 'n', noop: {} } } },
    });
    first.controller.start();
    const run = await waitFor(first.store, startRun(first.store, 'wide').metadata.name);
    expect(run.status?.message).toMatch(/^RUN_LIMIT_STEP_INSTANCES: .*\(limit 50;/);
  });

  it('quarantines a run whose engine throws on an event; the other runs go on', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'poison', {
      sequence: [
        { step: { name: 'a', shell: { script: 'sleep 0.3' } } },
        { step: { name: 'b', shell: { script: 'true' } } },
      ],
    });
    addWorkflow(store, 'good', {
      sequence: [
        { step: { name: 'a', shell: { script: 'sleep 0.6' } } },
        { step: { name: 'b', shell: { script: 'true' } } },
      ],
    });
    poison.stage = 'apply';
    controller.start();
    const bad = startRun(store, 'poison');
    const good = startRun(store, 'good');
    const b = await waitFor(store, bad.metadata.name);
    expect(b.status?.phase).toBe('Failed');
    expect(b.status?.message).toMatch(
      new RegExp(
        `^${RUN_QUARANTINED}: the controller failed while applying StepLaunched, so this run was stopped \\(other runs go on\\): injected engine failure in apply$`,
      ),
    );
    expect(b.status?.conditions?.[0]).toMatchObject({
      type: 'Failed',
      status: 'True',
      reason: 'Quarantined',
    });
    const g = await waitFor(store, good.metadata.name);
    expect(g.status?.phase).toBe('Succeeded');
    expect(store.listTasks()).toEqual([]);
  });

  it('quarantines a run whose action the controller cannot perform', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'poison', { step: { name: 'a', shell: { script: 'sleep 0.2' } } });
    addWorkflow(store, 'good', { step: { name: 'a', shell: { script: 'sleep 0.4' } } });
    poison.stage = 'action';
    controller.start();
    const bad = startRun(store, 'poison');
    const good = startRun(store, 'good');
    expect((await waitFor(store, bad.metadata.name)).status?.message).toMatch(
      /^RUN_QUARANTINED: the controller failed while performing its WaitForInputs action, so this run was stopped \(other runs go on\): /,
    );
    expect((await waitFor(store, good.metadata.name)).status?.phase).toBe('Succeeded');
    expect(store.listTasks()).toEqual([]);
  });

  it('does not throw at start when the recovery fails, and recovers on the next pass', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'good', { step: { name: 'a', shell: { script: 'true' } } });
    const run = startRun(store, 'good');
    const real = store.listTasks.bind(store);
    let calls = 0;
    store.listTasks = ((...a: Parameters<typeof real>) => {
      if (++calls === 1) throw new Error('database is locked');
      return real(...a);
    }) as typeof store.listTasks;
    expect(() => controller.start()).not.toThrow();
    expect((await waitFor(store, run.metadata.name)).status?.phase).toBe('Succeeded');
    expect(calls).toBeGreaterThan(1);
  });

  it('quarantines a run whose status cannot be taken', async () => {
    const { store, controller } = harness();
    addWorkflow(store, 'poison', { step: { name: 'a', shell: { script: 'true' } } });
    addWorkflow(store, 'good', { step: { name: 'a', shell: { script: 'true' } } });
    poison.stage = 'snapshot';
    controller.start();
    const bad = startRun(store, 'poison');
    const good = startRun(store, 'good');
    expect((await waitFor(store, bad.metadata.name)).status?.message).toMatch(
      /^RUN_QUARANTINED: the controller failed while saving its status, .*injected engine failure in snapshot$/,
    );
    expect((await waitFor(store, good.metadata.name)).status?.phase).toBe('Succeeded');
  });

  it('survives restarts with a poisoned run in the store: it is quarantined once, the others recover', async () => {
    const first = harness();
    const root = first.root;
    addWorkflow(first.store, 'poison', { step: { name: 'a', shell: { script: 'sleep 1' } } });
    addWorkflow(first.store, 'good', {
      sequence: [
        { step: { name: 'a', shell: { script: 'sleep 1; echo a >> log.txt' } } },
        { step: { name: 'b', shell: { script: 'echo b >> log.txt' } } },
      ],
    });
    first.controller.start();
    const bad = startRun(first.store, 'poison');
    const good = startRun(first.store, 'good');
    await whenRunning(first.store, bad.metadata.name, 'a');
    await whenRunning(first.store, good.metadata.name, 'a');
    first.controller.stop();
    first.store.close();

    // The restarted controller's engine fails on the poisoned run (as a bug would, every time).
    poison.stage = 'restore';
    const second = harness(root);
    second.controller.start();
    const b = await waitFor(second.store, bad.metadata.name);
    expect(b.status?.message).toMatch(
      /^RUN_QUARANTINED: the controller failed while recovering it, .*injected engine failure in restoreRun$/,
    );
    const g = await waitFor(second.store, good.metadata.name);
    expect(g.status?.phase).toBe('Succeeded');
    expect(readFileSync(join(root, 'log.txt'), 'utf8')).toBe('a\nb\n');
    second.controller.stop();
    second.store.close();

    // A third start meets a terminal run: nothing to recover, nothing fails.
    const third = harness(root);
    third.controller.start();
    const again = startRun(third.store, 'good');
    expect((await waitFor(third.store, again.metadata.name)).status?.phase).toBe('Succeeded');
    expect(third.store.get<WorkflowRun>('WorkflowRun', 'default', bad.metadata.name)?.status?.message).toBe(
      b.status?.message,
    );
  });

  it('recovers a stored unfinished run that would exhaust the heap: it fails on its limit at start-up', async () => {
    const first = harness(undefined, { maxStepInstances: 2000 });
    const root = first.root;
    addWorkflow(first.store, 'nested', {
      foreach: {
        items: 'range(100000)',
        as: 'i',
        do: {
          foreach: {
            items: 'range(100000)',
            as: 'j',
            do: { step: { name: 's', shell: { script: 'true' } } },
          },
        },
      },
    });
    // As the server left it when the heap ran out: Running, started, no instance recorded yet.
    const run = startRun(first.store, 'nested');
    first.store.updateStatus('WorkflowRun', {
      ...run,
      status: {
        phase: 'Running',
        version: 1,
        startTime: new Date().toISOString(),
        engineState: { runTs: Date.now() },
      },
    });
    first.store.close();
    const second = harness(root, { maxStepInstances: 2000 });
    second.controller.start();
    const done = await waitFor(second.store, run.metadata.name, 60_000);
    expect(done.status?.phase).toBe('Failed');
    // (A restore replays the definition before starting new work: it meets the iteration limit.)
    expect(done.status?.message).toMatch(/^RUN_LIMIT_(STEP_INSTANCES|ITERATIONS): /);
    expect(second.store.listTasks()).toEqual([]);
  }, 120_000);

  it('runs one pass at a time on a slow store; what arrives during a commit waits for the next pass', async () => {
    let hooked: HookedStore | undefined;
    const { store, controller } = harness(undefined, undefined, undefined, {
      wrap: (port) => {
        hooked = new HookedStore(port, true, { delayMs: 40 });
        return hooked;
      },
    });
    addWorkflow(store, 'slow', {
      sequence: [
        { foreach: { items: 'range(8)', as: 'i', do: { step: { name: 'n', noop: {} } } } },
        { foreach: { items: 'range(3)', as: 'j', do: { step: { name: 's', shell: { script: 'true' } } } } },
      ],
    });
    controller.start();
    const runs = [startRun(store, 'slow'), startRun(store, 'slow')];
    for (const r of runs) expect((await waitFor(store, r.metadata.name)).status?.phase).toBe('Succeeded');
    expect(hooked!.passes).toBeGreaterThan(3);
    expect(hooked!.maxInFlight).toBe(1);
  });

  it.each([
    ['an atomic store (one transaction, then run by run)', true],
    ['a store without transactions (Kubernetes)', false],
  ])('quarantines a run whose writes keep failing on %s; the other runs go on', async (_what, atomic) => {
    let hooked: HookedStore | undefined;
    // what the metrics are told: only what was committed, each once
    const told: string[] = [];
    const observer: ControllerObserver = {
      schedulingPass: () => {},
      taskPlaced: () => {},
      commitFailed: () => told.push('commitFailed'),
      runCreated: (r) => told.push(`created ${r.spec.workflow}`),
      runStarted: (r) => told.push(`started ${r.spec.workflow}`),
      runFinished: (r) => told.push(`finished ${r.spec.workflow} ${r.status?.phase}`),
      stepsEnded: (r, steps) => {
        for (const st of steps) told.push(`step ${r.workflow} ${st.id} ${st.phase}`);
      },
    };
    const { store, controller } = harness(undefined, undefined, undefined, {
      wrap: (port) => {
        hooked = new HookedStore(port, atomic, { failRun: 'unwritable-' });
        return hooked;
      },
      deps: { maxCommitFailures: 3, retryBackoff: { initialMs: 100, maxMs: 1000 }, observer },
    });
    addWorkflow(store, 'unwritable', { step: { name: 'a', shell: { script: 'sleep 0.2' } } });
    addWorkflow(store, 'good', {
      sequence: [
        { step: { name: 'a', shell: { script: 'true' } } },
        {
          foreach: {
            items: 'range(6)',
            as: 'i',
            do: { step: { name: 'b', shell: { script: 'sleep 0.05' } } },
          },
        },
      ],
    });
    controller.start();
    const bad = startRun(store, 'unwritable');
    const good = startRun(store, 'good');
    const b = await waitFor(store, bad.metadata.name);
    expect(b.status?.phase).toBe('Failed');
    expect(b.status?.message).toMatch(
      /^RUN_QUARANTINED: the controller could not save this run's state \(3 failed commits in a row\).*injected: the step instances/,
    );
    expect(b.status?.conditions?.[0]).toMatchObject({ type: 'Failed', reason: 'CommitFailed' });
    expect(hooked!.refused).toBeGreaterThanOrEqual(3);
    // three failed commits (an atomic store refuses twice per commit: together, then alone),
    // spaced by the backoff however many passes the good run made meanwhile
    const commits = hooked!.refusedAt.filter((t, i, all) => i === 0 || t - all[i - 1]! > 50);
    expect(commits).toHaveLength(3);
    expect(commits[1]! - commits[0]!).toBeGreaterThanOrEqual(95);
    expect(commits[2]! - commits[1]!).toBeGreaterThanOrEqual(195);
    expect((await waitFor(store, good.metadata.name)).status?.phase).toBe('Succeeded');
    // nothing of the quarantined run was launched: its writes never committed
    expect(store.listTasks({ run: bad.metadata.name })).toEqual([]);
    await controller.idle();
    const count = (line: string) => told.filter((t) => t === line).length;
    expect(count('created unwritable')).toBe(1);
    expect(count('created good')).toBe(1);
    // the bad run's start never committed; its quarantine (its own write) did
    expect(count('started unwritable')).toBe(0);
    expect(count('finished unwritable Failed')).toBe(1);
    expect(count('commitFailed')).toBeGreaterThanOrEqual(3);
    expect(count('started good')).toBe(1);
    expect(count('finished good Succeeded')).toBe(1);
    const goodSteps = told.filter((t) => t.startsWith('step good '));
    expect(goodSteps).toHaveLength(7);
    expect(new Set(goodSteps).size).toBe(7);
    expect(goodSteps.every((t) => t.endsWith(' Succeeded'))).toBe(true);
    expect(told.some((t) => t.startsWith('step unwritable'))).toBe(false);
  });

  it('places a step on the hosts its constraints allow, one instance per host with uniqueHost (offers of many hosts)', async () => {
    const { store, controller } = harness(undefined, undefined, undefined, {
      deps: {
        offers: new HostOffers([
          { name: 'a1', labels: { zone: 'a', disk: 'hdd' } },
          { name: 'b1', labels: { zone: 'b', disk: 'ssd' } },
          { name: 'b2', labels: { zone: 'b', disk: 'ssd' } },
          { name: 'b3', labels: { zone: 'b', disk: 'hdd' } },
        ]),
      },
    });
    addWorkflow(store, 'placed', {
      foreach: {
        items: 'range(4)',
        as: 'i',
        do: {
          step: {
            name: 's',
            shell: { script: 'sleep 0.3' },
            constraints: { nodeSelector: { zone: 'b' }, attributes: { disk: 'ssd' }, uniqueHost: true },
          },
        },
      },
    });
    controller.start();
    const run = startRun(store, 'placed');
    expect((await waitFor(store, run.metadata.name)).status?.phase).toBe('Succeeded');
    const nodes = store
      .getStepInstances('default', run.metadata.name)
      .items.map((r) => (r.data as { placement?: { node?: string } }).placement?.node);
    expect(nodes).toHaveLength(4);
    for (const n of nodes) expect(['b1', 'b2']).toContain(n);
  });
});
