import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { useNamespace } from '../cluster/namespace.ts';
import { isNotFound, waitFor } from '../cluster/wait.ts';

const ns = useNamespace('pods');
const core = ns.kc.makeApiClient(CoreV1Api);

function podOn(name: string, annotations: Record<string, string>): V1Pod {
  return {
    metadata: { name, annotations },
    spec: {
      nodeName: inject('clusterNodes')[0],
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'example.invalid/step:1' }],
    },
  };
}

/** Polls the pod's phase until `final`, returning every distinct phase seen on the way. */
async function phasesUntil(name: string, final: string): Promise<{ phases: string[]; pod: V1Pod }> {
  const phases: string[] = [];
  const pod = await waitFor(
    `pod ${name} to reach ${final}`,
    async () => {
      const p = await core.readNamespacedPodStatus({ name, namespace: ns.name });
      const phase = p.status?.phase ?? '';
      if (phases[phases.length - 1] !== phase) phases.push(phase);
      return phase === final ? p : undefined;
    },
    { intervalMs: 50, describe: () => `phases seen: ${phases.join(' -> ')}` },
  );
  return { phases, pod };
}

describe('KWOK pod stages', () => {
  it('runs a pod bound to a KWOK node, then completes it after its annotated duration', async () => {
    const started = Date.now();
    await core.createNamespacedPod({
      namespace: ns.name,
      body: podOn('succeeds', { 'kwok.meson.dev/duration': '1500ms' }),
    });
    const { phases, pod } = await phasesUntil('succeeds', 'Succeeded');
    expect(phases).toContain('Running');
    expect(phases.indexOf('Running')).toBeLessThan(phases.indexOf('Succeeded'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated?.exitCode).toBe(0);
    expect(terminated?.reason).toBe('Completed');
  });

  it('fails a pod with the exit code its annotation sets', async () => {
    await core.createNamespacedPod({
      namespace: ns.name,
      body: podOn('fails', { 'kwok.meson.dev/exit-code': '3', 'kwok.meson.dev/duration': '200ms' }),
    });
    const { phases, pod } = await phasesUntil('fails', 'Failed');
    expect(phases).toContain('Running');
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated?.exitCode).toBe(3);
    expect(terminated?.reason).toBe('Error');
  });

  it('copies the termination-message annotation into the terminated state, as a kubelet copies the file', async () => {
    const message = JSON.stringify({ outputs: { rows: 3 }, note: 'quotes " and \\ and ünï' });
    await core.createNamespacedPod({
      namespace: ns.name,
      body: podOn('message', {
        'kwok.meson.dev/duration': '100ms',
        'kwok.meson.dev/termination-message': message,
      }),
    });
    const { pod } = await phasesUntil('message', 'Succeeded');
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.message).toBe(message);
    await core.createNamespacedPod({
      namespace: ns.name,
      body: podOn('message-exit', {
        'kwok.meson.dev/duration': '100ms',
        'kwok.meson.dev/exit-code': '2',
        'kwok.meson.dev/termination-message': 'why it failed',
      }),
    });
    const failed = await phasesUntil('message-exit', 'Failed');
    expect(failed.pod.status?.containerStatuses?.[0]?.state?.terminated?.message).toBe('why it failed');
  });

  it('completes a pod without any annotation (default duration, no message)', async () => {
    const body = podOn('bare', {});
    delete body.metadata!.annotations;
    await core.createNamespacedPod({ namespace: ns.name, body });
    const { pod } = await phasesUntil('bare', 'Succeeded');
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.message).toBeUndefined();
  });

  it('keeps a run-forever pod Running, and completes its deletion without a kubelet', async () => {
    await core.createNamespacedPod({
      namespace: ns.name,
      body: podOn('forever', { 'kwok.meson.dev/run-forever': 'true', 'kwok.meson.dev/duration': '100ms' }),
    });
    await phasesUntil('forever', 'Running');
    await new Promise((r) => setTimeout(r, 1_000));
    const still = await core.readNamespacedPodStatus({ name: 'forever', namespace: ns.name });
    expect(still.status?.phase).toBe('Running');
    // Graceful deletion (30 s grace period) would hang forever without kwok's pod-delete stage.
    await core.deleteNamespacedPod({ name: 'forever', namespace: ns.name });
    await waitFor('pod forever to disappear', async () => {
      try {
        await core.readNamespacedPod({ name: 'forever', namespace: ns.name });
        return undefined;
      } catch (error) {
        if (isNotFound(error)) return true;
        throw error;
      }
    });
  });
});
