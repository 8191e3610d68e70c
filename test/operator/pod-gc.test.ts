// `mesonctl operator --pod-gc` on the real control plane: a finished run's step Pods are deleted
// as the policy says, and a new leader catches up on runs that finished before it led.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('pod-gc');
const operators = useOperatorProcesses();
let kubeconfig: string;

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
});

async function operator(identity: string, args: string[]) {
  const o = operators.track(
    await spawnOperator(identity, kubeconfig, [
      `--namespace=${ns.name}`,
      `--state-namespace=${OPERATOR_NAMESPACE}`,
      '--pod-annotation=kwok.meson.dev/duration=1s',
      ...args,
    ]),
  );
  await reconciling(o);
  return o;
}

async function apply(yaml: string): Promise<void> {
  const r = await kubectlAsync(['apply', '-f', '-'], yaml);
  if (r.status !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

const WORKFLOW = (name: string) => `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: ${name}, namespace: ${ns.name} }
spec:
  definition:
    sequence:
      - step: { name: a, container: { image: busybox, command: [sh, -c, "echo a"] } }
      - step: { name: b, container: { image: busybox, command: [sh, -c, "echo b"] } }
`;

async function startRun(name: string, workflow: string): Promise<string> {
  const custom = ns.kc.makeApiClient(CustomObjectsApi);
  await waitFor(`workflow ${workflow} versioned`, async () => {
    const wf = (await custom.getNamespacedCustomObject({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflows',
      name: workflow,
    })) as { status?: { latestVersion?: number } };
    return wf.status?.latestVersion ? true : undefined;
  });
  const created = (await custom.createNamespacedCustomObject({
    group: 'meson.dev',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'workflowruns',
    body: { apiVersion: 'meson.dev/v1alpha1', kind: 'WorkflowRun', metadata: { name }, spec: { workflow } },
  })) as { metadata: { uid: string } };
  return created.metadata.uid;
}

async function runPhase(name: string): Promise<string | undefined> {
  const r = (await ns.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: 'meson.dev',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'workflowruns',
    name,
  })) as { status?: { phase?: string } };
  return r.status?.phase;
}

const FINAL = ['Succeeded', 'Failed', 'Stopped'];

async function finished(name: string): Promise<string> {
  return waitFor(
    `run ${name} to finish`,
    async () => {
      const phase = await runPhase(name);
      return phase && FINAL.includes(phase) ? phase : undefined;
    },
    { timeoutMs: 90_000 },
  );
}

const podsOf = async (uid: string) =>
  (
    await ns.kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: ns.name, labelSelector: `meson.dev/run-uid=${uid}` })
  ).items;

describe('mesonctl operator --pod-gc', () => {
  it('OnRunSuccess keeps a failed run’s Pods; OnRunCompletion under the next leader deletes them, and a succeeded run’s', async () => {
    await apply(WORKFLOW('twice'));
    // a step Pod of a namespace this operator does not serve (another operator's): the launcher
    // sees it, and pod GC must pass over it rather than fail the reconciler's start
    const other = `${ns.name}-other`;
    const core = ns.kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: other, labels: { 'meson.dev/test': 'true' } } } });
    await core.createNamespacedPod({
      namespace: other,
      body: {
        metadata: {
          name: 'foreign-step',
          labels: { 'app.kubernetes.io/managed-by': 'meson' },
          annotations: { 'meson.dev/run': 'foreign-run' },
        },
        spec: { nodeName: 'no-such-node', containers: [{ name: 'c', image: 'busybox' }] },
      },
    });
    onTestFinished(() =>
      core.deleteNamespace({ name: other }).then(
        () => undefined,
        () => undefined,
      ),
    );
    const first = await operator('gc-success', [
      '--pod-gc=OnRunSuccess',
      '--pod-annotation=kwok.meson.dev/exit-code=1',
    ]);
    const failedUid = await startRun('fails', 'twice');
    expect(await finished('fails')).toBe('Failed');
    // its Pod stays (logs to read), under a policy that only collects successes
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await podsOf(failedUid)).length).toBeGreaterThan(0);
    first.child.kill('SIGKILL');
    await first.exited;

    await operator('gc-completion', ['--pod-gc=OnRunCompletion']);
    // the new leader's first sweep collects the run that failed before it led
    await waitFor(
      'the failed run’s Pods to be deleted',
      async () => ((await podsOf(failedUid)).length === 0 ? true : undefined),
      {
        timeoutMs: 60_000,
      },
    );
    const okUid = await startRun('succeeds', 'twice');
    expect(await finished('succeeds')).toBe('Succeeded');
    await waitFor(
      'the succeeded run’s Pods to be deleted',
      async () => ((await podsOf(okUid)).length === 0 ? true : undefined),
      {
        timeoutMs: 60_000,
      },
    );
  }, 300_000);

  it('OnPodCompletion deletes each step’s Pod while the run goes on, and never runs a step twice', async () => {
    await apply(`apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: four, namespace: ${ns.name} }
spec:
  definition:
    sequence:
${['a', 'b', 'c', 'd'].map((n) => `      - step: { name: ${n}, container: { image: busybox, command: [sh, -c, "echo ${n}"] } }`).join('\n')}
`);
    await operator('gc-per-pod', ['--pod-gc=OnPodCompletion']);
    const uid = await startRun('per-pod', 'four');
    const seen = new Set<string>();
    let deletedWhileRunning = 0;
    await waitFor(
      'the run to finish',
      async () => {
        const names = new Set((await podsOf(uid)).map((p) => p.metadata!.name!));
        const p = await runPhase('per-pod');
        if (p === 'Running')
          deletedWhileRunning = Math.max(deletedWhileRunning, [...seen].filter((n) => !names.has(n)).length);
        for (const n of names) seen.add(n);
        return p && FINAL.includes(p) ? p : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 150 },
    );
    expect(await runPhase('per-pod')).toBe('Succeeded');
    // a finished step's Pod went while later steps still ran
    expect(deletedWhileRunning).toBeGreaterThan(0);
    await waitFor(
      'every step Pod to be deleted',
      async () => ((await podsOf(uid)).length === 0 ? true : undefined),
      {
        timeoutMs: 60_000,
      },
    );
    // one Pod per step (each lives over a second, polled every 150 ms): no step was run again
    // once its Pod was gone
    expect(seen.size).toBe(4);
  }, 300_000);
});
