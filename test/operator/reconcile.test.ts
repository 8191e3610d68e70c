// `mesonctl operator` reconciling runs on the real control plane, with the operator's own
// credentials (deploy/rbac): Workflows and WorkflowRuns applied with kubectl become step Pods
// bound to KWOK nodes; results, failures, fail-over after kill -9 and leader-only launching.
// KWOK plays the kubelets: every step Pod completes after kwok.meson.dev/duration, with the
// exit code of kwok.meson.dev/exit-code (test/cluster/kwok-stages.yaml); the operator puts
// those annotations on every step Pod (--pod-annotation).
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  INVALID_WORKFLOW,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  readyz,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('reconcile');
const nodes = inject('clusterNodes');
const core = () => ns.kc.makeApiClient(CoreV1Api);
const custom = () => ns.kc.makeApiClient(CustomObjectsApi);
let kubeconfig: string;
const operators = useOperatorProcesses();

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
});

/** An operator for the test's namespace whose step Pods run `duration` on KWOK. */
async function operator(identity: string, opts: { duration?: string; annotations?: string[] } = {}) {
  const o = await spawnOperator(identity, kubeconfig, [
    `--namespace=${ns.name}`,
    `--state-namespace=${OPERATOR_NAMESPACE}`,
    `--pod-annotation=kwok.meson.dev/duration=${opts.duration ?? '1s'}`,
    `--pod-annotation=test.meson.dev/operator=${identity}`,
    ...(opts.annotations ?? []).map((a) => `--pod-annotation=${a}`),
  ]);
  return operators.track(o);
}

const leading = (o: OperatorProcess) => reconciling(o, 20_000);

async function apply(yaml: string): Promise<void> {
  const r = await kubectlAsync(['apply', '-f', '-'], yaml);
  if (r.status !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

const FANOUT = (name: string, width: number) => `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: ${name}, namespace: ${ns.name} }
spec:
  definition:
    sequence:
      - step: { name: prepare, container: { image: busybox, command: [sh, -c, "echo prepare"] } }
      - foreach:
          items: "range(${width})"
          as: i
          do:
            step: { name: work, container: { image: busybox, command: [sh, -c, "echo \${i}"] } }
      - step: { name: report, container: { image: busybox, command: [sh, -c, "echo done"] } }
`;

const RUN = (name: string, workflow: string, extra = '') => `apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: ${name}, namespace: ${ns.name} }
spec: { workflow: ${workflow}${extra} }
`;

interface RunObject {
  status?: {
    phase?: string;
    message?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    summary?: Record<string, number>;
  };
}

async function getRun(name: string): Promise<RunObject> {
  return (await custom().getNamespacedCustomObject({
    group: 'meson.dev',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'workflowruns',
    name,
  })) as RunObject;
}

async function finished(name: string, timeoutMs = 60_000): Promise<RunObject> {
  let last: RunObject | undefined;
  return waitFor(
    `run ${name} to finish`,
    async () => {
      last = await getRun(name);
      return ['Succeeded', 'Failed', 'Stopped'].includes(last.status?.phase ?? '') ? last : undefined;
    },
    { timeoutMs, intervalMs: 100, describe: () => JSON.stringify(last?.status) },
  );
}

/** The Kubernetes Events recorded on a run. */
async function runEvents(name: string): Promise<{ reason?: string; type?: string; message?: string }[]> {
  return (
    await core().listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name}` })
  ).items;
}

async function pods(): Promise<V1Pod[]> {
  return (await core().listNamespacedPod({ namespace: ns.name })).items;
}

/** Pods per step attempt (instance id and attempt from the Pod's annotations). */
function podsPerAttempt(all: V1Pod[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of all) {
    const a = p.metadata?.annotations ?? {};
    const k = `${a['meson.dev/run']}/${a['meson.dev/step-instance']}#${a['meson.dev/attempt']}`;
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

describe('mesonctl operator reconciles runs', () => {
  it('runs a sequence and a foreach of 20 container steps as Pods bound to KWOK nodes; kubectl wait sees Succeeded', async () => {
    const o = await operator('solo');
    await leading(o);
    await apply(FANOUT('fanout', 20));
    const t0 = Date.now();
    await apply(RUN('fanout-1', 'fanout'));
    const wait = await kubectlAsync([
      'wait',
      '--for=condition=Succeeded',
      `--namespace=${ns.name}`,
      'workflowrun/fanout-1',
      '--timeout=90s',
    ]);
    const took = Date.now() - t0;
    expect(wait.status, `${wait.stderr}\n${o.stdout().slice(-3000)}`).toBe(0);
    const run = await getRun('fanout-1');
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.conditions?.find((c) => c.type === 'Succeeded')?.status).toBe('True');
    const all = await pods();
    expect(all).toHaveLength(22);
    for (const p of all) {
      expect(nodes).toContain(p.spec?.nodeName);
      expect(p.status?.phase).toBe('Succeeded');
      expect(p.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'WorkflowRun', name: 'fanout-1' });
    }
    expect([...podsPerAttempt(all).values()].every((n) => n === 1)).toBe(true);
    // kubectl get shows the phase (the CRD's printer columns)
    const get = await kubectlAsync(['get', 'mwfr', 'fanout-1', `--namespace=${ns.name}`]);
    expect(get.stdout).toMatch(/fanout-1\s+fanout\s+1\s+Succeeded\s+22\s+22\s/);
    // the Workflow was versioned and records its last run
    const wf = (await custom().getNamespacedCustomObject({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflows',
      name: 'fanout',
    })) as { status?: { latestVersion?: number; lastRun?: string; lastRunPhase?: string } };
    await waitFor('lastRun on the Workflow', async () => {
      const w = (await custom().getNamespacedCustomObject({
        group: 'meson.dev',
        version: 'v1alpha1',
        namespace: ns.name,
        plural: 'workflows',
        name: 'fanout',
      })) as typeof wf;
      return w.status?.lastRunPhase === 'Succeeded' ? true : undefined;
    });
    expect(wf.status?.latestVersion).toBe(1);
    expect(await runEvents('fanout-1')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ reason: 'RunStarted', type: 'Normal' }),
        expect.objectContaining({ reason: 'RunSucceeded', type: 'Normal' }),
      ]),
    );
    process.stderr.write(
      `operator: 22-step run (sequence + foreach of 20, 1 s Pods on KWOK) in ${took} ms\n`,
    );
  });

  it('fails the run of a step whose Pod exits non-zero, with the exit code and message', async () => {
    const o = await operator('solo', {
      annotations: ['kwok.meson.dev/exit-code=3', 'kwok.meson.dev/termination-message=disk full'],
      duration: '300ms',
    });
    await leading(o);
    await apply(`apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: breaks, namespace: ${ns.name} }
spec:
  definition:
    step: { name: load, container: { image: busybox, command: [sh, -c, "exit 3"] } }
`);
    await apply(RUN('breaks-1', 'breaks'));
    const run = await finished('breaks-1');
    expect(run.status?.phase).toBe('Failed');
    expect(run.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True' });
    const wait = await kubectlAsync([
      'wait',
      '--for=condition=Failed',
      `--namespace=${ns.name}`,
      'workflowrun/breaks-1',
      '--timeout=10s',
    ]);
    expect(wait.status, wait.stderr).toBe(0);
    const describe = await kubectlAsync(['get', 'mwfr', 'breaks-1', `--namespace=${ns.name}`, '-o', 'yaml']);
    expect(describe.stdout).toContain('exit code 3');
    expect(describe.stdout).toContain('disk full');
    const failedEvent = await waitFor('a RunFailed Event', async () =>
      (await runEvents('breaks-1')).find((e) => e.reason === 'RunFailed'),
    );
    expect(failedEvent.type).toBe('Warning');
    expect(failedEvent.message).toContain('exit code 3');
  });

  it('after kill -9 of the leader mid-run, the next leader adopts its Pods: the run completes, no step attempt gets two Pods', async () => {
    const a = await operator('first', { duration: '2s' });
    await leading(a);
    await apply(FANOUT('failover', 20));
    await apply(RUN('failover-1', 'failover'));
    // mid-run: the foreach's Pods exist, the run is not finished
    await waitFor(
      'the foreach to be launched',
      async () => ((await pods()).length >= 10 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    a.child.kill('SIGKILL');
    await a.exited;
    expect((await getRun('failover-1')).status?.phase).toBe('Running');
    const b = await operator('second', { duration: '2s' });
    await leading(b);
    const run = await finished('failover-1', 90_000);
    expect(run.status?.phase, b.stdout().slice(-3000)).toBe('Succeeded');
    const all = await pods();
    const per = podsPerAttempt(all);
    expect(per.size).toBe(22);
    expect([...per.entries()].filter(([, n]) => n > 1)).toEqual([]);
    // both processes made Pods: the second adopted the first's instead of starting them again
    const makers = new Set(all.map((p) => p.metadata?.annotations?.['test.meson.dev/operator']));
    expect(makers).toEqual(new Set(['first', 'second']));
  });

  it('with two operator processes only the leader creates Pods', async () => {
    const a = await operator('alpha');
    await leading(a);
    const b = await operator('beta');
    await waitFor('beta to stand by', async () =>
      (await readyz(b)).body.leaderElection === 'standing by (leader: alpha)' ? true : undefined,
    );
    expect((await readyz(b)).body.informers).toBe('not started: standing by');
    await apply(FANOUT('pair', 5));
    await apply(RUN('pair-1', 'pair'));
    await apply(RUN('pair-2', 'pair'));
    for (const name of ['pair-1', 'pair-2']) expect((await finished(name)).status?.phase).toBe('Succeeded');
    const all = await pods();
    expect(all).toHaveLength(14);
    expect(new Set(all.map((p) => p.metadata?.annotations?.['test.meson.dev/operator']))).toEqual(
      new Set(['alpha']),
    );
    expect((await readyz(b)).body.informers).toBe('not started: standing by');
  });

  it('gives invalid objects a Failed status or condition with the field path, and keeps running', async () => {
    const o = await operator('solo', { duration: '300ms' });
    await leading(o);
    await apply(INVALID_WORKFLOW(ns.name));
    await apply(FANOUT('fine', 2));
    await apply(RUN('nowhere-1', 'does-not-exist'));
    await apply(RUN('broken-1', 'broken'));
    await apply(RUN('badparam-1', 'fine', ', parameters: [{ name: whom, value: x }]'));
    const nowhere = await finished('nowhere-1');
    expect(nowhere.status?.phase).toBe('Failed');
    expect(nowhere.status?.message).toMatch(/^spec\.workflow: Workflow "does-not-exist" not found/);
    const broken = await finished('broken-1');
    expect(broken.status?.phase).toBe('Failed');
    const badparam = await finished('badparam-1');
    expect(badparam.status?.phase).toBe('Failed');
    expect(badparam.status?.message).toMatch(/^spec\.parameters\.whom: unknown parameter "whom"/);
    const wf = (await custom().getNamespacedCustomObject({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflows',
      name: 'broken',
    })) as { status?: { conditions?: { type: string; status: string; message?: string }[] } };
    expect(wf.status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'False' });
    expect(wf.status?.conditions?.[0]?.message).toContain('spec.parameters[0].expression: unknown name');
    // still reconciling: a good run after the bad ones succeeds
    await apply(RUN('fine-1', 'fine'));
    expect((await finished('fine-1')).status?.phase).toBe('Succeeded');
    expect(o.child.exitCode).toBeNull();
  });
});
