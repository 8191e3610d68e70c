// Steps as Mesos tasks, end to end: our master-compatible endpoint stands in for a Mesos master,
// with a runner that really runs each task's command (the executor program) in a sandbox. The
// controller's offers are the local machine (with no room, so steps go to Mesos) plus the
// master's offers; its launcher routes each placement to the launcher of the offer's source.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/controller.ts';
import { ensureVersion } from '../../src/controller/workflows.ts';
import type { DefinitionNode, Workflow, WorkflowRun } from '../../src/crds/index.ts';
import { LocalLauncher } from '../../src/launchers/local.ts';
import { RESULT_FILE } from '../../src/launchers/mesos.ts';
import { FileFrameworkIdStore, withMesos } from '../../src/launchers/mesos-wiring.ts';
import { LocalOfferSource } from '../../src/offer-adapter/local.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { SqliteAsyncStore } from '../../src/store/sqlite-async.ts';
import type { Stored } from '../../src/store/types.ts';
import { startEndpoint } from './endpoint.ts';

const POD_EXECUTOR = fileURLToPath(new URL('../../executors/pod.ts', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(maxDataBytes?: number) {
  const root = mkdtempSync(join(tmpdir(), 'meson-mesos-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const { master, runner, url } = await startEndpoint(root, cleanups, maxDataBytes ? { maxDataBytes } : {});
  return { root, master, runner, url, ...server(root, url) };
}

/** The server side: store, controller, local + Mesos offers, routing launcher. Stop it to restart it. */
function server(root: string, url: string) {
  const store = new SqliteStore({ dir: join(root, 'db') });
  let controller: Controller | undefined;
  let n = 0;
  const local = new LocalLauncher({
    attemptDir: (k, id) => store.attemptDir(k.namespace, k.run, k.instance, k.attempt, id),
    onUpdate: (u) => controller?.onAttemptUpdate(u),
    newLaunchId: () => `${Date.now().toString(36)}${++n}`,
    cwd: root,
    pollMs: 50,
  });
  const mesos = withMesos({
    // the machine has no room: every step that needs resources lands on a Mesos offer
    primary: new LocalOfferSource({ hostname: 'server', capacity: { cpuMillis: 0, memoryBytes: 0 } }),
    primaryLauncher: local,
    master: url,
    frameworkStore: new FileFrameworkIdStore(join(root, 'mesos-framework-id')),
    onUpdate: (u) => controller?.onAttemptUpdate(u),
    poke: () => controller?.offersChanged(),
    source: { backoffInitialMs: 20, backoffMaxMs: 200 },
    launcher: { executorCommand: [process.execPath, POD_EXECUTOR] },
    pool: { declineAfterMs: 200 },
  });
  controller = new Controller({
    store: new SqliteAsyncStore(store),
    launcher: mesos.launcher,
    offers: mesos.offers,
    onQueued: (n) => mesos.demand(n),
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    controller?.stop();
    await mesos.stop();
    store.close();
  };
  cleanups.push(stop);
  mesos.start();
  controller.start();
  return { store, controller, mesos, stop };
}

function addWorkflow(store: SqliteStore, name: string, definition: DefinitionNode) {
  const wf = store.create<Workflow>('Workflow', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace: 'default' },
    spec: { definition } as Workflow['spec'],
  });
  const status = store.transaction((w) => ensureVersion(store, w, wf, Date.now()));
  expect(status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'True' });
}

function startRun(store: SqliteStore, workflow: string) {
  return store.create<WorkflowRun>('WorkflowRun', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { generateName: `${workflow}-`, namespace: 'default' },
    spec: { workflow },
  } as WorkflowRun);
}

async function waitFor(store: SqliteStore, name: string, ms = 60_000): Promise<Stored<WorkflowRun>> {
  const end = Date.now() + ms;
  for (;;) {
    const r = store.get<WorkflowRun>('WorkflowRun', 'default', name);
    if (r?.status?.phase && ['Succeeded', 'Failed', 'Stopped'].includes(r.status.phase)) return r;
    if (Date.now() > end) throw new Error(`run ${name} did not finish: ${JSON.stringify(r?.status)}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

function stepsOf(store: SqliteStore, run: string) {
  return store.getStepInstances('default', run).items.map(
    (s) =>
      s.data as {
        id: string;
        phase: string;
        outputs?: unknown;
        message?: string;
        placement?: { source: string; node?: string };
      },
  );
}

describe('steps as Mesos tasks on a master-compatible endpoint', () => {
  it('runs a workflow whose steps land as Mesos tasks, outputs flowing downstream', async () => {
    const { store, master, mesos } = await setup();
    addWorkflow(store, 'wf', {
      sequence: [
        { step: { name: 'a', shell: { script: 'echo "n=3" >> "$MESON_OUTPUTS"; echo hello from mesos' } } },
        {
          parallel: [
            { step: { name: 'b', shell: { script: 'echo "m=${steps.a.outputs.n}4" >> "$MESON_OUTPUTS"' } } },
            { step: { name: 'c', shell: { script: 'echo "k=${steps.a.outputs.n}5" >> "$MESON_OUTPUTS"' } } },
          ],
        },
        { step: { name: 'z', noop: {} } },
      ],
    });
    const run = startRun(store, 'wf');
    const done = await waitFor(store, run.metadata.name);
    const steps = stepsOf(store, run.metadata.name);
    expect(done.status?.phase, JSON.stringify([done.status, steps])).toBe('Succeeded');
    const byId = Object.fromEntries(steps.map((s) => [s.id, s]));
    expect(byId.a?.outputs).toEqual({ n: 3 });
    expect(byId.b?.outputs).toEqual({ m: 34 });
    expect(byId.c?.outputs).toEqual({ k: 35 });
    expect(byId.a?.placement).toEqual({ source: 'mesos', node: 'mesos/agent-1' });
    // three tasks went through ACCEPT (the noop needs no offer) and were acknowledged
    const launched = master.record.accepted.flatMap((a) => a.taskIds);
    expect(launched).toHaveLength(3);
    expect(master.frameworkIds()).toEqual([mesos.client.frameworkId]);
    expect(mesos.client.acknowledged.length).toBeGreaterThanOrEqual(6);
    expect(store.listTasks()).toEqual([]);
  });

  it('fails the step with the task state, reason and the step message when the task fails', async () => {
    const { store } = await setup();
    addWorkflow(store, 'bad', { step: { name: 'a', shell: { script: 'echo oops >&2; exit 4' } } });
    const run = startRun(store, 'bad');
    const done = await waitFor(store, run.metadata.name);
    expect(done.status?.phase).toBe('Failed');
    const a = stepsOf(store, run.metadata.name).find((s) => s.id === 'a');
    expect(a?.phase).toBe('Failed');
    expect(a?.message).toMatch(/TASK_FAILED REASON_COMMAND_EXECUTOR_FAILED: exit code 4/);
  });

  it('fails the step when its result is over the data bound, instead of cutting it', async () => {
    const { store } = await setup(256);
    addWorkflow(store, 'big', {
      step: { name: 'a', shell: { script: 'printf "v=%0300d\\n" 0 >> "$MESON_OUTPUTS"' } },
    });
    const run = startRun(store, 'big');
    const done = await waitFor(store, run.metadata.name);
    expect(done.status?.phase).toBe('Failed');
    const a = stepsOf(store, run.metadata.name).find((s) => s.id === 'a');
    expect(a?.message).toMatch(new RegExp(`${RESULT_FILE.replace('.', '\\.')}|task result`));
  });

  it('kills a running Mesos task when its run is stopped', async () => {
    const { store, master, mesos } = await setup();
    addWorkflow(store, 'slow', { step: { name: 'a', shell: { script: 'sleep 30' } } });
    const run = startRun(store, 'slow');
    for (let i = 0; i < 400; i++) {
      if (stepsOf(store, run.metadata.name).find((s) => s.id === 'a')?.phase === 'Running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const cur = store.get<WorkflowRun>('WorkflowRun', 'default', run.metadata.name)!;
    store.update('WorkflowRun', { ...cur, spec: { ...cur.spec, stop: true } });
    const done = await waitFor(store, run.metadata.name, 30_000);
    expect(done.status?.phase).toBe('Stopped');
    // the engine stops the step at once; the KILL reaches the master, whose runner ends the task
    const fw = mesos.client.frameworkId!;
    for (let i = 0; i < 400 && master.record.killed.length === 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(master.record.killed).toHaveLength(1);
    const taskId = master.record.killed[0]!.taskId;
    for (let i = 0; i < 400 && master.taskState(fw, taskId) !== 'TASK_KILLED'; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(master.taskState(fw, taskId)).toBe('TASK_KILLED');
  });

  it('adopts a running Mesos task after a server restart and takes its result', async () => {
    const first = await setup();
    addWorkflow(first.store, 'slowish', {
      step: { name: 'a', shell: { script: 'sleep 1.5; echo "n=7" >> "$MESON_OUTPUTS"' } },
    });
    const run = startRun(first.store, 'slowish');
    for (let i = 0; i < 400; i++) {
      if (stepsOf(first.store, run.metadata.name).find((s) => s.id === 'a')?.phase === 'Running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const fw = first.mesos.client.frameworkId;
    await first.stop(); // the task keeps running on the agent; its end is kept for the framework
    const second = server(first.root, first.url);
    const done = await waitFor(second.store, run.metadata.name);
    const a = stepsOf(second.store, run.metadata.name).find((s) => s.id === 'a');
    expect(done.status?.phase, JSON.stringify(a)).toBe('Succeeded');
    expect(a?.outputs).toEqual({ n: 7 });
    expect(second.mesos.client.frameworkId).toBe(fw);
    expect(first.master.record.accepted.flatMap((x) => x.taskIds)).toHaveLength(1);
  });
});
