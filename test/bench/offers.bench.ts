/**
 * Kubernetes offer source benchmark (`npm run bench offers`). Single-threaded. Prints figures,
 * then, as its last line, one JSON object.
 *
 * 5,000 nodes (4 CPU, 32Gi, 110 pods, labels and a taint on one in ten) and 10,000 running pods
 * on them, fed to NodeCapacity as informer events. Measures: the initial load; offers(now) at a
 * pass when nothing changed; at a pass after 100 pod events (50 pods end, 50 start) plus 50
 * hold/release pairs; and, as the baseline, recomputing every node's offer from all pods.
 */
import { performance } from 'node:perf_hooks';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { NodeCapacity } from '../../src/offer-adapter/kubernetes.ts';

const NODES = 5_000;
const PODS = 10_000;
const PASSES = 50;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function node(i: number): V1Node {
  return {
    metadata: {
      name: `node-${i}`,
      labels: {
        'kubernetes.io/hostname': `node-${i}`,
        'topology.kubernetes.io/zone': `z${i % 3}`,
        pool: 'general',
      },
    },
    spec: i % 10 === 0 ? { taints: [{ key: 'dedicated', value: 'batch', effect: 'NoSchedule' }] } : {},
    status: {
      allocatable: { cpu: '4', memory: '32Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function pod(i: number, nodeIndex: number): V1Pod {
  return {
    metadata: {
      name: `pod-${i}`,
      namespace: `ns-${i % 20}`,
      annotations: { 'meson.dev/task': `ns/run/s[${i}]` },
    },
    spec: {
      nodeName: `node-${nodeIndex}`,
      containers: [{ name: 'c', resources: { requests: { cpu: '100m', memory: '500Mi' } } }],
    },
    status: { phase: 'Running' },
  };
}

const t0 = performance.now();
const c = new NodeCapacity();
for (let i = 0; i < NODES; i++) c.upsertNode(node(i));
const pods: V1Pod[] = [];
for (let i = 0; i < PODS; i++) {
  const p = pod(i, i % NODES);
  pods.push(p);
  c.upsertPod(p);
}
c.offers(0);
const loadMs = performance.now() - t0;

const idle: number[] = [];
for (let k = 0; k < PASSES; k++) {
  const t = performance.now();
  c.offers(k);
  idle.push(performance.now() - t);
}

let next = PODS;
const churn: number[] = [];
const events: number[] = [];
for (let k = 0; k < PASSES; k++) {
  const te = performance.now();
  for (let j = 0; j < 50; j++) {
    const old = pods.shift()!;
    c.deletePod(`${old.metadata!.namespace}/${old.metadata!.name}`);
    const p = pod(next, (next * 7) % NODES);
    next++;
    pods.push(p);
    c.upsertPod(p);
    c.hold(
      `held-${k}-${j}`,
      { cpuMillis: 100, memoryBytes: 2 ** 20, diskBytes: 0, gpus: 0 },
      `node-${(k * 50 + j) % NODES}`,
    );
    c.release(`held-${k}-${j}`);
  }
  events.push((performance.now() - te) / 150);
  const t = performance.now();
  const offers = c.offers(k);
  churn.push(performance.now() - t);
  if (offers.length !== NODES) throw new Error(`expected ${NODES} offers, got ${offers.length}`);
}

// baseline: every pass recomputes every node from every pod
const full: number[] = [];
for (let k = 0; k < 5; k++) {
  const t = performance.now();
  const fresh = new NodeCapacity();
  for (let i = 0; i < NODES; i++) fresh.upsertNode(node(i));
  for (const p of pods) fresh.upsertPod(p);
  fresh.offers(k);
  full.push(performance.now() - t);
}

const result = {
  nodes: NODES,
  pods: PODS,
  loadMs: Math.round(loadMs),
  offersIdleMs: Number(median(idle).toFixed(3)),
  offersAfterChurnMs: Number(median(churn).toFixed(3)),
  perEventUs: Number((median(events) * 1000).toFixed(2)),
  fullRecomputeMs: Number(median(full).toFixed(1)),
};
process.stdout.write(
  `initial load of ${NODES} nodes and ${PODS} pods: ${result.loadMs} ms\n` +
    `offers(now), nothing changed: ${result.offersIdleMs} ms (median of ${PASSES})\n` +
    `offers(now) after 100 pod events and 50 hold/release pairs: ${result.offersAfterChurnMs} ms; ` +
    `${result.perEventUs} µs per event\n` +
    `baseline, recomputing every node from every pod: ${result.fullRecomputeMs} ms\n`,
);
process.stdout.write(`${JSON.stringify(result)}\n`);
