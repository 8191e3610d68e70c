/**
 * The order in which a pass tries tasks: tiers first (lower tier entirely before higher), then
 * across tenants by Dominant Resource Fairness (the tenant with the smallest weighted dominant
 * share goes next, re-evaluated after every placement), then within a tenant by priority
 * (higher first), then FIFO by submission time and id.
 */
import type { ResourceRequest } from '../offer-adapter/types.ts';
import type { Task } from './types.ts';

/**
 * One tenant's tasks in a tier. A class, not an object literal: a literal's hidden class dies with
 * its last instance at a full GC, and the next pass then deoptimises the queue's code.
 */
class TenantQueue {
  readonly tenant: string;
  readonly tasks: Task[];
  head = 0;
  readonly usage: ResourceRequest;
  readonly weight: number;
  share: number;

  constructor(tenant: string, tasks: Task[], usage: ResourceRequest, weight: number, share: number) {
    this.tenant = tenant;
    this.tasks = tasks;
    this.usage = usage;
    this.weight = weight;
    this.share = share;
  }
}

export function byPriorityThenFifo(a: Task, b: Task): number {
  return b.priority - a.priority || a.submittedAt - b.submittedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Queues usually arrive in submission order already; checking is linear, sorting is not. */
function isSorted(tasks: Task[]): boolean {
  for (let i = 1; i < tasks.length; i++) if (byPriorityThenFifo(tasks[i - 1]!, tasks[i]!) > 0) return false;
  return true;
}

function zeroUsage(): ResourceRequest {
  return { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
}

export class FairQueue {
  private readonly tiers: Map<string, Task[]>[] = [];
  private tierIndex = -1;
  private heap: TenantQueue[] = [];
  private last: TenantQueue | undefined;
  private readonly usage: Map<string, ResourceRequest>;
  private readonly weights: Record<string, number>;
  private readonly capacity: ResourceRequest;

  constructor(
    tasks: readonly Task[],
    opts: {
      usage?: Record<string, ResourceRequest>;
      weights?: Record<string, number>;
      capacity: ResourceRequest;
    },
  ) {
    this.capacity = opts.capacity;
    this.weights = opts.weights ?? {};
    this.usage = new Map(Object.entries(opts.usage ?? {}).map(([t, u]) => [t, { ...u }]));
    const byTier = new Map<number, Map<string, Task[]>>();
    // Indexed: the constructor runs once per pass, mostly before it is optimised, and a for-of
    // then allocates an iterator result per task.
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i]!;
      const tier = t.tier ?? 0;
      let tenants = byTier.get(tier);
      if (!tenants) {
        tenants = new Map();
        byTier.set(tier, tenants);
      }
      let list = tenants.get(t.tenant);
      if (!list) {
        list = [];
        tenants.set(t.tenant, list);
      }
      list.push(t);
    }
    for (const tier of [...byTier.keys()].sort((a, b) => a - b)) this.tiers.push(byTier.get(tier)!);
  }

  /** The tenant's usage as this pass has charged it so far. */
  usageOf(tenant: string): ResourceRequest {
    let u = this.usage.get(tenant);
    if (!u) {
      u = zeroUsage();
      this.usage.set(tenant, u);
    }
    return u;
  }

  dominantShare(tenant: string): number {
    return this.shareOf(this.usageOf(tenant), this.weights[tenant] ?? 1);
  }

  private shareOf(u: ResourceRequest, w: number): number {
    const c = this.capacity;
    let s = 0;
    if (c.cpuMillis > 0) s = Math.max(s, u.cpuMillis / c.cpuMillis);
    if (c.memoryBytes > 0) s = Math.max(s, u.memoryBytes / c.memoryBytes);
    if (c.gpus > 0) s = Math.max(s, u.gpus / c.gpus);
    if (c.diskBytes > 0) s = Math.max(s, u.diskBytes / c.diskBytes);
    return w > 0 ? s / w : Number.POSITIVE_INFINITY;
  }

  /** The next task to try, or undefined when every task has been handed out. */
  next(): Task | undefined {
    for (;;) {
      if (this.last) {
        if (this.heap.length > 1) this.siftDown(0);
        this.last = undefined;
      }
      const q = this.heap[0];
      if (!q) {
        if (!this.openNextTier()) return undefined;
        continue;
      }
      if (q.head >= q.tasks.length) {
        this.popTop();
        continue;
      }
      this.last = q;
      return q.tasks[q.head++];
    }
  }

  /** Records a placement of the task last handed out; its tenant's share grows. */
  charge(task: Task): void {
    const last = this.last !== undefined && this.last.tenant === task.tenant ? this.last : undefined;
    const u = last ? last.usage : this.usageOf(task.tenant);
    const r = task.resources;
    u.cpuMillis += r.cpuMillis;
    u.memoryBytes += r.memoryBytes;
    u.diskBytes += r.diskBytes;
    u.gpus += r.gpus;
    if (last) last.share = this.shareOf(u, last.weight);
  }

  private openNextTier(): boolean {
    this.tierIndex++;
    const tenants = this.tiers[this.tierIndex];
    if (!tenants) return false;
    this.heap = [];
    for (const [tenant, tasks] of tenants) {
      if (!isSorted(tasks)) tasks.sort(byPriorityThenFifo);
      this.heap.push(
        new TenantQueue(
          tenant,
          tasks,
          this.usageOf(tenant),
          this.weights[tenant] ?? 1,
          this.dominantShare(tenant),
        ),
      );
    }
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
    return true;
  }

  private less(a: TenantQueue, b: TenantQueue): boolean {
    if (a.share !== b.share) return a.share < b.share;
    const ha = a.tasks[a.head];
    const hb = b.tasks[b.head];
    if (!ha || !hb) return !hb && !!ha;
    if (ha.submittedAt !== hb.submittedAt) return ha.submittedAt < hb.submittedAt;
    return a.tenant < b.tenant;
  }

  private popTop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(h[l]!, h[m]!)) m = l;
      if (r < n && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      const t = h[i]!;
      h[i] = h[m]!;
      h[m] = t;
      i = m;
    }
  }
}

/**
 * One live instance of each class a pass creates and drops. A full GC frees hidden classes that
 * have no live instance and clears the type feedback that named them, so the first pass after
 * every full GC deoptimised `next` and the constructor (seen with --trace-deopt). Keeping one
 * instance keeps the hidden classes, and the feedback, valid.
 */
export const KEEP_SHAPES: readonly object[] = [
  new TenantQueue('', [], { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 }, 1, 0),
  new FairQueue([], { capacity: { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 } }),
];
