import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../cluster/index.ts';
import { waitFor } from '../cluster/wait.ts';

/** A pod with no spec.nodeName: only kube-scheduler can place it. */
function unboundPod(name: string, cpu: string): V1Pod {
  return {
    metadata: { name, annotations: { 'kwok.meson.dev/duration': '100ms' } },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'example.invalid/step:1', resources: { requests: { cpu } } }],
    },
  };
}

// kube-scheduler is optional (the operator binds its own pods); this cluster starts it.
describe('startCluster({ scheduler: true })', () => {
  let cluster: Cluster;
  let core: CoreV1Api;
  beforeAll(async () => {
    cluster = await startCluster({ nodes: 2, cpu: 2, memory: '4Gi', scheduler: true });
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const status = (name: string): Promise<V1Pod> =>
    core.readNamespacedPodStatus({ name, namespace: 'default' });

  it('schedules a pod without spec.nodeName onto a KWOK node that fits it', async () => {
    await core.createNamespacedPod({ namespace: 'default', body: unboundPod('fits', '1500m') });
    const pod = await waitFor('pod fits to be scheduled and succeed', async () => {
      const p = await status('fits');
      return p.status?.phase === 'Succeeded' ? p : undefined;
    });
    expect(pod.spec?.nodeName).toMatch(/^kwok-node-[01]$/);
  });

  it('leaves a pod that fits no node Pending as Unschedulable', async () => {
    await core.createNamespacedPod({ namespace: 'default', body: unboundPod('too-big', '3') });
    const condition = await waitFor('PodScheduled=False', async () => {
      const p = await status('too-big');
      return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    expect(condition.reason).toBe('Unschedulable');
    expect(condition.message).toContain('Insufficient cpu');
  });
});
