import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { asKubeletRuns } from '../../test/support/kubelet.ts';
import {
  buildPod,
  EXECUTOR_ANNOTATION,
  labelValue,
  MAX_TASK_ENV_BYTES,
  PodSpecError,
  parseEnvelope,
  podName,
  podOutcome,
  TASK_ANNOTATION,
  TASK_ENV,
  TERMINATION_MESSAGE_LIMIT,
  trimPodForStatus,
} from './kubernetes-pod.ts';
import type { LaunchRecord, LaunchRequest } from './types.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function req(over: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    namespace: 'team-a',
    run: 'etl-20240101',
    workflow: 'etl',
    instance: 'train[3]',
    attempt: 2,
    step: { name: 'train', type: 'shell', shell: { script: 'echo hi' } },
    queuedAt: 1000,
    runUid: '0b6c3f9e-1111-2222-3333-444455556666',
    resources: { cpuMillis: 500, memoryBytes: 2 ** 30, diskBytes: 0, gpus: 0 },
    ...over,
  };
}

const record: LaunchRecord = { launchId: 'l1', launchedAt: 2000, node: 'kwok-node-3' };

describe('podName', () => {
  it('is a deterministic DNS-1123 label of at most 63 characters', () => {
    const a = podName(req(), 'l1');
    expect(a).toBe(podName(req(), 'l1'));
    expect(a).toMatch(DNS_LABEL);
    expect(a.startsWith('etl-20240101-train-3-a2-')).toBe(true);
    for (const instance of [
      'x'.repeat(300),
      'Ünïcödé[ 7 ]',
      '---',
      '[0][1]',
      '../../etc/passwd',
      'a\u0000b',
    ]) {
      const n = podName(req({ instance, run: `r${'-'.repeat(80)}z` }), 'l1');
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(DNS_LABEL);
    }
  });

  it('differs between attempts, launches, instances, runs and namespaces', () => {
    const names = new Set([
      podName(req(), 'l1'),
      podName(req(), 'l2'),
      podName(req({ attempt: 3 }), 'l1'),
      podName(req({ instance: 'train[4]' }), 'l1'),
      podName(req({ instance: 'train-3' }), 'l1'), // sanitises to the same text: the hash differs
      podName(req({ run: 'etl-20240102' }), 'l1'),
      podName(req({ namespace: 'team-b' }), 'l1'),
    ]);
    expect(names.size).toBe(7);
  });
});

describe('labelValue', () => {
  it('keeps valid values and shortens the rest to valid ones', () => {
    expect(labelValue('etl')).toBe('etl');
    for (const v of ['x'.repeat(100), 'a/b', '-lead', 'trail.', '', 'Ünï', '[3]']) {
      const out = labelValue(v);
      expect(out.length).toBeLessThanOrEqual(63);
      expect(out).toMatch(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/);
    }
    expect(labelValue('x'.repeat(100))).not.toBe(labelValue(`${'x'.repeat(99)}y`));
  });
});

describe('buildPod', () => {
  it('binds the pod to the placement, links it to its attempt and run, restricted by default', () => {
    const pod = buildPod(req(), record);
    expect(pod.spec!.nodeName).toBe('kwok-node-3');
    expect(pod.spec!.schedulerName).toBeUndefined();
    expect(pod.spec!.restartPolicy).toBe('Never');
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    expect(pod.metadata!.name).toBe(podName(req(), 'l1'));
    expect(pod.metadata!.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'meson',
      'meson.dev/run': 'etl-20240101',
      'meson.dev/workflow': 'etl',
      'meson.dev/step': 'train',
      'meson.dev/attempt': '2',
    });
    expect(pod.metadata!.annotations).toMatchObject({
      'meson.dev/step-instance': 'train[3]',
      [TASK_ANNOTATION]: 'team-a/etl-20240101/train[3]',
    });
    expect(pod.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        name: 'etl-20240101',
        uid: req().runUid,
        controller: true,
        blockOwnerDeletion: false,
      },
    ]);
    expect(pod.spec!.securityContext).toEqual({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const c = pod.spec!.containers[0]!;
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.resources).toEqual({
      requests: { cpu: '500m', memory: '1Gi' },
      limits: { cpu: '500m', memory: '1Gi' },
    });
    expect(c.terminationMessagePath).toBe('/dev/termination-log');
  });

  it('runs shell steps in the executor image with the task in MESON_TASK and values as env', () => {
    const shell = { script: 'echo "$MESON_V_0"', env: { MESON_V_0: '$(touch /pwned)' } };
    const pod = buildPod(
      req({ step: { name: 'train', type: 'shell', shell } as LaunchRequest['step'] }),
      record,
      {
        executorImage: 'registry.example/executor:9',
        executorCommand: ['node', '/app/executors/pod.ts'],
      },
    );
    const c = pod.spec!.containers[0]!;
    expect(c.image).toBe('registry.example/executor:9');
    expect(c.command).toEqual(['node', '/app/executors/pod.ts']);
    expect(c.args).toBeUndefined();
    const { env } = asKubeletRuns(c);
    // the value is an env var, verbatim (after the kubelet's $(NAME) expansion); it is not in the script
    expect(env.MESON_V_0).toBe('$(touch /pwned)');
    const task = JSON.parse(env[TASK_ENV]!);
    expect(task).toMatchObject({ launchId: 'l1', run: 'etl-20240101', instance: 'train[3]', attempt: 2 });
    expect(task.step.shell.script).toBe('echo "$MESON_V_0"');
    expect(pod.metadata!.annotations![EXECUTOR_ANNOTATION]).toBe('true');
  });

  it('gives copy step Pods, and only them, the object store roots, limits and the Secret of its configuration', () => {
    const copy = { roots: ['s3://data-bucket/team-a/'], secretName: 'meson-s3', limits: { maxBytes: 99 } };
    const copyReq = req({
      step: { name: 'c', type: 'copy', copy: { from: 's3://data-bucket/team-a/x', to: 'y' } },
    });
    const pod = buildPod(copyReq, record, { copy });
    const c = pod.spec!.containers[0]!;
    expect(c.envFrom).toEqual([{ secretRef: { name: 'meson-s3' } }]);
    const task = JSON.parse(c.env!.find((e) => e.name === TASK_ENV)!.value!);
    expect(task.copyRoots).toEqual(['/meson/work', 's3://data-bucket/team-a/']);
    expect(task.copyLimits).toEqual({ maxBytes: 99 });
    // a shell step on the same operator sees neither the Secret nor the roots
    const shell = buildPod(req(), record, { copy }).spec!.containers[0]!;
    expect(shell.envFrom).toBeUndefined();
    const shellTask = JSON.parse(shell.env!.find((e) => e.name === TASK_ENV)!.value!);
    expect(shellTask.copyRoots).toBeUndefined();
    expect(shellTask.copyLimits).toBeUndefined();
    // without the operator's copy options a copy Pod gets no Secret, and only its own directory
    const plain = buildPod(copyReq, record).spec!.containers[0]!;
    expect(plain.envFrom).toBeUndefined();
    expect(JSON.parse(plain.env!.find((e) => e.name === TASK_ENV)!.value!).copyRoots).toBeUndefined();
  });

  it("leaves the step's parameters out of the task and bounds its size", () => {
    const parameters = { big: 'x'.repeat(200_000) };
    const pod = buildPod(
      req({ step: { name: 's', type: 'shell', shell: { script: 'echo' }, parameters } }),
      record,
    );
    const task = JSON.parse(pod.spec!.containers[0]!.env!.find((e) => e.name === TASK_ENV)!.value!);
    expect(task.step.parameters).toBeUndefined();
    const huge = req({
      step: { name: 's', type: 'shell', shell: { script: `echo ${'y'.repeat(MAX_TASK_ENV_BYTES)}` } },
    });
    expect(() => buildPod(huge, record)).toThrow(/POD_TASK_TOO_LARGE|over the \d+ bytes/);
    try {
      buildPod(huge, record);
    } catch (err) {
      expect((err as PodSpecError).code).toBe('POD_TASK_TOO_LARGE');
    }
    // multi-byte characters count as bytes; a lower configured bound applies
    const wide = req({ step: { name: 's', type: 'shell', shell: { script: 'é'.repeat(70_000) } } });
    expect(() => buildPod(wide, record)).toThrow(/over the/);
    expect(() => buildPod(req(), record, { maxTaskBytes: 100 })).toThrow(/over the 100 bytes/);
    expect(() => buildPod(req(), record, { maxTaskBytes: 10 ** 9 })).not.toThrow();
  });

  it('maps container steps: image, command, args, env', () => {
    const pod = buildPod(
      req({
        step: {
          name: 'c',
          type: 'container',
          container: {
            image: 'python:3.12',
            command: ['python'],
            args: ['-c', 'print(1)'],
            env: [{ name: 'A', value: '1' }],
          },
        },
      }),
      record,
    );
    const c = pod.spec!.containers[0]!;
    expect(c.image).toBe('python:3.12');
    expect(c.command).toEqual(['python']);
    expect(c.args).toEqual(['-c', 'print(1)']);
    expect(c.env!.find((e) => e.name === 'A')?.value).toBe('1');
    expect(c.env!.find((e) => e.name === 'MESON_OUTPUTS')?.value).toBe('/dev/termination-log');
    expect(pod.metadata!.annotations![EXECUTOR_ANNOTATION]).toBeUndefined();
  });

  it("carries the step's tolerations, so a tolerated NoExecute taint does not evict the pod", () => {
    const tolerations = [
      { key: 'dedicated', operator: 'Equal' as const, value: 'ml', effect: 'NoExecute' as const },
    ];
    expect(buildPod(req({ tolerations }), record).spec!.tolerations).toEqual(tolerations);
    expect(buildPod(req(), record).spec!.tolerations).toBeUndefined();
  });

  it('mounts the token only when the step asks, and can leave the security context alone', () => {
    const pod = buildPod(req({ serviceAccount: { name: 'trainer', automountToken: true } }), record, {
      securityContext: 'none',
    });
    expect(pod.spec!.automountServiceAccountToken).toBe(true);
    expect(pod.spec!.serviceAccountName).toBe('trainer');
    expect(pod.spec!.securityContext).toBeUndefined();
    expect(pod.spec!.containers[0]!.securityContext).toBeUndefined();
  });

  it('refuses what cannot run as a pod, with stable codes', () => {
    const cases: [LaunchRequest, LaunchRecord, string][] = [
      [req(), { launchId: 'l', launchedAt: 0 }, 'POD_NO_NODE'],
      [req({ step: { name: 's', type: 'container', container: { image: '' } } }), record, 'POD_BAD_STEP'],
      [req({ step: { name: 's', type: 'subworkflow' } }), record, 'POD_BAD_STEP'],
      [
        req({
          step: {
            name: 's',
            type: 'container',
            container: { image: 'i', env: [{ name: 'A=B', value: 'x' }] },
          },
        }),
        record,
        'POD_BAD_ENV',
      ],
      [
        req({
          step: {
            name: 's',
            type: 'shell',
            shell: { script: 'x', env: { 'BAD NAME': 'v' } },
          } as LaunchRequest['step'],
        }),
        record,
        'POD_BAD_ENV',
      ],
    ];
    for (const [r, rec, code] of cases) {
      try {
        buildPod(r, rec);
        expect.unreachable(code);
      } catch (err) {
        expect(err).toBeInstanceOf(PodSpecError);
        expect((err as PodSpecError).code).toBe(code);
      }
    }
  });
});

function statusPod(
  phase: string,
  terminated?: { exitCode: number; message?: string; reason?: string },
  extra: { executor?: boolean; reason?: string; running?: boolean } = {},
): V1Pod {
  return {
    metadata: {
      name: 'p',
      namespace: 'ns',
      annotations: extra.executor === false ? {} : { [EXECUTOR_ANNOTATION]: 'true' },
    },
    status: {
      phase,
      ...(extra.reason ? { reason: extra.reason, message: "Node didn't have enough resource: cpu" } : {}),
      containerStatuses:
        terminated || extra.running
          ? [
              {
                name: 'step',
                image: 'x',
                imageID: '',
                ready: false,
                restartCount: 0,
                state: terminated
                  ? {
                      terminated: {
                        ...terminated,
                        startedAt: new Date(5000),
                        finishedAt: new Date(9000),
                      },
                    }
                  : { running: { startedAt: new Date(5000) } },
              },
            ]
          : [],
    },
  };
}

describe('podOutcome', () => {
  const rec: LaunchRecord = { launchId: 'l1', launchedAt: 2000, node: 'n' };

  it('reads outputs and links from the termination message of a succeeded pod', () => {
    const msg = JSON.stringify({
      outputs: { rows: 12, table: 'x' },
      links: [{ name: 'ui', url: 'http://u' }],
    });
    const out = podOutcome(statusPod('Succeeded', { exitCode: 0, message: msg }), rec, 1000, 10_000);
    expect(out).toEqual({
      kind: 'finished',
      status: {
        launchId: 'l1',
        pid: 0,
        phase: 'Succeeded',
        exitCode: 0,
        outputs: { rows: 12, table: 'x' },
        links: [{ name: 'ui', url: 'http://u' }],
        milestones: { queued: 1000, launched: 2000, running: 5000, finished: 9000 },
      },
    });
  });

  it('reads key=value outputs of a container step', () => {
    const out = podOutcome(
      statusPod('Succeeded', { exitCode: 0, message: 'n=3\ns=abc\n' }, { executor: false }),
      rec,
      0,
      0,
    );
    expect(out.kind === 'finished' && out.status.outputs).toEqual({ n: 3, s: 'abc' });
  });

  it('reports running, pending, and failure with exit code and message', () => {
    expect(podOutcome(statusPod('Pending'), rec, 0, 0).kind).toBe('pending');
    expect(podOutcome(statusPod('Running', undefined, { running: true }), rec, 0, 0).kind).toBe('running');
    const failed = podOutcome(
      statusPod('Failed', {
        exitCode: 3,
        reason: 'Error',
        message: JSON.stringify({ message: 'exit code 3' }),
      }),
      rec,
      0,
      0,
    );
    expect(failed.kind === 'finished' && failed.status).toMatchObject({ phase: 'Failed', exitCode: 3 });
    expect(failed.kind === 'finished' && failed.status.message).toContain('exit code 3');
    const oom = podOutcome(statusPod('Failed', { exitCode: 137, reason: 'OOMKilled' }), rec, 0, 0);
    expect(oom.kind === 'finished' && oom.status.message).toBe('exit code 137: OOMKilled');
  });

  it('calls a pod the kubelet rejected before it ran lost, with its reason', () => {
    for (const reason of ['OutOfcpu', 'OutOfmemory', 'NodeAffinity', 'OutOfpods']) {
      const out = podOutcome(statusPod('Failed', undefined, { reason }), rec, 0, 0);
      expect(out.kind).toBe('lost');
      expect(out.kind === 'lost' && out.message).toContain(reason);
    }
  });

  it('fails a step whose termination message is not a valid envelope, saying why', () => {
    const bad: [string, string][] = [
      ['{"outputs": 3}', 'outputs: expected an object'],
      ['[1,2]', 'expected a JSON object'],
      ['{"links": [{"name": 1}]}', 'links[0]: expected {name, url}'],
      ['{"outputs": {"__proto__": {"polluted": true}}}', 'the key "__proto__" is not allowed'],
      ['{"outputs": {"constructor": 1}}', 'the key "constructor" is not allowed'],
      ['{"message": {}}', 'message: expected a string'],
      [`{"outputs": {"x": "${'a'.repeat(TERMINATION_MESSAGE_LIMIT)}`, 'probably truncated'],
    ];
    for (const [message, why] of bad) {
      const out = podOutcome(statusPod('Succeeded', { exitCode: 0, message }), rec, 0, 0);
      expect(out.kind).toBe('finished');
      if (out.kind !== 'finished') continue;
      expect(out.status.phase).toBe('Failed');
      expect(out.status.message).toContain(why);
    }
    // the same attack through a container step's key=value outputs
    const proto = podOutcome(
      statusPod('Succeeded', { exitCode: 0, message: '__proto__={"a":1}' }, { executor: false }),
      rec,
      0,
      0,
    );
    expect(proto.kind === 'finished' && proto.status.phase).toBe('Failed');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('parses an envelope', () => {
    expect(parseEnvelope('{"outputs":{"a":1},"message":"m"}')).toEqual({ outputs: { a: 1 }, message: 'm' });
  });
});

describe('buildPod: values and checked arguments', () => {
  it('exports MESON_PARAM_<name> as container variables for container and executor Pods, verbatim', () => {
    for (const step of [
      { name: 's', type: 'shell', shell: { script: 'echo "$MESON_PARAM_who"' } },
      { name: 's', type: 'container', container: { image: 'busybox:1', command: ['env'] } },
    ] as LaunchRequest['step'][]) {
      const pod = buildPod(
        req({ step: { ...step, parameters: { who: '$(touch /pwned)', 'not-a-name': 'x', n: 3 } } }),
        record,
      );
      const { env } = asKubeletRuns(pod.spec!.containers[0]!);
      expect(env.MESON_PARAM_who).toBe('$(touch /pwned)');
      expect(env.MESON_PARAM_n).toBe('3');
      expect(Object.keys(env).some((k) => k.includes('not-a-name'))).toBe(false);
    }
  });

  it('refuses an image or entry point that would be read as an option, whatever it was built from', () => {
    for (const image of ['--privileged', '-v', ' busybox', 'busybox:1 --rm']) {
      expect(() =>
        buildPod(req({ step: { name: 's', type: 'container', container: { image } } }), record),
      ).toThrow(/container\.image/);
    }
  });
});

describe('trimPodForStatus', () => {
  const rec: LaunchRecord = { launchId: 'l1', launchedAt: 2000, node: 'n' };
  it('keeps everything podOutcome reads, and little else', () => {
    const pods = [
      statusPod('Pending'),
      statusPod('Running', undefined, { running: true }),
      statusPod('Succeeded', {
        exitCode: 0,
        message: '{"outputs":{"a":"1"},"links":[{"name":"ui","url":"https://x"}]}',
      }),
      statusPod('Succeeded', { exitCode: 0, message: 'a=1\nb=2' }, { executor: false }),
      statusPod('Failed', { exitCode: 3, message: '{"message":"boom"}' }),
      statusPod('Failed', { exitCode: 137, reason: 'OOMKilled' }),
      statusPod('Failed', undefined, { reason: 'OutOfcpu' }),
      statusPod('Succeeded', { exitCode: 0, message: 'not json' }),
    ];
    for (const p of pods)
      expect(podOutcome(trimPodForStatus(p), rec, 1000, 10_000)).toEqual(podOutcome(p, rec, 1000, 10_000));
    // a real step Pod, as the API server returns it once it ran
    const full = buildPod(req(), { launchId: 'l1', launchedAt: 2000, node: 'n' });
    full.metadata!.managedFields = [
      { manager: 'kwok', operation: 'Update', fieldsV1: { f: 'x'.repeat(5_000) } },
    ];
    full.status = statusPod('Succeeded', { exitCode: 0, message: '{"outputs":{"a":"1"}}' }).status!;
    const trimmed = trimPodForStatus(full);
    expect(podOutcome(trimmed, rec, 1000, 10_000)).toEqual(podOutcome(full, rec, 1000, 10_000));
    expect(JSON.stringify(trimmed).length).toBeLessThan(JSON.stringify(full).length / 5);
  });
});
