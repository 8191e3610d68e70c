// Spark steps as Pods: client mode with the step Pod as the driver (executors/spark.ts).
import { describe, expect, it } from 'vitest';
import type { TaskFile } from '../../executors/protocol.ts';
import {
  buildPod,
  DEFAULT_EXECUTOR_IMAGE,
  DEFAULT_SPARK_IMAGE,
  launchLinks,
  PodSpecError,
  TASK_ENV,
} from './kubernetes-pod.ts';
import type { LaunchRecord, LaunchRequest } from './types.ts';

const record: LaunchRecord = { launchId: 'l1', launchedAt: 2000, node: 'node-1', pod: 'etl-r1-agg-a1-abc' };

function sparkReq(spark: NonNullable<LaunchRequest['step']['spark']> = {}): LaunchRequest {
  return {
    namespace: 'team-a',
    run: 'r1',
    workflow: 'etl',
    instance: 'agg',
    attempt: 1,
    runUid: 'uid-1',
    step: {
      name: 'agg',
      type: 'spark',
      spark: { jobClass: 'com.example.Agg', mainApplication: 'local:///opt/app.jar', ...spark },
    },
  };
}

const taskOf = (pod: ReturnType<typeof buildPod>): TaskFile =>
  JSON.parse(pod.spec!.containers[0]!.env!.find((e) => e.name === TASK_ENV)!.value!) as TaskFile;

describe('buildPod: spark steps', () => {
  it('runs the driver in the Spark image, with its token, its IP and the settings the operator owns', () => {
    const pod = buildPod(sparkReq(), record);
    const c = pod.spec!.containers[0]!;
    expect(c.image).toBe(DEFAULT_SPARK_IMAGE);
    expect(c.command).toEqual(['meson-executor']);
    expect(pod.spec!.serviceAccountName).toBe('meson-spark');
    expect(pod.spec!.automountServiceAccountToken).toBe(true);
    expect(c.env).toContainEqual({
      name: 'MESON_POD_IP',
      valueFrom: { fieldRef: { fieldPath: 'status.podIP' } },
    });
    // after MESON_TASK: the kubelet would replace a step's literal $(MESON_POD_IP) in the task
    const names = c.env!.map((e) => e.name);
    expect(names.indexOf('MESON_POD_IP')).toBeGreaterThan(names.indexOf(TASK_ENV));
    // still a step Pod: owned by its run, labelled, restricted
    expect(pod.metadata!.ownerReferences![0]).toMatchObject({ kind: 'WorkflowRun', uid: 'uid-1' });
    expect(pod.metadata!.labels!['app.kubernetes.io/managed-by']).toBe('meson');
    expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(taskOf(pod).sparkSubmit).toEqual({
      conf: {
        'spark.kubernetes.namespace': 'team-a',
        'spark.kubernetes.driver.pod.name': 'etl-r1-agg-a1-abc',
        'spark.kubernetes.authenticate.caCertFile': '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
        'spark.kubernetes.authenticate.oauthTokenFile': '/var/run/secrets/kubernetes.io/serviceaccount/token',
        'spark.kubernetes.submitInDriver': 'false',
        'spark.kubernetes.trust.certificates': 'false',
      },
      // not fixed: the step may choose its executors' image
      defaults: { 'spark.kubernetes.container.image': DEFAULT_SPARK_IMAGE },
    });
  });

  it('takes the operator settings: image, fixed executor image, service account', () => {
    const pod = buildPod(sparkReq(), record, {
      spark: {
        image: 'reg.example/spark:1',
        executorImage: 'reg.example/exec:2',
        serviceAccountName: 'spark-x',
      },
    });
    expect(pod.spec!.containers[0]!.image).toBe('reg.example/spark:1');
    expect(pod.spec!.serviceAccountName).toBe('spark-x');
    const task = taskOf(pod);
    expect(task.sparkSubmit!.conf['spark.kubernetes.container.image']).toBe('reg.example/exec:2');
    expect(task.sparkSubmit!.defaults).toBeUndefined();
    // a fixed image is owned: a step's conf cannot choose another
    expect(() =>
      buildPod(sparkReq({ conf: { 'spark.kubernetes.executor.container.image': 'evil/miner' } }), record, {
        spark: { executorImage: 'reg.example/exec:2' },
      }),
    ).toThrow(/spark\.conf\["spark\.kubernetes\.executor\.container\.image"\]/);
    expect(() =>
      buildPod(sparkReq({ conf: { 'spark.kubernetes.container.image': 'mine/spark:3' } }), record),
    ).not.toThrow();
  });

  it('gives no other step Pod a token, whatever the Spark settings', () => {
    const opts = { spark: { serviceAccountName: 'spark-x' } };
    for (const step of [
      { name: 's', type: 'shell' as const, shell: { script: 'true' } },
      { name: 'c', type: 'copy' as const, copy: { from: 'a', to: 'b' } },
      { name: 'k', type: 'container' as const, container: { image: 'busybox' } },
    ]) {
      const pod = buildPod({ ...sparkReq(), step }, record, opts);
      expect(pod.spec!.automountServiceAccountToken).toBe(false);
      expect(pod.spec!.serviceAccountName).toBeUndefined();
      expect(pod.spec!.containers[0]!.env!.some((e) => e.name === 'MESON_POD_IP')).toBe(false);
      if (step.type !== 'container') expect(pod.spec!.containers[0]!.image).toBe(DEFAULT_EXECUTOR_IMAGE);
    }
  });

  it('refuses a step that sets what the operator owns (POD_SPARK_OWNED), in every form', () => {
    const attacks: [NonNullable<LaunchRequest['step']['spark']>, RegExp][] = [
      [{ conf: { 'spark.master': 'local[*]' } }, /spark\.conf\["spark\.master"\]/],
      [{ conf: { 'Spark.Master': 'k8s://https://evil:443' } }, /Spark\.Master/],
      [{ conf: { ' spark.kubernetes.namespace ': 'kube-system' } }, /spark\.kubernetes\.namespace/],
      [{ conf: { 'spark.kubernetes.namespace=kube-system x': 'y' } }, /cannot be set by a step/],
      [
        { conf: { 'spark.kubernetes.authenticate.driver.serviceAccountName': 'cluster-admin' } },
        /serviceAccountName/,
      ],
      [{ conf: { 'SPARK.KUBERNETES.AUTHENTICATE.OAUTHTOKEN': 't' } }, /cannot be set by a step/],
      [{ conf: { 'spark.kubernetes.driver.pod.name': 'other-pod' } }, /driver\.pod\.name/],
      [{ conf: { 'spark.submit.deployMode': 'cluster' } }, /deployMode/],
      [{ conf: { 'spark.kubernetes.submitInDriver': true } }, /submitInDriver/],
      [{ conf: { 'spark.kubernetes.driver.master': 'https://evil.example' } }, /driver\.master/],
      [{ conf: { 'spark.kubernetes.trust.certificates': true } }, /trust\.certificates/],
      [{ args: ['--master', 'local'] }, /spark\.args\[0\]/],
      [{ args: ['x', '--MASTER=local'] }, /spark\.args\[1\]/],
      [{ args: ['--deploy-mode', 'cluster'] }, /spark\.args\[0\]/],
      [{ args: ['--conf', 'spark.kubernetes.namespace=kube-system'] }, /spark\.args\[1\]/],
      [{ args: ['--conf=spark.master=local'] }, /spark\.args\[0\]/],
      [{ args: ['-cspark.master=local'] }, /spark\.args\[0\]/],
      [{ args: ['--properties-file', '/tmp/p'] }, /spark\.args\[0\]/],
    ];
    for (const [spark, field] of attacks) {
      let err: unknown;
      try {
        buildPod(sparkReq(spark), record);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(spark)).toBeInstanceOf(PodSpecError);
      expect((err as PodSpecError).code).toBe('POD_SPARK_OWNED');
      expect((err as Error).message).toMatch(field);
    }
    // the application's own arguments and other conf keys are the step's
    expect(() =>
      buildPod(
        sparkReq({
          conf: { 'spark.executor.cores': 2, 'spark.kubernetes.executor.request.cores': '500m' },
          args: ['--date', '2024-01-01', 'master=main', '--configuration=x'],
        }),
        record,
      ),
    ).not.toThrow();
  });
});

describe('launchLinks', () => {
  const pod = 'etl-r1-agg-a1-abc';
  it("is the Spark UI of a spark step's driver Pod, by default through kubectl proxy", () => {
    expect(launchLinks(sparkReq(), pod)).toEqual([
      {
        name: 'Spark UI',
        url: 'http://127.0.0.1:8001/api/v1/namespaces/team-a/pods/etl-r1-agg-a1-abc:4040/proxy/',
      },
    ]);
    expect(launchLinks({ namespace: 'a', step: { type: 'shell' } }, pod)).toEqual([]);
    expect(launchLinks(sparkReq(), pod, { spark: { uiUrl: '' } })).toEqual([]);
    expect(
      launchLinks(sparkReq(), pod, {
        spark: { uiUrl: 'https://k8s.example/ui/{namespace}/{pod}?x={unknown}' },
      }),
    ).toEqual([{ name: 'Spark UI', url: 'https://k8s.example/ui/team-a/etl-r1-agg-a1-abc?x={unknown}' }]);
  });

  it('encodes the values: no namespace or pod name can change the host, path or query', () => {
    const template = 'https://ui.example/{namespace}/{pod}/';
    for (const [namespace, name] of [
      ['a/../../admin', 'p'],
      ['a', 'p?token=x#frag'],
      ['a@evil.example', 'p'],
      ['a', '%2e%2e'],
      ['a b', 'p\nq'],
    ] as const) {
      const [link] = launchLinks({ namespace, step: { type: 'spark' } }, name, {
        spark: { uiUrl: template },
      });
      const u = new URL(link!.url);
      expect(u.host).toBe('ui.example');
      expect(u.search).toBe('');
      expect(u.hash).toBe('');
      const segments = u.pathname.split('/');
      expect(segments).toHaveLength(4);
      expect(decodeURIComponent(segments[1]!)).toBe(namespace);
      expect(decodeURIComponent(segments[2]!)).toBe(name);
    }
  });
});
