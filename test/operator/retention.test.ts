// The retention sweep in operator mode: the same RetentionSweeper over the KubernetesStore
// (run queries from the informer cache, deletions through the API server, no run files).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowRun } from '../../src/crds/index.ts';
import { RetentionSweeper } from '../../src/retention/index.ts';
import { KubernetesStore } from '../../src/store/kubernetes.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { installCrdsServed } from './helpers.ts';

const ns = useNamespace('retain');
const stores: KubernetesStore[] = [];

beforeAll(async () => {
  await installCrdsServed();
});

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('retention over the Kubernetes store', () => {
  it('deletes the finished runs beyond keepLast, keeps unfinished ones and children of kept parents', async () => {
    const store = await KubernetesStore.open({
      kubeConfig: ns.kc,
      namespaces: [ns.name],
      stateNamespace: ns.name,
      backoff: { initialMs: 50, maxMs: 1000 },
    });
    stores.push(store);
    const run = async (name: string, phase: string | undefined, endMin: number, parent?: string) => {
      const created = await store.transaction((w) =>
        w.create<WorkflowRun>('WorkflowRun', {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'WorkflowRun',
          metadata: { name, namespace: ns.name },
          spec: {
            workflow: 'w',
            initiator: parent ? { type: 'subworkflow', parent: { run: parent } } : { type: 'api' },
          },
        } as WorkflowRun),
      );
      if (phase)
        await store.transaction((w) =>
          w.updateStatus('WorkflowRun', {
            ...created.value,
            status: { phase, endTime: new Date(Date.UTC(2026, 0, 1, 0, endMin)).toISOString() },
          }),
        );
    };
    await run('old', 'Succeeded', 1);
    await run('older', 'Failed', 0);
    await run('newest', 'Succeeded', 5);
    await run('child', 'Succeeded', 4, 'newest'); // goes with its parent, which is kept
    await run('running', undefined, 0);
    const logs: string[] = [];
    const logger = { info: (_: object, m?: string) => logs.push(m ?? ''), warn: () => {}, error: () => {} };
    const sweeper = new RetentionSweeper({ store, logger, defaults: { keepLast: 1 }, intervalMs: 0 });
    const result = await sweeper.sweep();
    expect(result.deleted.map((d) => d.run).sort()).toEqual(['old', 'older']);
    const left = await kubectlAsync(['get', 'workflowruns.meson.dev', '-n', ns.name, '-o', 'name']);
    expect(left.stdout.trim().split('\n').sort()).toEqual(
      ['child', 'newest', 'running'].map((n) => `workflowrun.meson.dev/${n}`),
    );
    expect((await sweeper.sweep()).deleted).toEqual([]);
    sweeper.stop();
  });
});
