// Spark steps in operator mode on the real control plane: the webhook refuses a step that sets
// what the operator owns, a spark step's Pod is the Spark driver (client mode: the Spark image,
// its service account's token, its IP, the owned settings in its task), its "Spark UI" link is in
// the REST step view while the step runs, and a value a run supplies cannot take an owned
// setting either (refused at launch). KWOK plays the kubelets: no container runs.
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TaskFile } from '../../executors/protocol.ts';
import { KubernetesLauncher } from '../../src/launchers/kubernetes.ts';
import type { AttemptUpdate } from '../../src/launchers/types.ts';
import { freePorts } from '../cluster/health.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  reconciling,
  registerWebhook,
  spawnOperator,
  unregisterWebhook,
  useOperatorProcesses,
  userKubeconfig,
  type WebhookCerts,
  waitWebhookActive,
  webhookCerts,
} from './helpers.ts';

const ns = useNamespace('spark');
const core = () => ns.kc.makeApiClient(CoreV1Api);
const operators = useOperatorProcesses();
const WEBHOOK = 'meson-spark-test';
const TOKEN = 'spark-test-token';
let kubeconfig = '';
let certs: WebhookCerts;

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
  certs = webhookCerts();
});
afterAll(async () => {
  await unregisterWebhook(WEBHOOK);
});

async function apply(yaml: string): Promise<{ status: number | null; stderr: string }> {
  return kubectlAsync(['apply', '-f', '-'], yaml);
}

const WORKFLOW = (name: string, spark: string) => `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: ${name}, namespace: ${ns.name} }
spec:
  parameters:
    - { name: opt, type: string, value: "--date" }
  definition:
    step:
      name: agg
      spark: ${spark}
      resources: { cpus: "1", memory: 1Gi }
`;

const RUN = (name: string, workflow: string, opt?: string) => `apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: ${name}, namespace: ${ns.name} }
spec:
  workflow: ${workflow}
${opt === undefined ? '' : `  parameters: [{ name: opt, value: "${opt}" }]\n`}`;

interface StepView {
  id: string;
  phase: string;
  message?: string;
  links?: { name: string; url: string }[];
}

async function steps(rest: string, run: string): Promise<StepView[]> {
  const res = await fetch(`${rest}/api/v1/namespaces/${ns.name}/runs/${run}/steps`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  if (res.status !== 200) return [];
  return ((await res.json()) as { items: StepView[] }).items;
}

describe('spark steps in operator mode', () => {
  it('refuses owned settings at admission, runs the driver as the step Pod, and shows its Spark UI link while it runs', async () => {
    const [restPort, webhookPort] = await freePorts(2);
    const op = operators.track(
      await spawnOperator(
        'spark',
        kubeconfig,
        [
          `--namespace=${ns.name}`,
          `--state-namespace=${OPERATOR_NAMESPACE}`,
          '--pod-annotation=kwok.meson.dev/run-forever=true',
          `--rest-listen=127.0.0.1:${restPort}`,
          `--webhook-listen=127.0.0.1:${webhookPort}`,
          `--webhook-cert=${certs.certFile}`,
          `--webhook-key=${certs.keyFile}`,
          '--spark-image=registry.example/meson/executor-spark:3.5.3',
          '--spark-service-account=spark-driver',
          '--spark-ui-url=https://k8s.example/proxy/{namespace}/{pod}/',
        ],
        { MESON_API_TOKEN: TOKEN },
      ),
    );
    await reconciling(op);
    await registerWebhook(WEBHOOK, `https://127.0.0.1:${webhookPort}`, certs.ca, ns.name);
    await waitWebhookActive(ns.name);
    const rest = `http://127.0.0.1:${restPort}`;

    // admission: an owned conf key (any case) or argument is refused, with its field path
    const owned = await apply(
      WORKFLOW(
        'owned',
        '{ mainApplication: "local:///app.jar", conf: { "Spark.Kubernetes.Namespace": kube-system } }',
      ),
    );
    expect(owned.status).not.toBe(0);
    expect(owned.stderr).toContain('spec.definition.step.spark.conf["Spark.Kubernetes.Namespace"]');
    expect(owned.stderr).toContain('cannot be set by a step');
    const arg = await apply(
      WORKFLOW('owned', '{ mainApplication: "local:///app.jar", args: ["--master", local] }'),
    );
    expect(arg.stderr).toContain('spec.definition.step.spark.args[0]');

    const ok = await apply(
      WORKFLOW(
        'agg',
        '{ mainApplication: "local:///opt/app.py", args: ["${opt}", "2024-01-01"], conf: { spark.executor.cores: 2 } }',
      ),
    );
    expect(ok.status, ok.stderr).toBe(0);
    expect((await apply(RUN('agg-1', 'agg'))).status).toBe(0);

    const [pod] = await waitFor(
      'the spark step Pod Running',
      async () => {
        const pods = (
          await core().listNamespacedPod({ namespace: ns.name, labelSelector: 'meson.dev/run=agg-1' })
        ).items;
        return pods.length === 1 && pods[0]!.status?.phase === 'Running' ? pods : undefined;
      },
      { timeoutMs: 60_000, describe: () => op.stdout().slice(-2000) },
    );
    const name = pod!.metadata!.name!;
    const c = pod!.spec!.containers[0]!;
    expect(c.image).toBe('registry.example/meson/executor-spark:3.5.3');
    expect(pod!.spec!.serviceAccountName).toBe('spark-driver');
    expect(pod!.spec!.automountServiceAccountToken).toBe(true);
    expect(c.env).toContainEqual({
      name: 'MESON_POD_IP',
      valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } },
    });
    const task = JSON.parse(c.env!.find((e) => e.name === 'MESON_TASK')!.value!) as TaskFile;
    expect(task.step.spark?.args).toEqual(['--date', '2024-01-01']);
    expect(task.sparkSubmit?.conf).toMatchObject({
      'spark.kubernetes.namespace': ns.name,
      'spark.kubernetes.driver.pod.name': name,
    });
    expect(task.sparkSubmit?.defaults).toEqual({
      'spark.kubernetes.container.image': 'registry.example/meson/executor-spark:3.5.3',
    });

    // the link, while the step runs
    const running = await waitFor(
      'the Spark UI link in the REST step view of the running step',
      async () => {
        const s = (await steps(rest, 'agg-1')).find((x) => x.id === 'agg');
        return s?.phase === 'Running' && s.links?.length ? s : undefined;
      },
      { timeoutMs: 30_000, describe: () => op.stdout().slice(-2000) },
    );
    expect(running.links).toEqual([
      { name: 'Spark UI', url: `https://k8s.example/proxy/${ns.name}/${name}/` },
    ]);

    // a value from the run cannot take an owned setting: the launch refuses it
    expect((await apply(RUN('agg-2', 'agg', '--master'))).status).toBe(0);
    const refused = await waitFor(
      'the step of agg-2 failed at launch',
      async () => {
        const s = (await steps(rest, 'agg-2')).find((x) => x.id === 'agg');
        return s?.phase === 'Failed' ? s : undefined;
      },
      { timeoutMs: 30_000, describe: () => op.stdout().slice(-2000) },
    );
    expect(refused.message).toMatch(/POD_SPARK_OWNED: spark\.args\[0\]: "--master" sets --master/);
    const pods2: V1Pod[] = (
      await core().listNamespacedPod({ namespace: ns.name, labelSelector: 'meson.dev/run=agg-2' })
    ).items;
    expect(pods2).toEqual([]);
  });
});

describe('the Pod launcher and the Spark UI link', () => {
  it('reports the link once the Pod exists, before the attempt ends, and keeps it before the step’s own links', async () => {
    const updates: AttemptUpdate[] = [];
    const own = [
      { name: 'Spark UI', url: 'https://elsewhere.example/' },
      { name: 'report', url: 'https://reports.example/1' },
    ];
    const launcher = new KubernetesLauncher({
      kubeConfig: ns.kc,
      onUpdate: (u) => updates.push(u),
      newLaunchId: () => 'spark1',
      annotations: {
        'kwok.meson.dev/duration': '2s',
        'kwok.meson.dev/termination-message': JSON.stringify({ links: own }),
      },
    });
    try {
      const req = {
        namespace: ns.name,
        run: 'direct',
        workflow: 'wf',
        instance: 'agg',
        attempt: 1,
        step: { name: 'agg', type: 'spark' as const, spark: { mainApplication: 'local:///app.py' } },
        queuedAt: Date.now(),
      };
      const record = launcher.prepare(req);
      record.node = inject('clusterNodes')[0]!;
      launcher.launch(req, record);
      const ui = {
        name: 'Spark UI',
        url: `http://127.0.0.1:8001/api/v1/namespaces/${ns.name}/pods/${record.pod}:4040/proxy/`,
      };
      const finished = await waitFor(
        'the attempt to finish',
        async () => updates.find((u) => u.type === 'finished'),
        { timeoutMs: 60_000, describe: () => JSON.stringify(updates) },
      );
      const types = updates.map((u) => u.type);
      expect(types.indexOf('links')).toBeGreaterThanOrEqual(0);
      expect(types.indexOf('links')).toBeLessThan(types.indexOf('finished'));
      expect(updates.find((u) => u.type === 'links')).toMatchObject({ links: [ui] });
      expect(finished.type === 'finished' && finished.status.phase).toBe('Succeeded');
      expect(finished.type === 'finished' && finished.status.links).toEqual([ui, own[1]]);
    } finally {
      launcher.close();
    }
  });
});
