import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { groupAlive } from '../../executors/process.ts';
import { type ExecutorStatus, readStatus } from '../../executors/protocol.ts';
import type { DefinitionNode, Workflow, WorkflowRun } from '../crds/index.ts';
import { LocalLauncher } from '../launchers/local.ts';
import { LocalOfferSource } from '../offer-adapter/local.ts';
import { SqliteStore } from '../store/sqlite.ts';
import type { Stored } from '../store/types.ts';
import { Controller, type ControllerDeps } from './controller.ts';
import { ensureVersion } from './workflows.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function harness(dir?: string, stepLimits?: ControllerDeps['stepLimits']) {
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
  controller = new Controller({
    store,
    ...(stepLimits ? { stepLimits } : {}),
    launcher,
    offers: new LocalOfferSource({
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
    const { store, controller } = harness(undefined, { outputKeys: 3 });
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
