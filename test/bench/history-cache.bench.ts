// The operator's run history (cacheHistory over the KubernetesStore's informer cache): time of
// one page of 100 runs, newest first, at 10,000 and 100,000 cached runs of one namespace. The
// cache is filled from a fake API (list answers the runs; watches stay open, silent).
//   node test/bench/history-cache.bench.ts
import type { KubeApi, KubeObject } from '../../src/store/kube-api.ts';
import { KubernetesStore } from '../../src/store/kubernetes.ts';

function fakeApi(runs: KubeObject[]): KubeApi {
  const never = () => Promise.reject(new Error('not in this bench'));
  return {
    list: async (res: { plural: string }) => ({
      items: res.plural === 'workflowruns' ? runs : [],
      metadata: { resourceVersion: '1' },
    }),
    get: never,
    create: never,
    replace: never,
    replaceStatus: never,
    delete: never,
    deleteCollection: never,
    watch: async (_res: unknown, _ns: unknown, _q: unknown, _on: unknown, done: (err: unknown) => void) => ({
      abort: () => done(new Error('aborted')),
    }),
  } as unknown as KubeApi;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const out: Record<string, number> = {};
for (const n of [10_000, 100_000]) {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const runs: KubeObject[] = Array.from({ length: n }, (_, i) => ({
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: {
      name: `r-${i}`,
      namespace: 'ns',
      uid: `u${i}`,
      resourceVersion: String(i + 2),
      creationTimestamp: new Date(t0 + i * 1000).toISOString().replace('.000Z', 'Z'),
      labels: { 'meson.dev/workflow': `w${i % 50}` },
    },
    spec: { workflow: `w${i % 50}`, initiator: { type: i % 10 ? 'api' : 'schedule' } },
    status: { phase: i % 7 ? 'Succeeded' : 'Failed' },
  }));
  const store = await KubernetesStore.open({ api: fakeApi(runs), namespaces: ['ns'], stateNamespace: 'ns' });
  const h = store.history;
  const time = (f: () => unknown) => {
    const xs: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t = performance.now();
      f();
      xs.push(performance.now() - t);
    }
    return Math.round(median(xs) * 10) / 10;
  };
  const first = h.pageRuns('ns', { limit: 100 });
  out[`first_page_${n}_ms`] = time(() => h.pageRuns('ns', { limit: 100 }));
  out[`next_page_${n}_ms`] = time(() => h.pageRuns('ns', { limit: 100, continue: first.continue! }));
  out[`workflow_${n}_ms`] = time(() => h.pageRuns('ns', { limit: 100, workflow: 'w7' }));
  out[`phase_failed_${n}_ms`] = time(() => h.pageRuns('ns', { limit: 100, phase: 'Failed' }));
  out[`no_match_${n}_ms`] = time(() => h.pageRuns('ns', { limit: 100, workflow: 'nope' }));
  await store.close();
}
console.log(JSON.stringify(out));
