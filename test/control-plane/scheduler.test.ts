import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../cluster/index.ts';
import { waitFor } from '../cluster/wait.ts';

// kube-scheduler is optional (the operator binds its own pods); this cluster starts it.
describe('startCluster({ scheduler: true })', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ nodes: 2, cpu: 2, memory: '4Gi', scheduler: true });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('schedules a pod without spec.nodeName onto a KWOK node that fits it', async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'unbound', annotations: { 'kwok.meson.dev/duration': '100ms' } },
        spec: {
          restartPolicy: 'Never',
          containers: [
            { name: 'main', image: 'example.invalid/step:1', resources: { requests: { cpu: '1500m' } } },
          ],
        },
      },
    });
    const pod = await waitFor('pod unbound to be scheduled and succeed', async () => {
      const p = await core.readNamespacedPodStatus({ name: 'unbound', namespace: 'default' });
      return p.status?.phase === 'Succeeded' ? p : undefined;
    });
    expect(pod.spec?.nodeName).toMatch(/^kwok-node-[01]$/);
  });

  it('leaves a pod that fits no node Pending with a scheduler event', async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'too-big' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            { name: 'main', image: 'example.invalid/step:1', resources: { requests: { cpu: '3' } } },
          ],
        },
      },
    });
    const condition = await waitFor('PodScheduled=False', async () => {
      const p = await core.readNamespacedPodStatus({ name: 'too-big', namespace: 'default' });
      return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    expect(condition.reason).toBe('Unschedulable');
    expect(condition.message).toContain('Insufficient cpu');
  });
});
