/**
 * A Mesos-master-compatible scheduler endpoint (`POST /api/v1/scheduler`, also at
 * `/master/api/v1/scheduler`, and `GET /version`), JSON only. Existing Mesos frameworks subscribe,
 * get OFFERS built from an injected offer source (the project's Offer model), and their LAUNCH
 * and LAUNCH_GROUP operations go to an injected task runner; the runner's reports come back as UPDATE events with
 * uuids that the framework acknowledges (an unacknowledged update is resent, later ones wait).
 *
 * The protocol state lives in MesosMaster (pure apart from its injected clock, ids and timers);
 * `createMesosMasterServer` puts it behind Fastify.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Offer as ModelOffer, Resources } from '../offer-adapter/types.ts';
import {
  addQuantities,
  emptyQuantities,
  fits,
  isEmpty,
  type Quantities,
  quantitiesFromCapacity,
  quantitiesFromResources,
  quantitiesToResources,
  subtractQuantities,
} from './quantities.ts';
import { encodeJsonRecord } from './recordio.ts';
import {
  type Call,
  Call as CallSchema,
  describeIssues,
  type ExecutorInfo,
  type FrameworkInfo,
  isTerminalState,
  type LaunchGroup,
  type Filters as MesosFilters,
  type Offer as MesosOffer,
  type TaskInfo,
  type TaskStateName,
  type TaskStatus,
  UNSUPPORTED_CALLS,
} from './schemas.ts';

// --- injected ports ----------------------------------------------------------------------------

/** Free capacity to offer, per host, in the project's offer model (one entry per host). */
export interface MesosOfferSource {
  /**
   * Hosts and what is free on them for frameworks, NOT counting tasks launched through this
   * endpoint (the endpoint subtracts its own live tasks). Called on every allocation round.
   */
  list(): ModelOffer[];
  /**
   * Whether `list()` already counts the tasks launched through this endpoint (a source that
   * holds each task's resources as it launches, as the Kubernetes one does): the endpoint then
   * does not subtract them again. Default false.
   */
  readonly countsTasks?: boolean;
  /**
   * The whole capacity that shares are measured against (dominant resource fairness). Default:
   * the sum of the listed hosts' `capacity` (or their free resources when absent).
   */
  total?(): Resources;
}

/**
 * Others that want the same capacity (workflow steps). While `waiting()` is true, a framework is
 * offered a host only if its dominant share is not above `share()` (see docs/mesos.md).
 */
export interface MesosCompetition {
  waiting(): boolean;
  /** The competitors' dominant share, 0 to 1. */
  share(): number;
}

export interface LaunchedTask {
  frameworkId: string;
  agentId: string;
  hostname: string;
  task: TaskInfo;
}

/** A LAUNCH_GROUP: tasks that run together on one agent under one (DEFAULT) executor. */
export interface LaunchedGroup {
  frameworkId: string;
  agentId: string;
  hostname: string;
  executor: ExecutorInfo;
  tasks: TaskInfo[];
}

/** What a runner reports about a task; the endpoint adds uuid, timestamp, ids and source. */
export interface TaskReport {
  state: TaskStateName;
  message?: string;
  reason?: string;
  /** base64 payload for TaskStatus.data. */
  data?: string;
}

/** Runs launched tasks (in production a Pod or local launcher; in tests a fake). */
export interface MesosTaskRunner {
  launch(task: LaunchedTask, report: (r: TaskReport) => void): void;
  /**
   * Launches a task group at once; `reports[i]` is `group.tasks[i]`'s. A KILL of any task of the
   * group must end the whole group. A runner without it gets every group refused (TASK_ERROR).
   */
  launchGroup?(group: LaunchedGroup, reports: ((r: TaskReport) => void)[]): void;
  kill(frameworkId: string, taskId: string): void;
}

export interface MesosMasterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface MesosMasterOptions {
  offers: MesosOfferSource;
  runner: MesosTaskRunner;
  /** Workflow steps competing for the same capacity (dominant resource fairness); absent: none. */
  competition?: MesosCompetition;
  /**
   * Scalars every launched task takes besides its own resources, in Mesos units (e.g. `{pods: 1}`
   * when the source offers a node's free Pod slots). A task that does not fit with them fails
   * like a task over its offer.
   */
  taskOverhead?: Record<string, number>;
  /** Seconds between HEARTBEAT events (default 15, as Mesos). */
  heartbeatIntervalSeconds?: number;
  /** Milliseconds between allocation rounds (offers, expiry, rescinds); default 1000. */
  allocationIntervalMs?: number;
  /** Rescind an unanswered offer after this long (default: never, as Mesos without --offer_timeout). */
  offerTimeoutMs?: number;
  /** Resend an unacknowledged status update after this long (default 10 s, as a Mesos agent). */
  statusRetryMs?: number;
  /** Close a subscriber whose unread stream buffer passes this many bytes (default 16 MiB). */
  maxStreamBufferBytes?: number;
  /** Largest call body in bytes (default 1 MiB). */
  maxCallBytes?: number;
  /** Frameworks known at once, connected or failing over (default 256); more are refused with 503. */
  maxFrameworks?: number;
  /** Terminal, fully acknowledged tasks kept per framework for reconciliation (default 1000, as Mesos). */
  maxCompletedTasks?: number;
  /** Version reported by GET /version (pymesos picks capabilities from it). */
  version?: string;
  now?: () => number;
  newId?: () => string;
  newUuid?: () => string;
  logger?: MesosMasterLogger;
}

export const MESOS_MASTER_DEFAULTS = {
  heartbeatIntervalSeconds: 15,
  allocationIntervalMs: 1000,
  statusRetryMs: 10_000,
  maxStreamBufferBytes: 16 * 1024 * 1024,
  maxCallBytes: 1024 * 1024,
  maxFrameworks: 256,
  maxCompletedTasks: 1000,
  version: '1.11.0',
  /** Filters.refuse_seconds default and cap, as Mesos. */
  refuseSeconds: 5,
  maxRefuseSeconds: 31_536_000,
} as const;

/** The least a task group's executor may ask for, as a Mesos master (MIN_CPUS, MIN_MEM in MB). */
export const GROUP_EXECUTOR_MIN = { cpus: 0.01, mem: 32 } as const;

// --- state -------------------------------------------------------------------------------------

/** A subscriber's event stream: one RecordIO record per event. */
export interface EventSink {
  send(event: object): void;
  close(): void;
}

interface PendingUpdate {
  status: TaskStatus;
  sentAt?: number;
}

/** What the tasks of one LAUNCH_GROUP share. */
interface GroupRecord {
  executorId: string;
  /** The executor's resources and the per-launch overhead, held while any task of it lives. */
  extra: Quantities;
}

interface TaskRecord {
  id: string;
  agentId: string;
  hostname: string;
  used: Quantities;
  group?: GroupRecord;
  latest: TaskStatus;
  /** Updates waiting for acknowledgement, oldest first; only the head is sent. */
  pending: PendingUpdate[];
  terminal: boolean;
}

interface OutstandingOffer {
  id: string;
  frameworkId: string;
  hostname: string;
  agentId: string;
  quantities: Quantities;
  offeredAt: number;
}

interface Framework {
  id: string;
  info: FrameworkInfo;
  sink?: EventSink;
  streamId?: string;
  heartbeat?: ReturnType<typeof setInterval>;
  failover?: ReturnType<typeof setTimeout>;
  suppressed: boolean;
  /** hostname -> epoch ms until which that host is not offered (DECLINE/ACCEPT filters). */
  filters: Map<string, number>;
  tasks: Map<string, TaskRecord>;
}

/** What the endpoint did, for tests and `GET /master/state`-style introspection. */
export interface MasterRecord {
  acknowledged: { frameworkId: string; taskId: string; uuid: string }[];
  declined: { frameworkId: string; offerId: string }[];
  accepted: { frameworkId: string; offerIds: string[]; taskIds: string[] }[];
  rescinded: { frameworkId: string; offerId: string; why: string }[];
  killed: { frameworkId: string; taskId: string }[];
  removedFrameworks: { frameworkId: string; why: string }[];
  /** REVIVE and SUPPRESS calls, in order. */
  revives: { frameworkId: string; call: 'REVIVE' | 'SUPPRESS' }[];
}

export interface MasterState {
  version: string;
  frameworks: {
    id: string;
    name: string;
    active: boolean;
    tasks: { id: string; framework_id: string; slave_id: string; state: TaskStateName }[];
  }[];
  /** Each host with what is free on it now for frameworks. */
  hosts: { id: string; hostname: string; unreserved_resources: ReturnType<typeof quantitiesToResources> }[];
}

/** HTTP Basic credentials that every call must carry (Mesos' `--authenticate_http_frameworks`). */
export interface MesosCredentials {
  principal: string;
  secret: string;
}

export class MesosCallError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MesosCallError';
    this.status = status;
    this.code = code;
  }
}

export class MesosMaster {
  readonly record: MasterRecord = {
    acknowledged: [],
    declined: [],
    accepted: [],
    rescinded: [],
    killed: [],
    removedFrameworks: [],
    revives: [],
  };
  readonly opts: Required<
    Omit<MesosMasterOptions, 'offerTimeoutMs' | 'logger' | 'competition' | 'taskOverhead'>
  > &
    Pick<MesosMasterOptions, 'offerTimeoutMs' | 'logger' | 'competition' | 'taskOverhead'>;
  #frameworks = new Map<string, Framework>();
  #removed = new Set<string>();
  #offers = new Map<string, OutstandingOffer>();
  #allocTimer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  readonly #overhead: Quantities | undefined;

  constructor(opts: MesosMasterOptions) {
    this.opts = {
      heartbeatIntervalSeconds: MESOS_MASTER_DEFAULTS.heartbeatIntervalSeconds,
      allocationIntervalMs: MESOS_MASTER_DEFAULTS.allocationIntervalMs,
      statusRetryMs: MESOS_MASTER_DEFAULTS.statusRetryMs,
      maxStreamBufferBytes: MESOS_MASTER_DEFAULTS.maxStreamBufferBytes,
      maxCallBytes: MESOS_MASTER_DEFAULTS.maxCallBytes,
      maxFrameworks: MESOS_MASTER_DEFAULTS.maxFrameworks,
      maxCompletedTasks: MESOS_MASTER_DEFAULTS.maxCompletedTasks,
      version: MESOS_MASTER_DEFAULTS.version,
      now: Date.now,
      newId: randomUUID,
      newUuid: () => randomBytes(16).toString('base64'),
      ...opts,
    };
    const overhead = Object.entries(opts.taskOverhead ?? {}).filter(([, v]) => v > 0);
    this.#overhead =
      overhead.length > 0
        ? { scalars: new Map(overhead.map(([k, v]) => [k, Math.ceil(v * 1000)])), ports: [] }
        : undefined;
  }

  start(): void {
    this.#stopped = false;
    this.#allocTimer ??= setInterval(() => this.tick(), this.opts.allocationIntervalMs);
    this.#allocTimer.unref?.();
  }

  /** Stops allocating and closes every stream; later calls get 503 until start(). */
  stop(): void {
    this.#stopped = true;
    if (this.#allocTimer) clearInterval(this.#allocTimer);
    this.#allocTimer = undefined;
    for (const fw of this.#frameworks.values()) {
      this.#detach(fw);
      if (fw.failover) clearTimeout(fw.failover);
    }
  }

  /** Frameworks known now (connected or within their failover timeout). */
  frameworkIds(): string[] {
    return [...this.#frameworks.keys()];
  }

  isConnected(frameworkId: string): boolean {
    return this.#frameworks.get(frameworkId)?.sink !== undefined;
  }

  taskState(frameworkId: string, taskId: string): TaskStateName | undefined {
    return this.#frameworks.get(frameworkId)?.tasks.get(taskId)?.latest.state;
  }

  /** What `GET /master/state` shows: frameworks and their known tasks (a small part of a master's). */
  state(): MasterState {
    return {
      version: this.opts.version,
      frameworks: [...this.#frameworks.values()].map((fw) => ({
        id: fw.id,
        name: fw.info.name,
        active: fw.sink !== undefined,
        tasks: [...fw.tasks.values()].map((t) => ({
          id: t.id,
          framework_id: fw.id,
          slave_id: t.agentId,
          state: t.latest.state,
        })),
      })),
      hosts: [...this.#hosts().values()].map((h) => ({
        id: h.agentId,
        hostname: h.offer.hostname,
        unreserved_resources: quantitiesToResources(h.free),
      })),
    };
  }

  outstandingOffers(): { id: string; frameworkId: string; hostname: string }[] {
    return [...this.#offers.values()].map((o) => ({
      id: o.id,
      frameworkId: o.frameworkId,
      hostname: o.hostname,
    }));
  }

  // --- SUBSCRIBE ---------------------------------------------------------------------------

  /**
   * Subscribes (or resubscribes) a framework and returns its new stream id. `sink` receives
   * SUBSCRIBED first; call `disconnected` when the connection closes.
   */
  subscribe(
    call: Extract<Call, { type: 'SUBSCRIBE' }>,
    sink: EventSink,
  ): { frameworkId: string; streamId: string } {
    this.#refuseWhenStopped();
    const info = call.subscribe.framework_info;
    const requested = call.framework_id?.value;
    if (requested !== undefined && this.#removed.has(requested)) {
      throw new MesosCallError(403, 'MESOS_FRAMEWORK_REMOVED', `Framework ${requested} has been removed`);
    }
    let fw = requested === undefined ? undefined : this.#frameworks.get(requested);
    if (fw) {
      // A newer subscription replaces the old one, which is told first.
      if (fw.sink) {
        fw.sink.send({ type: 'ERROR', error: { message: 'Framework failed over' } });
        this.#detach(fw);
      }
      if (fw.failover) clearTimeout(fw.failover);
      fw.failover = undefined;
      fw.info = info;
    } else {
      if (this.#frameworks.size >= this.opts.maxFrameworks) {
        throw new MesosCallError(
          503,
          'MESOS_TOO_MANY_FRAMEWORKS',
          `This endpoint already serves ${this.opts.maxFrameworks} frameworks (maxFrameworks)`,
        );
      }
      // An unknown id is taken as is: after a master failover frameworks resubscribe with theirs.
      const id = requested ?? this.opts.newId();
      fw = { id, info, suppressed: false, filters: new Map(), tasks: new Map() };
      this.#frameworks.set(id, fw);
    }
    const streamId = randomUUID();
    fw.sink = sink;
    fw.streamId = streamId;
    fw.suppressed = (call.subscribe.suppressed_roles ?? []).length > 0;
    sink.send({
      type: 'SUBSCRIBED',
      subscribed: {
        framework_id: { value: fw.id },
        heartbeat_interval_seconds: this.opts.heartbeatIntervalSeconds,
        master_info: {
          id: 'meson-mesos-compat',
          ip: 0,
          port: 0,
          hostname: 'meson',
          version: this.opts.version,
        },
      },
    });
    const frameworkRef = fw;
    fw.heartbeat = setInterval(
      () => frameworkRef.sink?.send({ type: 'HEARTBEAT' }),
      this.opts.heartbeatIntervalSeconds * 1000,
    );
    fw.heartbeat.unref?.();
    // Updates not yet acknowledged are resent on the new stream.
    for (const t of fw.tasks.values()) this.#sendHead(fw, t, true);
    this.opts.logger?.info(
      { frameworkId: fw.id, resubscribed: requested !== undefined },
      'mesos framework subscribed',
    );
    this.allocate();
    return { frameworkId: fw.id, streamId };
  }

  /** As a master that is not the leader any more: no call is taken (so no task launched). */
  #refuseWhenStopped(): void {
    if (this.#stopped) throw new MesosCallError(503, 'MESOS_NO_LEADER', 'No leader elected');
  }

  /** The subscriber's connection closed: keep its tasks for failover_timeout, then remove it. */
  disconnected(frameworkId: string, streamId: string): void {
    const fw = this.#frameworks.get(frameworkId);
    if (!fw || fw.streamId !== streamId) return;
    this.#detach(fw);
    const timeoutMs = Math.min((fw.info.failover_timeout ?? 0) * 1000, 2 ** 31 - 1);
    this.opts.logger?.info({ frameworkId, timeoutMs }, 'mesos framework disconnected');
    if (timeoutMs <= 0) {
      this.#remove(fw, 'disconnected with failover_timeout 0');
      return;
    }
    fw.failover = setTimeout(() => this.#remove(fw, 'failover timeout expired'), timeoutMs);
    fw.failover.unref?.();
  }

  #detach(fw: Framework): void {
    if (fw.heartbeat) clearInterval(fw.heartbeat);
    fw.heartbeat = undefined;
    const sink = fw.sink;
    fw.sink = undefined;
    fw.streamId = undefined;
    // Offers do not survive a disconnection; they are re-issued on resubscription.
    for (const o of [...this.#offers.values()]) if (o.frameworkId === fw.id) this.#offers.delete(o.id);
    sink?.close();
  }

  #remove(fw: Framework, why: string): void {
    this.#detach(fw);
    if (fw.failover) clearTimeout(fw.failover);
    for (const t of fw.tasks.values()) {
      if (!t.terminal) this.opts.runner.kill(fw.id, t.id);
    }
    this.#frameworks.delete(fw.id);
    this.#removed.add(fw.id);
    // Remembered so that a late resubscription is refused, within a bound (oldest forgotten first).
    if (this.#removed.size > this.opts.maxFrameworks * 4) {
      this.#removed.delete(this.#removed.values().next().value as string);
    }
    this.record.removedFrameworks.push({ frameworkId: fw.id, why });
    this.opts.logger?.info({ frameworkId: fw.id, why }, 'mesos framework removed');
  }

  // --- other calls -------------------------------------------------------------------------

  /** Handles a non-SUBSCRIBE call; throws MesosCallError with the status a master would answer. */
  handle(call: Exclude<Call, { type: 'SUBSCRIBE' }>, streamId: string | undefined): void {
    this.#refuseWhenStopped();
    const fw = this.#frameworks.get(call.framework_id.value);
    if (!fw) {
      throw new MesosCallError(
        400,
        'MESOS_UNKNOWN_FRAMEWORK',
        `Framework cannot be found: ${call.framework_id.value}`,
      );
    }
    if (!fw.sink) throw new MesosCallError(403, 'MESOS_NOT_SUBSCRIBED', 'Framework is not subscribed');
    if (streamId === undefined) {
      throw new MesosCallError(
        400,
        'MESOS_STREAM_ID_MISSING',
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
      );
    }
    if (streamId !== fw.streamId) {
      throw new MesosCallError(
        400,
        'MESOS_STREAM_ID_MISMATCH',
        `The stream ID '${streamId}' included in this request didn't match the stream ID currently associated with framework ID ${fw.id}`,
      );
    }
    switch (call.type) {
      case 'TEARDOWN':
        this.#remove(fw, 'TEARDOWN');
        return;
      case 'ACCEPT':
        this.#accept(fw, call.accept.offer_ids, call.accept.operations, call.accept.filters);
        return;
      case 'DECLINE':
        for (const { value } of call.decline.offer_ids) {
          const o = this.#takeOffer(fw, value);
          if (!o) continue;
          this.record.declined.push({ frameworkId: fw.id, offerId: value });
          this.#filter(fw, o.hostname, call.decline.filters);
        }
        return;
      case 'REVIVE':
        this.record.revives.push({ frameworkId: fw.id, call: 'REVIVE' });
        fw.suppressed = false;
        fw.filters.clear();
        this.allocate();
        return;
      case 'SUPPRESS':
        this.record.revives.push({ frameworkId: fw.id, call: 'SUPPRESS' });
        fw.suppressed = true;
        return;
      case 'KILL': {
        const t = fw.tasks.get(call.kill.task_id.value);
        if (t && !t.terminal) {
          this.record.killed.push({ frameworkId: fw.id, taskId: t.id });
          this.opts.runner.kill(fw.id, t.id);
        } else if (!t) {
          this.#sendMasterUpdate(
            fw,
            call.kill.task_id.value,
            this.#unknownState(fw),
            'REASON_RECONCILIATION',
          );
        }
        return;
      }
      case 'ACKNOWLEDGE': {
        const { task_id, uuid } = call.acknowledge;
        const t = fw.tasks.get(task_id.value);
        const head = t?.pending[0];
        if (t && head && head.status.uuid === uuid) {
          t.pending.shift();
          this.record.acknowledged.push({ frameworkId: fw.id, taskId: t.id, uuid });
          this.#sendHead(fw, t, false);
          if (t.terminal && t.pending.length === 0) this.#pruneCompleted(fw);
        }
        return;
      }
      case 'RECONCILE': {
        const asked = call.reconcile.tasks;
        if (asked.length === 0) {
          for (const t of fw.tasks.values()) if (!t.terminal) this.#sendReconciled(fw, t);
        } else {
          for (const { task_id } of asked) {
            const t = fw.tasks.get(task_id.value);
            if (t) this.#sendReconciled(fw, t);
            else this.#sendMasterUpdate(fw, task_id.value, this.#unknownState(fw), 'REASON_RECONCILIATION');
          }
        }
        return;
      }
    }
  }

  /** Forgets the oldest terminal, fully acknowledged tasks beyond maxCompletedTasks. */
  #pruneCompleted(fw: Framework): void {
    const done = [...fw.tasks.values()].filter((t) => t.terminal && t.pending.length === 0);
    for (const t of done.slice(0, Math.max(0, done.length - this.opts.maxCompletedTasks)))
      fw.tasks.delete(t.id);
  }

  #unknownState(fw: Framework): TaskStateName {
    return fw.info.capabilities?.some((c) => c.type === 'PARTITION_AWARE') ? 'TASK_UNKNOWN' : 'TASK_LOST';
  }

  #sendReconciled(fw: Framework, t: TaskRecord): void {
    const { uuid: _drop, ...latest } = t.latest;
    fw.sink?.send({
      type: 'UPDATE',
      update: {
        status: {
          ...latest,
          source: 'SOURCE_MASTER',
          reason: 'REASON_RECONCILIATION',
          timestamp: this.#seconds(),
        },
      },
    });
  }

  /** A master-generated update: no uuid, so the framework must not acknowledge it. */
  #sendMasterUpdate(
    fw: Framework,
    taskId: string,
    state: TaskStateName,
    reason: string,
    message?: string,
  ): void {
    const status: TaskStatus = {
      task_id: { value: taskId },
      state,
      source: 'SOURCE_MASTER',
      reason,
      timestamp: this.#seconds(),
    };
    if (message !== undefined) status.message = message;
    fw.sink?.send({ type: 'UPDATE', update: { status } });
  }

  #seconds(): number {
    return this.opts.now() / 1000;
  }

  #takeOffer(fw: Framework, offerId: string): OutstandingOffer | undefined {
    const o = this.#offers.get(offerId);
    if (!o || o.frameworkId !== fw.id) return undefined;
    this.#offers.delete(offerId);
    return o;
  }

  #filter(fw: Framework, hostname: string, filters: MesosFilters | undefined): void {
    let s: number = filters?.refuse_seconds ?? MESOS_MASTER_DEFAULTS.refuseSeconds;
    if (s < 0) s = MESOS_MASTER_DEFAULTS.refuseSeconds;
    s = Math.min(s, MESOS_MASTER_DEFAULTS.maxRefuseSeconds);
    if (s > 0) fw.filters.set(hostname, this.opts.now() + s * 1000);
  }

  #accept(
    fw: Framework,
    offerIds: { value: string }[],
    operations: Extract<Call, { type: 'ACCEPT' }>['accept']['operations'],
    filters: MesosFilters | undefined,
  ): void {
    const unsupported = operations.find((op) => op.type !== 'LAUNCH' && op.type !== 'LAUNCH_GROUP');
    if (unsupported) {
      throw new MesosCallError(
        400,
        'MESOS_UNSUPPORTED_OPERATION',
        `Offer operation ${unsupported.type} is not supported by this endpoint (only LAUNCH and LAUNCH_GROUP)`,
      );
    }
    const tasks: TaskInfo[] = operations.flatMap((op) =>
      op.type === 'LAUNCH' ? (op.launch?.task_infos ?? []) : (op.launch_group?.task_group.tasks ?? []),
    );
    // Capacity may have been taken since the offer went out (a step placed there): such offers
    // are rescinded now, so they count as invalid below instead of launching over that capacity.
    this.#rescind(this.#hosts());
    const offers: OutstandingOffer[] = [];
    let invalid: string | undefined;
    for (const { value } of offerIds) {
      const o = this.#takeOffer(fw, value);
      if (!o) invalid ??= `Offer ${value} is no longer valid`;
      else offers.push(o);
    }
    if (!invalid && new Set(offers.map((o) => o.agentId)).size > 1) invalid = 'Offers span multiple agents';
    this.record.accepted.push({
      frameworkId: fw.id,
      offerIds: offerIds.map((o) => o.value),
      taskIds: tasks.map((t) => t.task_id.value),
    });
    if (invalid || offers.length === 0) {
      for (const t of tasks) {
        const state = this.#unknownState(fw) === 'TASK_UNKNOWN' ? 'TASK_DROPPED' : 'TASK_LOST';
        this.#sendMasterUpdate(
          fw,
          t.task_id.value,
          state,
          'REASON_INVALID_OFFERS',
          invalid ?? 'no valid offer',
        );
      }
      return;
    }
    const first = offers[0]!;
    const ctx: AcceptContext = {
      agentId: first.agentId,
      hostname: first.hostname,
      left: offers.reduce<Quantities>((acc, o) => addQuantities(acc, o.quantities), emptyQuantities()),
      seen: new Set<string>(),
    };
    // in order, as a master applies them: each takes from what the earlier ones left
    for (const op of operations) {
      if (op.type === 'LAUNCH') for (const task of op.launch!.task_infos) this.#launchTask(fw, ctx, task);
      else this.#launchGroup(fw, ctx, op.launch_group!);
    }
    // Unused resources count as declined for refuse_seconds.
    this.#filter(fw, first.hostname, filters);
  }

  /** Why `task` cannot launch from what `ctx` has left (besides resources), if it cannot. */
  #taskError(fw: Framework, ctx: AcceptContext, task: TaskInfo, own: Quantities): string | undefined {
    const id = task.task_id.value;
    if (ctx.seen.has(id) || (fw.tasks.has(id) && !fw.tasks.get(id)!.terminal))
      return `Task ${id} already exists`;
    if (task.agent_id.value !== ctx.agentId)
      return `Task ${id} names agent ${task.agent_id.value}, not the offer's`;
    if (isEmpty(own)) return `Task ${id} uses no resources`;
    return undefined;
  }

  #newTask(fw: Framework, ctx: AcceptContext, id: string, used: Quantities, group?: GroupRecord): TaskRecord {
    const rec: TaskRecord = {
      id,
      agentId: ctx.agentId,
      hostname: ctx.hostname,
      used,
      latest: { task_id: { value: id }, state: 'TASK_STAGING', agent_id: { value: ctx.agentId } },
      pending: [],
      terminal: false,
    };
    if (group) rec.group = group;
    fw.tasks.set(id, rec);
    return rec;
  }

  #launchTask(fw: Framework, ctx: AcceptContext, task: TaskInfo): void {
    const id = task.task_id.value;
    const own = quantitiesFromResources(task.resources);
    const need = this.#overhead ? addQuantities(own, this.#overhead) : own;
    let error = this.#taskError(fw, ctx, task, own);
    if (!error && !fits(need, ctx.left)) error = `Task ${id} uses more resources than offered`;
    ctx.seen.add(id);
    if (error) {
      this.#sendMasterUpdate(fw, id, 'TASK_ERROR', 'REASON_TASK_INVALID', error);
      return;
    }
    ctx.left = subtractQuantities(ctx.left, need);
    const rec = this.#newTask(fw, ctx, id, need);
    this.opts.runner.launch({ frameworkId: fw.id, agentId: ctx.agentId, hostname: ctx.hostname, task }, (r) =>
      this.#report(fw.id, id, rec, r),
    );
  }

  /**
   * LAUNCH_GROUP, validated as a Mesos master does (src/master/validation.cpp, task::group): all
   * tasks or none. Any error fails EVERY task of the group with TASK_ERROR.
   */
  #launchGroup(fw: Framework, ctx: AcceptContext, op: LaunchGroup): void {
    const { executor } = op;
    const tasks = op.task_group.tasks;
    const extra = addQuantities(
      quantitiesFromResources(executor.resources ?? []),
      this.#overhead ?? emptyQuantities(),
    );
    let total = extra;
    let error = this.#groupExecutorError(fw, executor);
    for (const task of tasks) {
      const own = quantitiesFromResources(task.resources);
      const before = portCount(total.ports);
      total = addQuantities(total, own);
      // one Pod: two of its containers cannot bind the same host port
      const sharedPort = portCount(total.ports) < before + portCount(own.ports);
      const e =
        this.#taskError(fw, ctx, task, own) ??
        (sharedPort
          ? 'a port it asks for is asked for by another task of the group or its executor'
          : undefined) ??
        (task.executor !== undefined && JSON.stringify(task.executor) !== JSON.stringify(executor)
          ? `The ExecutorInfo of task '${task.task_id.value}' is different from executor '${executor.executor_id.value}'`
          : task.container?.type === 'DOCKER'
            ? 'Docker ContainerInfo is not supported on the task'
            : undefined);
      if (e) error ??= `Task '${task.task_id.value}' is invalid: ${e}`;
      ctx.seen.add(task.task_id.value);
    }
    if (!error && !fits(total, ctx.left))
      error = 'Total resources required by task group and its executor are more than available';
    if (error) {
      for (const t of tasks)
        this.#sendMasterUpdate(fw, t.task_id.value, 'TASK_ERROR', 'REASON_TASK_GROUP_INVALID', error);
      return;
    }
    ctx.left = subtractQuantities(ctx.left, total);
    const group: GroupRecord = { executorId: executor.executor_id.value, extra };
    const reports = tasks.map((task) => {
      const id = task.task_id.value;
      const rec = this.#newTask(fw, ctx, id, quantitiesFromResources(task.resources), group);
      return (r: TaskReport) => this.#report(fw.id, id, rec, r);
    });
    this.opts.runner.launchGroup!(
      { frameworkId: fw.id, agentId: ctx.agentId, hostname: ctx.hostname, executor, tasks },
      reports,
    );
  }

  #groupExecutorError(fw: Framework, executor: ExecutorInfo): string | undefined {
    const id = executor.executor_id.value;
    if (!this.opts.runner.launchGroup) return "LAUNCH_GROUP is not supported by this endpoint's task runner";
    if (executor.type === undefined) return "'ExecutorInfo.type' must be set";
    if (executor.type !== 'DEFAULT')
      return `Executor '${id}' is of type ${executor.type}: only the DEFAULT executor runs task groups here`;
    if (executor.command !== undefined)
      return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor";
    if (executor.framework_id !== undefined && executor.framework_id.value !== fw.id)
      return `ExecutorInfo has an invalid FrameworkID (${executor.framework_id.value})`;
    for (const t of fw.tasks.values())
      if (!t.terminal && t.group?.executorId === id)
        return `Executor '${id}' is already running a task group; launching into a running executor is not supported`;
    const q = quantitiesFromResources(executor.resources ?? []);
    const cpus = (q.scalars.get('cpus') ?? 0) / 1000;
    const mem = (q.scalars.get('mem') ?? 0) / 1000;
    if (cpus < GROUP_EXECUTOR_MIN.cpus)
      return `Executor '${id}' uses less CPUs (${cpus}) than the minimum required (${GROUP_EXECUTOR_MIN.cpus})`;
    if (mem < GROUP_EXECUTOR_MIN.mem)
      return `Executor '${id}' uses less memory (${mem}) than the minimum required (${GROUP_EXECUTOR_MIN.mem})`;
    return undefined;
  }

  #report(frameworkId: string, taskId: string, rec: TaskRecord, r: TaskReport): void {
    const fw = this.#frameworks.get(frameworkId);
    if (!fw || fw.tasks.get(taskId) !== rec || rec.terminal) return;
    const status: TaskStatus = {
      task_id: { value: taskId },
      state: r.state,
      source: 'SOURCE_EXECUTOR',
      agent_id: { value: rec.agentId },
      timestamp: this.#seconds(),
      uuid: this.opts.newUuid(),
    };
    if (r.message !== undefined) status.message = r.message;
    if (r.reason !== undefined) status.reason = r.reason;
    if (r.data !== undefined) status.data = r.data;
    rec.latest = status;
    if (isTerminalState(r.state)) {
      // Resources are freed at the terminal state, not at its acknowledgement (as Mesos).
      rec.terminal = true;
      this.allocate();
    }
    rec.pending.push({ status });
    if (rec.pending.length === 1) this.#sendHead(fw, rec, false);
  }

  #sendHead(fw: Framework, t: TaskRecord, force: boolean): void {
    const head = t.pending[0];
    if (!head || !fw.sink) return;
    if (head.sentAt !== undefined && !force) return;
    head.sentAt = this.opts.now();
    fw.sink.send({ type: 'UPDATE', update: { status: head.status } });
  }

  // --- allocation --------------------------------------------------------------------------

  /** One round: expire and rescind offers that no longer hold, resend stale updates, offer. */
  tick(): void {
    const now = this.opts.now();
    for (const fw of this.#frameworks.values()) {
      for (const t of fw.tasks.values()) {
        const head = t.pending[0];
        if (head?.sentAt !== undefined && now - head.sentAt >= this.opts.statusRetryMs)
          this.#sendHead(fw, t, true);
      }
    }
    this.allocate();
  }

  /** Free capacity per host: the source's, minus this endpoint's live tasks unless it counts them. */
  #hosts(): Map<string, HostFree> {
    const hosts = new Map<string, HostFree>();
    for (const o of this.opts.offers.list()) {
      hosts.set(o.hostname, {
        agentId: o.agentId ?? o.hostname,
        free: quantitiesFromCapacity(o.resources),
        offer: o,
      });
    }
    if (!this.opts.offers.countsTasks) {
      for (const fw of this.#frameworks.values()) {
        for (const { hostname, used } of liveUse(fw)) {
          const h = hosts.get(hostname);
          if (h) h.free = subtractQuantities(h.free, used);
        }
      }
    }
    return hosts;
  }

  /** Rescinds offers that expired or whose capacity is gone; takes the others out of `hosts`. */
  #rescind(hosts: Map<string, HostFree>): void {
    const now = this.opts.now();
    for (const o of [...this.#offers.values()]) {
      const h = hosts.get(o.hostname);
      let why: string | undefined;
      if (this.opts.offerTimeoutMs !== undefined && now - o.offeredAt >= this.opts.offerTimeoutMs)
        why = 'expired';
      else if (!h) why = 'host gone';
      else if (!fits(o.quantities, h.free)) why = 'capacity taken';
      if (why) {
        this.#offers.delete(o.id);
        this.record.rescinded.push({ frameworkId: o.frameworkId, offerId: o.id, why });
        this.#frameworks
          .get(o.frameworkId)
          ?.sink?.send({ type: 'RESCIND', rescind: { offer_id: { value: o.id } } });
      } else if (h) {
        h.free = subtractQuantities(h.free, o.quantities);
      }
    }
  }

  /**
   * Each framework's dominant share: the largest fraction of the whole capacity (cpus or mem)
   * that its live tasks and outstanding offers take.
   */
  shares(hosts: Map<string, HostFree> = this.#hosts()): Map<string, number> {
    const total = this.#total(hosts);
    const usage = new Map<string, Quantities>();
    for (const fw of this.#frameworks.values()) {
      let u = emptyQuantities();
      for (const { used } of liveUse(fw)) u = addQuantities(u, used);
      usage.set(fw.id, u);
    }
    for (const o of this.#offers.values()) {
      const u = usage.get(o.frameworkId);
      if (u) usage.set(o.frameworkId, addQuantities(u, o.quantities));
    }
    return new Map([...usage].map(([id, u]) => [id, dominantShare(u, total)]));
  }

  #total(hosts: Map<string, HostFree>): Quantities {
    const fromSource = this.opts.offers.total?.();
    if (fromSource) return quantitiesFromCapacity(fromSource);
    let total = emptyQuantities();
    for (const h of hosts.values())
      total = addQuantities(total, quantitiesFromCapacity(h.offer.capacity ?? h.offer.resources));
    return total;
  }

  /**
   * Rescinds offers that expired or whose capacity was taken, then offers free hosts: each host
   * to the framework with the lowest dominant share that wants it (dominant resource fairness),
   * and none to a framework whose share is above the waiting workflow steps' share.
   */
  allocate(): void {
    const now = this.opts.now();
    const hosts = this.#hosts();
    this.#rescind(hosts);
    const shares = this.shares(hosts);
    const total = this.#total(hosts);
    const competition = this.opts.competition;
    const cap = competition?.waiting() ? competition.share() : undefined;
    const offeredHosts = new Set([...this.#offers.values()].map((o) => o.hostname));
    const wanting = [...this.#frameworks.values()].filter((fw) => fw.sink && !fw.suppressed);
    const batches = new Map<string, MesosOffer[]>();
    for (const [hostname, h] of hosts) {
      if (offeredHosts.has(hostname) || isEmpty(h.free)) continue;
      let best: Framework | undefined;
      let bestShare = Number.POSITIVE_INFINITY;
      for (const fw of wanting) {
        if ((fw.filters.get(hostname) ?? 0) > now) continue;
        const share = shares.get(fw.id) ?? 0;
        if (cap !== undefined && share > cap) continue;
        if (share < bestShare) {
          best = fw;
          bestShare = share;
        }
      }
      if (!best) continue;
      const id = this.opts.newId();
      const offer: OutstandingOffer = {
        id,
        frameworkId: best.id,
        hostname,
        agentId: h.agentId,
        quantities: h.free,
        offeredAt: now,
      };
      this.#offers.set(id, offer);
      offeredHosts.add(hostname);
      shares.set(best.id, bestShare + dominantShare(h.free, total));
      let batch = batches.get(best.id);
      if (!batch) {
        batch = [];
        batches.set(best.id, batch);
      }
      batch.push({
        id: { value: id },
        framework_id: { value: best.id },
        agent_id: { value: h.agentId },
        hostname,
        resources: quantitiesToResources(h.free),
        attributes: Object.entries(h.offer.attributes).map(([name, value]) => ({
          name,
          type: 'TEXT' as const,
          text: { value },
        })),
      });
    }
    for (const [id, batch] of batches)
      this.#frameworks.get(id)?.sink?.send({ type: 'OFFERS', offers: { offers: batch } });
  }
}

function portCount(ranges: { begin: number; end: number }[]): number {
  return ranges.reduce((n, r) => n + r.end - r.begin + 1, 0);
}

/** What a framework's live tasks take, per host: each task's own, and each live group's extra once. */
function* liveUse(fw: Framework): Generator<{ hostname: string; used: Quantities }> {
  const groups = new Set<GroupRecord>();
  for (const t of fw.tasks.values()) {
    if (t.terminal) continue;
    yield { hostname: t.hostname, used: t.used };
    if (t.group && !groups.has(t.group)) {
      groups.add(t.group);
      yield { hostname: t.hostname, used: t.group.extra };
    }
  }
}

interface AcceptContext {
  agentId: string;
  hostname: string;
  /** What the accepted offers still hold for the next operation. */
  left: Quantities;
  /** Task ids launched (or refused) by this ACCEPT so far. */
  seen: Set<string>;
}

interface HostFree {
  agentId: string;
  free: Quantities;
  offer: ModelOffer;
}

/** The largest fraction of `total` that `used` takes, over cpus and mem (0 when there is none). */
export function dominantShare(used: Quantities, total: Quantities): number {
  let share = 0;
  for (const name of ['cpus', 'mem']) {
    const t = total.scalars.get(name) ?? 0;
    if (t > 0) share = Math.max(share, (used.scalars.get(name) ?? 0) / t);
  }
  return share;
}

// --- HTTP --------------------------------------------------------------------------------------

const SCHEDULER_PATHS = ['/api/v1/scheduler', '/master/api/v1/scheduler'];

/** An EventSink on a raw chunked response; closes the response when the reader falls behind. */
export function responseSink(
  res: Pick<ServerResponse, 'write' | 'writableLength' | 'destroy' | 'destroyed' | 'end'>,
  maxBuffered: number,
  onOverflow: () => void,
): EventSink {
  let closed = false;
  return {
    send(event) {
      if (closed || res.destroyed) return;
      res.write(encodeJsonRecord(event));
      if (res.writableLength > maxBuffered) {
        closed = true;
        res.destroy();
        onOverflow();
      }
    },
    close() {
      if (closed) return;
      closed = true;
      res.end();
    },
  };
}

function textReply(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(message);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * A Fastify server serving the master-compatible scheduler API over `master`. Call
 * `master.start()` for periodic allocation; `app.close()` stops subscribers' streams. With
 * `credentials`, every route but `GET /version` (which pymesos asks without them) needs that
 * HTTP Basic `Authorization`, else 401.
 */
export function createMesosMasterServer(
  master: MesosMaster,
  opts: { credentials?: MesosCredentials } = {},
): FastifyInstance {
  const app = Fastify({ bodyLimit: master.opts.maxCallBytes, logger: false });
  // Bodies are parsed here (not by Fastify) so errors read like a master's, as plain text.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const live = new Set<ServerResponse>();
  const creds = opts.credentials;
  if (creds) {
    // compared as digests: same length, constant time
    const expected = digest(
      `Basic ${Buffer.from(`${creds.principal}:${creds.secret}`, 'utf8').toString('base64')}`,
    );
    app.addHook('onRequest', async (req, reply) => {
      if (req.method === 'GET' && req.url.split('?')[0] === '/version') return;
      const got = req.headers.authorization;
      if (typeof got === 'string' && timingSafeEqual(digest(got), expected)) return;
      reply.header('www-authenticate', 'Basic realm="mesos"');
      return textReply(reply, 401, 'Unauthorized: this endpoint needs the framework principal and secret');
    });
  }
  app.addHook('preClose', async () => {
    master.stop();
    for (const res of live) res.end();
  });

  app.get(
    '/version',
    { schema: { response: { 200: { type: 'object', additionalProperties: true } } } },
    async () => ({ version: master.opts.version, build_user: 'meson', git_sha: '' }),
  );

  const stateSchema = { response: { 200: { type: 'object', additionalProperties: true } } };
  for (const url of ['/master/state', '/state'])
    app.get(url, { schema: stateSchema }, async () => master.state());

  const schema = {
    headers: {
      type: 'object',
      properties: { 'mesos-stream-id': { type: 'string', maxLength: 128 } },
    },
  };

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const ctype = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase();
    if (ctype === '') return textReply(reply, 400, "Expecting 'Content-Type' to be present");
    if (ctype === 'application/x-protobuf') {
      return textReply(reply, 415, "This endpoint speaks JSON only: use 'Content-Type: application/json'");
    }
    if (ctype !== 'application/json') {
      return textReply(reply, 415, `Expecting 'Content-Type' of application/json or application/x-protobuf`);
    }
    let body: unknown;
    try {
      body = JSON.parse((req.body as Buffer | undefined)?.toString('utf8') ?? '');
    } catch (err) {
      return textReply(reply, 400, `Failed to parse body into JSON: ${(err as Error).message}`);
    }
    const type = (body as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && (UNSUPPORTED_CALLS as readonly string[]).includes(type)) {
      return textReply(reply, 501, `Call type ${type} is not implemented by this endpoint`);
    }
    const parsed = CallSchema.safeParse(body);
    if (!parsed.success) {
      return textReply(reply, 400, `Failed to validate scheduler::Call: ${describeIssues(parsed.error)}`);
    }
    const call = parsed.data;
    const streamHeader = req.headers['mesos-stream-id'];
    const streamId = typeof streamHeader === 'string' ? streamHeader : undefined;

    if (call.type !== 'SUBSCRIBE') {
      try {
        master.handle(call, streamId);
      } catch (err) {
        if (err instanceof MesosCallError) return textReply(reply, err.status, err.message);
        throw err;
      }
      return reply.code(202).send();
    }

    if (streamId !== undefined) {
      return textReply(reply, 400, "Subscribe calls should not include the 'Mesos-Stream-Id' header");
    }
    const accept = String(req.headers.accept ?? 'application/json');
    if (!/application\/json|\*\/\*|application\/\*/.test(accept)) {
      return textReply(reply, 406, "Expecting 'Accept' to allow application/json");
    }
    const res = reply.raw;
    let sub: { frameworkId: string; streamId: string } | undefined;
    const sink = responseSink(res, master.opts.maxStreamBufferBytes, () => {
      if (sub) master.disconnected(sub.frameworkId, sub.streamId);
    });
    // Headers go out before SUBSCRIBED is written; subscribe() validates first so a refusal
    // still gets a plain status.
    let pendingEvents: object[] | undefined = [];
    const buffering: EventSink = {
      send: (e) => (pendingEvents ? pendingEvents.push(e) : sink.send(e)),
      close: () => sink.close(),
    };
    try {
      sub = master.subscribe(call, buffering);
    } catch (err) {
      if (err instanceof MesosCallError) return textReply(reply, err.status, err.message);
      throw err;
    }
    reply.hijack();
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Mesos-Stream-Id': sub.streamId,
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache',
    });
    live.add(res);
    const events = pendingEvents;
    pendingEvents = undefined;
    for (const e of events) sink.send(e);
    const subscription = sub;
    res.on('close', () => {
      live.delete(res);
      master.disconnected(subscription.frameworkId, subscription.streamId);
    });
  };

  for (const url of SCHEDULER_PATHS) {
    app.post(url, { schema }, handler);
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH'],
      url,
      schema,
      handler: async (_req, reply) => textReply(reply, 405, 'Expecting a POST request'),
    });
  }
  return app;
}
