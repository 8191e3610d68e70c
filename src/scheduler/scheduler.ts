/**
 * The scheduler's two entry points over one core (runPass):
 * - schedulePass: pure, (tasks, offers, now, state) -> (placements, unplaced, declines);
 * - Scheduler: the same kept incrementally (queue, offers, running usage) across passes.
 */
import { offerKeepsRemainder } from '../offer-adapter/types.ts';
import { HostIndex } from './host-index.ts';
import { type ResolvedOptions, resolveOptions, runPass } from './pass.ts';
import { TaskError, taskProblem } from './task.ts';
import type {
  ClusterState,
  Decline,
  Offer,
  PassInput,
  PassResult,
  ResourceRequest,
  RunningTask,
  SchedulerOptions,
  Task,
  Unplaced,
} from './types.ts';

function badAmount(v: unknown): boolean {
  return typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0;
}

/** What is wrong with an offer, or undefined. Never throws. */
export function offerProblem(offer: Offer): string | undefined {
  if (typeof offer !== 'object' || offer === null) return 'offer: expected an object';
  if (typeof offer.id !== 'string' || offer.id === '') return 'offer id: expected a non-empty string';
  if (typeof offer.hostname !== 'string' || offer.hostname === '') {
    return `offer ${offer.id}: hostname: expected a non-empty string`;
  }
  const r = offer.resources;
  if (typeof r !== 'object' || r === null) return `offer ${offer.id}: resources: expected an object`;
  for (const k of ['cpuMillis', 'memoryBytes', 'diskBytes', 'gpus'] as const) {
    if (badAmount(r[k]))
      return `offer ${offer.id}: resources.${k}: expected a non-negative integer, got ${r[k]}`;
  }
  if (typeof offer.attributes !== 'object' || offer.attributes === null) {
    return `offer ${offer.id}: attributes: expected an object`;
  }
  return undefined;
}

function isExpired(offer: Offer, now: number): boolean {
  return offer.expiresAt !== undefined && offer.expiresAt <= now;
}

function decline(offer: Offer, reason: Decline['reason'], message?: string): Decline {
  const d: Decline = {
    offerId: typeof offer?.id === 'string' ? offer.id : '',
    hostname: typeof offer?.hostname === 'string' ? offer.hostname : '',
    source: offer?.source,
    reason,
  };
  if (message !== undefined) d.message = message;
  return d;
}

/**
 * One pure pass. Expired and malformed offers are declined; the others are merged per host and
 * used. Offers not used stay the caller's (keep them until they expire).
 */
export function schedulePass(input: PassInput): PassResult {
  const o = resolveOptions(input.options);
  const index = new HostIndex(o.seed);
  const declines: Decline[] = [];
  for (const offer of input.offers) {
    const problem = offerProblem(offer);
    if (problem) declines.push(decline(offer, 'invalid', problem));
    else if (isExpired(offer, input.now)) declines.push(decline(offer, 'expired'));
    else index.addOffer(offer);
  }
  const core = runPass(index, input.tasks, input.state ?? {}, o);
  const result: PassResult = {
    placements: core.placements,
    unplaced: core.unplaced,
    declines,
    evictions: core.evictions,
  };
  if (core.decisionMs) result.decisionMs = core.decisionMs;
  return result;
}

export interface SchedulerConfig extends SchedulerOptions {
  quotas?: ClusterState['quotas'];
  weights?: ClusterState['weights'];
  /** Fixed DRF capacity; default: what is offered plus what runs. */
  capacity?: ResourceRequest;
  /** Preemption by tier, enabled per namespace (off by default). See ClusterState.preemption. */
  preemption?: ClusterState['preemption'];
}

/**
 * Incremental scheduler. Not thread-safe (one caller at a time, like everything in Node).
 * Offers: Mesos offers a placement used are consumed (the master re-offers the rest);
 * Kubernetes/local offers keep their remainder under the same id. Re-adding an offer id replaces it.
 * Running usage: placements count against their tenant until taskFinished (or markRunning on restart).
 */
export class Scheduler {
  private readonly options: ResolvedOptions;
  private readonly config: SchedulerConfig;
  private index: HostIndex;
  private readonly offers = new Map<string, Offer>();
  /** The offers that have an expiresAt: the only ones a pass must check for expiry. */
  private readonly expiring = new Map<string, Offer>();
  private readonly queue = new Map<string, Task>();
  /** Running tasks by id (for fair share, until taskFinished). */
  private readonly running = new Map<string, Task>();
  /** Hosts of the running tasks that belong to a group (for unique hosts), by task id. */
  private readonly runningGroupHosts = new Map<string, string>();
  private readonly usage = new Map<string, ResourceRequest>();
  private readonly lastUnplaced = new Map<string, Unplaced>();
  private readonly pendingDeclines: Decline[] = [];
  /** With preemption configured: the host and start time of every running task. */
  private readonly runningOn = new Map<string, { hostname: string; startedAt: number }>();
  /** Victims being evicted (until taskFinished), with the task each is evicted for. */
  private readonly evicting = new Map<string, string>();

  constructor(config: SchedulerConfig = {}) {
    this.config = config;
    this.options = resolveOptions(config);
    this.index = new HostIndex(this.options.seed);
  }

  /** Queues a task (replacing one with the same id). @throws TaskError for an invalid task. */
  enqueue(task: Task): void {
    const problem = taskProblem(task);
    if (problem) throw new TaskError('SCHEDULER_TASK_INVALID', problem);
    this.queue.set(task.id, task);
  }

  /** Removes a queued task; false when it was not queued. */
  remove(taskId: string): boolean {
    this.lastUnplaced.delete(taskId);
    return this.queue.delete(taskId);
  }

  /** Adds (or replaces) an offer. A malformed offer is declined at the next pass, not thrown. */
  addOffer(offer: Offer): void {
    const problem = offerProblem(offer);
    if (problem) {
      this.pendingDeclines.push(decline(offer, 'invalid', problem));
      return;
    }
    if (this.offers.has(offer.id)) this.rescindOffer(offer.id);
    this.offers.set(offer.id, offer);
    if (offer.expiresAt !== undefined) this.expiring.set(offer.id, offer);
    this.index.addOffer(offer);
  }

  /** The source withdrew the offer (Mesos RESCIND, node gone). False when unknown. */
  rescindOffer(offerId: string): boolean {
    const offer = this.offers.get(offerId);
    if (!offer) return false;
    this.offers.delete(offerId);
    this.expiring.delete(offerId);
    this.index.removeOffer(offerId, offer.hostname);
    return true;
  }

  /**
   * Records a task already running (controller restart) so fair share, unique hosts and
   * preemption see it. `startedAt` (epoch ms, default the task's submittedAt) ranks victims.
   */
  markRunning(task: Task, hostname: string, startedAt?: number): void {
    this.queue.delete(task.id);
    this.charge(task, hostname, startedAt ?? task.submittedAt);
  }

  /**
   * A running task is being evicted for `preemptorId` (an eviction of an earlier pass, recovered
   * after a restart): it is not chosen again, and its preemptor waits for it. False when the task
   * is not running.
   */
  markEvicting(taskId: string, preemptorId: string): boolean {
    if (!this.running.has(taskId)) return false;
    this.evicting.set(taskId, preemptorId);
    return true;
  }

  /** The task ended: its tenant's usage drops. Resources come back as new offers from the source. */
  taskFinished(taskId: string): boolean {
    const task = this.running.get(taskId);
    if (!task) return false;
    this.running.delete(taskId);
    this.runningGroupHosts.delete(taskId);
    this.runningOn.delete(taskId);
    this.evicting.delete(taskId);
    const u = this.usage.get(task.tenant);
    if (u) {
      const res = task.resources;
      u.cpuMillis -= res.cpuMillis;
      u.memoryBytes -= res.memoryBytes;
      u.diskBytes -= res.diskBytes;
      u.gpus -= res.gpus;
    }
    return true;
  }

  /** Why the task stayed queued at the last pass (undefined if placed, unknown, or not tried yet). */
  whyQueued(taskId: string): Unplaced | undefined {
    return this.lastUnplaced.get(taskId);
  }

  /** How many tasks are queued (cheaper than queuedTasks().length). */
  get queuedCount(): number {
    return this.queue.size;
  }

  queuedTasks(): Task[] {
    return [...this.queue.values()];
  }

  currentOffers(): Offer[] {
    const out: Offer[] = [];
    for (const slot of this.index.slots) for (const o of slot.offers) out.push(o);
    return out;
  }

  /** One pass at time `now`: expires offers, places what it can, remembers why the rest wait. */
  schedule(now: number): PassResult {
    const declines = this.pendingDeclines.splice(0);
    for (const offer of this.expiring.size > 0 ? [...this.expiring.values()] : []) {
      if (isExpired(offer, now)) {
        this.rescindOffer(offer.id);
        declines.push(decline(offer, 'expired'));
      }
    }
    const groupHosts: Record<string, string[]> = {};
    for (const [taskId, hostname] of this.runningGroupHosts) {
      const g = this.running.get(taskId)!.groupId!;
      groupHosts[g] ??= [];
      groupHosts[g]!.push(hostname);
    }
    const state: ClusterState = { usage: Object.fromEntries(this.usage), groupHosts };
    if (this.config.quotas) state.quotas = this.config.quotas;
    if (this.config.weights) state.weights = this.config.weights;
    if (this.config.capacity) state.capacity = this.config.capacity;
    if (this.config.preemption) {
      state.preemption = this.config.preemption;
      const running: RunningTask[] = [];
      for (const [id, on] of this.runningOn) {
        const r: RunningTask = {
          task: this.running.get(id)!,
          hostname: on.hostname,
          startedAt: on.startedAt,
        };
        const preemptor = this.evicting.get(id);
        if (preemptor !== undefined) r.evictingFor = preemptor;
        running.push(r);
      }
      state.running = running;
    }

    const core = runPass(this.index, [...this.queue.values()], state, this.options, true);

    const placed = core.placedTasks;
    const forgetReasons = this.lastUnplaced.size > 0;
    // Everything queued was placed (the common case): one clear instead of a delete per task.
    const allPlaced = placed.length === this.queue.size;
    if (allPlaced) this.queue.clear();
    for (let i = 0; i < placed.length; i++) {
      const task = placed[i]!;
      if (!allPlaced) this.queue.delete(task.id);
      if (forgetReasons) this.lastUnplaced.delete(task.id);
      this.charge(task, core.placements[i]!.hostname, now);
    }
    for (const e of core.evictions) this.evicting.set(e.victimTaskId, e.preemptorTaskId);
    for (const u of core.unplaced) this.lastUnplaced.set(u.taskId, u);
    this.consumeUsedOffers();
    const result: PassResult = {
      placements: core.placements,
      unplaced: core.unplaced,
      declines,
      evictions: core.evictions,
    };
    if (core.decisionMs) result.decisionMs = core.decisionMs;
    return result;
  }

  private charge(task: Task, hostname: string, startedAt: number): void {
    this.running.set(task.id, task);
    if (this.config.preemption) this.runningOn.set(task.id, { hostname, startedAt });
    if (task.groupId !== undefined) this.runningGroupHosts.set(task.id, hostname);
    else if (this.runningGroupHosts.size > 0) this.runningGroupHosts.delete(task.id);
    let u = this.usage.get(task.tenant);
    if (!u) {
      u = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
      this.usage.set(task.tenant, u);
    }
    const r = task.resources;
    u.cpuMillis += r.cpuMillis;
    u.memoryBytes += r.memoryBytes;
    u.diskBytes += r.diskBytes;
    u.gpus += r.gpus;
  }

  /** Mesos offers a pass placed on are spent; remainders of other sources stay indexed. */
  private consumeUsedOffers(): void {
    for (const slot of this.index.drainUsed()) {
      for (const offer of [...slot.offers]) {
        if (!offerKeepsRemainder(offer)) this.rescindOffer(offer.id);
      }
    }
  }
}
