// Cron triggers in operator mode fire once per slot across a fail-over: the leader is killed
// (SIGKILL) between slots, a second process takes the Lease and goes on from the cursor the
// first kept in its state ConfigMap. No slot gets two runs.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { testKubeConfig, useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('cron');
let kubeconfig: string;
const operators = useOperatorProcesses();

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
});

async function operator(identity: string): Promise<OperatorProcess> {
  const o = await spawnOperator(identity, kubeconfig, [
    `--namespace=${ns.name}`,
    `--state-namespace=${OPERATOR_NAMESPACE}`,
  ]);
  operators.track(o);
  await reconciling(o);
  return o;
}

interface Run {
  metadata: { name: string };
  spec: { initiator?: { type?: string; scheduledTime?: string } };
}

async function cronRuns(): Promise<Run[]> {
  const list = (await testKubeConfig().makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
    group: 'meson.dev',
    version: 'v1alpha1',
    plural: 'workflowruns',
    namespace: ns.name,
  })) as { items: Run[] };
  return list.items.filter((r) => r.spec.initiator?.type === 'cron');
}

describe('cron triggers across an operator fail-over', () => {
  it('fire once per slot: the next leader goes on from the kept cursor, no slot runs twice', async () => {
    const a = await operator('cron-first');
    const apply = await kubectlAsync(
      ['apply', '-f', '-'],
      `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: ticker, namespace: ${ns.name} }
spec:
  triggers:
    cron:
      - schedule: "*/2 * * * * ?"
  definition:
    step: { name: tick, noop: {} }
`,
    );
    expect(apply.status, apply.stderr).toBe(0);
    await waitFor(
      'two slots fired by the first leader',
      async () => ((await cronRuns()).length >= 2 ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );
    a.child.kill('SIGKILL');
    await a.exited;
    const before = (await cronRuns()).length;
    await operator('cron-second');
    await waitFor(
      'the second leader to fire more slots',
      async () => ((await cronRuns()).length >= before + 2 ? true : undefined),
      { timeoutMs: 30_000 },
    );
    const runs = await cronRuns();
    const slots = runs.map((r) => r.spec.initiator?.scheduledTime);
    expect(slots.every((s) => typeof s === 'string' && Date.parse(s!) % 2000 === 0)).toBe(true);
    // once per slot: no scheduled time twice, across both processes
    expect(new Set(slots).size).toBe(slots.length);
  }, 120_000);
});
