// The Kubernetes launcher on the real control plane: one Pod per attempt, bound to the node our
// scheduler chose, outputs through the termination message, kubelet rejections lost, kill =
// delete, adoption by a new launcher. KWOK plays the kubelets (test/cluster/kwok-stages.yaml).
import { randomBytes } from 'node:crypto';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { KubernetesLauncher, type KubernetesLauncherOptions } from '../../src/launchers/kubernetes.ts';
import { RUN_LABEL } from '../../src/launchers/kubernetes-pod.ts';
import type { AttemptUpdate, LaunchRecord, LaunchRequest } from '../../src/launchers/types.ts';
import { installCrds } from '../cluster/crds.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { gone, waitFor } from '../cluster/wait.ts';

const ns = useNamespace('launch');
const core = ns.kc.makeApiClient(CoreV1Api);
const nodes = inject('clusterNodes');
const launchers: KubernetesLauncher[] = [];

afterEach(() => {
  for (const l of launchers.splice(0)) l.close();
});

interface Harness {
  launcher: KubernetesLauncher;
  updates: AttemptUpdate[];
  /** Waits for an update of `type` for `instance` (and returns it). */
  next(type: AttemptUpdate['type'], instance: string): Promise<AttemptUpdate>;
}

function harness(opts: Partial<KubernetesLauncherOptions> = {}): Harness {
  const updates: AttemptUpdate[] = [];
  let ids = 0;
  const launcher = new KubernetesLauncher({
    kubeConfig: ns.kc,
    onUpdate: (u) => updates.push(u),
    newLaunchId: () => `${randomBytes(3).toString('hex')}${++ids}`,
    executorImage: 'example.invalid/meson-executor:test',
    ...opts,
  });
  launchers.push(launcher);
  return {
    launcher,
    updates,
    next: (type, instance) =>
      waitFor(
        `a ${type} update for ${instance}`,
        async () => updates.find((u) => u.type === type && u.key.instance === instance),
        { timeoutMs: 30_000, intervalMs: 50, describe: () => JSON.stringify(updates) },
      ),
  };
}

function request(instance: string, over: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    namespace: ns.name,
    run: 'run-1',
    workflow: 'wf',
    instance,
    attempt: 1,
    step: { name: 'step', type: 'shell', shell: { script: 'echo hi' } },
    queuedAt: Date.now(),
    resources: { cpuMillis: 100, memoryBytes: 64 * 2 ** 20, diskBytes: 0, gpus: 0 },
    ...over,
  };
}

function place(h: Harness, req: LaunchRequest, node: string): LaunchRecord {
  const record = h.launcher.prepare(req);
  record.node = node;
  return record;
}

async function pods(): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: ns.name })).items;
}

function podGone(name: string): Promise<true | undefined> {
  return gone(() => core.readNamespacedPod({ namespace: ns.name, name }));
}

describe('KubernetesLauncher', () => {
  it('launches N attempts as exactly N pods bound to the chosen nodes; a repeated launch makes none', async () => {
    const h = harness({ annotations: { 'kwok.meson.dev/duration': '300ms' } });
    const n = 6;
    const launched: { req: LaunchRequest; record: LaunchRecord }[] = [];
    for (let i = 0; i < n; i++) {
      const req = request(`s[${i}]`);
      const record = place(h, req, nodes[i % nodes.length]!);
      h.launcher.launch(req, record);
      launched.push({ req, record });
    }
    // the same launch again (a controller repeating itself after a restart): 409, no new pod
    h.launcher.launch(launched[0]!.req, launched[0]!.record);
    h.launcher.launch(launched[1]!.req, { ...launched[1]!.record });
    for (let i = 0; i < n; i++) {
      const u = await h.next('finished', `s[${i}]`);
      expect(u.type === 'finished' && u.status.phase).toBe('Succeeded');
    }
    const all = await pods();
    expect(all.length).toBe(n);
    for (const { req, record } of launched) {
      const pod = all.find((p) => p.metadata?.name === record.pod)!;
      expect(pod, record.pod).toBeDefined();
      expect(pod.spec?.nodeName).toBe(record.node);
      expect(pod.metadata?.annotations?.['meson.dev/step-instance']).toBe(req.instance);
      expect(pod.metadata?.labels?.[RUN_LABEL]).toBe('run-1');
      expect(pod.spec?.automountServiceAccountToken).toBe(false);
      expect(pod.spec?.containers[0]?.securityContext?.capabilities?.drop).toEqual(['ALL']);
      expect(pod.spec?.containers[0]?.resources?.requests).toEqual({ cpu: '100m', memory: '64Mi' });
    }
    // one finished update per attempt, not one per launch call
    expect(h.updates.filter((u) => u.type === 'finished').length).toBe(n);
  });

  it('brings outputs and links back through the termination message', async () => {
    const message = JSON.stringify({
      outputs: { rows: 1234, table: 'views' },
      links: [{ name: 'ui', url: 'http://ui/1' }],
    });
    const h = harness({
      annotations: { 'kwok.meson.dev/duration': '200ms', 'kwok.meson.dev/termination-message': message },
    });
    const req = request('out');
    h.launcher.launch(req, place(h, req, nodes[0]!));
    const u = await h.next('finished', 'out');
    expect(u.type === 'finished' && u.status).toMatchObject({
      phase: 'Succeeded',
      exitCode: 0,
      outputs: { rows: 1234, table: 'views' },
      links: [{ name: 'ui', url: 'http://ui/1' }],
    });
    expect(h.updates.some((x) => x.type === 'running' && x.key.instance === 'out')).toBe(true);
  });

  it('reports a failed step with its exit code and message, and a bad envelope as a failure', async () => {
    const h = harness({
      annotations: {
        'kwok.meson.dev/duration': '200ms',
        'kwok.meson.dev/exit-code': '3',
        'kwok.meson.dev/termination-message': JSON.stringify({ message: 'exit code 3' }),
      },
    });
    const req = request('fails');
    h.launcher.launch(req, place(h, req, nodes[1]!));
    const u = await h.next('finished', 'fails');
    expect(u.type === 'finished' && u.status).toMatchObject({ phase: 'Failed', exitCode: 3 });
    expect(u.type === 'finished' && u.status.message).toContain('exit code 3');

    const bad = harness({
      annotations: {
        'kwok.meson.dev/duration': '200ms',
        'kwok.meson.dev/termination-message': '{"outputs": {"__proto__": 1}}',
      },
    });
    const r2 = request('bad-envelope');
    bad.launcher.launch(r2, place(bad, r2, nodes[1]!));
    const u2 = await bad.next('finished', 'bad-envelope');
    expect(u2.type === 'finished' && u2.status.phase).toBe('Failed');
    expect(u2.type === 'finished' && u2.status.message).toContain('__proto__');
  });

  it('reports a pod the kubelet rejected (OutOfcpu) as lost, and removes it', async () => {
    const h = harness();
    const req = request('rejected');
    // a node kwok does not run: the test plays its kubelet
    const record = place(h, req, `no-kubelet-${randomBytes(3).toString('hex')}`);
    h.launcher.launch(req, record);
    await waitFor('the pod to exist', async () => ((await pods()).length === 1 ? true : undefined));
    await core.patchNamespacedPodStatus(
      {
        namespace: ns.name,
        name: record.pod!,
        body: {
          status: {
            phase: 'Failed',
            reason: 'OutOfcpu',
            message: "Pod Node didn't have enough resource: cpu",
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const u = await h.next('lost', 'rejected');
    expect(u.type === 'lost' && u.message).toContain('OutOfcpu');
    expect(h.updates.some((x) => x.type === 'finished')).toBe(false);
    await waitFor('the rejected pod to be removed', () => podGone(record.pod!));
  });

  it('kill deletes the pod and reports the attempt finished', async () => {
    const h = harness({ annotations: { 'kwok.meson.dev/run-forever': 'true' }, killGracePeriodSeconds: 1 });
    const req = request('forever');
    const record = place(h, req, nodes[2]!);
    h.launcher.launch(req, record);
    await h.next('running', 'forever');
    h.launcher.kill(req, record);
    const u = await h.next('finished', 'forever');
    expect(u.type === 'finished' && u.status.phase).toBe('Failed');
    expect(u.type === 'finished' && u.status.message).toContain('killed');
    await waitFor('the killed pod to go', () => podGone(record.pod!));
  });

  it('kills an attempt whose create is still in flight once the pod exists', async () => {
    const h = harness({ annotations: { 'kwok.meson.dev/run-forever': 'true' } });
    const req = request('early-kill');
    const record = place(h, req, nodes[0]!);
    h.launcher.launch(req, record);
    h.launcher.kill(req, record); // same tick: the create has not returned yet
    const u = await h.next('finished', 'early-kill');
    expect(u.type === 'finished' && u.status.message).toContain('killed');
    await waitFor('the pod to go', () => podGone(record.pod!));
  });

  it('a new launcher adopts running pods, and creates the pod of a launch that never got to it', async () => {
    const first = harness({ annotations: { 'kwok.meson.dev/duration': '4s' } });
    const req = request('adopted');
    const record = place(first, req, nodes[1]!);
    first.launcher.launch(req, record);
    await first.next('running', 'adopted');
    first.launcher.close(); // the operator dies

    // persisted, never created: the previous process died between the store write and the create
    const unborn = request('unborn');
    const unbornRecord = place(first, unborn, nodes[2]!);

    const second = harness({ annotations: { 'kwok.meson.dev/duration': '300ms' } });
    second.launcher.adopt(req, JSON.parse(JSON.stringify(record)), req);
    second.launcher.adopt(unborn, JSON.parse(JSON.stringify(unbornRecord)), unborn);
    second.launcher.adopt(req, JSON.parse(JSON.stringify(record)), req); // idempotent
    const running = await second.next('running', 'adopted');
    expect(running.type === 'running' && running.status.launchId).toBe(record.launchId);
    const done = await second.next('finished', 'adopted');
    expect(done.type === 'finished' && done.status.phase).toBe('Succeeded');
    const born = await second.next('finished', 'unborn');
    expect(born.type === 'finished' && born.status.phase).toBe('Succeeded');
    expect(second.updates.filter((u) => u.type === 'finished').length).toBe(2);
    const names = (await pods()).map((p) => p.metadata?.name).sort();
    expect(names).toEqual([record.pod, unbornRecord.pod].sort());
  });

  it('with namespaces, watches only theirs: runs its steps there and never sees another namespace’s step Pods', async () => {
    const other = `${ns.name}-x`;
    await core.createNamespace({ body: { metadata: { name: other, labels: { 'meson.dev/test': 'true' } } } });
    try {
      await core.createNamespacedPod({
        namespace: other,
        body: {
          metadata: {
            name: 'foreign',
            labels: { 'app.kubernetes.io/managed-by': 'meson' },
            annotations: { 'meson.dev/run': 'foreign-run' },
          },
          spec: { nodeName: 'no-such-node', containers: [{ name: 'c', image: 'busybox' }] },
        },
      });
      const h = harness({ namespaces: [ns.name], annotations: { 'kwok.meson.dev/duration': '300ms' } });
      const req = request('scoped');
      h.launcher.launch(req, place(h, req, nodes[0]!));
      const done = await h.next('finished', 'scoped');
      expect(done.type === 'finished' && done.status.phase).toBe('Succeeded');
      expect([...h.launcher.runsWithPods()]).toEqual([[ns.name, 'run-1', 'Succeeded']]);
      expect(h.launcher.cachedPod(other, 'foreign')).toBeUndefined();
      // one informer over all namespaces sees it
      const all = harness();
      await all.launcher.start();
      expect(all.launcher.cachedPod(other, 'foreign')?.metadata?.name).toBe('foreign');
    } finally {
      await core.deleteNamespace({ name: other }).catch(() => {});
    }
  });

  it('completes noop steps without a pod and fails a step that cannot be a pod without one', async () => {
    const h = harness();
    const noop = request('noop', { step: { name: 'n', type: 'noop' } });
    h.launcher.launch(noop, place(h, noop, nodes[0]!));
    const bad = request('bad', {
      step: { name: 'b', type: 'container', container: { image: 'i', env: [{ name: '1BAD', value: 'x' }] } },
    });
    h.launcher.launch(bad, place(h, bad, nodes[0]!));
    const unplaced = request('unplaced');
    h.launcher.launch(unplaced, h.launcher.prepare(unplaced));
    expect((await h.next('finished', 'noop')).type === 'finished').toBe(true);
    const b = await h.next('finished', 'bad');
    expect(b.type === 'finished' && b.status.message).toMatch(/^POD_BAD_ENV: container.env\[0\].name/);
    const u = await h.next('finished', 'unplaced');
    expect(u.type === 'finished' && u.status.message).toMatch(/^POD_NO_NODE/);
    expect(await pods()).toEqual([]);
  });

  it('owns its pods by the WorkflowRun: deleting the run deletes them', async () => {
    await installCrds();
    const custom = ns.kc.makeApiClient(CustomObjectsApi);
    const run = (await custom.createNamespacedCustomObject({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflowruns',
      body: {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name: 'run-1' },
        spec: { workflow: 'wf' },
      },
    })) as { metadata: { uid: string } };
    const h = harness({ annotations: { 'kwok.meson.dev/run-forever': 'true' } });
    const req = request('owned', { runUid: run.metadata.uid });
    const record = place(h, req, nodes[0]!);
    h.launcher.launch(req, record);
    await h.next('running', 'owned');
    const pod = await core.readNamespacedPod({ namespace: ns.name, name: record.pod! });
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'WorkflowRun',
      name: 'run-1',
      uid: run.metadata.uid,
    });
    await custom.deleteNamespacedCustomObject({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflowruns',
      name: 'run-1',
    });
    await waitFor('the garbage collector to delete the pod', () => podGone(record.pod!), {
      timeoutMs: 60_000,
    });
  });

  it('per-Pod GC deletes a finished Pod only once settled (after the delay); OnPodSuccess keeps a failed one', async () => {
    const podNamed = async (name: string) => (await pods()).find((p) => p.metadata?.name === name);
    const completion = harness({
      annotations: { 'kwok.meson.dev/duration': '200ms' },
      finishedPodGc: { succeededOnly: false, delayMs: 1_500 },
    });
    const req = request('collected');
    const record = place(completion, req, nodes[0]!);
    completion.launcher.launch(req, record);
    await completion.next('finished', 'collected');
    // its end is not committed yet (no settled): the Pod is the attempt's only record
    await new Promise((r) => setTimeout(r, 500));
    expect(await podNamed(record.pod!)).toBeDefined();
    completion.launcher.settled(req);
    // the delay keeps it (and its log) a while
    await new Promise((r) => setTimeout(r, 500));
    expect(await podNamed(record.pod!)).toBeDefined();
    expect(completion.launcher.pendingPodDeletes).toBe(1);
    await waitFor('the settled pod to be deleted', () => podGone(record.pod!), { timeoutMs: 20_000 });
    expect(completion.launcher.pendingPodDeletes).toBe(0);
    // settled again (a repeated commit) or for an attempt it never ran: nothing happens
    completion.launcher.settled(req);
    completion.launcher.settled(request('never-launched'));

    const success = harness({
      annotations: { 'kwok.meson.dev/duration': '200ms', 'kwok.meson.dev/exit-code': '2' },
      finishedPodGc: { succeededOnly: true, delayMs: 0 },
    });
    const failing = request('kept-for-its-log');
    const kept = place(success, failing, nodes[0]!);
    success.launcher.launch(failing, kept);
    await success.next('finished', 'kept-for-its-log');
    success.launcher.settled(failing);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await podNamed(kept.pod!))?.status?.phase).toBe('Failed');
  });
});
