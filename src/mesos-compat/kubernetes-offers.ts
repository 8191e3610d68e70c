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
  usageByNamespace(): Map<string, Resources>;
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
  /** The namespace task Pods run in: their usage there is the frameworks', not the namespace's. */
  taskNamespace: string;
  /** Namespaces with steps queued at the controller's last pass. */
  queuedNamespaces(): readonly string[];
}): MesosCompetition {
  return {
    waiting: () => opts.queuedNamespaces().length > 0,
    // Dominant resource fairness across frameworks and namespaces: the least-served waiting
    // namespace sets the bar, so a framework above it yields until that namespace catches up.
    share: () => {
      const waiting = opts.queuedNamespaces();
      if (waiting.length === 0) return 1;
      const { allocatable } = opts.capacity.totals();
      const usage = opts.capacity.usageByNamespace();
      const mine = opts.tasksHeld();
      let lowest = Number.POSITIVE_INFINITY;
      for (const ns of waiting) {
        const u = usage.get(ns);
        let cpu = u?.cpuMillis ?? 0;
        let mem = u?.memoryBytes ?? 0;
        if (ns === opts.taskNamespace) {
          cpu -= mine.cpuMillis;
          mem -= mine.memoryBytes;
        }
        const share = Math.max(
          0,
          allocatable.cpuMillis > 0 ? cpu / allocatable.cpuMillis : 0,
          allocatable.memoryBytes > 0 ? mem / allocatable.memoryBytes : 0,
        );
        lowest = Math.min(lowest, share);
      }
      return lowest;
    },
  };
}
