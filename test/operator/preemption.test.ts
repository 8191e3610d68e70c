// Preemption by tier in operator mode, on the real control plane: one KWOK node of this test
// (tainted, so other tests' steps never land on it) is filled by a low-tier run's step; a
// high-tier run of a namespace the admin let preempt (--preemption) arrives; the victim's Pod is
// deleted, its step records why (and its run gets a StepPreempted Event) and gets a new attempt,
// the high-tier step's Pod is bound to the node, and once that run is stopped the victim's new attempt takes the node back.
import { randomBytes } from 'node:crypto';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../cluster/health.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { createKwokNodes, isNodeReady } from '../cluster/nodes.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  installCrdsServed,
  mesonctl,
  OPERATOR_NAMESPACE,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('preempt');
const core = () => ns.kc.makeApiClient(CoreV1Api);
const custom = () => ns.kc.makeApiClient(CustomObjectsApi);
const operators = useOperatorProcesses();
const TOKEN = 'preempt-test-token';
const pool = `preempt-${randomBytes(3).toString('hex')}`;
const TAINT = 'meson.dev/test-preemption';
let node = '';
let kubeconfig = '';

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
  [node] = (await createKwokNodes(ns.kc, {
    count: 1,
    prefix: `${pool}-`,
    cpu: 2,
    memory: '4Gi',
    pods: 10,
    labels: { 'meson.dev/test-pool': pool },
  })) as [string];
  await core().patchNode(
    { name: node, body: { spec: { taints: [{ key: TAINT, value: pool, effect: 'NoSchedule' }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await waitFor('the test node Ready', async () => {
    const n = await core().readNode({ name: node });
    return isNodeReady(n) ? true : undefined;
  });
});
afterAll(async () => {
  if (node)
    await core()
      .deleteNode({ name: node })
      .catch(() => {});
});

async function apply(yaml: string): Promise<void> {
  const r = await kubectlAsync(['apply', '-f', '-'], yaml);
  if (r.status !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

/** A one-step workflow that needs the whole test node, asking for `tier` if given. */
const WORKFLOW = (name: string, tier?: number) => `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: ${name}, namespace: ${ns.name} }
spec:
  definition:
    step:
      name: work
      container: { image: busybox, command: [sleep, "3600"] }
      resources: { cpus: "2", memory: 1Gi }
      constraints:
        nodeSelector: { meson.dev/test-pool: ${pool} }
        tolerations: [{ key: ${TAINT}, operator: Exists, effect: NoSchedule }]
${tier === undefined ? '' : `      tier: ${tier}\n`}`;

const RUN = (name: string, workflow: string) => `apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: ${name}, namespace: ${ns.name} }
spec: { workflow: ${workflow} }
`;

async function stepPods(run: string): Promise<V1Pod[]> {
  return (await core().listNamespacedPod({ namespace: ns.name, labelSelector: `meson.dev/run=${run}` }))
    .items;
}

interface StepStatus {
  id: string;
  phase: string;
  attempts?: number;
  preemptions?: number;
  message?: string;
}

describe('mesonctl operator --preemption', () => {
  it('deletes the low-tier Pod for the high-tier step, records why on the victim step, retries it, and binds the preemptor', async () => {
    const [port] = await freePorts(1);
    // the namespace's steps run at tier 5 unless they ask; they may ask up to tier 0, and preempt
    const settings = { namespaces: { [ns.name]: { preempt: true, tier: 5, minTier: 0 } } };
    const op = operators.track(
      await spawnOperator(
        'preempt',
        kubeconfig,
        [
          `--namespace=${ns.name}`,
          `--state-namespace=${OPERATOR_NAMESPACE}`,
          '--pod-annotation=kwok.meson.dev/run-forever=true',
          `--rest-listen=127.0.0.1:${port}`,
          `--preemption=${JSON.stringify(settings)}`,
        ],
        { MESON_API_TOKEN: TOKEN },
      ),
    );
    await reconciling(op);
    const rest = `http://127.0.0.1:${port}`;
    await apply(WORKFLOW('nightly'));
    await apply(WORKFLOW('urgent', 0));

    await apply(RUN('low', 'nightly'));
    const [victimPod] = await waitFor(
      'the low-tier Pod Running on the test node',
      async () => {
        const pods = await stepPods('low');
        return pods.length === 1 && pods[0]!.status?.phase === 'Running' ? pods : undefined;
      },
      { timeoutMs: 60_000, describe: () => op.stdout().slice(-2000) },
    );
    expect(victimPod!.spec?.nodeName).toBe(node);

    const t0 = Date.now();
    await apply(RUN('high', 'urgent'));
    // the victim's Pod goes, the preemptor's is bound to the node
    const [preemptorPod] = await waitFor(
      'the high-tier Pod bound to the test node',
      async () => {
        const pods = await stepPods('high');
        return pods.length === 1 && pods[0]!.spec?.nodeName === node ? pods : undefined;
      },
      { timeoutMs: 90_000, describe: () => op.stdout().slice(-3000) },
    );
    const took = Date.now() - t0;
    expect(preemptorPod!.metadata?.annotations?.['meson.dev/attempt']).toBe('1');
    await waitFor('the victim Pod deleted', async () =>
      (await stepPods('low')).some((p) => p.metadata?.name === victimPod!.metadata?.name) ? undefined : true,
    );

    // the victim step: why, and a new attempt (queued: the node is the preemptor's now)
    const res = await fetch(`${rest}/api/v1/namespaces/${ns.name}/runs/low/steps`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { items: StepStatus[] };
    const victim = body.items.find((s) => s.id === 'work')!;
    expect(victim).toMatchObject({ phase: 'Queued', attempts: 2, preemptions: 1 });
    expect(victim.message).toBe(
      `attempt 1 preempted: SCHEDULER_PREEMPTED: evicted for ${ns.name}/high/work (tier 0) on node ${node}; this step's tier is 5`,
    );
    const get = await mesonctl(
      ns.name,
      ['get', 'run', 'low'],
      { MESON_SERVER: rest, MESON_API_TOKEN: TOKEN },
      process.cwd(),
    );
    expect(get.code, get.err).toBe(0);
    expect(get.out).toMatch(/work +Queued +2 .*attempt 1 preempted: SCHEDULER_PREEMPTED: evicted for/);
    expect(op.stdout()).toContain('"msg":"preempting step attempt"');
    // kubectl describe mwfr low shows it too: a Warning Event on the run
    const events = await waitFor('the StepPreempted Event', async () => {
      const list = (
        await core().listNamespacedEvent({ namespace: ns.name, fieldSelector: 'involvedObject.name=low' })
      ).items;
      return list.some((e) => e.reason === 'StepPreempted') ? list : undefined;
    });
    expect(events.find((e) => e.reason === 'StepPreempted')).toMatchObject({
      type: 'Warning',
      message: `step work attempt 1: SCHEDULER_PREEMPTED: evicted for ${ns.name}/high/work (tier 0) on node ${node}; this step's tier is 5`,
    });

    // the preemptor's run is stopped: the victim's new attempt takes the node back
    const stop = await kubectlAsync([
      'patch',
      'workflowrun',
      'high',
      `--namespace=${ns.name}`,
      '--type=merge',
      '-p',
      '{"spec":{"stop":true}}',
    ]);
    expect(stop.status, stop.stderr).toBe(0);
    await waitFor(
      'the victim placed again',
      async () => {
        const pods = await stepPods('low');
        return pods.some(
          (p) => p.metadata?.annotations?.['meson.dev/attempt'] === '2' && p.spec?.nodeName === node,
        )
          ? true
          : undefined;
      },
      { timeoutMs: 90_000, describe: () => op.stdout().slice(-3000) },
    );
    const run = (await custom().getNamespacedCustomObject({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflowruns',
      name: 'low',
    })) as { status?: { phase?: string } };
    expect(run.status?.phase).toBe('Running');
    process.stderr.write(
      `operator: high-tier run applied to its Pod bound in ${took} ms (victim Pod deleted)\n`,
    );
  });
});
