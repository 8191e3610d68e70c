import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, countKwokNodes, startCluster } from '../cluster/index.ts';

const NODES = 1_000;
// Longer than kube-controller-manager's node-monitor grace period (50 s), so a node whose
// lease kwok failed to renew would have been marked NotReady (Unknown) by then.
const OBSERVE_MS = 70_000;

// Its own cluster, so the run's shared cluster keeps a small node count for other tests.
describe(`${NODES} KWOK nodes`, () => {
  let cluster: Cluster;
  let readyAfterMs = 0;
  beforeAll(async () => {
    const started = Date.now();
    cluster = await startCluster({ nodes: NODES, cpu: 32, memory: '128Gi' });
    readyAfterMs = Date.now() - started;
  }, 600_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('come up Ready and stay Ready', async () => {
    const kc = cluster.kubeConfig();
    expect(await countKwokNodes(kc)).toEqual({ total: NODES, ready: NODES });
    process.stderr.write(`${NODES} KWOK nodes Ready ${readyAfterMs} ms after start\n`);
    const deadline = Date.now() + OBSERVE_MS;
    while (Date.now() < deadline) {
      await sleep(10_000);
      expect(await countKwokNodes(kc)).toEqual({ total: NODES, ready: NODES });
    }
    // The node lifecycle controller taints nodes whose leases went stale.
    const nodes = await kc.makeApiClient(CoreV1Api).listNode({ labelSelector: 'type=kwok' });
    const tainted = nodes.items.filter((n) =>
      n.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/')),
    );
    expect(tainted.map((n) => n.metadata?.name)).toEqual([]);
  }, 300_000);
});
