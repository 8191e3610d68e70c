// Feeds queued tasks to the scheduler a window at a time. A scheduler pass costs O(queued
// tasks), so handing it all 10,000 iterations of a foreach when the machine can run 20 of them
// makes every pass 500 times more expensive than needed. The feed keeps a backlog per tenant,
// ordered as the scheduler orders a tenant's tasks (tier, priority, then submission), and keeps up to
// `window` tasks of each tenant in the scheduler; fair share between tenants is unchanged.
// A tenant whose whole window stayed unplaced in a pass (constraints nobody meets) gets a
// bigger window, so tasks behind it are not starved.
import type { Task } from '../scheduler/index.ts';

export interface TaskSink {
  enqueue(task: Task): void;
}

interface Backlog {
  tasks: Task[];
  head: number;
  /** Ids of this tenant's tasks now in the scheduler. */
  fed: Set<string>;
  window: number;
}

function before(a: Task, b: Task): boolean {
  // the scheduler serves a lower tier (smaller number) entirely before a higher one
  const ta = a.tier ?? 0;
  const tb = b.tier ?? 0;
  if (ta !== tb) return ta < tb;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.submittedAt < b.submittedAt;
}

export class TaskFeed {
  private readonly tenants = new Map<string, Backlog>();
  private readonly tenantOf = new Map<string, string>();
  private readonly initialWindow: number;

  constructor(window = 256) {
    this.initialWindow = window;
  }

  /** Tasks known to the feed (in the scheduler or waiting to be fed). */
  get size(): number {
    return this.tenantOf.size;
  }

  /** Tenants (namespaces) with a task in the scheduler or waiting to be fed. */
  waitingTenants(): string[] {
    const out: string[] = [];
    for (const [tenant, b] of this.tenants) if (b.fed.size > 0 || b.head < b.tasks.length) out.push(tenant);
    return out;
  }

  add(task: Task): void {
    if (this.tenantOf.has(task.id)) this.remove(task.id);
    let b = this.tenants.get(task.tenant);
    if (!b) {
      b = { tasks: [], head: 0, fed: new Set(), window: this.initialWindow };
      this.tenants.set(task.tenant, b);
    }
    this.tenantOf.set(task.id, task.tenant);
    const arr = b.tasks;
    // most tasks arrive in order (same priority, later submission): append
    let i = arr.length;
    while (i > b.head && before(task, arr[i - 1]!)) i--;
    if (i === arr.length) arr.push(task);
    else arr.splice(i, 0, task);
  }

  /**
   * Forgets a task. Returns 'scheduler' when it had been fed (the caller removes it there too),
   * 'backlog' when it was still waiting, undefined when unknown.
   */
  remove(id: string): 'scheduler' | 'backlog' | undefined {
    const tenant = this.tenantOf.get(id);
    if (tenant === undefined) return undefined;
    this.tenantOf.delete(id);
    const b = this.tenants.get(tenant)!;
    if (b.fed.delete(id)) return 'scheduler';
    const i = b.tasks.findIndex((t, k) => k >= b.head && t.id === id);
    if (i >= 0) b.tasks.splice(i, 1);
    return 'backlog';
  }

  /** The task left the scheduler's queue (placed, or failed for good). */
  placed(id: string): void {
    const tenant = this.tenantOf.get(id);
    if (tenant === undefined) return;
    this.tenantOf.delete(id);
    this.tenants.get(tenant)?.fed.delete(id);
  }

  /** Tops every tenant's window up. */
  fill(sink: TaskSink): void {
    for (const [tenant, b] of this.tenants) {
      while (b.fed.size < b.window && b.head < b.tasks.length) {
        const t = b.tasks[b.head++]!;
        b.fed.add(t.id);
        sink.enqueue(t);
      }
      if (b.head > 1024 && b.head * 2 > b.tasks.length) {
        b.tasks = b.tasks.slice(b.head);
        b.head = 0;
      }
      if (b.fed.size === 0 && b.head >= b.tasks.length) this.tenants.delete(tenant);
    }
  }

  /** After a pass: a tenant none of whose full window was placed gets a window twice as big. */
  passDone(placedTenants: ReadonlySet<string>): void {
    for (const [tenant, b] of this.tenants) {
      if (!placedTenants.has(tenant) && b.fed.size >= b.window && b.head < b.tasks.length) b.window *= 2;
    }
  }
}
