// `mesonctl operator --mesos-endpoint` on the real control plane, against code no one here wrote:
// a framework built on pymesos (PyPI; test/mesos/install-pymesos.sh, which .ci/run calls before
// the tests) subscribes with HTTP Basic credentials, launches command tasks on offers made of
// KWOK node capacity, acknowledges every update and reconciles. Each task must become a Pod
// bound to the offered node (its command as one `sh -c` argument, its resources as requests and
// limits, labels naming framework and task), finish under KWOK, and be cleaned up.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type V1Pod, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  MESOS_EXECUTOR_ANNOTATION,
  MESOS_FRAMEWORK_ANNOTATION,
  MESOS_FRAMEWORK_LABEL,
  MESOS_TASK_ANNOTATION,
  MESOS_TASK_IDS_ANNOTATION,
  MESOS_TASK_LABEL,
} from '../../src/mesos-compat/pod-runner.ts';
import type { TaskInfo, TaskStatus } from '../../src/mesos-compat/schemas.ts';
import { MesosMasterSource } from '../../src/offer-adapter/mesos-source.ts';
import { BenchFramework } from '../bench/mesos-endpoint.ts';
import { freePorts } from '../cluster/health.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from '../operator/helpers.ts';
import { FRAMEWORK_SCRIPT, PYMESOS_VENV, PYTHON, run } from './framework-process.ts';

const venv = PYMESOS_VENV;
const python = PYTHON;
const script = FRAMEWORK_SCRIPT;
const ns = useNamespace('mesos-tasks');
const nodes = inject('clusterNodes');
const operators = useOperatorProcesses();
let kubeconfig: string;
const dir = mkdtempSync(join(tmpdir(), 'meson-mesos-op-'));

beforeAll(async () => {
  if (!existsSync(python)) {
    throw new Error(`pymesos venv missing at ${venv}: run bash test/mesos/install-pymesos.sh (.ci/run does)`);
  }
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An operator serving the endpoint for this namespace's tasks; resolves once it listens. */
async function endpointOperator(name: string, args: string[]) {
  const [port] = await freePorts(1);
  const o = operators.track(
    await spawnOperator(name, kubeconfig, [
      `--namespace=${ns.name}`,
      `--state-namespace=${OPERATOR_NAMESPACE}`,
      `--mesos-endpoint=127.0.0.1:${port}`,
      `--mesos-task-namespace=${ns.name}`,
      ...args,
    ]),
  );
  await reconciling(o);
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the mesos endpoint to listen', async () =>
    (await fetch(`${base}/version`).catch(() => undefined))?.ok ? true : undefined,
  );
  return { o, base };
}

describe('mesonctl operator --mesos-endpoint with a pymesos framework', () => {
  it('runs every task as a Pod bound to the offered KWOK node; the framework sees them finish', async () => {
    const [port] = await freePorts(1);
    const o = operators.track(
      await spawnOperator(
        'mesos-endpoint-a',
        kubeconfig,
        [
          `--namespace=${ns.name}`,
          `--state-namespace=${OPERATOR_NAMESPACE}`,
          `--mesos-endpoint=127.0.0.1:${port}`,
          `--mesos-task-namespace=${ns.name}`,
          '--mesos-endpoint-option=allocationIntervalMs=100',
          '--mesos-endpoint-option=heartbeatIntervalSeconds=1',
        ],
        { MESON_MESOS_ENDPOINT_CREDENTIALS: 'pymesos-test:s3cret' },
      ),
    );
    await reconciling(o);
    // the endpoint listens once the reconciler runs: wait for it
    const base = `http://127.0.0.1:${port}`;
    await waitFor('the mesos endpoint to listen', async () =>
      (await fetch(`${base}/version`).catch(() => undefined))?.ok ? true : undefined,
    );
    // without the credentials, a framework gets nothing
    const refused = await fetch(`${base}/api/v1/scheduler`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'x', name: 'x' } } }),
    });
    expect(refused.status).toBe(401);
    expect((await fetch(`${base}/master/state`)).status).toBe(401);

    // every Pod the tasks get, as first created and as last seen
    const seen = new Map<string, { created: V1Pod; last: V1Pod; deleted: boolean }>();
    const watch = await new Watch(ns.kc).watch(
      `/api/v1/namespaces/${ns.name}/pods`,
      {},
      (type: string, pod: V1Pod) => {
        const name = pod.metadata?.name ?? '';
        const s = seen.get(name);
        if (!s) seen.set(name, { created: pod, last: pod, deleted: type === 'DELETED' });
        else {
          s.last = pod;
          if (type === 'DELETED') s.deleted = true;
        }
      },
      () => {},
    );
    try {
      const N = 6;
      const summaryPath = join(dir, 'summary.json');
      const { code, out } = await run(
        python,
        [script, `127.0.0.1:${port}`, String(N), summaryPath],
        120_000,
        { MESOS_PRINCIPAL: 'pymesos-test', MESOS_SECRET: 's3cret', MESOS_DEADLINE_S: '90' },
      );
      expect(code, `${out}\n--- operator log ---\n${o.stdout().slice(-4000)}`).toBe(0);
      const s = JSON.parse(readFileSync(summaryPath, 'utf8'));
      expect(s.ok).toBe(true);
      expect(s.launched).toHaveLength(N);
      for (const t of s.launched) expect(s.states[t]).toBe('TASK_FINISHED');
      // offers are the KWOK nodes
      for (const h of s.offer_hosts) expect(nodes).toContain(h);
      // the framework saw STARTING/RUNNING before FINISHED, each with a uuid it acknowledged
      const updates = s.history.filter(
        (h: [string, string, boolean, string | null]) => h[3] !== 'REASON_RECONCILIATION',
      );
      expect(updates.every((h: [string, string, boolean]) => h[2])).toBe(true);
      expect(s.acked).toHaveLength(updates.length);
      for (const t of s.launched) {
        const states = updates.filter((h: string[]) => h[0] === t).map((h: string[]) => h[1]);
        expect(states.at(-1)).toBe('TASK_FINISHED');
        expect(states).toContain('TASK_RUNNING');
      }
      expect(s.reconciled).toEqual([
        [s.launched[0], 'TASK_FINISHED'],
        ['no-such-task', 'TASK_LOST'],
      ]);

      // one Pod per task, bound to a KWOK node, the command as ONE argument of sh -c
      const byTask = new Map<string, { created: V1Pod; last: V1Pod; deleted: boolean }>();
      for (const p of seen.values())
        byTask.set(p.created.metadata?.annotations?.[MESOS_TASK_ANNOTATION] ?? '', p);
      expect([...byTask.keys()].sort()).toEqual([...s.launched].sort());
      for (const t of s.launched) {
        const p = byTask.get(t)!;
        const pod = p.created;
        expect(nodes).toContain(pod.spec?.nodeName);
        expect(pod.metadata?.labels?.[MESOS_TASK_LABEL]).toBe(t);
        expect(pod.metadata?.annotations?.[MESOS_FRAMEWORK_ANNOTATION]).toBe(s.framework_id);
        expect(pod.spec?.containers[0]?.command).toEqual(['/bin/sh', '-c', `echo hello from ${t}`]);
        expect(pod.spec?.containers[0]?.resources?.requests).toEqual({ cpu: '100m', memory: '32Mi' });
        expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ cpu: '100m', memory: '32Mi' });
        expect(pod.spec?.automountServiceAccountToken).toBe(false);
        // KWOK ran it to completion
        expect(p.last.status?.phase === 'Succeeded' || p.deleted).toBe(true);
      }
      // finished task Pods are removed
      await waitFor('the finished task pods to be deleted', async () =>
        [...seen.values()].every((p) => p.deleted) ? true : undefined,
      );
    } finally {
      watch.abort();
    }
  });

  it('KILL deletes the Pod, a Pod deleted by someone else is LOST, a removed framework loses all; a new leader deletes orphans', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    // a task Pod a previous leader left behind
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'orphan', labels: { [MESOS_FRAMEWORK_LABEL]: 'old' } },
        spec: {
          nodeName: nodes[0],
          restartPolicy: 'Never',
          containers: [{ name: 'task', image: 'busybox' }],
        },
      },
    });
    const [port] = await freePorts(1);
    const o = operators.track(
      await spawnOperator('mesos-endpoint-b', kubeconfig, [
        `--namespace=${ns.name}`,
        `--state-namespace=${OPERATOR_NAMESPACE}`,
        `--mesos-endpoint=127.0.0.1:${port}`,
        `--mesos-task-namespace=${ns.name}`,
        '--mesos-endpoint-option=allocationIntervalMs=100',
        // task Pods run until deleted (KWOK)
        '--pod-annotation=kwok.meson.dev/run-forever=true',
      ]),
    );
    await reconciling(o);
    await waitFor('the orphan task pod to be deleted', async () =>
      (await core.listNamespacedPod({ namespace: ns.name })).items.some((p) => p.metadata?.name === 'orphan')
        ? undefined
        : true,
    );

    const updates: TaskStatus[] = [];
    const ids = ['k1', 'k2', 'k3'];
    const client = new MesosMasterSource({
      master: `http://127.0.0.1:${port}`,
      // failover_timeout 0: the framework is removed as soon as it disconnects (as a TEARDOWN)
      frameworkInfo: { user: 'test', name: 'kill-test', failover_timeout: 0 },
      store: { load: async () => undefined, save: async () => {} },
      onUpdate: (st) => updates.push(st),
      knownTasks: () => ids.map((taskId) => ({ taskId })),
      reconcileIntervalMs: 300,
    });
    client.start();
    try {
      const offer = await waitFor('an offer', async () => client.offers()[0]);
      const tasks: TaskInfo[] = ids.map((id) => ({
        name: id,
        task_id: { value: id },
        agent_id: { value: offer.agentId! },
        resources: [
          { name: 'cpus', type: 'SCALAR', scalar: { value: 0.25 } },
          { name: 'mem', type: 'SCALAR', scalar: { value: 16 } },
        ],
        command: { value: 'sleep 3600' },
      }));
      await client.accept([offer.id], tasks, 0);
      const state = (id: string, s: string, reconciled = false) =>
        waitFor(
          `${id} ${s}${reconciled ? ' (reconciled)' : ''}`,
          async () =>
            updates.some(
              (u) =>
                u.task_id.value === id &&
                u.state === s &&
                (u.reason === 'REASON_RECONCILIATION') === reconciled,
            )
              ? true
              : undefined,
          { describe: () => JSON.stringify(updates.map((u) => [u.task_id.value, u.state, u.reason])) },
        );
      for (const id of ids) await state(id, 'TASK_RUNNING');
      const podOf = async (id: string) =>
        (await core.listNamespacedPod({ namespace: ns.name })).items.find(
          (p) => p.metadata?.annotations?.[MESOS_TASK_ANNOTATION] === id,
        );
      expect((await podOf('k1'))?.spec?.nodeName).toBe(offer.hostname);
      // RECONCILE reflects the Pods
      await state('k3', 'TASK_RUNNING', true);

      await client.kill('k1');
      await state('k1', 'TASK_KILLED');
      await waitFor('k1 pod gone', async () => ((await podOf('k1')) ? undefined : true));
      await state('k1', 'TASK_KILLED', true);

      const k2 = (await podOf('k2'))!;
      await core.deleteNamespacedPod({ name: k2.metadata!.name!, namespace: ns.name });
      await state('k2', 'TASK_LOST');

      // the framework goes (failover_timeout 0): its last task is killed, its Pod deleted
      await client.stop();
      await waitFor('k3 pod gone', async () => ((await podOf('k3')) ? undefined : true));
    } finally {
      await client.stop();
    }
  });

  it('shares the nodes with workflow steps: both finish, no node is ever promised more than it has', async () => {
    const { o, base } = await endpointOperator('mesos-endpoint-c', [
      '--mesos-endpoint-option=allocationIntervalMs=200',
      // steps and tasks alike run 2 s under KWOK
      '--pod-annotation=kwok.meson.dev/duration=2s',
    ]);
    // cpu requested by the live Pods of this namespace on each node, and the most ever seen
    const live = new Map<string, { node: string; milli: number; mesos: boolean }>();
    const peak = new Map<string, number>();
    let mesosPods = 0;
    let stepPods = 0;
    const milli = (q: string | undefined) =>
      q?.endsWith('m') ? Number(q.slice(0, -1)) : Number(q ?? 0) * 1000;
    const watch = await new Watch(ns.kc).watch(
      `/api/v1/namespaces/${ns.name}/pods`,
      {},
      (type: string, pod: V1Pod) => {
        const key = pod.metadata?.name ?? '';
        const phase = pod.status?.phase;
        if (type === 'DELETED' || phase === 'Succeeded' || phase === 'Failed') live.delete(key);
        else if (pod.spec?.nodeName && !live.has(key)) {
          const mesos = pod.metadata?.labels?.[MESOS_FRAMEWORK_LABEL] !== undefined;
          if (mesos) mesosPods++;
          else stepPods++;
          const cpu = pod.spec.containers.reduce((n, c) => n + milli(c.resources?.requests?.cpu), 0);
          live.set(key, { node: pod.spec.nodeName, milli: cpu, mesos });
        }
        const byNode = new Map<string, number>();
        for (const p of live.values()) byNode.set(p.node, (byNode.get(p.node) ?? 0) + p.milli);
        for (const [n, m] of byNode) peak.set(n, Math.max(peak.get(n) ?? 0, m));
      },
      () => {},
    );
    try {
      // 16 steps of 3 cpus: more than the 4 nodes' 32 cpus at once, so steps wait
      const workflow = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: heavy, namespace: ${ns.name} }
spec:
  definition:
    foreach:
      items: "range(16)"
      as: i
      do:
        step: { name: work, resources: { cpus: 3, memory: 1Gi }, container: { image: busybox, command: [sh, -c, "echo \${i}"] } }
`;
      const applied = await kubectlAsync(['apply', '-f', '-'], workflow);
      expect(applied.status, applied.stderr).toBe(0);
      const custom = ns.kc.makeApiClient(CustomObjectsApi);
      await waitFor('the workflow to be versioned', async () => {
        const wf = (await custom.getNamespacedCustomObject({
          group: 'meson.dev',
          version: 'v1alpha1',
          namespace: ns.name,
          plural: 'workflows',
          name: 'heavy',
        })) as { status?: { latestVersion?: number } };
        return wf.status?.latestVersion ? true : undefined;
      });
      const created = await kubectlAsync(
        ['apply', '-f', '-'],
        `apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: heavy-1, namespace: ${ns.name} }
spec: { workflow: heavy }
`,
      );
      expect(created.status, created.stderr).toBe(0);
      // meanwhile a framework wants 16 tasks of 1 cpu
      const summaryPath = join(dir, 'shared.json');
      const framework = run(python, [script, base.slice('http://'.length), '16', summaryPath], 150_000, {
        MESOS_TASK_CPUS: '1',
        MESOS_DEADLINE_S: '120',
      });
      const done = await kubectlAsync([
        'wait',
        '--for=condition=Succeeded',
        `--namespace=${ns.name}`,
        'workflowrun/heavy-1',
        '--timeout=150s',
      ]);
      expect(done.status, `${done.stderr}\n${o.stdout().slice(-3000)}`).toBe(0);
      const { code, out } = await framework;
      expect(code, out).toBe(0);
      const s = JSON.parse(readFileSync(summaryPath, 'utf8'));
      for (const t of s.launched) expect(s.states[t]).toBe('TASK_FINISHED');
      expect(stepPods).toBeGreaterThanOrEqual(16);
      expect(mesosPods).toBe(16);
      // KWOK nodes have 8 cpus: steps and tasks together never asked one for more
      for (const [n, m] of peak) expect(m, `cpu requested on ${n}`).toBeLessThanOrEqual(8000);
    } finally {
      watch.abort();
    }
  });

  it('LAUNCH_GROUP: a group of 2 tasks is ONE Pod of 2 containers on the offered KWOK node; both finish, acknowledged', async () => {
    const { base } = await endpointOperator('mesos-endpoint-d', [
      '--mesos-endpoint-option=allocationIntervalMs=100',
    ]);
    const seen = new Map<string, { created: V1Pod; deleted: boolean }>();
    const watch = await new Watch(ns.kc).watch(
      `/api/v1/namespaces/${ns.name}/pods`,
      {},
      (type: string, pod: V1Pod) => {
        const name = pod.metadata?.name ?? '';
        const s = seen.get(name) ?? { created: pod, deleted: false };
        if (type === 'DELETED') s.deleted = true;
        seen.set(name, s);
      },
      () => {},
    );
    const client = new BenchFramework(base, () => {});
    const updates: TaskStatus[] = [];
    let host: string | undefined;
    const ids = ['ga', 'gb'];
    client.onUpdate = (st) => updates.push(st);
    client.onOffers = (offers) => {
      for (const offer of offers) {
        if (host !== undefined) {
          client.call({
            type: 'DECLINE',
            decline: { offer_ids: [offer.id], filters: { refuse_seconds: 3600 } },
          });
          continue;
        }
        host = offer.hostname;
        const resources = [
          { name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } },
          { name: 'mem', type: 'SCALAR', scalar: { value: 32 } },
        ];
        client.call({
          type: 'ACCEPT',
          accept: {
            offer_ids: [offer.id],
            operations: [
              {
                type: 'LAUNCH_GROUP',
                launch_group: {
                  executor: { type: 'DEFAULT', executor_id: { value: 'grp-exec' }, resources },
                  task_group: {
                    tasks: ids.map((id) => ({
                      name: id,
                      task_id: { value: id },
                      agent_id: offer.agent_id,
                      resources,
                      command: { value: `echo hello from ${id}; exit 0` },
                    })),
                  },
                },
              },
            ],
          },
        });
      }
    };
    await client.subscribe();
    try {
      const states = (id: string) => updates.filter((u) => u.task_id.value === id).map((u) => u.state);
      await waitFor(
        'both tasks of the group to finish',
        async () => (ids.every((id) => states(id).includes('TASK_FINISHED')) ? true : undefined),
        { describe: () => JSON.stringify(updates.map((u) => [u.task_id.value, u.state, u.message])) },
      );
      expect(client.error).toBeUndefined();
      for (const id of ids) {
        // only the oldest unacknowledged update is sent: RUNNING then FINISHED means acks flowed
        expect(states(id)).toContain('TASK_RUNNING');
        expect(states(id).at(-1)).toBe('TASK_FINISHED');
      }
      expect(updates.every((u) => u.uuid !== undefined && u.source === 'SOURCE_EXECUTOR')).toBe(true);
      const groupPods = [...seen.values()].filter(
        (p) => p.created.metadata?.annotations?.[MESOS_EXECUTOR_ANNOTATION] === 'grp-exec',
      );
      expect(groupPods).toHaveLength(1);
      const pod = groupPods[0]!.created;
      expect(nodes).toContain(host);
      expect(pod.spec?.nodeName).toBe(host);
      expect(JSON.parse(pod.metadata?.annotations?.[MESOS_TASK_IDS_ANNOTATION] ?? '[]')).toEqual(ids);
      expect(pod.spec?.containers.map((c) => c.command)).toEqual(
        ids.map((id) => ['/bin/sh', '-c', `echo hello from ${id}; exit 0`]),
      );
      // the executor's 0.1 cpus and 32 MB ride on the first container
      expect(pod.spec?.containers.map((c) => c.resources?.requests)).toEqual([
        { cpu: '200m', memory: '64Mi' },
        { cpu: '100m', memory: '32Mi' },
      ]);
      await waitFor('the group pod to be deleted', async () => (groupPods[0]!.deleted ? true : undefined));
    } finally {
      watch.abort();
      await client.teardown();
    }
  });
});
