// Kubernetes node capacity as the master-compatible endpoint's offer source, and the workflow
// steps as its competition for dominant resource fairness.
//
// The capacity view (NodeCapacity, the operator's own) counts every Pod on a node, the holds of
// steps the scheduler placed whose Pods are not created yet, and the holds of the endpoint's
// tasks (PodTaskRunner): so it already counts this endpoint's tasks (`countsTasks`), each once.
// Each offer adds the node's host port range minus the ports of live tasks there, keeps the
// `pods` slots (every task takes one: the endpoint's `taskOverhead`), and leaves out nodes with a
// NoSchedule or NoExecute taint (Mesos tasks have no tolerations).

import { mergePortRanges } from '../offer-adapter/resources.ts';
import type { Offer, PortRange, Resources } from '../offer-adapter/types.ts';
import type { MesosCompetition, MesosOfferSource } from './master.ts';
import { subtractRanges } from './quantities.ts';

/** Host ports offered on every node unless configured (Mesos agents' default range). */
export const DEFAULT_TASK_PORTS: PortRange[] = [{ begin: 31000, end: 32000 }];

export interface NodeCapacityView {
  offers(now: number): Offer[];
  totals(): { allocatable: Resources; used: Resources };
}

export interface KubernetesTaskOffersOptions {
  capacity: NodeCapacityView;
  /** Ports taken by live tasks on a node (PodTaskRunner.portsInUse). */
  portsInUse(node: string): number[];
  /** Host ports offered per node (default 31000-32000). */
  ports?: PortRange[];
  now?: () => number;
}

function blocking(o: Offer): boolean {
  return (o.taints ?? []).some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
}

export class KubernetesTaskOffers implements MesosOfferSource {
  readonly countsTasks = true;
  readonly #opts: KubernetesTaskOffersOptions;
  readonly #ports: PortRange[];

  constructor(opts: KubernetesTaskOffersOptions) {
    this.#opts = opts;
    this.#ports = mergePortRanges(opts.ports ?? DEFAULT_TASK_PORTS);
  }

  list(): Offer[] {
    const out: Offer[] = [];
    for (const o of this.#opts.capacity.offers((this.#opts.now ?? Date.now)())) {
      if (blocking(o)) continue;
      const used = this.#opts.portsInUse(o.hostname).map((p) => ({ begin: p, end: p }));
      const ports = used.length > 0 ? subtractRanges(this.#ports, used) : this.#ports;
      out.push({ ...o, resources: { ...o.resources, ports } });
    }
    return out;
  }

  total(): Resources {
    return this.#opts.capacity.totals().allocatable;
  }
}

/**
 * The workflow steps as the endpoint's competition: they wait while the run controller has
 * queued steps, and their share is everything counted on the nodes but the endpoint's own tasks
 * (step Pods, placed steps' holds, and any other Pod), as the dominant one of cpu and memory.
 */
export function stepCompetition(opts: {
  capacity: NodeCapacityView;
  /** What the endpoint's live tasks hold (PodTaskRunner.held). */
  tasksHeld(): { cpuMillis: number; memoryBytes: number };
  /** Steps queued at the controller's last pass. */
  queued(): number;
}): MesosCompetition {
  return {
    waiting: () => opts.queued() > 0,
    share: () => {
      const { allocatable, used } = opts.capacity.totals();
      const mine = opts.tasksHeld();
      const cpu = allocatable.cpuMillis > 0 ? (used.cpuMillis - mine.cpuMillis) / allocatable.cpuMillis : 0;
      const mem =
        allocatable.memoryBytes > 0 ? (used.memoryBytes - mine.memoryBytes) / allocatable.memoryBytes : 0;
      return Math.max(0, cpu, mem);
    },
  };
}
