// The operator at a scale the shared test cluster can hold: a 500-way foreach, reconciled by
// `mesonctl operator` with its own credentials, with shards of at most 100 instances so a run
// spans several. While it runs and at the end: no run or shard object is over its bound (size
// as JSON, instances per shard), and no step attempt ever gets two Pods. At the end: the run's
// status and shards were written about once a second, not once per pass (--status-interval).
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  readyz,
  spawnOperator,
  userKubeconfig,
} from './helpers.ts';

const WIDTH = 500;
const SHARD_INSTANCES = 100;
/** The store's default maxObjectBytes (docs/operator.md, Limits). */
const MAX_OBJECT_BYTES = 786_432;

const ns = useNamespace('scale');
const custom = () => ns.kc.makeApiClient(CustomObjectsApi);
let kubeconfig: string;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
});

afterAll(async () => {
  operator?.child.kill('SIGKILL');
  await operator?.exited;
});

interface Obj {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { instances?: number };
  status?: { phase?: string };
}

async function list(plural: string): Promise<Obj[]> {
  const r = (await custom().listNamespacedCustomObject({
    group: 'meson.dev',
    version: 'v1alpha1',
    namespace: ns.name,
    plural,
  })) as { items: Obj[] };
  return r.items;
}

/** Step attempt → Pods, from the Pods' exact annotations. */
function podsPerAttempt(pods: V1Pod[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of pods) {
    const a = p.metadata?.annotations ?? {};
    const key = `${a['meson.dev/run']}/${a['meson.dev/step-instance']}#${a['meson.dev/attempt']}`;
    out.set(key, [...(out.get(key) ?? []), p.metadata?.name ?? '']);
  }
  return out;
}

/** The operator's writes of runs' statuses and of shards, from its meson_kube_client_requests_total. */
function runProgressWrites(metrics: string): number {
  let n = 0;
  for (const m of metrics.matchAll(
    /^meson_kube_client_requests_total\{method="(PUT|POST|PATCH)",resource="(workflowruns\.meson\.dev\/status|workflowrunshards\.meson\.dev)",code="2\d\d"\} (\d+)$/gm,
  ))
    n += Number(m[3]);
  return n;
}

describe(`a ${WIDTH}-way foreach on the operator`, () => {
  it('keeps every run and shard within its bounds and gives no step attempt two Pods', async () => {
    const saved = process.env.MESON_STORE_SHARD_INSTANCES;
    process.env.MESON_STORE_SHARD_INSTANCES = String(SHARD_INSTANCES);
    try {
      operator = await spawnOperator('scale', kubeconfig, [
        `--namespace=${ns.name}`,
        `--state-namespace=${OPERATOR_NAMESPACE}`,
        '--pod-annotation=kwok.meson.dev/duration=500ms',
        // one replica: a loaded machine must not make it lose a 2-second Lease mid-run
        '--leader-elect=false',
      ]);
    } finally {
      if (saved === undefined) delete process.env.MESON_STORE_SHARD_INSTANCES;
      else process.env.MESON_STORE_SHARD_INSTANCES = saved;
    }
    const o = operator;
    await waitFor(
      'the operator to reconcile',
      async () => ((await readyz(o)).body.informers === 'synced: reconciling' ? true : undefined),
      { timeoutMs: 30_000, describe: () => o.stdout().slice(-2000) },
    );
    const group = { group: 'meson.dev', version: 'v1alpha1', namespace: ns.name };
    await custom().createNamespacedCustomObject({
      ...group,
      plural: 'workflows',
      body: {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'Workflow',
        metadata: { name: 'wide' },
        spec: {
          definition: {
            foreach: {
              items: `range(${WIDTH})`,
              as: 'i',
              do: { step: { name: 'work', container: { image: 'busybox', command: ['true'] } } },
            },
          },
        },
      },
    });
    // A run created before the operator has versioned its Workflow fails ("no version yet").
    await waitFor('the Workflow to be versioned', async () => {
      const wf = (await custom().getNamespacedCustomObject({
        ...group,
        plural: 'workflows',
        name: 'wide',
      })) as {
        status?: { latestVersion?: number };
      };
      return (wf.status?.latestVersion ?? 0) >= 1 ? true : undefined;
    });
    await custom().createNamespacedCustomObject({
      ...group,
      plural: 'workflowruns',
      body: {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name: 'wide-1' },
        spec: { workflow: 'wide' },
      },
    });

    // Sampled while the run goes on, so an object that grew past its bound and shrank again
    // (or a duplicate Pod that was deleted) is still caught.
    const largest = new Map<string, number>();
    const mostInstances = new Map<string, number>();
    const podNames = new Map<string, Set<string>>();
    const sample = async (): Promise<string | undefined> => {
      const [runs, shards, pods] = await Promise.all([
        list('workflowruns'),
        list('workflowrunshards'),
        ns.kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns.name }),
      ]);
      for (const obj of [...runs, ...shards]) {
        const key = `${runs.includes(obj) ? 'run' : 'shard'}/${obj.metadata.name}`;
        largest.set(key, Math.max(largest.get(key) ?? 0, Buffer.byteLength(JSON.stringify(obj))));
        if (obj.spec?.instances !== undefined) {
          mostInstances.set(key, Math.max(mostInstances.get(key) ?? 0, obj.spec.instances));
        }
      }
      for (const [attempt, names] of podsPerAttempt(pods.items)) {
        const seen = podNames.get(attempt) ?? new Set();
        for (const n of names) seen.add(n);
        podNames.set(attempt, seen);
      }
      return runs.find((r) => r.metadata.name === 'wide-1')?.status?.phase;
    };
    let phase: string | undefined;
    await waitFor(
      'the run to finish',
      async () => {
        phase = await sample();
        return ['Succeeded', 'Failed', 'Stopped'].includes(phase ?? '') ? phase : undefined;
      },
      { timeoutMs: 360_000, intervalMs: 1_000, describe: () => `${phase}; ${o.stdout().slice(-2000)}` },
    );
    await sample();
    expect(phase, o.stdout().slice(-3000)).toBe('Succeeded');

    // Bounds: every object under the store's maxObjectBytes, every shard within shardInstances,
    // and the run spread over several shards (so the bound was in play).
    const over = [...largest].filter(([, bytes]) => bytes > MAX_OBJECT_BYTES);
    expect(over).toEqual([]);
    const shards = [...mostInstances.keys()];
    expect(shards.length).toBeGreaterThanOrEqual(WIDTH / SHARD_INSTANCES);
    expect([...mostInstances].filter(([, n]) => n > SHARD_INSTANCES)).toEqual([]);
    expect([...mostInstances.values()].reduce((a, b) => a + b, 0)).toBe(WIDTH);

    // One Pod per step attempt, and exactly one attempt per instance (nothing failed).
    expect(podNames.size).toBe(WIDTH);
    expect([...podNames].filter(([, names]) => names.size > 1)).toEqual([]);

    // The run's progress is written about once a second (--status-interval, default 1 s), not
    // once per pass: its status and shard writes, from this operator's own client metrics.
    const metrics = await (await fetch(`${o.api}/metrics`)).text();
    const progressWrites = runProgressWrites(metrics);
    expect(progressWrites / WIDTH, `${progressWrites} status and shard writes`).toBeLessThan(0.4);
    process.stderr.write(
      `operator: ${WIDTH}-way foreach, ${shards.length} shards, largest object ${Math.max(...largest.values())} bytes, ${progressWrites} status and shard writes\n`,
    );
  }, 420_000);
});
