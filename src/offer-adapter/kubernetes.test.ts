import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { TASK_ANNOTATION } from '../launchers/kubernetes-pod.ts';
import {
  NodeCapacity,
  nodeView,
  podHoldsNode,
  podRequests,
  trimNode,
  trimPodForCapacity,
} from './kubernetes.ts';

const Mi = 2 ** 20;
const Gi = 2 ** 30;

function node(
  name: string,
  extra: { spec?: V1Node['spec']; conditions?: object[]; labels?: object } = {},
): V1Node {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(extra.labels as object) } },
    spec: extra.spec ?? {},
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '3', 'ephemeral-storage': '10Gi' },
      conditions: (extra.conditions as V1Node['status'] extends { conditions?: infer C } ? C : never) ?? [
        { type: 'Ready', status: 'True' },
      ],
    },
  };
}

function pod(
  name: string,
  nodeName: string | undefined,
  cpu: string,
  memory: string,
  extra: { phase?: string; task?: string; ns?: string } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: extra.ns ?? 'default',
      ...(extra.task ? { annotations: { [TASK_ANNOTATION]: extra.task } } : {}),
    },
    spec: {
      ...(nodeName ? { nodeName } : {}),
      containers: [{ name: 'c', image: 'x', resources: { requests: { cpu, memory } } }],
    },
    status: { phase: extra.phase ?? 'Running' },
  };
}

function only(c: NodeCapacity) {
  const offers = c.offers(1);
  expect(offers.length).toBe(1);
  return offers[0]!;
}

describe('podRequests', () => {
  it('sums containers, takes the max of init containers, adds sidecars and overhead', () => {
    const p: V1Pod = {
      spec: {
        containers: [
          { name: 'a', resources: { requests: { cpu: '500m', memory: '1Gi' } } },
          { name: 'b', resources: { requests: { cpu: '250m', 'example.com/fpga': '1' } } },
        ],
        initContainers: [
          { name: 'big-init', resources: { requests: { cpu: '2', memory: '512Mi' } } },
          {
            name: 'sidecar',
            restartPolicy: 'Always',
            resources: { requests: { cpu: '100m', memory: '64Mi' } },
          },
          { name: 'late-init', resources: { requests: { cpu: '1', memory: '3Gi' } } },
        ],
        overhead: { cpu: '50m', memory: '16Mi' },
      },
    };
    const r = podRequests(p);
    // cpu: max(0.75 + 0.1 sidecar, big-init 2, late-init 1 + 0.1) + overhead = 2.05
    expect(r.cpuMillis).toBe(2050);
    // memory: max(1Gi + 64Mi, 512Mi, 3Gi + 64Mi) + 16Mi
    expect(r.memoryBytes).toBe(3 * Gi + 64 * Mi + 16 * Mi);
    expect(r.scalars).toEqual({ 'example.com/fpga': 1, pods: 1 });
  });

  it('counts a pod without requests as one pod slot only', () => {
    expect(podRequests({ spec: { containers: [{ name: 'c' }] } })).toEqual({
      cpuMillis: 0,
      memoryBytes: 0,
      diskBytes: 0,
      gpus: 0,
      scalars: { pods: 1 },
    });
  });

  it('holds a node only when bound and not terminal', () => {
    expect(podHoldsNode(pod('p', 'n', '1', '1Gi'))).toBe(true);
    expect(podHoldsNode(pod('p', 'n', '1', '1Gi', { phase: 'Pending' }))).toBe(true);
    expect(podHoldsNode(pod('p', undefined, '1', '1Gi', { phase: 'Pending' }))).toBe(false);
    expect(podHoldsNode(pod('p', 'n', '1', '1Gi', { phase: 'Succeeded' }))).toBe(false);
    expect(podHoldsNode(pod('p', 'n', '1', '1Gi', { phase: 'Failed' }))).toBe(false);
  });
});

describe('nodeView', () => {
  it('says why a node makes no offer', () => {
    expect(nodeView(node('n')).unusable).toBeUndefined();
    expect(nodeView(node('n', { spec: { unschedulable: true } })).unusable).toMatch(/cordoned/);
    expect(
      nodeView(node('n', { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady' }] }))
        .unusable,
    ).toBe('NotReady (KubeletNotReady)');
    expect(nodeView(node('n', { conditions: [{ type: 'Ready', status: 'Unknown' }] })).unusable).toMatch(
      /NotReady/,
    );
    expect(nodeView(node('n', { conditions: [] })).unusable).toMatch(/NotReady/);
    for (const type of ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable']) {
      const v = nodeView(
        node('n', {
          conditions: [
            { type: 'Ready', status: 'True' },
            { type, status: 'True' },
          ],
        }),
      );
      expect(v.unusable).toBe(type);
    }
  });

  it('keeps labels as attributes and taints as offer data', () => {
    const v = nodeView(
      node('n', {
        labels: { zone: 'a' },
        spec: {
          taints: [
            { key: 'dedicated', value: 'ml', effect: 'NoSchedule' },
            { key: 'x', effect: 'Bogus' },
          ],
        },
      }),
    );
    expect(v.labels).toEqual({ 'kubernetes.io/hostname': 'n', zone: 'a' });
    expect(v.taints).toEqual([{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }]);
  });

  it('refuses a node whose allocatable is not a quantity, without throwing', () => {
    const n = node('n');
    n.status!.allocatable = { cpu: 'lots' };
    expect(nodeView(n).unusable).toMatch(/invalid allocatable: resources.cpu/);
  });
});

describe('NodeCapacity', () => {
  it('offers allocatable minus the requests of every non-terminal pod bound to the node', () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n', { labels: { zone: 'a' }, spec: { taints: [{ key: 'k', effect: 'NoExecute' }] } }));
    c.upsertPod(pod('a', 'n', '1', '1Gi', { ns: 'other-team' }));
    c.upsertPod(pod('b', 'n', '500m', '512Mi', { phase: 'Pending' }));
    c.upsertPod(pod('done', 'n', '2', '2Gi', { phase: 'Succeeded' }));
    c.upsertPod(pod('elsewhere', 'm', '2', '2Gi'));
    c.upsertPod(pod('unbound', undefined, '2', '2Gi', { phase: 'Pending' }));
    const o = only(c);
    expect(o.hostname).toBe('n');
    expect(o.source).toBe('kubernetes');
    expect(o.resources.cpuMillis).toBe(2500);
    expect(o.resources.memoryBytes).toBe(8 * Gi - 1.5 * Gi);
    expect(o.resources.scalars).toEqual({ pods: 1 });
    expect(o.capacity?.cpuMillis).toBe(4000);
    expect(o.attributes.zone).toBe('a');
    expect(o.taints).toEqual([{ key: 'k', effect: 'NoExecute' }]);
  });

  it('adds its own attributes to the labels, winning over a node label of the same name', () => {
    const c = new NodeCapacity({ attributes: { 'meson.dev/source': 'kubernetes' } });
    c.upsertNode(node('n', { labels: { zone: 'a', 'meson.dev/source': 'mesos' } }));
    expect(only(c).attributes).toEqual({
      'kubernetes.io/hostname': 'n',
      zone: 'a',
      'meson.dev/source': 'kubernetes',
    });
  });

  it('gives resources back when a pod finishes or goes, and follows a pod bound later', () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n'));
    c.upsertPod(pod('a', undefined, '1', '1Gi', { phase: 'Pending' }));
    expect(only(c).resources.cpuMillis).toBe(4000);
    c.upsertPod(pod('a', 'n', '1', '1Gi', { phase: 'Pending' }));
    expect(only(c).resources.cpuMillis).toBe(3000);
    c.upsertPod(pod('a', 'n', '1', '1Gi', { phase: 'Running' }));
    expect(only(c).resources.cpuMillis).toBe(3000);
    c.upsertPod(pod('a', 'n', '1', '1Gi', { phase: 'Succeeded' }));
    expect(only(c).resources.cpuMillis).toBe(4000);
    c.upsertPod(pod('b', 'n', '1', '1Gi'));
    c.deletePod('default/b');
    expect(only(c).resources.cpuMillis).toBe(4000);
  });

  it('makes no offer for a cordoned, NotReady or full node, and offers it again once it recovers', () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n', { spec: { unschedulable: true } }));
    expect(c.offers(1)).toEqual([]);
    expect(c.whyNoOffer('n')).toMatch(/cordoned/);
    c.upsertNode(node('n'));
    expect(c.offers(1).length).toBe(1);
    for (const p of ['a', 'b', 'c']) c.upsertPod(pod(p, 'n', '10m', '1Mi'));
    expect(c.offers(1)).toEqual([]); // 3 of 3 pod slots taken
    expect(c.whyNoOffer('n')).toBe('no room for another pod');
    c.deletePod('default/c');
    expect(c.offers(1).length).toBe(1);
    c.deleteNode('n');
    expect(c.offers(1)).toEqual([]);
    // the pods on it are still counted if the node comes back
    c.upsertNode(node('n'));
    expect(only(c).resources.cpuMillis).toBe(3980);
  });

  it("counts a hold until the task's pod shows, then the pod instead (never both)", () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n'));
    c.upsertNode(node('m'));
    const req = { cpuMillis: 1000, memoryBytes: Gi, diskBytes: 0, gpus: 0 };
    c.hold('ns/run/step', req, 'n');
    const free = () => Object.fromEntries(c.offers(1).map((o) => [o.hostname, o.resources.cpuMillis]));
    expect(free()).toEqual({ n: 3000, m: 4000 });
    c.upsertPod(pod('p1', 'n', '1', '1Gi', { task: 'ns/run/step', phase: 'Pending' }));
    expect(free()).toEqual({ n: 3000, m: 4000 });
    c.upsertPod(pod('p1', 'n', '1', '1Gi', { task: 'ns/run/step', phase: 'Running' }));
    expect(free()).toEqual({ n: 3000, m: 4000 });
    // the pod ended before the controller released the task: the hold counts again
    c.upsertPod(pod('p1', 'n', '1', '1Gi', { task: 'ns/run/step', phase: 'Succeeded' }));
    expect(free()).toEqual({ n: 3000, m: 4000 });
    c.release('ns/run/step');
    expect(free()).toEqual({ n: 4000, m: 4000 });
    c.release('ns/run/step'); // twice: nothing more
    expect(free()).toEqual({ n: 4000, m: 4000 });
  });

  it("does not let another task's pod, or the same task's pod on another node, cover a hold", () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n'));
    c.upsertNode(node('m'));
    const req = { cpuMillis: 1000, memoryBytes: Gi, diskBytes: 0, gpus: 0 };
    c.hold('t1', req, 'n');
    c.upsertPod(pod('other', 'n', '1', '1Gi', { task: 't2' }));
    c.upsertPod(pod('old-attempt', 'm', '1', '1Gi', { task: 't1' }));
    const free = Object.fromEntries(c.offers(1).map((o) => [o.hostname, o.resources.cpuMillis]));
    expect(free).toEqual({ n: 2000, m: 3000 });
  });

  it('a pod already visible when the hold comes covers it at once; a second hold replaces the first', () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n'));
    c.upsertPod(pod('p', 'n', '1', '1Gi', { task: 't' }));
    const req = { cpuMillis: 1000, memoryBytes: Gi, diskBytes: 0, gpus: 0 };
    c.hold('t', req, 'n');
    expect(only(c).resources.cpuMillis).toBe(3000);
    c.deletePod('default/p');
    expect(only(c).resources.cpuMillis).toBe(3000); // hold counted again
    c.hold('t', { ...req, cpuMillis: 2000 }, 'n');
    expect(only(c).resources.cpuMillis).toBe(2000);
    c.release('t');
    expect(only(c).resources.cpuMillis).toBe(4000);
  });

  it('rebuilds only the offers of nodes that changed', () => {
    const c = new NodeCapacity();
    for (let i = 0; i < 100; i++) c.upsertNode(node(`n${i}`));
    const first = c.offers(1);
    const again = c.offers(2);
    expect(again).toBe(first);
    c.upsertPod(pod('p', 'n7', '1', '1Gi'));
    const third = c.offers(3);
    const changed = third.filter((o) => !first.includes(o));
    expect(changed.map((o) => o.hostname)).toEqual(['n7']);
    expect(changed[0]!.id).not.toBe(first.find((o) => o.hostname === 'n7')!.id);
  });

  it('counts a pod with unreadable requests as a pod slot and remembers it', () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n'));
    c.upsertPod(pod('bad', 'n', 'much', '1Gi'));
    expect(c.invalidPods.has('default/bad')).toBe(true);
    expect(only(c).resources.cpuMillis).toBe(4000);
    expect(only(c).resources.scalars).toEqual({ pods: 2 });
  });
});

describe('the informer caches keep only what the accounting reads', () => {
  const pods: V1Pod[] = [
    pod('a', 'n', '1', '1Gi'),
    pod('b', 'n', '250m', '64Mi', { phase: 'Pending', task: 'ns/run/0/1' }),
    pod('c', undefined, '1', '1Gi', { phase: 'Pending' }),
    pod('d', 'n', '1', '1Gi', { phase: 'Succeeded' }),
    pod('e', 'n', '1', 'a lot'),
    {
      metadata: {
        name: 'full',
        namespace: 'x',
        uid: 'u',
        resourceVersion: '42',
        labels: { a: 'b' },
        annotations: { [TASK_ANNOTATION]: 't', other: 'x'.repeat(10_000) },
        managedFields: [{ manager: 'kubelet', operation: 'Update', fieldsV1: { big: 'y'.repeat(10_000) } }],
      },
      spec: {
        nodeName: 'n',
        containers: [
          {
            name: 'a',
            image: 'i',
            env: Array.from({ length: 50 }, (_, i) => ({ name: `V${i}`, value: 'v'.repeat(100) })),
            resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '2Gi' } },
          },
          { name: 'b', resources: { requests: { cpu: '250m', 'example.com/fpga': '1' } } },
        ],
        initContainers: [
          { name: 'init', resources: { requests: { cpu: '2', memory: '512Mi' } } },
          { name: 'sidecar', restartPolicy: 'Always', resources: { requests: { cpu: '100m' } } },
        ],
        overhead: { cpu: '50m', memory: '16Mi' },
      },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], podIP: '10.0.0.1' },
    },
  ];

  it('a trimmed Pod takes the same from its node, holds it alike, and names the same task', () => {
    for (const p of pods) {
      const t = trimPodForCapacity(p);
      const read = (x: V1Pod) => {
        try {
          return podRequests(x);
        } catch (err) {
          return (err as Error).message;
        }
      };
      expect(read(t), p.metadata?.name).toEqual(read(p));
      expect(podHoldsNode(t)).toBe(podHoldsNode(p));
      expect(t.metadata?.annotations?.[TASK_ANNOTATION]).toBe(p.metadata?.annotations?.[TASK_ANNOTATION]);
      expect(t.metadata?.resourceVersion).toBe(p.metadata?.resourceVersion);
      // the same accounting, fed either
      const [full, trimmed] = [new NodeCapacity(), new NodeCapacity()];
      for (const c of [full, trimmed]) c.upsertNode(node('n'));
      full.upsertPod(p);
      trimmed.upsertPod(t);
      expect(trimmed.offers(1)).toEqual(full.offers(1));
    }
    const big = pods.at(-1)!;
    expect(JSON.stringify(trimPodForCapacity(big)).length).toBeLessThan(JSON.stringify(big).length / 20);
  });

  it('a trimmed Node offers the same', () => {
    const nodes: V1Node[] = [
      node('n'),
      node('cordoned', { spec: { unschedulable: true } }),
      node('down', { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady' }] }),
      node('pressure', {
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'MemoryPressure', status: 'True', message: 'm'.repeat(1000) },
        ],
      }),
      node('tainted', {
        spec: {
          taints: [
            { key: 'gpu', value: 'true', effect: 'NoSchedule' },
            { key: 'x', effect: 'NoExecute' },
          ],
        },
        labels: { zone: 'a' },
      }),
      {
        metadata: { name: 'capacity-only' },
        status: { capacity: { cpu: '2' }, conditions: [{ type: 'Ready', status: 'True' }] },
      },
      {
        metadata: { name: 'bad' },
        status: { allocatable: { cpu: 'many' }, conditions: [{ type: 'Ready', status: 'True' }] },
      },
    ];
    for (const n of nodes) expect(nodeView(trimNode(n)), n.metadata?.name).toEqual(nodeView(n));
  });
});

describe('usageByNamespace', () => {
  it('charges Pods and uncovered holds to their namespace, on usable nodes only', () => {
    const c = new NodeCapacity();
    c.upsertNode(node('n'));
    c.upsertNode(node('cordoned', { spec: { unschedulable: true } }));
    c.upsertPod(pod('a', 'n', '1', '1Gi', { ns: 'team-a' }));
    c.upsertPod(pod('b', 'n', '500m', '0', { ns: 'team-b', task: 'team-b/run/0/1' }));
    c.upsertPod(pod('c', 'cordoned', '2', '0', { ns: 'team-a' }));
    c.upsertPod(pod('d', 'n', '2', '0', { ns: 'team-a', phase: 'Succeeded' }));
    // a step placed but not created yet, and one whose Pod now covers its hold
    c.hold('team-c/run/0/1', { cpuMillis: 250, memoryBytes: 0, diskBytes: 0, gpus: 0 }, 'n');
    c.hold('team-b/run/0/1', { cpuMillis: 500, memoryBytes: 0, diskBytes: 0, gpus: 0 }, 'n');
    const u = c.usageByNamespace();
    expect(u.get('team-a')?.cpuMillis).toBe(1000);
    expect(u.get('team-a')?.memoryBytes).toBe(Gi);
    expect(u.get('team-b')?.cpuMillis).toBe(500);
    expect(u.get('team-c')?.cpuMillis).toBe(250);
  });
});
