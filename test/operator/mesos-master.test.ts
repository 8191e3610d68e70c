// `mesonctl operator --mesos-master URL` on the real control plane, with the operator's own
// credentials (deploy/rbac): node capacity (KWOK nodes) and a Mesos master's offers are one
// scheduler pass; a step on `mesos/<agent>` is a Mesos task, a step on a node is a Pod. Our
// master-compatible endpoint (test/mesos/endpoint.ts) stands in for the master, and its
// LocalTaskRunner really runs each task's command: the executor program (executors/pod.ts), whose
// result comes back in the terminal status's data. The operator reaches the endpoint through a TCP
// relay in this process, so a test can cut its connection the way a network would.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LaunchedTask, MesosMaster } from '../../src/mesos-compat/master.ts';
import { host } from '../../src/mesos-compat/test-helpers.ts';
import { FRAMEWORK_ID_STATE_KEY } from '../../src/operator/mesos-master.ts';
import { KubernetesStore, stateObjectName } from '../../src/store/kubernetes.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import { startEndpoint } from '../mesos/endpoint.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  readyz,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const POD_EXECUTOR = fileURLToPath(new URL('../../executors/pod.ts', import.meta.url));
const GiB = 1024 ** 3;
const ns = useNamespace('mesos');
const operators = useOperatorProcesses();
const cleanups: (() => Promise<void> | void)[] = [];
let kubeconfig: string;

const core = () => ns.kc.makeApiClient(CoreV1Api);
const FRAMEWORK_CM = stateObjectName(FRAMEWORK_ID_STATE_KEY);

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
});
// the framework id of another test's endpoint would be taken as is: every test starts without one
beforeEach(() => forgetFrameworkId());
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await forgetFrameworkId();
});

async function forgetFrameworkId(): Promise<void> {
  await core()
    .deleteNamespacedConfigMap({ name: FRAMEWORK_CM, namespace: OPERATOR_NAMESPACE })
    .catch(() => {});
}

/**
 * A TCP relay to `target`. `cut()` destroys its connections at once, both ways, as a network
 * failure would. `loseAnswerTo(type)` lets the next call of that type reach the master and
 * destroys its connection before the answer comes back (the master acted; the caller cannot tell).
 */
async function relay(
  target: URL,
): Promise<{ url: string; cut(): number; loseAnswerTo(type: string): void; lost: string[] }> {
  const sockets = new Set<Socket>();
  let losing: string | undefined;
  const lost: string[] = [];
  const server: Server = createServer((down) => {
    const up = connect(Number(target.port), target.hostname);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        down.destroy();
        up.destroy();
      });
    }
    let doomed = false;
    down.on('data', (chunk: Buffer) => {
      if (losing && chunk.includes(`"type":"${losing}"`)) {
        lost.push(losing);
        losing = undefined;
        doomed = true;
      }
      up.write(chunk);
    });
    up.on('data', (chunk: Buffer) => {
      if (doomed) {
        down.destroy();
        up.destroy();
        return;
      }
      down.write(chunk);
    });
    down.on('end', () => up.end());
    up.on('end', () => down.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    loseAnswerTo(type) {
      losing = type;
    },
    lost,
  };
}

interface Setup {
  /** A file a's script waits for (workflow(name, gate)); open() creates it. */
  gate: { path: string; open(): void };
  master: MesosMaster;
  launched: LaunchedTask[];
  subscriptions: { frameworkId: string; resubscribed: boolean }[];
  cut(): number;
  loseAnswerTo(type: string): void;
  lost: string[];
  operator(identity: string): Promise<OperatorProcess>;
}

async function setup(): Promise<Setup> {
  const root = mkdtempSync(join(tmpdir(), 'meson-operator-mesos-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const endpoint = await startEndpoint(root, cleanups, {
    hosts: [host('agent-1', 4000, 8 * GiB, { rack: 'r1' })],
  });
  const r = await relay(new URL(endpoint.url));
  const gate = join(root, 'gate');
  return {
    gate: { path: gate, open: () => writeFileSync(gate, '') },
    master: endpoint.master,
    launched: endpoint.launched,
    subscriptions: endpoint.subscriptions,
    cut: r.cut,
    loseAnswerTo: r.loseAnswerTo,
    lost: r.lost,
    operator: async (identity) => {
      const o = await spawnOperator(
        identity,
        kubeconfig,
        [
          `--namespace=${ns.name}`,
          `--state-namespace=${OPERATOR_NAMESPACE}`,
          '--pod-annotation=kwok.meson.dev/duration=500ms',
          `--mesos-master=${r.url}`,
          `--mesos-executor=${JSON.stringify([process.execPath, POD_EXECUTOR])}`,
          '--mesos-framework-name=meson-operator-test',
          '--mesos-failover-timeout=120',
          '--mesos-option=declineAfterMs=200',
        ],
        { MESON_LOG_LEVEL: 'info' },
      );
      operators.track(o);
      return o;
    },
  };
}

async function apply(yaml: string): Promise<void> {
  const r = await kubectlAsync(['apply', '-f', '-'], yaml);
  if (r.status !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

/**
 * a (Mesos) writes n; b (Mesos, rack r1) reads it and writes m; k runs on a KWOK node (a Pod) in
 * parallel with b; z is a noop. With a `gate` file, a runs until the test creates it (at most
 * 2 minutes), so a test can act while it runs, however slow the machine.
 */
function workflow(name: string, gate?: string): string {
  const wait = gate ? `for i in $(seq 1200); do [ -e ${gate} ] && break; sleep 0.1; done; ` : '';
  return `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: ${name}, namespace: ${ns.name} }
spec:
  definition:
    sequence:
      - step:
          name: a
          shell: { script: '${wait}echo "n=3" >> "$MESON_OUTPUTS"' }
          constraints: { attributes: { meson.dev/source: mesos } }
      - parallel:
          - step:
              name: b
              shell: { script: 'echo "m=\${steps.a.outputs.n}4" >> "$MESON_OUTPUTS"' }
              constraints: { attributes: { meson.dev/source: mesos, rack: r1 } }
          - step:
              name: k
              container: { image: busybox, command: [sh, -c, "echo on a node"] }
              constraints: { attributes: { meson.dev/source: kubernetes } }
      - step: { name: z, noop: {} }
`;
}

async function startRun(workflowName: string, run: string): Promise<void> {
  await apply(`apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: ${run}, namespace: ${ns.name} }
spec: { workflow: ${workflowName} }
`);
}

interface RunObject {
  status?: { phase?: string; message?: string };
}

async function finished(run: string, describe: () => string): Promise<RunObject> {
  let last: RunObject | undefined;
  return waitFor(
    `run ${run} to finish`,
    async () => {
      last = (await ns.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
        group: 'meson.dev',
        version: 'v1alpha1',
        namespace: ns.name,
        plural: 'workflowruns',
        name: run,
      })) as RunObject;
      return ['Succeeded', 'Failed', 'Stopped'].includes(last.status?.phase ?? '') ? last : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 200, describe: () => `${JSON.stringify(last?.status)}\n${describe()}` },
  );
}

type StepData = { phase?: string; outputs?: object; placement?: { source?: string; node?: string } };

/** The run's step instances by step name, read from the store's objects. */
async function steps(run: string): Promise<Record<string, StepData>> {
  const store = await KubernetesStore.open({
    kubeConfig: ns.kc,
    namespaces: [ns.name],
    stateNamespace: ns.name,
  });
  try {
    const out: Record<string, StepData> = {};
    for (const s of store.getStepInstances(ns.name, run).items)
      out[String((s.data as { name?: string }).name ?? s.id)] = { phase: s.phase, ...s.data };
    return out;
  } finally {
    await store.close();
  }
}

/** Tasks the endpoint ran per step (its `meson.dev/task` label: namespace/run/instance). */
function tasksPerStep(launched: LaunchedTask[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of launched) {
    const label = t.task.labels?.labels?.find((l) => l.key === 'meson.dev/task')?.value ?? '?';
    out[label] = (out[label] ?? 0) + 1;
  }
  return out;
}

async function savedFrameworkId(): Promise<string | undefined> {
  const cm = await core()
    .readNamespacedConfigMap({ name: FRAMEWORK_CM, namespace: OPERATOR_NAMESPACE })
    .catch(() => undefined);
  const raw = cm?.data?.value;
  return raw ? (JSON.parse(raw) as { id?: string }).id : undefined;
}

function taskState(m: MesosMaster, launched: LaunchedTask[], step: string): string | undefined {
  const t = launched.find((x) =>
    x.task.labels?.labels?.some((l) => l.key === 'meson.dev/task' && !!l.value?.endsWith(`/${step}`)),
  );
  return t && m.taskState(t.frameworkId, t.task.task_id.value);
}

function taskRunning(m: MesosMaster, launched: LaunchedTask[], step: string): true | undefined {
  return taskState(m, launched, step) === 'TASK_RUNNING' ? true : undefined;
}

function taskEnded(m: MesosMaster, launched: LaunchedTask[], step: string): true | undefined {
  return taskState(m, launched, step) === 'TASK_FINISHED' ? true : undefined;
}

describe('mesonctl operator --mesos-master', () => {
  it('runs a Workflow applied with kubectl on Mesos offers and a KWOK node in one run, outputs flowing downstream', async () => {
    const { master, launched, operator } = await setup();
    const o = await operator('mesos-solo');
    await reconciling(o);
    const fw = await waitFor('the subscription', async () => master.frameworkIds()[0]);
    await waitFor('the framework id in the state ConfigMap', async () =>
      (await savedFrameworkId()) === fw ? true : undefined,
    );
    await apply(workflow('mixed'));
    await startRun('mixed', 'mixed-1');
    const done = await finished('mixed-1', () => o.stdout().slice(-3000));
    const st = await steps('mixed-1');
    expect(done.status?.phase, JSON.stringify(st)).toBe('Succeeded');
    expect(st.a).toMatchObject({ outputs: { n: 3 }, placement: { source: 'mesos', node: 'mesos/agent-1' } });
    expect(st.b).toMatchObject({ outputs: { m: 34 }, placement: { source: 'mesos', node: 'mesos/agent-1' } });
    expect(st.k?.placement?.source).toBe('kubernetes');
    expect(st.k?.placement?.node).toMatch(/^kwok-node-/);
    // the Mesos steps are tasks, once each; the node step is a Pod on its node
    expect(tasksPerStep(launched)).toEqual({ [`${ns.name}/mixed-1/a`]: 1, [`${ns.name}/mixed-1/b`]: 1 });
    // no placement lost its offers to a DECLINE while its launch record was being committed
    expect(o.stdout()).not.toContain('were gone before the launch');
    const pods = (await core().listNamespacedPod({ namespace: ns.name })).items;
    expect(pods.map((p) => p.metadata?.annotations?.['meson.dev/step-instance'])).toEqual(['k']);
    expect(pods[0]?.spec?.nodeName).toBe(st.k?.placement?.node);
  });

  it('resubscribes after its connection is cut mid-run, without a lost or duplicated task', async () => {
    const { master, launched, subscriptions, operator, cut, gate } = await setup();
    const o = await operator('mesos-cut');
    await reconciling(o);
    const fw = await waitFor('the subscription', async () => master.frameworkIds()[0]);
    await apply(workflow('cut', gate.path));
    await startRun('cut', 'cut-1');
    await waitFor('a to run on Mesos', async () => taskRunning(master, launched, 'a'), {
      timeoutMs: 60_000,
      describe: () => o.stdout().slice(-3000),
    });
    expect(cut()).toBeGreaterThan(0);
    // a new stream, as the same framework (it may come back before a poll sees it disconnected)
    await waitFor(
      'the same framework to resubscribe',
      async () => (subscriptions.length === 2 && master.isConnected(fw) ? true : undefined),
      { describe: () => o.stdout().slice(-3000) },
    );
    expect(subscriptions).toEqual([
      { frameworkId: fw, resubscribed: false },
      { frameworkId: fw, resubscribed: true },
    ]);
    expect(o.stdout()).toContain('mesos subscription lost');
    gate.open();
    const done = await finished('cut-1', () => o.stdout().slice(-3000));
    const st = await steps('cut-1');
    expect(done.status?.phase, JSON.stringify(st)).toBe('Succeeded');
    expect(st.a?.outputs).toEqual({ n: 3 });
    expect(st.b?.outputs).toEqual({ m: 34 });
    expect(
      tasksPerStep(launched),
      JSON.stringify({ tasks: launched.map((t) => t.task.task_id.value), record: master.record }) +
        o
          .stdout()
          .split('\n')
          .filter((l) => /mesos|attempt|lost|launch/i.test(l))
          .join('\n'),
    ).toEqual({ [`${ns.name}/cut-1/a`]: 1, [`${ns.name}/cut-1/b`]: 1 });
    expect(master.frameworkIds()).toEqual([fw]);
    expect(master.record.removedFrameworks).toEqual([]);
  });

  it('launches a step once when its ACCEPT reached the master but the answer was lost', async () => {
    const { master, launched, operator, loseAnswerTo, lost } = await setup();
    const o = await operator('mesos-lost-answer');
    await reconciling(o);
    await waitFor('the subscription', async () => master.frameworkIds()[0]);
    loseAnswerTo('ACCEPT');
    await apply(workflow('unanswered'));
    await startRun('unanswered', 'unanswered-1');
    const done = await finished('unanswered-1', () => o.stdout().slice(-3000));
    const st = await steps('unanswered-1');
    expect(lost).toEqual(['ACCEPT']);
    expect(done.status?.phase, JSON.stringify(st)).toBe('Succeeded');
    expect(st.a?.outputs).toEqual({ n: 3 });
    expect(st.b?.outputs).toEqual({ m: 34 });
    expect(tasksPerStep(launched)).toEqual({
      [`${ns.name}/unanswered-1/a`]: 1,
      [`${ns.name}/unanswered-1/b`]: 1,
    });
    // the operator could not tell whether the master launched a: it asked, rather than launch again
    expect(o.stdout()).toContain('unknown: reconciling');
  });

  it('a new operator process subscribes with the stored framework id, keeps the task and takes the result it missed', async () => {
    const { master, launched, subscriptions, operator, gate } = await setup();
    const first = await operator('mesos-first');
    await reconciling(first);
    const fw = await waitFor('the subscription', async () => master.frameworkIds()[0]);
    await waitFor('the framework id in the state ConfigMap', async () =>
      (await savedFrameworkId()) === fw ? true : undefined,
    );
    await apply(workflow('restart', gate.path));
    await startRun('restart', 'restart-1');
    await waitFor('a to run on Mesos', async () => taskRunning(master, launched, 'a'), {
      timeoutMs: 60_000,
      describe: () => first.stdout().slice(-3000),
    });
    // a standby does not subscribe (it would take the framework from the leader)
    const second = await operator('mesos-second');
    await waitFor('the standby to see the leader', async () =>
      (await readyz(second)).body.leaderElection.startsWith('standing by') ? true : undefined,
    );
    await sleep(1500);
    expect(subscriptions).toEqual([{ frameworkId: fw, resubscribed: false }]);
    expect(second.stdout()).not.toContain('subscribing to the Mesos master');
    // killed while its task runs
    expect(taskRunning(master, launched, 'a')).toBe(true);
    first.child.kill('SIGKILL');
    await first.exited;
    // a finishes while no leader runs (the Lease outlives its holder by 3 s): its result waits
    // at the master, unacknowledged, for whoever subscribes as this framework
    gate.open();
    await waitFor('a to finish on the agent', async () => taskEnded(master, launched, 'a'));
    expect(master.isConnected(fw)).toBe(false);
    await reconciling(second);
    await waitFor('the new leader to resubscribe as the same framework', async () =>
      subscriptions.length === 2 ? true : undefined,
    );
    expect(subscriptions[1]).toEqual({ frameworkId: fw, resubscribed: true });
    const done = await finished('restart-1', () => second.stdout().slice(-3000));
    const st = await steps('restart-1');
    expect(done.status?.phase, JSON.stringify(st)).toBe('Succeeded');
    expect(st.a?.outputs).toEqual({ n: 3 });
    expect(st.b?.outputs).toEqual({ m: 34 });
    // a was not launched again: the new leader adopted the task the old one launched
    expect(tasksPerStep(launched)).toEqual({ [`${ns.name}/restart-1/a`]: 1, [`${ns.name}/restart-1/b`]: 1 });
    expect(master.frameworkIds()).toEqual([fw]);
    expect(master.isConnected(fw)).toBe(true);
    expect(master.record.removedFrameworks).toEqual([]);
    expect(await savedFrameworkId()).toBe(fw);
  });
});
