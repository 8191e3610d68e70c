// spark-submit on Kubernetes as the executor builds it, and the settings a step cannot take.
import { describe, expect, it } from 'vitest';
import type { Step } from '../src/crds/index.ts';
import { validateDocument } from '../src/crds/validate.ts';
import { resolveStep } from '../src/engine/resolve.ts';
import { buildPod, PodSpecError } from '../src/launchers/kubernetes-pod.ts';
import { planStep, type StepSetupError } from './executor.ts';
import type { ExecutorStep } from './protocol.ts';
import { fillUrlTemplate, inClusterMaster, ownedSparkConf, sparkOwnershipProblem } from './spark.ts';

const settings = ownedSparkConf({
  namespace: 'team-a',
  pod: 'r-agg-a1-0123456789',
  executorImage: 'reg.example/spark:1',
  fixedImage: false,
});
const inPod = {
  KUBERNETES_SERVICE_HOST: '10.96.0.1',
  KUBERNETES_SERVICE_PORT: '443',
  MESON_POD_IP: '10.1.2.3',
};
const ctx = (env: NodeJS.ProcessEnv) => ({
  dir: '/tmp/a',
  cwd: '/work',
  env,
  which: () => '/opt/spark/bin/spark-submit',
  sparkSubmit: settings,
});
const step = (spark: ExecutorStep['spark']): ExecutorStep => ({ name: 'agg', type: 'spark', spark });

describe('planStep: spark on Kubernetes', () => {
  it('submits in client mode to the Pod’s cluster, owned settings after the step’s conf', () => {
    const plan = planStep(
      step({
        jobClass: 'com.example.Agg',
        mainApplication: 'local:///opt/app.jar',
        conf: { 'spark.executor.cores': 2, 'spark.kubernetes.container.image': 'mine/spark:2' },
        args: ['--date', '2024-01-01'],
      }),
      ctx(inPod),
    );
    expect(plan).toEqual({
      kind: 'command',
      command: '/opt/spark/bin/spark-submit',
      args: [
        '--master',
        'k8s://https://10.96.0.1:443',
        '--deploy-mode',
        'client',
        // a default the step's own conf (next) overrides: the last one of a key wins
        '--conf',
        'spark.kubernetes.container.image=reg.example/spark:1',
        '--class',
        'com.example.Agg',
        '--conf',
        'spark.executor.cores=2',
        '--conf',
        'spark.kubernetes.container.image=mine/spark:2',
        '--conf',
        'spark.kubernetes.namespace=team-a',
        '--conf',
        'spark.kubernetes.driver.pod.name=r-agg-a1-0123456789',
        '--conf',
        'spark.kubernetes.authenticate.caCertFile=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
        '--conf',
        'spark.kubernetes.authenticate.oauthTokenFile=/var/run/secrets/kubernetes.io/serviceaccount/token',
        '--conf',
        'spark.kubernetes.submitInDriver=false',
        '--conf',
        'spark.kubernetes.trust.certificates=false',
        '--conf',
        'spark.driver.host=10.1.2.3',
        'local:///opt/app.jar',
        '--date',
        '2024-01-01',
      ],
    });
  });

  it('brackets an IPv6 API server, and fails clearly outside a Pod', () => {
    expect(inClusterMaster({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' })).toBe(
      'k8s://https://[fd00::1]:443',
    );
    expect(
      inClusterMaster({ KUBERNETES_SERVICE_HOST: 'a/b@c', KUBERNETES_SERVICE_PORT: '443' }),
    ).toBeUndefined();
    const s = step({ mainApplication: 'app.py' });
    expect(() => planStep(s, ctx({}))).toThrow(/KUBERNETES_SERVICE_HOST/);
    expect(() => planStep(s, ctx({ ...inPod, MESON_POD_IP: '' }))).toThrow(/MESON_POD_IP/);
    try {
      planStep(s, ctx({}));
    } catch (err) {
      expect((err as StepSetupError).code).toBe('EXECUTOR_SPARK_NO_CLUSTER');
    }
  });

  it('refuses owned settings again in the Pod (EXECUTOR_SPARK_OWNED)', () => {
    const attacks: ExecutorStep['spark'][] = [
      { mainApplication: 'app.py', conf: { 'spark.master': 'local' } },
      { mainApplication: 'app.py', conf: { 'SPARK.KUBERNETES.NAMESPACE': 'kube-system' } },
      { mainApplication: 'app.py', args: ['--conf', 'spark.kubernetes.authenticate.oauthToken=x'] },
    ];
    for (const spark of attacks) {
      let err: unknown;
      try {
        planStep(step(spark), ctx(inPod));
      } catch (e) {
        err = e;
      }
      expect((err as StepSetupError).code).toBe('EXECUTOR_SPARK_OWNED');
    }
    // standalone (no sparkSubmit): the step configures its own spark-submit
    expect(
      planStep(step({ mainApplication: 'app.py', conf: { 'spark.master': 'yarn' } }), {
        ...ctx(inPod),
        sparkSubmit: undefined,
      }),
    ).toMatchObject({ args: ['--conf', 'spark.master=yarn', 'app.py'] });
  });
});

describe('owned settings through run parameters', () => {
  const sparkStep = (spark: Record<string, unknown>): Step =>
    ({ name: 'agg', spark: { mainApplication: 'local:///app.jar', ...spark } }) as Step;
  const record = { launchId: 'l', launchedAt: 0, node: 'n' };

  it('admits ${} it cannot judge, then refuses the resolved values at launch', () => {
    for (const [spark, value] of [
      [{ args: ['${p}', 'local'] }, '--master'],
      [{ args: ['--conf', '${p}'] }, 'spark.kubernetes.namespace=kube-system'],
      [{ args: ['${p}'] }, '--conf=spark.kubernetes.authenticate.driver.serviceAccountName=admin'],
      [{ args: ['-c${p}'] }, 'spark.master=local'],
    ] as const) {
      const wf = workflow(sparkStep(spark));
      expect(validateDocument(wf, { spark: {} })).toEqual([]);
      const resolved = resolveStep(sparkStep(spark), 'spec.definition.step', { p: value }, true);
      const req = {
        namespace: 'team-a',
        run: 'r',
        workflow: 'w',
        instance: 'agg',
        attempt: 1,
        step: { name: 'agg', type: 'spark' as const, spark: resolved.spark as ExecutorStep['spark'] },
      };
      expect(() => buildPod(req, record)).toThrow(PodSpecError);
      expect(sparkOwnershipProblem(req.step.spark)?.field).toMatch(/^spark\.args\[\d\]$/);
    }
  });

  it('refuses owned conf keys and arguments at admission, with the field path', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ conf: { 'spark.master': 'local' } }, 'spec.definition.step.spark.conf["spark.master"]'],
      [
        { conf: { ' Spark.Kubernetes.Namespace': 'x' } },
        'spec.definition.step.spark.conf[" Spark.Kubernetes.Namespace"]',
      ],
      [
        { conf: { 'spark.kubernetes.authenticate.driver.serviceAccountName': 'x' } },
        'spec.definition.step.spark.conf["spark.kubernetes.authenticate.driver.serviceAccountName"]',
      ],
      [{ args: ['a', '--master', 'local'] }, 'spec.definition.step.spark.args[1]'],
      [{ args: ['--conf', 'spark.submit.deployMode=cluster'] }, 'spec.definition.step.spark.args[1]'],
    ];
    for (const [spark, path] of cases) {
      const issues = validateDocument(workflow(sparkStep(spark)), { spark: {} });
      expect(issues.map((i) => [i.path, i.code])).toEqual([[path, 'STEP_SPARK_OWNED']]);
    }
    // the executors' image is owned only when the operator fixed it
    const image = workflow(sparkStep({ conf: { 'spark.kubernetes.container.image': 'x/y:1' } }));
    expect(validateDocument(image, { spark: {} })).toEqual([]);
    expect(validateDocument(image, { spark: { fixedImage: true } })[0]?.code).toBe('STEP_SPARK_OWNED');
    // without the operator (standalone, mesonctl validate) a step sets its own master
    expect(validateDocument(workflow(sparkStep({ conf: { 'spark.master': 'yarn' } })))).toEqual([]);
  });
});

describe('fillUrlTemplate', () => {
  it('encodes every value and leaves unknown placeholders', () => {
    expect(fillUrlTemplate('/{a}/{b}/{c}', { a: 'x/y', b: '?#&=' })).toBe('/x%2Fy/%3F%23%26%3D/{c}');
    expect(fillUrlTemplate('/{constructor}/{__proto__}', {})).toBe('/{constructor}/{__proto__}');
  });
});

function workflow(step: Step) {
  return {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name: 'w', namespace: 'team-a' },
    spec: { parameters: [{ name: 'p', type: 'string', value: 'x' }], definition: { step } },
  };
}
