import { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { useNamespace } from '../cluster/namespace.ts';
import { gone, waitFor } from '../cluster/wait.ts';

const ns = useNamespace('gc');
const core = ns.kc.makeApiClient(CoreV1Api);

describe('kube-controller-manager', () => {
  it('garbage-collects a Pod whose owner ConfigMap is deleted', async () => {
    const owner = await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'owner' }, data: { a: '1' } },
    });
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: {
          name: 'owned',
          annotations: { 'kwok.meson.dev/run-forever': 'true' },
          ownerReferences: [
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '' },
          ],
        },
        spec: {
          nodeName: inject('clusterNodes')[0],
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: 'example.invalid/step:1' }],
        },
      },
    });
    const running = await waitFor('pod owned to run', async () => {
      const p = await core.readNamespacedPodStatus({ name: 'owned', namespace: ns.name });
      return p.status?.phase === 'Running' ? p : undefined;
    });
    expect(running.metadata?.ownerReferences?.[0]?.name).toBe('owner');
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns.name });
    await waitFor(
      'the garbage collector to delete pod owned',
      () => gone(() => core.readNamespacedPod({ name: 'owned', namespace: ns.name })),
      { timeoutMs: 60_000 },
    );
  });

  it('completes the deletion of a namespace that still holds pods', async () => {
    const name = `${ns.name}-x`;
    await core.createNamespace({ body: { metadata: { name } } });
    await core.createNamespacedPod({
      namespace: name,
      body: {
        metadata: { name: 'p', annotations: { 'kwok.meson.dev/run-forever': 'true' } },
        spec: {
          nodeName: inject('clusterNodes')[0],
          containers: [{ name: 'main', image: 'example.invalid/step:1' }],
        },
      },
    });
    await core.deleteNamespace({ name });
    await waitFor('namespace deletion to complete', () => gone(() => core.readNamespace({ name })), {
      timeoutMs: 60_000,
    });
  });
});
