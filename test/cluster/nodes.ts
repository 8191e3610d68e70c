import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';

/** Label on every simulated node; select them with `type=kwok`. */
export const KWOK_NODE_LABEL = { key: 'type', value: 'kwok' } as const;
/** The annotation kwok is told to manage (`--manage-nodes-with-annotation-selector`). */
export const KWOK_NODE_ANNOTATION = { key: 'kwok.x-k8s.io/node', value: 'fake' } as const;

export interface KwokNodeOptions {
  count: number;
  /** Capacity per node, as Kubernetes quantities. Defaults: cpu 8, memory 32Gi, pods 110. */
  cpu?: string | number;
  memory?: string;
  pods?: number;
  /** Node names are `${prefix}${i}` (0-based). Default `kwok-node-`. */
  prefix?: string;
  /** Index of the first node, to add nodes to a cluster that has some. Default 0. */
  start?: number;
  /** Add the kwok.x-k8s.io/node=fake:NoSchedule taint (pods then need a toleration). */
  taint?: boolean;
  /** Extra labels on every node. */
  labels?: Record<string, string>;
  /** Parallel create requests. Default 16. */
  concurrency?: number;
}

export function kwokNode(name: string, options: KwokNodeOptions): V1Node {
  const capacity = {
    cpu: String(options.cpu ?? 8),
    memory: options.memory ?? '32Gi',
    pods: String(options.pods ?? 110),
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        [KWOK_NODE_LABEL.key]: KWOK_NODE_LABEL.value,
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/agent': '',
        ...options.labels,
      },
      annotations: {
        [KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value,
        'node.alpha.kubernetes.io/ttl': '0',
      },
    },
    spec: options.taint
      ? { taints: [{ key: KWOK_NODE_ANNOTATION.key, value: 'fake', effect: 'NoSchedule' }] }
      : {},
    // Kept on create for nodes; kwok's node-initialize stage keeps what is set here.
    status: { capacity, allocatable: capacity },
  };
}

/** Creates simulated nodes; an existing node of the same name is left as it is. */
export async function createKwokNodes(kc: KubeConfig, options: KwokNodeOptions): Promise<string[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const prefix = options.prefix ?? 'kwok-node-';
  const start = options.start ?? 0;
  const names = Array.from({ length: options.count }, (_, i) => `${prefix}${start + i}`);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++] as string;
      try {
        await core.createNode({ body: kwokNode(name, options) });
      } catch (error) {
        if ((error as { code?: number }).code !== 409) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, worker));
  return names;
}

export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Counts the kwok nodes and how many of them are Ready. */
export async function countKwokNodes(kc: KubeConfig): Promise<{ total: number; ready: number }> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNode({
    labelSelector: `${KWOK_NODE_LABEL.key}=${KWOK_NODE_LABEL.value}`,
  });
  return { total: list.items.length, ready: list.items.filter(isNodeReady).length };
}

/** Waits until at least `count` kwok nodes exist and all of them are Ready. */
export async function waitNodesReady(kc: KubeConfig, count: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = { total: 0, ready: 0 };
  while (Date.now() < deadline) {
    last = await countKwokNodes(kc);
    if (last.total >= count && last.ready === last.total) return;
    await sleep(250);
  }
  throw new Error(
    `kwok nodes not Ready after ${timeoutMs} ms: ${last.ready} of ${last.total} Ready, wanted ${count}`,
  );
}
