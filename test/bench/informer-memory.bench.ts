/**
 * Informer memory benchmark (`npm run bench informer-memory`): what the operator's Pod caches
 * hold for 10,000 active step Pods.
 *
 * One real step Pod is made on the test control plane (buildPod, as the launcher makes it; KWOK
 * runs and completes it) and read back as the API server serves it: defaults, managedFields,
 * conditions, container statuses with the termination message. Its JSON, with each copy's
 * names changed, is parsed 10,000 times as a watch delivers objects, and kept in Maps as the
 * informers keep them:
 * - `full`: before trimming, the offer source's and the launcher's informers each kept the whole
 *   object (two copies);
 * - `trimmed`: trimPodForCapacity (offer source) plus trimPodForStatus (launcher).
 * Heap is measured after a forced GC (node --expose-gc, as `npm run bench` starts it).
 * Prints figures, then, as its last line, one JSON object.
 */
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { buildPod, trimPodForStatus } from '../../src/launchers/kubernetes-pod.ts';
import type { LaunchRequest } from '../../src/launchers/types.ts';
import { trimPodForCapacity } from '../../src/offer-adapter/kubernetes.ts';
import { startCluster } from '../cluster/index.ts';
import { waitFor } from '../cluster/wait.ts';

const PODS = Number(process.env.INFORMER_BENCH_PODS ?? 10_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench does)');

function heapMb(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function realStepPod(): Promise<string> {
  const cluster = await startCluster({ nodes: 1, log: (m) => console.log(`cluster: ${m}`) });
  try {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const req: LaunchRequest = {
      namespace: 'default',
      run: 'wide-20261203-0001',
      workflow: 'wide',
      instance: 'each[4711]',
      attempt: 1,
      step: {
        name: 'each',
        type: 'shell',
        shell: { script: 'echo "item ${item}"; echo "out=$((item * 2))" >> "$MESON_OUTPUTS"' },
      },
      queuedAt: Date.now(),
      runUid: '0b6c3f9e-1111-2222-3333-444455556666',
      resources: { cpuMillis: 100, memoryBytes: 64 * 2 ** 20, diskBytes: 0, gpus: 0 },
    };
    const nodes = await core.listNode();
    const pod = buildPod(
      req,
      { launchId: 'l1', launchedAt: Date.now(), node: nodes.items[0]!.metadata!.name! },
      {
        annotations: { 'kwok.meson.dev/duration': '1s' },
      },
    );
    await core.createNamespacedPod({ namespace: 'default', body: pod });
    const name = pod.metadata!.name!;
    const done = await waitFor(
      'the step Pod to finish under KWOK',
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'default', name });
        return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
      },
      { timeoutMs: 60_000 },
    );
    // as a watch event carries it (JSON), not as the typed client's class instances
    return JSON.stringify(done);
  } finally {
    await cluster.stop();
  }
}

function keep(json: string, n: number, trims: ((p: V1Pod) => V1Pod)[]): number {
  const before = heapMb();
  const caches = trims.map(() => new Map<string, V1Pod>());
  for (let i = 0; i < n; i++) {
    const text = json.replaceAll('each-4711', `each-${i}`);
    trims.forEach((trim, c) => {
      const pod = trim(JSON.parse(text) as V1Pod);
      caches[c]!.set(`default/${pod.metadata?.name}-${i}`, pod);
    });
  }
  const after = heapMb();
  if (caches.some((c) => c.size !== n)) throw new Error('lost entries');
  return after - before;
}

const json = await realStepPod();
const same = (p: V1Pod) => p;
// run each twice, keep the second (the first warms the JIT and the string tables)
keep(json, 1_000, [same, same]);
const fullMb = keep(json, PODS, [same, same]);
keep(json, 1_000, [trimPodForCapacity, trimPodForStatus]);
const trimmedMb = keep(json, PODS, [trimPodForCapacity, trimPodForStatus]);
const pod = JSON.parse(json) as V1Pod;
const result = {
  pods: PODS,
  pod_json_bytes: json.length,
  trimmed_capacity_json_bytes: JSON.stringify(trimPodForCapacity(pod)).length,
  trimmed_status_json_bytes: JSON.stringify(trimPodForStatus(pod)).length,
  informer_full_mb: Math.round(fullMb),
  informer_trimmed_mb: Math.round(trimmedMb),
  informer_trimmed_vs_full: Math.round((trimmedMb / fullMb) * 1000) / 1000,
};
console.log(
  `a step Pod as served: ${result.pod_json_bytes} bytes of JSON; trimmed for capacity ${result.trimmed_capacity_json_bytes}, for status ${result.trimmed_status_json_bytes}`,
);
console.log(
  `${PODS} Pods in the offer source's and the launcher's caches: full ${result.informer_full_mb} MB, trimmed ${result.informer_trimmed_mb} MB (×${result.informer_trimmed_vs_full})`,
);
console.log(JSON.stringify(result));
