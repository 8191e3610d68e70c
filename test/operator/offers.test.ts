// The Kubernetes offer source on the real control plane: node capacity minus every pod's
// requests, kept current by informers; cordons, taints, NotReady and pressure respected.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesLauncher } from '../../src/launchers/kubernetes.ts';
import { MANAGED_BY, MANAGED_BY_LABEL } from '../../src/launchers/kubernetes-pod.ts';
import { KubernetesOfferSource, trimPodForCapacity } from '../../src/offer-adapter/kubernetes.ts';
import type { Offer } from '../../src/offer-adapter/types.ts';
import { schedulePass } from '../../src/scheduler/index.ts';
import { testKubeConfig, useNamespace } from '../cluster/namespace.ts';
import { createKwokNodes, isNodeReady } from '../cluster/nodes.ts';
import { waitFor } from '../cluster/wait.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const ns = useNamespace('offers');
const prefix = `offers-${randomBytes(3).toString('hex')}-`;
const GiB = 2 ** 30;
/** A node kwok does not manage: its status is whatever the test writes. */
const manual = `${prefix}manual`;
let nodes: string[] = [];
let source: KubernetesOfferSource;

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function offerOf(name: string): Offer | undefined {
  return source.offers(Date.now()).find((o) => o.hostname === name);
}

async function until<T>(what: string, f: () => T | undefined): Promise<T> {
  return waitFor(what, async () => f(), { timeoutMs: 20_000, intervalMs: 50 });
}

function podOn(name: string, node: string, cpu: string, memory: string): V1Pod {
  return {
    metadata: { name, annotations: { 'kwok.meson.dev/run-forever': 'true' } },
    spec: {
      nodeName: node,
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'example.invalid/x:1', resources: { requests: { cpu, memory } } }],
    },
  };
}

beforeAll(async () => {
  nodes = await createKwokNodes(kc, {
    count: 3,
    prefix,
    cpu: 4,
    memory: '8Gi',
    pods: 10,
    labels: { 'meson.dev/test-pool': prefix.slice(0, -1) },
  });
  const node: V1Node = {
    metadata: { name: manual, labels: { 'meson.dev/test-pool': prefix.slice(0, -1) } },
    status: {
      capacity: { cpu: '2', memory: '4Gi', pods: '10' },
      allocatable: { cpu: '2', memory: '4Gi', pods: '10' },
    },
  };
  await core.createNode({ body: node });
  await waitFor('test nodes Ready', async () => {
    const list = await core.listNode({ labelSelector: `meson.dev/test-pool=${prefix.slice(0, -1)}` });
    return list.items.filter((n) => nodes.includes(n.metadata!.name!) && isNodeReady(n)).length === 3
      ? true
      : undefined;
  });
  source = new KubernetesOfferSource({ kubeConfig: kc });
  await source.start();
});

afterAll(async () => {
  source?.stop();
  for (const n of [...nodes, manual]) await core.deleteNode({ name: n }).catch(() => {});
});

describe('KubernetesOfferSource on a real apiserver', () => {
  it('offers each Ready node its allocatable minus the requests of every pod on it, as pods come and go', async () => {
    const [a, b] = nodes as [string, string];
    const fresh = await until(`an offer for ${a}`, () => offerOf(a));
    expect(fresh.resources.cpuMillis).toBe(4000);
    expect(fresh.resources.memoryBytes).toBe(8 * GiB);
    expect(fresh.capacity?.cpuMillis).toBe(4000);
    expect(fresh.attributes['kubernetes.io/hostname']).toBe(a);
    expect(fresh.attributes['meson.dev/test-pool']).toBe(prefix.slice(0, -1));
    // pods of any namespace count, ours or not
    await core.createNamespacedPod({ namespace: ns.name, body: podOn('p1', a, '1500m', '1Gi') });
    await core.createNamespacedPod({ namespace: 'default', body: podOn(`${prefix}p2`, a, '500m', '3Gi') });
    await core.createNamespacedPod({ namespace: ns.name, body: podOn('p3', b, '1', '1Gi') });
    await until('offers to reflect the pods', () => {
      const o = offerOf(a);
      return o && o.resources.cpuMillis === 2000 && o.resources.memoryBytes === 4 * GiB ? o : undefined;
    });
    await until('the pod on the other node to count there only', () =>
      offerOf(b)?.resources.cpuMillis === 3000 ? true : undefined,
    );
    expect(offerOf(a)?.resources.scalars?.pods).toBe(8);
    // a pod that ends gives its resources back (it leaves the non-terminal field selector)
    await core.deleteNamespacedPod({ namespace: 'default', name: `${prefix}p2` });
    await until('the deleted pod to be given back', () =>
      offerOf(a)?.resources.memoryBytes === 7 * GiB ? true : undefined,
    );
    expect(offerOf(a)?.resources.cpuMillis).toBe(2500);
  });

  it('gives resources back when a pod completes', async () => {
    const c = nodes[2]!;
    await until(`an offer for ${c}`, () => offerOf(c));
    const pod = podOn('short', c, '3', '1Gi');
    pod.metadata!.annotations = { 'kwok.meson.dev/duration': '1s' };
    await core.createNamespacedPod({ namespace: ns.name, body: pod });
    await until('the running pod to be counted', () =>
      offerOf(c)?.resources.cpuMillis === 1000 ? true : undefined,
    );
    await until('the completed pod to be given back', () =>
      offerOf(c)?.resources.cpuMillis === 4000 ? true : undefined,
    );
  });

  it('drops a cordoned node and offers it again when uncordoned', async () => {
    const a = nodes[0]!;
    await until(`an offer for ${a}`, () => offerOf(a));
    await core.patchNode({ name: a, body: { spec: { unschedulable: true } } }, mergePatch);
    await until('the cordoned node to go', () => (offerOf(a) ? undefined : true));
    expect(source.capacity.whyNoOffer(a)).toMatch(/cordoned/);
    await core.patchNode({ name: a, body: { spec: { unschedulable: false } } }, mergePatch);
    await until('the uncordoned node to come back', () => offerOf(a));
  });

  it('carries taints, and the scheduler keeps untolerating tasks off the tainted node', async () => {
    const b = nodes[1]!;
    await core.patchNode(
      { name: b, body: { spec: { taints: [{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }] } } },
      mergePatch,
    );
    const tainted = await until('the taint to show', () =>
      offerOf(b)?.taints?.length ? offerOf(b) : undefined,
    );
    expect(tainted.taints).toEqual([{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }]);
    const offers = source.offers(Date.now()).filter((o) => o.hostname === b);
    const task = (id: string, tolerate: boolean) => ({
      id,
      tenant: 't',
      priority: 0,
      submittedAt: 0,
      resources: { cpuMillis: 100, memoryBytes: 0, diskBytes: 0, gpus: 0 },
      ...(tolerate
        ? { constraints: { tolerations: [{ key: 'dedicated', operator: 'Exists' as const }] } }
        : {}),
    });
    const res = schedulePass({
      tasks: [task('plain', false), task('tolerant', true)],
      offers,
      now: Date.now(),
    });
    expect(res.placements.map((p) => p.taskId)).toEqual(['tolerant']);
    expect(res.unplaced[0]!.reasons.map((r) => r.message)).toContain(
      'taint: 1 of 1 hosts: untolerated taint dedicated=ml:NoSchedule',
    );
    await core.patchNode({ name: b, body: { spec: { taints: null } } }, mergePatch);
    await until('the taint to go', () => (offerOf(b) && !offerOf(b)!.taints ? true : undefined));
  });

  it('offers a node only while it is Ready and without pressure', async () => {
    const setConditions = (conditions: object[]) =>
      core.patchNodeStatus({ name: manual, body: { status: { conditions } } }, mergePatch);
    const now = new Date().toISOString();
    const cond = (type: string, status: string) => ({
      type,
      status,
      reason: `Test${type}`,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    await setConditions([cond('Ready', 'True')]);
    await until('the manual node to be offered', () => offerOf(manual));
    await setConditions([cond('Ready', 'False')]);
    await until('the NotReady node to go', () => (offerOf(manual) ? undefined : true));
    expect(source.capacity.whyNoOffer(manual)).toBe('NotReady (TestReady)');
    await setConditions([cond('Ready', 'True'), cond('DiskPressure', 'True')]);
    await until('the node under pressure to stay out', () =>
      source.capacity.whyNoOffer(manual) === 'DiskPressure' ? true : undefined,
    );
    expect(offerOf(manual)).toBeUndefined();
    await setConditions([cond('Ready', 'True'), cond('DiskPressure', 'False')]);
    await until('the recovered node to come back', () => offerOf(manual));
  });

  it('holds a placed task on its node until its pod shows, then counts the pod instead', async () => {
    const c = nodes[2]!;
    await until(`an idle ${c}`, () => (offerOf(c)?.resources.cpuMillis === 4000 ? true : undefined));
    const task = `${ns.name}/run-1/train`;
    source.hold(task, { cpuMillis: 2000, memoryBytes: GiB, diskBytes: 0, gpus: 0 }, c);
    expect(offerOf(c)?.resources.cpuMillis).toBe(2000);
    const pod = podOn('train', c, '2', '1Gi');
    pod.metadata!.annotations!['meson.dev/task'] = task;
    await core.createNamespacedPod({ namespace: ns.name, body: pod });
    // the pod shows and covers the hold: still 2 cores free, not 0
    await waitFor('the pod to be seen', async () => {
      const p = await core.readNamespacedPod({ namespace: ns.name, name: 'train' });
      return p.status?.phase === 'Running' ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(offerOf(c)?.resources.cpuMillis).toBe(2000);
    expect(source.capacity.usedOn(c)?.cpuMillis).toBe(2000);
    source.release(task);
    expect(offerOf(c)?.resources.cpuMillis).toBe(2000); // the pod still runs
    await core.deleteNamespacedPod({ namespace: ns.name, name: 'train' });
    await until('the pod to be given back', () =>
      offerOf(c)?.resources.cpuMillis === 4000 ? true : undefined,
    );
  });
});

describe('KubernetesOfferSource fed the step Pods by the launcher (stepPodsFromLauncher)', () => {
  const elsewhere = useNamespace('offers-elsewhere');
  const used = (s: KubernetesOfferSource, node: string) => s.capacity.usedOn(node)?.cpuMillis ?? 0;
  function stepPod(name: string, node: string, cpu: string, duration?: string): V1Pod {
    const pod = podOn(name, node, cpu, '1Gi');
    pod.metadata!.labels = { [MANAGED_BY_LABEL]: MANAGED_BY };
    pod.metadata!.annotations = duration
      ? { 'kwok.meson.dev/duration': duration, 'meson.dev/task': `x/r/${name}` }
      : { ...pod.metadata!.annotations, 'meson.dev/task': `x/r/${name}` };
    return pod;
  }
  /**
   * Runs `body` with two sources given `from`: `shared`, fed by a launcher watching `from`'s
   * namespaces, and `alone`, fed by nothing but its own watches; started, then stopped after.
   */
  async function withSources(
    from: 'all' | string[],
    node: string,
    body: (shared: KubernetesOfferSource, alone: KubernetesOfferSource) => Promise<void>,
  ): Promise<void> {
    const shared = new KubernetesOfferSource({ kubeConfig: kc, stepPodsFromLauncher: from });
    const alone = new KubernetesOfferSource({ kubeConfig: kc, stepPodsFromLauncher: from });
    const launcher = new KubernetesLauncher({
      kubeConfig: kc,
      onUpdate: () => {},
      newLaunchId: () => randomBytes(4).toString('hex'),
      alsoKeep: trimPodForCapacity,
      ...(from === 'all' ? {} : { namespaces: from }),
    });
    launcher.addPodListener(shared.stepPodListener());
    try {
      await Promise.all([shared.start(), alone.start(), launcher.start()]);
      await until(`an idle ${node}`, () =>
        used(shared, node) === 0 && used(alone, node) === 0 ? true : undefined,
      );
      await body(shared, alone);
    } finally {
      shared.stop();
      alone.stop();
      launcher.close();
    }
  }

  /**
   * Waits until `shared` counts `want.shared` CPU millis on `node` and `alone` counts `want.alone`,
   * then checks that both still do a moment later (no Pod counted late, or twice).
   */
  async function counted(
    node: string,
    shared: KubernetesOfferSource,
    alone: KubernetesOfferSource,
    want: { shared: number; alone: number; what: string },
  ): Promise<void> {
    await until(want.what, () =>
      used(shared, node) === want.shared && used(alone, node) === want.alone ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(used(shared, node)).toBe(want.shared);
    expect(used(alone, node)).toBe(want.alone);
  }

  it('counts other Pods from its own watch and step Pods only from the launcher’s, each once, until they end', async () => {
    const c = nodes[1]!;
    await withSources('all', c, async (shared, alone) => {
      await core.createNamespacedPod({ namespace: ns.name, body: stepPod('step-1', c, '1500m', '5s') });
      await core.createNamespacedPod({ namespace: ns.name, body: podOn('other-1', c, '500m', '1Gi') });
      // the source without the launcher's events sees the other Pod only: its watch leaves step Pods out
      // (the step Pod runs 5 s: counted() checks both counts again before it ends)
      await counted(c, shared, alone, {
        shared: 2000,
        alone: 500,
        what: 'both Pods counted once by the shared source, the other Pod only by the lone one',
      });
      expect(shared.capacity.usedOn(c)?.memoryBytes).toBe(2 * GiB);
      // the step Pod ends (kwok): the launcher's informer sees it Succeeded, the node is freed
      await until('the ended step Pod given back', () => (used(shared, c) === 500 ? true : undefined));
      await core.deleteNamespacedPod({ namespace: ns.name, name: 'other-1' });
      await until('the deleted Pod given back', () => (used(shared, c) === 0 ? true : undefined));
    });
  });

  it('with a launcher serving some namespaces, still watches the step Pods of the others itself', async () => {
    const c = nodes[2]!;
    await withSources([ns.name], c, async (shared, alone) => {
      await core.createNamespacedPod({ namespace: ns.name, body: stepPod('ours-1', c, '1500m') });
      // another operator's step Pod, on the same node: the launcher here does not watch its namespace
      await core.createNamespacedPod({ namespace: elsewhere.name, body: stepPod('theirs-1', c, '700m') });
      await core.createNamespacedPod({ namespace: ns.name, body: podOn('other-1', c, '500m', '1Gi') });
      await counted(c, shared, alone, {
        shared: 2700,
        alone: 1200,
        what: 'all three Pods counted by the shared source, the other two by the lone one',
      });
      await core.deleteNamespacedPod({ namespace: elsewhere.name, name: 'theirs-1' });
      await core.deleteNamespacedPod({ namespace: ns.name, name: 'ours-1' });
      await until('both step Pods given back', () =>
        used(shared, c) === 500 && used(alone, c) === 500 ? true : undefined,
      );
    });
  });
});
