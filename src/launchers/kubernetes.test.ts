import { describe, expect, it } from 'vitest';
import { trimPodForCapacity } from '../offer-adapter/kubernetes.ts';
import { mergeTrimmed } from './kubernetes.ts';
import { buildPod, trimPodForStatus } from './kubernetes-pod.ts';
import type { LaunchRequest } from './types.ts';

describe('mergeTrimmed', () => {
  it("keeps what both readers of the shared Pod cache read: the launcher's status and the offer source's capacity", () => {
    const req: LaunchRequest = {
      namespace: 'ns',
      run: 'r1',
      runUid: 'uid-1',
      workflow: 'wf',
      instance: 'train',
      attempt: 2,
      step: { name: 'train', type: 'shell', shell: { script: 'echo hi' } },
      resources: { cpuMillis: 1500, memoryBytes: 2 ** 30, diskBytes: 0, gpus: 0 },
    } as LaunchRequest;
    const pod = buildPod(req, { launchId: 'l1', launchedAt: 1, node: 'n1' });
    pod.metadata!.resourceVersion = '42';
    pod.status = {
      phase: 'Succeeded',
      containerStatuses: [
        {
          name: 'main',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, message: '{"outputs":{"a":"1"}}' } },
        },
      ],
    };
    const merged = mergeTrimmed(trimPodForStatus(pod), trimPodForCapacity(pod));
    expect(trimPodForStatus(merged)).toEqual(trimPodForStatus(pod));
    expect(trimPodForCapacity(merged)).toEqual(trimPodForCapacity(pod));
    expect(merged.metadata?.annotations?.['meson.dev/task']).toBe('ns/r1/train');
    expect(merged.spec?.containers[0]?.resources?.requests).toEqual({ cpu: '1500m', memory: '1Gi' });
  });
});
