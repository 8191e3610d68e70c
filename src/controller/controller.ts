// The run controller: wires the store, the pure engine, the scheduler, a launcher and an offer
// source. It is level-triggered and idempotent: everything it needs lives in the store (run
// status, step instances, task records), so it can die at any instant and resume from there.
//
// One reconcile pass ("flush") at a time, on the event loop:
//   1. start new runs, apply queued events (executor updates, timers, artifacts, stops) to the
//      runs' engine machines and collect their actions;
//   2. turn actions into intents: queue tasks, kill attempts, create child runs and artifacts;
//   3. one scheduler pass places queued tasks on the local offer; placements get launch records;
//   4. ONE store transaction persists all of it (run statuses, changed instances, task records,
//      artifacts) — so a pass costs one fsync whatever the number of step instances;
//   5. only then are executors started, timers set and notifications sent.
// Because a launch is persisted (with its attempt directory) before the executor starts, a
// restart adopts the executor or, if it never started, fences and relaunches it: never twice.
import { checkOutputs, StepFileError, type StepLimits, withLimits } from '../../executors/limits.ts';
import type { JsonValue } from '../../executors/protocol.ts';
import type {
  DataArtifact,
  StepInstanceStatus,
  Workflow,
  WorkflowRun,
  WorkflowRunStatus,
  WorkflowVersion,
} from '../crds/index.ts';
import { API_VERSION, formatRunDuration } from '../crds/index.ts';
import type {
  ArtifactRecord,
  ArtifactSelector,
  EngineAction,
  EngineEvent,
  ResolvedStep,
  RunLimits,
  RunMachine,
  StartRunInput,
  Value,
} from '../engine/index.ts';
import { artifactMatches, createRun, restoreRun } from '../engine/index.ts';
import type { AttemptKey, AttemptUpdate, Launcher, LaunchRecord, LaunchRequest } from '../launchers/types.ts';
import type { Offer, OfferSource as OfferSourceKind, ResourceRequest } from '../offer-adapter/types.ts';
import {
  type Eviction,
  makeTask,
  Scheduler,
  type Task,
  type TaskConstraints,
  type Unplaced,
} from '../scheduler/index.ts';
import { type ControllerStore, type ControllerWriteBatch, updateStatusRetrying } from '../store/port.ts';
import type { ResourceObject, Stored, TaskRecord } from '../store/types.ts';
import { resolveRunVersion, VersionError, versionName, WORKFLOW_LABEL } from '../versions/index.ts';
import { RUN_PRIORITY } from './annotations.ts';
import { TaskFeed } from './feed.ts';
import {
  announcedArtifactName,
  childAttemptOf,
  childRunName,
  PARENT_RUN_LABEL,
  verifiedChildAttempt,
} from './names.ts';
import {
  DEFAULT_KILL_RETRY_SECONDS,
  type PreemptionSettings,
  schedulerPreemption,
  stepTier,
} from './preemption.ts';
import { overrideIssues } from './run-check.ts';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };

/** Hooks through which the controller asks other modules (versions, triggers, notify) for decisions. */
export interface RunHooks {
  /** Admission of a new run (concurrency). Default: start it. */
  /**
   * `running`: keys (`ns/name`) of the runs the controller is running, committed or not.
   * `write`: records writes (marking the run queued, stopping the runs it replaces) into the
   * pass's transaction, committed with the run's own writes.
   */
  admit?(
    run: Stored<WorkflowRun>,
    running: ReadonlySet<string>,
    write?: (fn: (w: ControllerWriteBatch) => void) => void,
  ): 'start' | 'wait' | { reject: string };
  /** A run reached a terminal phase (notifications, admission of waiting runs). */
  runFinished?(run: Stored<WorkflowRun>): void;
  /** A run started. */
  runStarted?(run: Stored<WorkflowRun>): void;
  /** A step attempt of `run` is being killed for a higher-tier step (once per eviction). */
  stepPreempted?(run: Stored<WorkflowRun>, p: { step: string; attempt: number; message: string }): void;
}

/**
 * Where the controller's offers come from: the local machine (src/offer-adapter/local.ts) in
 * standalone mode; Kubernetes node capacity or a Mesos master for the operator. Offers are views
 * of free capacity, taken fresh at every scheduling pass; the controller reports what placed
 * tasks hold and when they release it.
 */
export interface OfferSource {
  readonly source: OfferSourceKind;
  /** The default host of adopted attempts whose placement was not recorded. */
  readonly hostname: string;
  offers(now: number): Offer[];
  /**
   * A placed task holds `req` until released. `node`: the host it was placed on; sources that
   * account per node (Kubernetes) need it to charge the right node until the task's Pod shows.
   */
  hold(taskId: string, req: ResourceRequest, node?: string): void;
  release(taskId: string): void;
  /**
   * Why a request, or a task's constraints, can never be met by any offer of this source (a fixed
   * machine), else undefined.
   */
  neverFits?(req: ResourceRequest, constraints?: TaskConstraints): string | undefined;
  /** The source of a node's offers when it differs by node (a composite source); default `source`. */
  sourceOf?(node: string): OfferSourceKind;
}

export interface ControllerDeps {
  /**
   * The store port (src/store/port.ts): SQLite through sqlite-async.ts standalone, the custom
   * resources (kubernetes.ts) in the operator. Reads are cached; a pass's writes are one
   * transaction, awaited before any side effect.
   */
  store: ControllerStore;
  /** Built by the caller with `onUpdate: (u) => controller.onAttemptUpdate(u)`. */
  launcher: Launcher;
  offers: OfferSource;
  now?: () => number;
  logger?: Logger;
  hooks?: RunHooks;
  /** Resources of a step that sets none (noop steps always take none). Default 100m CPU, 64Mi. */
  defaultResources?: { cpus?: string | number; memory?: string | number };
  /** What one run may cost (src/engine/limits.ts); the engine's defaults for what is not given. */
  runLimits?: Partial<RunLimits>;
  /** Limits on step outputs (executors/limits.ts), also applied to a subworkflow step's merged outputs. */
  stepLimits?: Partial<StepLimits>;
  /**
   * Failed commits of one run's writes in a row before the run is quarantined (marked Failed,
   * reason CommitFailed, its attempts killed); the other runs go on. Default 5.
   */
  maxCommitFailures?: number;
  /** Delay before the pass after a failed one: doubles from initialMs to maxMs (200 ms, 30 s). */
  retryBackoff?: { initialMs: number; maxMs: number };
  /**
   * After every reconcile pass: how many tasks are still queued (a Mesos offer pool's `demand`,
   * which SUPPRESSes offers at 0 and REVIVEs them when work arrives), and the namespaces they are
   * in (the Mesos endpoint's fairness between frameworks and namespaces).
   */
  onQueued?: (queued: number, namespaces: readonly string[]) => void;
  /** What the controller reports as it works (Prometheus metrics: src/metrics). */
  observer?: ControllerObserver;
  /**
   * The cluster admin's preemption settings (src/controller/preemption.ts): the tier bounds of
   * each namespace, and which namespaces may evict lower-tier running steps. Absent: every step
   * runs at tier 0 unless it asks for a lower one, and nothing is ever evicted.
   */
  preemption?: PreemptionSettings;
  /**
   * Minimum time between two writes of a running run's status and of its step instances'
   * observed progress (an attempt launched, running, ended), in ms. 0 (the default): every pass
   * writes what it changed. Above 0, a pass holds such changes back and writes them together
   * once the interval since the run's last status write has passed, so a wide foreach makes a
   * few writes a second, not one per pass. Never held back: a change of the run's phase, the
   * run's end, task records written ahead of a launch (and the instance they belong to), child
   * runs, artifacts and hook writes. What is held is what the store can lose without harm: a new
   * leader adopts the attempts from their task records and Pods (whose garbage collection waits
   * for the write, see Launcher.settled).
   */
  statusIntervalMs?: number;
  /**
   * How long (ms) a new run whose Workflow is not in the store waits for it before it fails with
   * "Workflow not found". 0 (the default) fails it at once: right for a store that sees every
   * write in order (SQLite). A store fed by one watch per kind (the operator's informers) can
   * deliver a run before the Workflow created just before it, e.g. both in one `kubectl apply`.
   */
  missingWorkflowGraceMs?: number;
}

/** Observations of the controller's work; every method is cheap and must not throw. */
export interface ControllerObserver {
  /** One scheduling pass: its duration, the offers it saw by source, what it placed. */
  schedulingPass(o: {
    seconds: number;
    offers: Record<string, number>;
    placed: number;
    unplaced: number;
  }): void;
  /** A task was placed after waiting this long in the queue. */
  taskPlaced(queuedSeconds: number): void;
  /** A commit of a run's writes failed (the run is retried, then quarantined). */
  commitFailed(): void;
  /**
   * A running attempt in `namespace` was evicted for a higher-tier task: reported once per
   * eviction, after the pass that chose it was committed (not again for kill retries or restarts).
   */
  stepPreempted?(o: { namespace: string; victimTier: number; preemptorTier: number }): void;
  /**
   * A new run (no phase yet) appeared in the store, as this controller's watch saw it (a run
   * created while no controller watched, e.g. between two operator leaders, is not reported).
   */
  runCreated(run: Stored<WorkflowRun>): void;
  /** A run's start was committed (it entered Running). */
  runStarted(run: Stored<WorkflowRun>): void;
  /** A run's final phase (Succeeded, Failed, Stopped) was committed; `run` is as stored. */
  runFinished(run: Stored<WorkflowRun>): void;
  /**
   * Step instances that reached a final phase, as committed with their run's writes (an
   * instance may be reported again when its run is rebuilt: dedupe by id, attempts, endTime).
   */
  stepsEnded(run: { namespace: string; name: string; workflow: string }, steps: StepInstanceStatus[]): void;
}

interface ActiveRun {
  key: string;
  namespace: string;
  name: string;
  workflow: string;
  /** The run object's uid: its Pods are owned by it (garbage-collected with the run). */
  uid: string | undefined;
  machine: RunMachine;
  /** Persist its status at the next flush. */
  dirty: boolean;
  finished: boolean;
  /** Added to every step's priority (a backfill's priority). */
  priority: number;
  /**
   * Writes held back by `statusIntervalMs` (see runWrites): step instances' latest states by id,
   * and task records of ended attempts to delete (by instance). While set, the run's status
   * waits too.
   */
  held?: {
    instances: Map<string, StepInstanceStatus>;
    deletes: Map<string, { namespace: string; run: string; instance: string }>;
  };
  /** When (performance.now()) the run's status was last handed to a commit, and with which phase. */
  statusWrittenAt: number;
  writtenPhase: string | undefined;
  /** Instances waiting for input artifacts: id -> selectors. */
  waiting: Map<string, ArtifactSelector[]>;
}

interface TaskEntry {
  id: string;
  key: AttemptKey;
  req: LaunchRequest;
  task: Task;
  queuedAt: number;
  record?: LaunchRecord;
  /**
   * The scheduler evicted this running attempt for a higher-tier task: its end is a preemption
   * (StepPreempted), not a failure. Persisted in its task record, so a restart knows it too.
   */
  evicting?: {
    /** The preemptor's task id. */
    for: string;
    /** The why, recorded on the step. */
    message: string;
    /** When (controller clock) the kill was last asked for; undefined until it is. */
    killedAt?: number;
    /** Read from the task record after a restart (the eviction was reported before it). */
    recovered?: boolean;
    /** The victim's and the preemptor's tiers, when this controller chose the eviction. */
    tiers?: { victim: number; preemptor: number };
  };
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped']);

/** Stable code that starts the message of a run the controller quarantined (see quarantine). */
export const RUN_QUARANTINED = 'RUN_QUARANTINED';

function runKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function taskId(k: { namespace: string; run: string; instance: string }): string {
  return `${k.namespace}/${k.run}/${k.instance}`;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function overridesOf(run: WorkflowRun): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const p of run.spec.parameters ?? []) out[p.name] = p.value as Value;
  return out;
}

export class Controller {
  private readonly store: ControllerStore;
  private readonly launcher: Launcher;
  private readonly offerSource: OfferSource;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly hooks: RunHooks;
  private readonly defaultResources: { cpus?: string | number; memory?: string | number };
  private readonly runLimits: Partial<RunLimits> | undefined;
  private scheduler: Scheduler;
  private readonly preemption: PreemptionSettings | undefined;
  private readonly killRetryMs: number;
  /** Attempts being evicted whose kill was asked for (killed again if they outlive killRetryMs). */
  private readonly evicting = new Map<string, TaskEntry>();
  /** Queued tasks, fed to the scheduler a window per tenant at a time. */
  private feed = new TaskFeed();
  /** A pass failed: rebuild the in-memory state from the store before the next one. */
  private resetPending = false;
  /** Offers given to the scheduler at the last pass (replaced by fresh ones at each pass). */
  private offerIds: string[] = [];

  private readonly runs = new Map<string, ActiveRun>();
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inbox: { run: string; event: EngineEvent }[] = [];
  private readonly toStart = new Set<string>();
  private readonly stopRequests = new Set<string>();
  private readonly newArtifacts: Stored<DataArtifact>[] = [];
  private readonly finishedTasks: AttemptKey[] = [];
  /** Attempts whose end was reported, for the launcher's `settled` once the end is committed. */
  private readonly endedAttempts: AttemptKey[] = [];
  private scheduled = false;
  private flushing = false;
  /** Runs whose Workflow exists but was not versioned yet, or is not in the store yet (see versionPending). */
  private readonly awaitingVersion = new Set<string>();
  /**
   * Runs whose Workflow was not in the store, and when (performance.now()) they stop waiting for
   * it (missingWorkflowGraceMs): a pass at that time tries them once more, then fails them.
   */
  private readonly missingWorkflowUntil = new Map<string, number>();
  /** A kick arrived while a pass was awaiting its commit: exactly one more pass after it. */
  private again = false;
  /** Recover every run from the store at the next pass (start). */
  private recoverPending = false;
  /**
   * Runs whose writes failed, and when (performance.now()) they are rebuilt from the store: a
   * pass before then leaves them alone, so a failing run is retried with backoff however often
   * other runs make passes.
   */
  private readonly rebuild = new Map<string, number>();
  /** Consecutive failed commits of a run's writes (reset by a commit that succeeds). */
  private readonly commitFailures = new Map<string, number>();
  /** Runs taken out of service after `maxCommitFailures` failed commits: never driven again here. */
  private readonly quarantined = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDue = 0;
  private readonly maxCommitFailures: number;
  private readonly statusIntervalMs: number;
  private readonly missingWorkflowGraceMs: number;
  private readonly observer: ControllerObserver | undefined;
  private readonly retryBackoff: { initialMs: number; maxMs: number };
  private stopped = false;
  private unwatch: (() => void) | undefined;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly stepLimits: StepLimits;
  private readonly onQueued: ((queued: number, namespaces: readonly string[]) => void) | undefined;
  /** The reasons (keys) last logged for each queued task a constraint keeps off hosts. */
  private readonly queuedWhy = new Map<string, string>();

  constructor(deps: ControllerDeps) {
    this.store = deps.store;
    this.launcher = deps.launcher;
    this.offerSource = deps.offers;
    this.now = deps.now ?? Date.now;
    this.log = deps.logger ?? silentLogger;
    this.hooks = deps.hooks ?? {};
    this.defaultResources = deps.defaultResources ?? { cpus: '100m', memory: '64Mi' };
    this.runLimits = deps.runLimits;
    this.stepLimits = withLimits(deps.stepLimits);
    this.maxCommitFailures = deps.maxCommitFailures ?? 5;
    this.statusIntervalMs = Math.max(0, deps.statusIntervalMs ?? 0);
    this.missingWorkflowGraceMs = Math.max(0, deps.missingWorkflowGraceMs ?? 0);
    this.observer = deps.observer;
    this.retryBackoff = deps.retryBackoff ?? { initialMs: 200, maxMs: 30_000 };
    this.onQueued = deps.onQueued;
    this.preemption = deps.preemption;
    this.killRetryMs = (deps.preemption?.killRetrySeconds ?? DEFAULT_KILL_RETRY_SECONDS) * 1000;
    this.scheduler = this.newScheduler();
  }

  private newScheduler(): Scheduler {
    const preemption = schedulerPreemption(this.preemption);
    return new Scheduler(preemption ? { preemption } : {});
  }

  /** Offers arrived or went (a Mesos master's): run a scheduling pass so queued tasks meet them. */
  offersChanged(): void {
    this.kick();
  }

  /** Why each queued step instance of a run was not placed at the last pass (unmet constraints, resources). */
  whyQueued(namespace: string, run: string): { instance: string; reasons: string[] }[] {
    const out: { instance: string; reasons: string[] }[] = [];
    for (const [id, t] of this.tasks) {
      if (t.record || t.key.namespace !== namespace || t.key.run !== run) continue;
      const why = this.scheduler.whyQueued(id);
      if (why) out.push({ instance: t.key.instance, reasons: why.reasons.map((r) => r.message) });
    }
    return out;
  }

  /** Loads the store's runs (adopting running executors) and starts watching for changes. */
  start(): void {
    this.unwatch = this.store.watch((c) => {
      if (this.stopped) return;
      if (c.kind === 'WorkflowRun') {
        const run = c.object as Stored<WorkflowRun>;
        const key = runKey(run.metadata.namespace, run.metadata.name);
        if (c.type === 'ADDED' && !run.status?.phase) {
          this.toStart.add(key);
          this.observe((o) => o.runCreated(run));
        } else if (c.type === 'MODIFIED' && run.spec?.stop && this.runs.has(key)) this.stopRequests.add(key);
        else if (
          c.type === 'MODIFIED' &&
          run.spec?.stop &&
          run.status?.phase === 'Pending' &&
          !run.status.engineState
        ) {
          this.toStart.add(key); // stopped while waiting for admission: startRuns ends it
        } else if (c.type === 'MODIFIED' && !run.status?.phase && !this.runs.has(key)) this.toStart.add(key);
        else if (c.type === 'DELETED') this.forgetRun(key);
        this.kick();
      } else if ((c.kind === 'Workflow' || c.kind === 'WorkflowVersion') && this.awaitingVersion.size > 0) {
        // a Workflow was processed or versioned: the runs that waited for it try again
        for (const key of this.awaitingVersion) this.toStart.add(key);
        this.awaitingVersion.clear();
        this.kick();
      } else if (c.kind === 'DataArtifact' && c.type === 'ADDED') {
        this.newArtifacts.push(c.object as Stored<DataArtifact>);
        this.kick();
      }
    });
    // recovery is the first pass (its writes are that pass's commit); a failure there is
    // retried from the store like any failed pass, never a crash at start-up
    this.recoverPending = true;
    this.kick();
  }

  /** Stops reconciling; running executors keep running (they are adopted at the next start). */
  stop(): void {
    this.stopped = true;
    this.unwatch?.();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.launcher.close();
  }

  /** The inputs each waiting step instance of a run still waits for (`mesonctl run` explains a wait). */
  waitingFor(namespace: string, run: string): { instance: string; inputs: string[] }[] {
    const active = this.runs.get(runKey(namespace, run));
    if (!active) return [];
    return [...active.waiting].map(([instance, inputs]) => ({
      instance,
      inputs: inputs.map((i) => describeSelector(i)),
    }));
  }

  /** Resolves when no work is pending (tests, `mesonctl run`). */
  idle(): Promise<void> {
    if (!this.scheduled && !this.flushing && !this.again) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Called by the launcher for every attempt update. */
  onAttemptUpdate(u: AttemptUpdate): void {
    if (this.stopped) return;
    const id = taskId(u.key);
    const entry = this.tasks.get(id);
    const run = runKey(u.key.namespace, u.key.run);
    if (u.type === 'lost') {
      if (entry && entry.key.attempt === u.key.attempt) {
        this.log.warn({ run, instance: u.key.instance, attempt: u.key.attempt }, u.message);
        entry.record = undefined;
        // it never ran: it goes back to the queue like any task, no longer a victim
        entry.evicting = undefined;
        this.evicting.delete(id);
        this.scheduler.taskFinished(id);
        this.offerSource.release(id);
        this.feed.add(entry.task);
        this.kick();
      }
      return;
    }
    if (u.type === 'links') {
      // the attempt is launched already: this only adds its links (StepLaunched keeps its phase)
      this.push(run, {
        type: 'StepLaunched',
        instanceId: u.key.instance,
        attempt: u.key.attempt,
        links: u.links,
      });
      return;
    }
    const s = u.status;
    if (u.type === 'running') {
      this.push(run, {
        type: 'StepRunning',
        instanceId: u.key.instance,
        attempt: u.key.attempt,
        placement: this.placementOf(entry?.record?.node),
        ...(s.links ? { links: s.links } : {}),
      });
      return;
    }
    const evicted = entry && entry.key.attempt === u.key.attempt ? entry.evicting : undefined;
    // only a launcher that frees something once an end is committed needs to be told
    if (this.launcher.settled) this.endedAttempts.push(u.key);
    if (entry && entry.key.attempt === u.key.attempt) {
      this.scheduler.taskFinished(id);
      this.offerSource.release(id);
      this.tasks.delete(id);
      this.evicting.delete(id);
      // deleted in the same transaction that records the result (see commit)
      this.finishedTasks.push(u.key);
    }
    if (s.phase === 'Succeeded') {
      this.push(run, {
        type: 'StepSucceeded',
        instanceId: u.key.instance,
        attempt: u.key.attempt,
        ...(s.outputs ? { outputs: s.outputs as Record<string, Value> } : {}),
        ...(s.links ? { links: s.links } : {}),
      });
    } else if (evicted) {
      // the kill the eviction asked for (or any end after it): not the step's own failure
      this.log.info(
        { run, step: u.key.instance, attempt: u.key.attempt, reason: evicted.message },
        'step attempt preempted',
      );
      this.push(run, {
        type: 'StepPreempted',
        instanceId: u.key.instance,
        attempt: u.key.attempt,
        message: evicted.message,
      });
    } else {
      this.log.warn(
        {
          run,
          step: u.key.instance,
          attempt: u.key.attempt,
          ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
          reason: s.message ?? 'failed',
        },
        'step attempt failed',
      );
      this.push(run, {
        type: 'StepFailed',
        instanceId: u.key.instance,
        attempt: u.key.attempt,
        message: s.message ?? 'failed',
        ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
      });
    }
  }

  private push(run: string, event: EngineEvent): void {
    this.inbox.push({ run, event });
    this.kick();
  }

  /**
   * Asks for a pass. Passes run one at a time: a kick while a pass awaits its commit schedules
   * exactly one more pass, after it.
   */
  private kick(): void {
    if (this.stopped) return;
    if (this.flushing) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /** The run object was deleted: its queued tasks go, its running attempts are killed. */
  private forgetRun(key: string): void {
    this.runs.delete(key);
    for (const [id, t] of this.tasks) {
      if (runKey(t.key.namespace, t.key.run) !== key) continue;
      if (t.record) {
        this.launcher.kill(t.key, t.record);
        this.scheduler.taskFinished(id);
        this.offerSource.release(id);
      } else {
        this.dequeue(id);
      }
      this.tasks.delete(id);
    }
  }

  // --- recovery -----------------------------------------------------------------------------

  /** Rebuilds every run from the store (start, or after a failed pass) into `pending`. */
  private recover(pending: Pass): void {
    const taskRecords = new Map<string, TaskRecord>();
    for (const t of this.store.listTasks()) taskRecords.set(taskId(t), t);
    const runs = this.store.list<WorkflowRun>('WorkflowRun', undefined).items;
    this.recoverRuns(runs, taskRecords, pending);
    // task records that no run claims any more (the run finished or was deleted)
    for (const [id, t] of taskRecords) {
      if (!this.tasks.has(id)) pending.deleteTasks.push(t);
    }
  }

  /**
   * Rebuilds one run from the store after its writes failed: what the controller held for it in
   * memory is dropped (its attempts keep running and are adopted again), then it is recovered
   * as after a restart.
   */
  private rebuildRun(key: string, pending: Pass): void {
    this.dropRun(key);
    const [ns, name] = splitKey(key);
    const run = this.store.get<WorkflowRun>('WorkflowRun', ns, name);
    if (!run) return;
    const taskRecords = new Map<string, TaskRecord>();
    for (const t of this.store.listTasks({ namespace: ns, run: name })) taskRecords.set(taskId(t), t);
    this.recoverRuns([run], taskRecords, pending);
  }

  /** Forgets a run without touching its attempts (they are adopted when it is recovered). */
  private dropRun(key: string): void {
    this.runs.delete(key);
    this.toStart.delete(key);
    this.stopRequests.delete(key);
    for (const [id, t] of this.tasks) {
      if (runKey(t.key.namespace, t.key.run) !== key) continue;
      if (t.record) {
        this.scheduler.taskFinished(id);
        this.offerSource.release(id);
      } else this.dequeue(id);
      this.tasks.delete(id);
    }
    this.clearTimers(key);
    const keep = this.inbox.filter((e) => e.run !== key);
    this.inbox.splice(0, this.inbox.length, ...keep);
    // their records stay: recovery adopts those attempts and learns their outcome again
    dropRunKeys(this.finishedTasks, key);
    dropRunKeys(this.endedAttempts, key);
  }

  private clearTimers(key: string): void {
    for (const [tk, timer] of this.timers) {
      if (tk.startsWith(`${key}\u0000`)) {
        clearTimeout(timer);
        this.timers.delete(tk);
      }
    }
  }

  private recoverRuns(
    runs: Stored<WorkflowRun>[],
    taskRecords: Map<string, TaskRecord>,
    pending: Pass,
  ): void {
    for (const run of runs) {
      const key = runKey(run.metadata.namespace, run.metadata.name);
      if (this.quarantined.has(key)) continue;
      const phase = run.status?.phase;
      if (!phase) {
        this.toStart.add(key);
        continue;
      }
      if (TERMINAL.has(phase)) continue;
      if (phase === 'Pending' && !run.status?.engineState) {
        this.toStart.add(key);
        continue;
      }
      try {
        const version = this.loadVersion(run);
        const instances = this.store
          .getStepInstances(run.metadata.namespace, run.metadata.name)
          .items.map((r) => r.data as StepInstanceStatus);
        const { machine, actions } = restoreRun({
          runId: run.metadata.name,
          workflow: run.spec.workflow,
          version: version.spec.version,
          namespace: run.metadata.namespace,
          definition: version.spec.definition,
          status: run.status as WorkflowRunStatus,
          instances,
          now: this.now(),
          ...(this.runLimits ? { limits: this.runLimits } : {}),
        });
        const active = this.activate(run, machine);
        this.handleActions(active, actions, pending, taskRecords);
        if (run.spec.stop) this.stopRequests.add(key);
        this.log.info({ run: key, phase: machine.phase, actions: actions.length }, 'run recovered');
      } catch (err) {
        // Whatever the reason (a bug, a run the engine cannot restore), this run must not stop
        // the controller from starting: it is quarantined, the others are recovered.
        this.runs.delete(key);
        this.quarantine(run, 'recovering it', err, pending);
      }
    }
  }

  /**
   * After a failed pass the in-memory machines may be ahead of the store (their changes were
   * not committed): drop them and rebuild everything from the store, as after a restart.
   * Launched executors are adopted again, and what the lost events said is derived again from
   * the executors' status files, restored timers, artifact queries and child runs.
   */
  private resetFromStore(pass: Pass): void {
    for (const id of this.tasks.keys()) this.offerSource.release(id);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.runs.clear();
    this.tasks.clear();
    this.inbox.length = 0;
    this.finishedTasks.length = 0;
    this.endedAttempts.length = 0;
    this.newArtifacts.length = 0;
    this.stopRequests.clear();
    this.scheduler = this.newScheduler();
    this.evicting.clear();
    this.feed = new TaskFeed();
    this.offerIds = [];
    this.rebuild.clear();
    this.recover(pass);
  }

  private activate(run: Stored<WorkflowRun>, machine: RunMachine): ActiveRun {
    const key = runKey(run.metadata.namespace, run.metadata.name);
    const active: ActiveRun = {
      key,
      namespace: run.metadata.namespace,
      name: run.metadata.name,
      workflow: run.spec.workflow,
      uid: run.metadata.uid,
      machine,
      dirty: true,
      finished: false,
      priority: Number(run.metadata.annotations?.[RUN_PRIORITY] ?? 0) || 0,
      waiting: new Map(),
      statusWrittenAt: Number.NEGATIVE_INFINITY,
      writtenPhase: undefined,
    };
    this.runs.set(key, active);
    return active;
  }

  /** The version a run runs: the one it recorded, else the one it asks for, else the active one. */
  private loadVersion(run: WorkflowRun): Stored<WorkflowVersion> {
    const ns = run.metadata.namespace ?? 'default';
    const recorded = run.status?.version;
    if (recorded !== undefined) {
      const v = this.store.get<WorkflowVersion>(
        'WorkflowVersion',
        ns,
        versionName(run.spec.workflow, recorded),
      );
      if (!v) throw new Error(`WorkflowVersion "${versionName(run.spec.workflow, recorded)}" not found`);
      return v;
    }
    const wf = this.store.get<Workflow>('Workflow', ns, run.spec.workflow);
    if (!wf && run.spec.version !== undefined) {
      // the Workflow was deleted but its versions stay for its runs: a pinned run (a restart) runs
      const pinned = this.store.get<WorkflowVersion>(
        'WorkflowVersion',
        ns,
        versionName(run.spec.workflow, run.spec.version),
      );
      if (pinned) return pinned;
    }
    if (!wf) {
      throw new VersionError(
        'WORKFLOW_NOT_FOUND',
        `spec.workflow: Workflow "${run.spec.workflow}" not found in namespace "${ns}"`,
      );
    }
    const versions = this.store.list<WorkflowVersion>('WorkflowVersion', ns, {
      labels: { [WORKFLOW_LABEL]: run.spec.workflow },
    }).items;
    return resolveRunVersion(wf, versions, run.spec.version) as Stored<WorkflowVersion>;
  }

  // --- the reconcile pass -------------------------------------------------------------------

  private async flush(): Promise<void> {
    if (this.stopped || this.flushing) return;
    this.flushing = true;
    try {
      const pass = newPass();
      if (this.resetPending || this.recoverPending) {
        this.resetPending = false;
        this.recoverPending = false;
        this.resetFromStore(pass);
      }
      const clock = performance.now();
      for (const [key, due] of this.rebuild) {
        if (due > clock) {
          this.wakeAt(due);
          continue;
        }
        this.rebuild.delete(key);
        this.rebuildRun(key, pass);
      }
      pass.deleteTasks.push(...this.finishedTasks.splice(0));
      // their end events are applied in this pass (or dropped with a finished run)
      pass.settled.push(...this.endedAttempts.splice(0));
      for (const [key, until] of this.missingWorkflowUntil) {
        if (until <= clock)
          this.toStart.add(key); // its last try: it starts or fails now
        else this.wakeAt(until); // a timer may fire a little before performance.now() reaches it
      }
      this.startRuns(pass);
      this.applyStops();
      this.deliverArtifacts();
      this.applyEvents(pass);
      this.schedulePass(pass);
      this.rekillVictims();
      this.reportQueued();
      const failed = await this.commit(pass);
      // stopped meanwhile (the Lease was lost): what was committed is adopted by the next leader
      if (this.stopped) return;
      this.afterCommit(pass, failed);
    } catch (err) {
      this.log.error(
        { err: errorMessage(err), stack: (err as Error).stack },
        'reconcile pass failed; rebuilding from the store and retrying',
      );
      this.resetPending = true;
      this.retryLater(1);
    } finally {
      this.flushing = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    }
    if (!this.scheduled && !this.flushing) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** The wait after `failures` failures in a row: initialMs doubled per failure, up to maxMs. */
  private backoff(failures: number): number {
    const { initialMs, maxMs } = this.retryBackoff;
    return Math.min(maxMs, initialMs * 2 ** Math.max(0, Math.min(failures - 1, 20)));
  }

  /** A pass after `failures` failures in a row, after the backoff (unless one is due earlier). */
  private retryLater(failures: number): void {
    this.wakeAt(performance.now() + this.backoff(failures));
  }

  /** A pass at `due` (performance.now() time), unless one is already set for no later. */
  private wakeAt(due: number): void {
    if (this.stopped || (this.retryTimer && this.retryDue <= due)) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryDue = due;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.kick();
      },
      Math.max(0, due - performance.now()),
    );
    this.retryTimer.unref();
  }

  private startRuns(pass: Pass): void {
    for (const key of [...this.toStart]) {
      this.toStart.delete(key);
      if (this.runs.has(key) || this.quarantined.has(key) || this.rebuild.has(key)) continue;
      const [ns, name] = splitKey(key);
      const run = this.store.get<WorkflowRun>('WorkflowRun', ns, name);
      // not started yet: no phase, or Pending without engine state (waiting for admission)
      if (!run || (run.status?.phase && !(run.status.phase === 'Pending' && !run.status.engineState))) {
        this.missingWorkflowUntil.delete(key);
        continue;
      }
      if (typeof run.spec?.workflow !== 'string' || run.spec.workflow === '') {
        pass.failRuns.push({ run, message: 'spec.workflow: expected the name of a Workflow' });
        continue;
      }
      if (run.spec.stop) {
        pass.failRuns.push({ run, message: 'stopped before it started', phase: 'Stopped' });
        continue;
      }
      const decision =
        this.hooks.admit?.(run, new Set(this.runs.keys()), (fn) =>
          pass.extra.push({ owner: key, write: fn }),
        ) ?? 'start';
      if (decision === 'wait') continue; // the admission hook re-queues it (see requeueRun)
      if (typeof decision === 'object') {
        pass.failRuns.push({ run, message: decision.reject, phase: 'Stopped' });
        continue;
      }
      try {
        const version = this.loadVersion(run);
        // the REST API and the admission webhook refuse these; kubectl without the webhook does not
        const issues = run.spec.restartOf
          ? []
          : overrideIssues(run.spec.workflow, version, run.spec.parameters);
        if (issues.length > 0) {
          pass.failRuns.push({ run, message: issues.map((i) => `spec.${i.path}: ${i.message}`).join('; ') });
          continue;
        }
        const input: StartRunInput = {
          runId: name,
          workflow: run.spec.workflow,
          version: version.spec.version,
          namespace: ns,
          definition: version.spec.definition,
          parameters: version.spec.parameters,
          overrides: overridesOf(run),
          initiator: run.spec.initiator ?? { type: 'manual' },
          now: this.now(),
          // a cron run's RUN_TS is its scheduled slot (Airflow's logical date), not its start
          ...(scheduledSlot(run) !== undefined ? { runTs: scheduledSlot(run) } : {}),
          ...(this.runLimits ? { limits: this.runLimits } : {}),
        };
        const restart = run.spec.restartOf;
        if (restart && restart.from !== 'beginning') {
          const prev = this.store.get<WorkflowRun>('WorkflowRun', ns, restart.run);
          if (!prev?.status) throw new Error(`restartOf: run "${restart.run}" not found or never started`);
          const instances = this.store
            .getStepInstances(ns, restart.run)
            .items.map((r) => r.data as StepInstanceStatus);
          input.restartOf = {
            run: restart.run,
            status: prev.status,
            instances,
            ...(restart.from === 'step' && restart.step ? { fromStep: restart.step } : {}),
          };
        }
        const { machine, actions } = createRun(input);
        const active = this.activate(run, machine);
        this.handleActions(active, actions, pass);
        pass.started.push(key);
        this.missingWorkflowUntil.delete(key);
      } catch (err) {
        if (this.versionPending(key, run, err)) {
          // created with (or right after) its Workflow, before the services versioned it (or
          // before the store saw the Workflow): it starts when they have (a kubectl apply of one
          // file holding both must not fail it)
          this.awaitingVersion.add(key);
          continue;
        }
        this.missingWorkflowUntil.delete(key);
        pass.failRuns.push({ run, message: errorMessage(err) });
      }
    }
  }

  /**
   * The run's Workflow exists and has no version only because it was not processed yet, or it is
   * not in the store and the run is still within missingWorkflowGraceMs of first finding that.
   */
  private versionPending(key: string, run: Stored<WorkflowRun>, err: unknown): boolean {
    if (!(err instanceof VersionError)) return false;
    if (err.code === 'WORKFLOW_NOT_FOUND') {
      if (this.missingWorkflowGraceMs === 0) return false;
      const clock = performance.now();
      const until = this.missingWorkflowUntil.get(key) ?? clock + this.missingWorkflowGraceMs;
      if (until <= clock) return false;
      this.missingWorkflowUntil.set(key, until);
      this.wakeAt(until);
      return true;
    }
    if (err.code !== 'VERSION_NONE') return false;
    const wf = this.store.get<Workflow>('Workflow', run.metadata.namespace, run.spec.workflow);
    if (!wf) return false;
    const generation = (wf.metadata as { generation?: number }).generation;
    return generation === undefined || (wf.status?.observedGeneration ?? 0) < generation;
  }

  /** Re-considers a run that admission made wait (called by the admission hook's owner). */
  requeueRun(namespace: string, name: string): void {
    this.toStart.add(runKey(namespace, name));
    this.kick();
  }

  private applyStops(): void {
    for (const key of this.stopRequests) {
      const active = this.runs.get(key);
      if (active && !active.finished)
        this.inbox.push({ run: key, event: { type: 'Stop', reason: 'stop requested' } });
    }
    this.stopRequests.clear();
  }

  private deliverArtifacts(): void {
    if (this.newArtifacts.length === 0) return;
    const arts = this.newArtifacts.splice(0);
    for (const active of this.runs.values()) {
      for (const [instanceId, inputs] of active.waiting) {
        const matching = arts.filter(
          (a) =>
            a.metadata.namespace === active.namespace && inputs.some((sel) => artifactMatches(sel, a.spec)),
        );
        if (matching.length > 0) {
          this.inbox.push({
            run: active.key,
            event: { type: 'ArtifactsAvailable', instanceId, artifacts: matching.map((a) => toRecord(a)) },
          });
        }
      }
    }
  }

  private applyEvents(pass: Pass): void {
    // events may cause actions that cause events (a kill of a queued task): loop until quiet
    while (this.inbox.length > 0) {
      const batch = this.inbox.splice(0);
      for (const { run, event } of batch) {
        const active = this.runs.get(run);
        if (!active || active.finished) continue;
        let actions: EngineAction[];
        try {
          actions = active.machine.apply(event, this.now());
        } catch (err) {
          // The machine may be half-way through the event: it cannot be trusted any more.
          this.quarantineActive(active, `applying ${event.type}`, err, pass);
          continue;
        }
        active.dirty = true;
        this.handleActions(active, actions, pass);
      }
    }
  }

  private handleActions(
    active: ActiveRun,
    actions: EngineAction[],
    pass: Pass,
    recovered?: Map<string, TaskRecord>,
  ): void {
    for (const a of actions) {
      try {
        this.handleAction(active, a, pass, recovered);
      } catch (err) {
        this.log.error({ run: active.key, action: a.type, err: errorMessage(err) }, 'action failed');
        if (a.type === 'LaunchStep' || a.type === 'StartChildRun') {
          // The attempt could not be started: the step fails (its retries apply).
          this.inbox.push({
            run: active.key,
            event: {
              type: 'StepFailed',
              instanceId: a.instanceId,
              attempt: a.attempt,
              message: errorMessage(err),
            },
          });
        } else {
          // Any other action lost would leave the run waiting for what never comes.
          this.quarantineActive(active, `performing its ${a.type} action`, err, pass);
          return;
        }
      }
    }
  }

  private handleAction(
    active: ActiveRun,
    a: EngineAction,
    pass: Pass,
    recovered?: Map<string, TaskRecord>,
  ): void {
    const ns = active.namespace;
    switch (a.type) {
      case 'LaunchStep': {
        const id = taskId({ namespace: ns, run: active.name, instance: a.instanceId });
        const existing = this.tasks.get(id);
        if (existing && existing.key.attempt === a.attempt) return; // already queued or running
        const req: LaunchRequest = {
          namespace: ns,
          run: active.name,
          workflow: active.workflow,
          instance: a.instanceId,
          attempt: a.attempt,
          step: toExecutorStep(a.step),
          queuedAt: this.now(),
          ...(active.uid ? { runUid: active.uid } : {}),
          // its Pod carries them, so a NoExecute taint it tolerates does not evict it
          ...(a.step.constraints?.tolerations?.length
            ? { tolerations: a.step.constraints.tolerations.map((t) => ({ ...t })) }
            : {}),
        };
        const entry: TaskEntry = {
          id,
          key: { namespace: ns, run: active.name, instance: a.instanceId, attempt: a.attempt },
          req,
          task: this.makeTask(id, ns, a.step, active.priority, active.key),
          queuedAt: req.queuedAt!,
        };
        this.tasks.set(id, entry);
        const rec = recovered?.get(id);
        if (rec && rec.attempt === a.attempt && rec.state === 'launched' && rec.launch) {
          entry.record = rec.launch as unknown as LaunchRecord;
          entry.req.queuedAt = (rec.data.queuedAt as number | undefined) ?? entry.queuedAt;
          this.scheduler.markRunning(
            entry.task,
            entry.record.node ?? this.offerSource.hostname,
            entry.record.launchedAt,
          );
          this.offerSource.hold(id, entry.task.resources, entry.record.node);
          entry.req.resources = entry.task.resources;
          this.launcher.adopt(entry.key, entry.record, entry.req);
          const victimOf = rec.data.preemptedFor;
          if (typeof victimOf === 'string') {
            // evicted before a restart: still a victim, and killed again (kills are idempotent)
            entry.evicting = {
              for: victimOf,
              message: String(rec.data.preemption ?? 'preempted'),
              recovered: true,
            };
            this.scheduler.markEvicting(id, victimOf);
            pass.evictions.push(entry);
          }
          return;
        }
        this.feed.add(entry.task);
        pass.putTasks.push(entry);
        return;
      }
      case 'KillStep': {
        const id = taskId({ namespace: ns, run: active.name, instance: a.instanceId });
        const entry = this.tasks.get(id);
        if (!entry || entry.key.attempt !== a.attempt) return;
        if (entry.record) {
          this.launcher.kill(entry.key, entry.record);
        } else {
          this.dequeue(id);
          this.tasks.delete(id);
          pass.deleteTasks.push({ namespace: ns, run: active.name, instance: a.instanceId });
          this.inbox.push({
            run: active.key,
            event: {
              type: 'StepFailed',
              instanceId: a.instanceId,
              attempt: a.attempt,
              message: `killed before launch: ${a.reason}`,
            },
          });
        }
        return;
      }
      case 'WakeAt': {
        pass.timers.push({ run: active.key, at: a.at, event: { type: 'Timer', timer: a.timer } });
        return;
      }
      case 'WaitForInputs': {
        active.waiting.set(a.instanceId, a.inputs);
        this.log.info(
          { run: active.key, step: a.instanceId, inputs: a.inputs.map((i) => describeSelector(i)) },
          'step waiting for inputs',
        );
        const names = new Set(a.inputs.map((i) => i.name));
        const current = this.store
          .list<DataArtifact>('DataArtifact', ns)
          .items.filter(
            (d) => names.has(d.spec.name) && a.inputs.some((sel) => artifactMatches(sel, d.spec)),
          );
        if (current.length > 0) {
          this.inbox.push({
            run: active.key,
            event: { type: 'ArtifactsAvailable', instanceId: a.instanceId, artifacts: current.map(toRecord) },
          });
        }
        return;
      }
      case 'CancelWaitForInputs':
        active.waiting.delete(a.instanceId);
        return;
      case 'AnnounceArtifact':
        pass.artifacts.push({ namespace: ns, action: a });
        return;
      case 'StartChildRun':
        pass.children.push({ parent: active, action: a });
        return;
      case 'StopChildRun':
        pass.stopChildren.push({
          owner: active.key,
          namespace: ns,
          name: a.childRun ?? childRunName(active.name, a.instanceId, a.attempt),
        });
        return;
      case 'RunFinished':
        active.finished = true;
        active.dirty = true;
        pass.finished.push(active.key);
        return;
    }
  }

  /** Where a placed task runs: its node and the source of that node's offers. */
  private placementOf(node: string | undefined): { source: OfferSourceKind; node: string } {
    const n = node ?? this.offerSource.hostname;
    return { source: this.offerSource.sourceOf?.(n) ?? this.offerSource.source, node: n };
  }

  private reportQueued(): void {
    const onQueued = this.onQueued;
    if (onQueued) this.safeHook(() => onQueued(this.feed.size, this.feed.waitingTenants()));
  }

  /**
   * Logs why a task stays queued when a constraint keeps it off hosts (a step whose constraints no
   * offer meets waits silently otherwise), once per set of reasons. Waiting for free resources is
   * ordinary back-pressure and is not logged (whyQueued tells it).
   */
  private noteQueued(entry: TaskEntry, u: Unplaced): void {
    if (!u.reasons.some((r) => r.key !== 'no-offers' && !r.key.startsWith('insufficient:'))) return;
    const keys = u.reasons.map((r) => r.key).join('\n');
    if (this.queuedWhy.get(entry.id) === keys) return;
    this.queuedWhy.set(entry.id, keys);
    this.log.info(
      {
        run: runKey(entry.key.namespace, entry.key.run),
        step: entry.key.instance,
        reason: u.reasons.map((r) => r.message).join('; '),
      },
      'step queued: no offer can take it',
    );
  }

  /** Forgets a queued task wherever it waits (feed backlog or scheduler queue). */
  private dequeue(id: string): void {
    this.queuedWhy.delete(id);
    if (this.feed.remove(id) === 'scheduler') this.scheduler.remove(id);
  }

  private makeTask(id: string, tenant: string, step: ResolvedStep, runPriority: number, run: string): Task {
    const r = step.resources;
    const noop = step.type === 'noop' || step.type === 'subworkflow';
    const constraints = noop ? undefined : this.placementConstraints(step);
    return makeTask({
      id,
      tenant,
      priority: (step.priority ?? 0) + runPriority,
      // what the step asks for, clamped to what the admin allows its namespace
      tier: stepTier(this.preemption, tenant, step.tier),
      ...(constraints ? { constraints } : {}),
      // the instances of one step of one run (a foreach's) are spread by uniqueHost
      ...(constraints?.uniqueHost ? { groupId: `${run}\u0000${step.name}` } : {}),
      resources: noop
        ? {}
        : {
            cpus: r?.cpus ?? this.defaultResources.cpus,
            memory: r?.memory ?? this.defaultResources.memory,
            ...(r?.disk !== undefined ? { disk: r.disk } : {}),
            ...(r?.gpus !== undefined ? { gpus: r.gpus } : {}),
          },
      submittedAt: this.now(),
    });
  }

  /**
   * A step's `constraints` as the scheduler takes them: nodeSelector, attributes (each one
   * equal), uniqueHost. A step that the local machine cannot take is failed at once by its
   * `neverFits` (its attributes never change) rather than waiting forever; with another member
   * (a Mesos master, whose cluster may grow) it waits.
   */
  private placementConstraints(step: ResolvedStep): TaskConstraints | undefined {
    const c = step.constraints;
    if (!c) return undefined;
    const out: TaskConstraints = {};
    if (c.nodeSelector && Object.keys(c.nodeSelector).length > 0) out.nodeSelector = c.nodeSelector;
    const attrs = Object.entries(c.attributes ?? {});
    if (attrs.length > 0) out.attributes = attrs.map(([key, v]) => ({ key, operator: 'In', values: [v] }));
    const terms = c.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    if (terms) out.nodeAffinity = terms.map((t) => t.matchExpressions.map((e) => ({ ...e })));
    if (c.tolerations && c.tolerations.length > 0) out.tolerations = c.tolerations.map((t) => ({ ...t }));
    if (c.uniqueHost) out.uniqueHost = true;
    return Object.keys(out).length > 0 ? out : undefined;
  }

  private schedulePass(pass: Pass): void {
    if (this.feed.size === 0) return;
    const now = this.now();
    for (const id of this.offerIds) this.scheduler.rescindOffer(id);
    const offers = this.offerSource.offers(now);
    this.offerIds = offers.map((o) => o.id);
    for (const offer of offers) this.scheduler.addOffer(offer);
    if (offers.length === 0) return;
    this.feed.fill(this.scheduler);
    const started = performance.now();
    const result = this.scheduler.schedule(now);
    if (this.observer) {
      const bySource: Record<string, number> = {};
      for (const o of offers) bySource[o.source] = (bySource[o.source] ?? 0) + 1;
      this.observer.schedulingPass({
        seconds: (performance.now() - started) / 1000,
        offers: bySource,
        placed: result.placements.length,
        unplaced: result.unplaced.length,
      });
    }
    const placedTenants = new Set<string>();
    for (const p of result.placements) {
      this.feed.placed(p.taskId);
      this.queuedWhy.delete(p.taskId);
      const entry = this.tasks.get(p.taskId);
      if (entry) this.observer?.taskPlaced(Math.max(0, now - entry.queuedAt) / 1000);
      if (!entry) {
        this.scheduler.taskFinished(p.taskId);
        continue;
      }
      placedTenants.add(entry.task.tenant);
      let record: LaunchRecord;
      try {
        record = this.launcher.prepare(entry.req);
      } catch (err) {
        // e.g. a name that cannot be a path (STORE_UNSAFE_PATH): this step fails, not the pass
        this.scheduler.taskFinished(p.taskId);
        this.tasks.delete(p.taskId);
        pass.deleteTasks.push(entry.key);
        this.inbox.push({
          run: runKey(entry.key.namespace, entry.key.run),
          event: {
            type: 'StepFailed',
            instanceId: entry.key.instance,
            attempt: entry.key.attempt,
            message: `cannot launch: ${errorMessage(err)}`,
          },
        });
        this.kick();
        continue;
      }
      this.offerSource.hold(p.taskId, p.resources, p.hostname);
      // a Pod requests exactly what the placement granted (the node offers count it so)
      entry.req.resources = p.resources;
      entry.record = record;
      entry.record.node = p.hostname;
      pass.putTasks.push(entry);
      pass.launches.push(entry);
    }
    this.feed.passDone(placedTenants);
    for (const e of result.evictions) this.evict(e, pass);
    for (const u of result.unplaced) {
      const entry = this.tasks.get(u.taskId);
      if (!entry) continue;
      // a step bigger than the whole (fixed) machine would stay Queued forever: fail it, saying why
      const never =
        u.outcome === 'does-not-fit'
          ? this.offerSource.neverFits?.(entry.task.resources, entry.task.constraints)
          : undefined;
      if (u.outcome !== 'broke' && !never) {
        this.noteQueued(entry, u);
        continue;
      }
      this.dequeue(u.taskId);
      this.tasks.delete(u.taskId);
      pass.deleteTasks.push(entry.key);
      const message = never ?? u.error?.message ?? u.reasons.map((r) => r.message).join('; ');
      this.inbox.push({
        run: runKey(entry.key.namespace, entry.key.run),
        event: { type: 'StepFailed', instanceId: entry.key.instance, attempt: entry.key.attempt, message },
      });
      this.kick();
    }
  }

  /**
   * The scheduler chose a running attempt to evict for a higher-tier task: the attempt is marked
   * (and its task record says so, in this pass's commit), then killed after the commit. Its end
   * is reported to its run as StepPreempted, with the why.
   */
  private evict(e: Eviction, pass: Pass): void {
    const entry = this.tasks.get(e.victimTaskId);
    if (!entry?.record || entry.evicting) return;
    const by = this.tasks.get(e.preemptorTaskId)?.key;
    const preemptor = by ? `${by.namespace}/${by.run}/${by.instance}` : e.preemptorTaskId;
    const message =
      `${e.code}: evicted for ${preemptor} (tier ${e.preemptorTier}) on node ${e.hostname}; ` +
      `this step's tier is ${e.victimTier}`;
    entry.evicting = {
      for: e.preemptorTaskId,
      message,
      tiers: { victim: e.victimTier, preemptor: e.preemptorTier },
    };
    pass.putTasks.push(entry);
    pass.evictions.push(entry);
    this.log.info(
      {
        run: runKey(entry.key.namespace, entry.key.run),
        step: entry.key.instance,
        attempt: entry.key.attempt,
        node: e.hostname,
        preemptor,
        tier: e.victimTier,
        preemptorTier: e.preemptorTier,
      },
      'preempting step attempt',
    );
  }

  /** Asks the launcher to kill an evicted attempt; a kill that throws is tried again later. */
  private killVictim(entry: TaskEntry): void {
    if (!entry.evicting || !entry.record) return;
    entry.evicting.killedAt = this.now();
    this.evicting.set(entry.id, entry);
    try {
      this.launcher.kill(entry.key, entry.record);
    } catch (err) {
      this.log.warn(
        { run: runKey(entry.key.namespace, entry.key.run), step: entry.key.instance, err: errorMessage(err) },
        'cannot kill the preempted step attempt; trying again',
      );
    }
    this.wakeAt(performance.now() + this.killRetryMs);
  }

  /**
   * Victims still running killRetryMs after their kill was asked for (the kill failed, or the
   * Pod delete was lost) are killed again: the preemptor waits for them, it must not wait forever.
   */
  private rekillVictims(): void {
    if (this.evicting.size === 0) return;
    const now = this.now();
    for (const [id, entry] of this.evicting) {
      if (this.tasks.get(id) !== entry || !entry.evicting || !entry.record) {
        this.evicting.delete(id);
        continue;
      }
      const at = entry.evicting.killedAt ?? now;
      if (now - at < this.killRetryMs) continue;
      this.log.warn(
        {
          run: runKey(entry.key.namespace, entry.key.run),
          step: entry.key.instance,
          attempt: entry.key.attempt,
          seconds: Math.round((now - at) / 1000),
        },
        'preempted step attempt still running; killing it again',
      );
      this.killVictim(entry);
    }
  }

  /**
   * Takes out of service a run the controller failed on while driving it: its attempts are
   * killed, its queued tasks and task records dropped, and the run is marked Failed with the
   * error (condition reason Quarantined). A run that triggers a bug therefore never stops the
   * other runs nor crashes the process, and a restart does not meet it again (it is terminal).
   */
  private quarantineActive(active: ActiveRun, stage: string, err: unknown, pass: Pass): void {
    for (const t of this.tasks.values())
      if (t.key.namespace === active.namespace && t.key.run === active.name) pass.deleteTasks.push(t.key);
    this.forgetRun(active.key);
    active.finished = true;
    active.dirty = false;
    const run = this.store.get<WorkflowRun>('WorkflowRun', active.namespace, active.name);
    if (run) this.quarantine(run, stage, err, pass);
  }

  /** Marks `run` Failed (at this pass's commit) with the error that made the controller fail on it. */
  private quarantine(run: Stored<WorkflowRun>, stage: string, err: unknown, pass: Pass): void {
    const key = runKey(run.metadata.namespace, run.metadata.name);
    const message = `${RUN_QUARANTINED}: the controller failed while ${stage}, so this run was stopped (other runs go on): ${errorMessage(err)}`;
    this.log.error(
      { run: key, stage, err: errorMessage(err), stack: (err as Error)?.stack },
      'run quarantined',
    );
    pass.failRuns.push({ run, message, reason: 'Quarantined' });
  }

  /**
   * The status and changed instances of every run changed by the pass; quarantines a run that
   * throws. With `statusIntervalMs`, a run whose pass only observed progress (see
   * ControllerDeps.statusIntervalMs) within the interval since its last status write keeps those
   * changes in `held` and gives no status (`status` undefined); only the instances whose task
   * record the pass writes (`putIds`) go now, since a task record must never be ahead of its
   * instance's stored attempt. The run is in `pass.deferred`, and a pass is due when the interval
   * is over.
   */
  private runWrites(
    pass: Pass,
    urgent: ReadonlySet<string>,
    putIds: ReadonlyMap<string, Set<string>>,
  ): { active: ActiveRun; changed: StepInstanceStatus[]; status: WorkflowRunStatus | undefined }[] {
    const out: { active: ActiveRun; changed: StepInstanceStatus[]; status: WorkflowRunStatus | undefined }[] =
      [];
    const clock = performance.now();
    for (const active of [...this.runs.values()]) {
      if (!active.dirty && !active.held) continue;
      try {
        let changed = active.machine.changedInstances();
        const status = active.machine.snapshot({ steps: 'none' });
        if (status.phase && TERMINAL.has(status.phase)) {
          const duration = formatRunDuration(status.startTime, status.endTime);
          if (duration) status.duration = duration; // kubectl's Duration column
        }
        active.dirty = false;
        const hold =
          this.statusIntervalMs > 0 &&
          !urgent.has(active.key) &&
          !active.finished &&
          status.phase === active.writtenPhase &&
          !(status.phase && TERMINAL.has(status.phase)) &&
          clock - active.statusWrittenAt < this.statusIntervalMs;
        if (active.held || hold) {
          const held = active.held ?? { instances: new Map(), deletes: new Map() };
          for (const st of changed) held.instances.set(st.id, st);
          changed = [];
          if (hold) {
            active.held = held;
            for (const id of putIds.get(active.key) ?? []) {
              const st = held.instances.get(id);
              if (st) changed.push(st);
              held.instances.delete(id);
              held.deletes.delete(id); // the record written now replaces the ended attempt's
            }
            pass.deferred.add(active.key);
            this.wakeAt(active.statusWrittenAt + this.statusIntervalMs);
            out.push({ active, changed, status: undefined });
            continue;
          }
          // the interval is over, or something must be written now: everything held goes
          active.held = undefined;
          changed = [...held.instances.values()];
          for (const d of held.deletes.values()) pass.deleteTasks.unshift(d);
        }
        active.statusWrittenAt = clock;
        active.writtenPhase = status.phase;
        out.push({ active, changed, status });
      } catch (err) {
        this.quarantineActive(active, 'saving its status', err, pass);
      }
    }
    return out;
  }

  /**
   * Runs with writes this pass other than step instances, task records and their status: their
   * held writes go with them (a child run, an artifact, a hook's write or a failure summarises
   * the run's instances as they are now).
   */
  private urgentRuns(pass: Pass): Set<string> {
    const urgent = new Set<string>();
    for (const f of pass.failRuns) urgent.add(runKey(f.run.metadata.namespace, f.run.metadata.name));
    for (const key of pass.finished) urgent.add(key);
    for (const u of pass.extra) urgent.add(u.owner);
    for (const { namespace, action } of pass.artifacts) urgent.add(runKey(namespace, action.producer.run));
    for (const { parent } of pass.children) urgent.add(parent.key);
    for (const c of pass.stopChildren) urgent.add(c.owner);
    for (const e of pass.evictions) urgent.add(runKey(e.key.namespace, e.key.run));
    return urgent;
  }

  /**
   * Everything the pass decided, as units of writes, each owned by one run (its key; '' for
   * writes of no run). Within a unit, step instances and task records come before the run status
   * that summarises them, so a store without transactions that stops half-way leaves nothing the
   * status claims unwritten. An atomic store (SQLite) commits every unit in one transaction: one
   * fsync per pass. When that fails, and always on a store without transactions (Kubernetes:
   * the same writes either way), each unit is its own transaction, so one run's failing write
   * cannot keep the others from being saved. Resolves with the owners whose writes failed.
   */
  private async commit(pass: Pass): Promise<Set<string>> {
    const units = this.units(pass);
    const failed = new Set<string>();
    if (units.length === 0) return failed;
    const errors = new Map<string, unknown>();
    let together = this.store.atomic;
    if (together) {
      try {
        await this.store.transaction((w) => {
          for (const u of units) for (const write of u.writes) write(w);
        });
      } catch (err) {
        together = false;
        this.log.warn(
          { err: errorMessage(err), units: units.length },
          'pass commit failed; committing run by run to find the failing one',
        );
      }
    }
    if (!together) {
      const results = await Promise.allSettled(
        units.map((u) =>
          this.store.transaction((w) => {
            for (const write of u.writes) write(w);
          }),
        ),
      );
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') return;
        const owner = units[i]!.owner;
        failed.add(owner);
        errors.set(owner, r.reason);
      });
    }
    this.afterWrites(units, failed, errors);
    return failed;
  }

  /** The pass's writes grouped by the run they belong to, in the order they must be applied. */
  private units(pass: Pass): CommitUnit[] {
    const now = this.now();
    const putIds = new Map<string, Set<string>>();
    if (this.statusIntervalMs > 0) {
      for (const t of pass.putTasks) {
        const key = runKey(t.key.namespace, t.key.run);
        const ids = putIds.get(key) ?? new Set<string>();
        ids.add(t.key.instance);
        putIds.set(key, ids);
      }
    }
    const writes = this.runWrites(
      pass,
      this.statusIntervalMs > 0 ? this.urgentRuns(pass) : new Set(),
      putIds,
    );
    const phases = new Map<string, string | undefined>();
    const byOwner = new Map<string, CommitUnit>();
    const add = (owner: string, write: (w: ControllerWriteBatch) => void) => {
      let u = byOwner.get(owner);
      if (!u) {
        u = { owner, writes: [] };
        byOwner.set(owner, u);
      }
      u.writes.push(write);
    };
    // records first: instances and tasks, then the statuses that summarise them
    for (const { active, changed } of writes) {
      if (changed.length === 0) continue;
      const ended = changed.filter((st) => TERMINAL.has(st.phase));
      if (ended.length > 0) pass.endedSteps.push({ active, steps: ended });
      const records = changed.map((s) => ({
        namespace: active.namespace,
        run: active.name,
        id: s.id,
        phase: s.phase,
        data: s as unknown as Record<string, unknown>,
      }));
      add(active.key, (w) => w.putStepInstances(records));
    }
    const deleted = new Set<string>();
    for (const t of pass.deleteTasks) {
      const id = taskId(t);
      if (deleted.has(id)) continue;
      deleted.add(id);
      const key = runKey(t.namespace, t.run);
      // an ended attempt's record goes with its instance's end: held together, written together
      const held = this.runs.get(key)?.held;
      if (held?.instances.has(t.instance) && !putIds.get(key)?.has(t.instance)) {
        held.deletes.set(t.instance, t);
        continue;
      }
      add(key, (w) => w.deleteTask(t.namespace, t.run, t.instance));
    }
    for (const t of pass.putTasks) {
      if (!this.tasks.has(t.id)) continue;
      const record: TaskRecord = {
        ...t.key,
        state: t.record ? 'launched' : 'queued',
        data: {
          queuedAt: t.queuedAt,
          step: t.req.step.name,
          ...(t.evicting ? { preemptedFor: t.evicting.for, preemption: t.evicting.message } : {}),
        },
        ...(t.record ? { launch: structuredClone(t.record) as unknown as Record<string, unknown> } : {}),
      };
      add(runKey(t.key.namespace, t.key.run), (w) => w.putTasks([record]));
    }
    for (const key of pass.finished) {
      const [ns, name] = splitKey(key);
      for (const [id, t] of this.tasks) {
        if (t.key.namespace === ns && t.key.run === name && !t.record) {
          this.dequeue(id);
          this.tasks.delete(id);
          add(key, (w) => w.deleteTask(ns, name, t.key.instance));
        }
      }
    }
    for (const u of pass.extra) add(u.owner, u.write);
    for (const f of pass.failRuns) {
      const status: WorkflowRunStatus = {
        ...(f.run.status ?? {}),
        phase: f.phase ?? 'Failed',
        message: f.message,
        endTime: new Date(now).toISOString(),
        conditions: [
          {
            type: f.phase === 'Stopped' ? 'Stopped' : 'Failed',
            status: 'True',
            reason: f.reason ?? (f.phase === 'Stopped' ? 'NotStarted' : 'StartFailed'),
            message: f.message,
            lastTransitionTime: new Date(now).toISOString(),
          },
        ],
      };
      const cur = this.store.get<WorkflowRun>('WorkflowRun', f.run.metadata.namespace, f.run.metadata.name);
      if (cur) {
        const key = runKey(cur.metadata.namespace, cur.metadata.name);
        add(key, (w) => w.updateStatus('WorkflowRun', unconditional({ ...cur, status })));
        pass.finishedRuns.push(key);
        phases.set(key, status.phase);
      }
    }
    for (const { active, status } of writes) {
      if (!status) continue; // held (statusIntervalMs)
      const cur = this.store.get<WorkflowRun>('WorkflowRun', active.namespace, active.name);
      if (!cur) continue;
      // the controller owns a run's status: it overwrites it (no resourceVersion), so a user's
      // concurrent change of the run's spec (spec.stop) does not fail the pass
      add(active.key, (w) => w.updateStatus('WorkflowRun', unconditional({ ...cur, status })));
      phases.set(active.key, status.phase);
    }
    for (const { namespace, action } of pass.artifacts) {
      const name = announcedArtifactName(
        action.artifact.name,
        action.producer.run,
        action.instanceId,
        action.artifact.partition,
      );
      if (this.store.get('DataArtifact', namespace, name)) continue;
      const art: DataArtifact = {
        apiVersion: API_VERSION,
        kind: 'DataArtifact',
        metadata: { name, namespace },
        spec: {
          name: action.artifact.name,
          partition: action.artifact.partition,
          ...(action.artifact.location ? { location: action.artifact.location } : {}),
          producer: action.producer,
        },
        status: { announcedAt: new Date(now).toISOString() },
      };
      add(runKey(namespace, action.producer.run), (w) => w.create('DataArtifact', art));
    }
    for (const { parent, action } of pass.children) {
      const name = childRunName(parent.name, action.instanceId, action.attempt);
      const existing = this.store.get<WorkflowRun>('WorkflowRun', parent.namespace, name);
      if (existing && childAttemptOf(existing, action.attempt) !== action.attempt) {
        // someone else's run holds the child's name: adopting it would run (and report)
        // what they chose; waiting for it would hang the step
        pass.childRefused.push({ parent, action, name });
        continue;
      }
      if (existing) {
        if (existing.status?.phase && TERMINAL.has(existing.status.phase)) {
          pass.childFinished.push(existing);
        }
        continue;
      }
      const child: WorkflowRun = {
        apiVersion: API_VERSION,
        kind: 'WorkflowRun',
        metadata: {
          name,
          namespace: parent.namespace,
          labels: { [PARENT_RUN_LABEL]: parent.name, 'meson.dev/workflow': action.workflow },
        },
        spec: {
          workflow: action.workflow,
          ...(action.version !== undefined ? { version: action.version } : {}),
          parameters: Object.entries(action.parameters).map(([k, v]) => ({ name: k, value: v })),
          initiator: { type: 'subworkflow', parent: { run: parent.name, step: action.instanceId } },
        },
      };
      add(parent.key, (w) => w.create('WorkflowRun', child));
      pass.childLaunched.push({ parent, action, name });
    }
    for (const c of pass.stopChildren) {
      const cur = this.store.get<WorkflowRun>('WorkflowRun', c.namespace, c.name);
      if (cur && !cur.spec.stop && !(cur.status?.phase && TERMINAL.has(cur.status.phase))) {
        add(c.owner, (w) =>
          w.update('WorkflowRun', unconditional({ ...cur, spec: { ...cur.spec, stop: true } })),
        );
      }
    }
    pass.phases = phases;
    return [...byOwner.values()];
  }

  /**
   * Bookkeeping after a commit: a run whose writes failed is dropped from memory and rebuilt
   * from the store at the next pass (with backoff); after `maxCommitFailures` failures in a row
   * it is quarantined, and the other runs go on.
   */
  private afterWrites(units: CommitUnit[], failed: Set<string>, errors: Map<string, unknown>): void {
    let worst = 0;
    for (const u of units) if (!failed.has(u.owner)) this.commitFailures.delete(u.owner);
    for (const owner of failed) {
      const err = errors.get(owner);
      if (owner === '') {
        // the workflows' last-run status: recomputed when their next run finishes
        this.log.warn({ err: errorMessage(err) }, 'writes of no run failed (workflow status)');
        continue;
      }
      const n = (this.commitFailures.get(owner) ?? 0) + 1;
      this.commitFailures.set(owner, n);
      this.observer?.commitFailed();
      worst = Math.max(worst, n);
      if (n >= this.maxCommitFailures) {
        this.commitFailures.delete(owner);
        void this.quarantineUnwritable(owner, n, err);
        continue;
      }
      this.log.warn(
        { run: owner, failures: n, err: errorMessage(err) },
        "run's writes failed; rebuilding it from the store",
      );
      this.dropRun(owner);
      this.rebuild.set(owner, performance.now() + this.backoff(n));
    }
    if (worst > 0) this.retryLater(worst);
  }

  /**
   * A run whose writes failed `failures` times in a row: its attempts are killed, the controller
   * forgets it (for the life of this process), and it is marked Failed with condition reason
   * CommitFailed when the store takes that write.
   */
  private async quarantineUnwritable(key: string, failures: number, err: unknown): Promise<void> {
    this.quarantined.add(key);
    this.forgetRun(key);
    this.dropRun(key);
    const message = `${RUN_QUARANTINED}: the controller could not save this run's state (${failures} failed commits in a row), so it was stopped (other runs go on): ${errorMessage(err)}`;
    this.log.error({ run: key, failures, err: errorMessage(err) }, 'run quarantined');
    const [ns, name] = splitKey(key);
    const at = new Date(this.now()).toISOString();
    try {
      let wrote = false;
      const stored = await updateStatusRetrying<WorkflowRun>(this.store, 'WorkflowRun', ns, name, (cur) => {
        wrote = !(cur.status?.phase && TERMINAL.has(cur.status.phase));
        return wrote
          ? {
              ...(cur.status ?? {}),
              phase: 'Failed',
              message,
              endTime: at,
              conditions: [
                { type: 'Failed', status: 'True', reason: 'CommitFailed', message, lastTransitionTime: at },
              ],
            }
          : undefined;
      });
      if (wrote && stored) this.observe((o) => o.runFinished(stored));
    } catch (e) {
      this.log.error({ run: key, err: errorMessage(e) }, 'cannot mark the quarantined run Failed');
    }
  }

  /**
   * The Workflow's `lastRun`/`lastRunPhase`, written after the run's final status (its own
   * write, re-read and retried on a conflict: other writers update the Workflow's status too).
   */
  private async recordLastRun(key: string, phase: string | undefined): Promise<void> {
    const [ns, name] = splitKey(key);
    const workflow = this.store.get<WorkflowRun>('WorkflowRun', ns, name)?.spec?.workflow;
    if (typeof workflow !== 'string' || !phase) return;
    try {
      await updateStatusRetrying<ResourceObject>(this.store, 'Workflow', ns, workflow, (wf) => {
        const cur = (wf.status ?? {}) as Record<string, unknown>;
        if (cur.lastRun === name && cur.lastRunPhase === phase) return undefined;
        return { ...cur, lastRun: name, lastRunPhase: phase };
      });
    } catch (err) {
      this.log.warn(
        { run: key, workflow, err: errorMessage(err) },
        'cannot record the last run of the workflow',
      );
    }
  }

  /** Side effects of a committed pass, except for the runs whose writes failed (`failed`). */
  private afterCommit(pass: Pass, failed: ReadonlySet<string>): void {
    const ok = (key: string) => !failed.has(key);
    for (const entry of pass.launches) {
      if (!this.tasks.has(entry.id) || !entry.record) continue;
      if (!ok(runKey(entry.key.namespace, entry.key.run))) continue;
      try {
        this.launcher.launch(entry.req, entry.record);
        this.inbox.push({
          run: runKey(entry.key.namespace, entry.key.run),
          event: {
            type: 'StepLaunched',
            instanceId: entry.key.instance,
            attempt: entry.key.attempt,
            placement: this.placementOf(entry.record.node),
          },
        });
      } catch (err) {
        this.onAttemptUpdate({
          type: 'finished',
          key: entry.key,
          status: {
            launchId: entry.record.launchId,
            pid: 0,
            phase: 'Failed',
            message: `launch failed: ${errorMessage(err)}`,
            milestones: { finished: this.now() },
          },
        });
      }
    }
    for (const entry of pass.evictions) {
      if (this.tasks.get(entry.id) !== entry || !entry.record || !entry.evicting) continue;
      if (!ok(runKey(entry.key.namespace, entry.key.run))) continue;
      const first = entry.evicting.killedAt === undefined && !entry.evicting.recovered;
      this.killVictim(entry);
      const run = first && this.store.get<WorkflowRun>('WorkflowRun', entry.key.namespace, entry.key.run);
      const { instance: step, attempt } = entry.key;
      const message = entry.evicting.message;
      if (run) this.safeHook(() => this.hooks.stepPreempted?.(run, { step, attempt, message }));
      if (first && entry.evicting.tiers) {
        const { victim, preemptor } = entry.evicting.tiers;
        this.observe((o) =>
          o.stepPreempted?.({ namespace: entry.key.namespace, victimTier: victim, preemptorTier: preemptor }),
        );
      }
    }
    for (const { parent, action, name } of pass.childLaunched) {
      if (!ok(parent.key)) continue;
      this.inbox.push({
        run: parent.key,
        event: {
          type: 'StepLaunched',
          instanceId: action.instanceId,
          attempt: action.attempt,
          childRun: name,
        },
      });
    }
    for (const child of pass.childFinished) this.notifyParent(child);
    for (const { parent, action, name } of pass.childRefused) {
      if (!ok(parent.key)) continue;
      this.push(parent.key, {
        type: 'ChildRunFinished',
        instanceId: action.instanceId,
        attempt: action.attempt,
        phase: 'Failed',
        message: `cannot start child run "${name}": a run of that name exists that this step did not start`,
      });
    }
    for (const t of pass.timers) if (ok(t.run)) this.setTimer(t.run, t.at, t.event);
    for (const key of pass.settled) {
      // the run's writes are committed again by the next pass (or it is rebuilt, which drops
      // these), or were held back: the end is not stored yet, so the Pod must stay
      const run = runKey(key.namespace, key.run);
      if (!ok(run) || pass.deferred.has(run)) {
        this.endedAttempts.push(key);
        continue;
      }
      try {
        this.launcher.settled?.(key);
      } catch (err) {
        this.log.warn(
          { run: runKey(key.namespace, key.run), err: errorMessage(err) },
          'launcher settled failed',
        );
      }
    }
    for (const { active, steps } of pass.endedSteps) {
      if (!ok(active.key)) continue;
      const about = { namespace: active.namespace, name: active.name, workflow: active.workflow };
      this.observe((o) => o.stepsEnded(about, steps));
    }
    for (const key of pass.started) {
      if (!ok(key)) continue;
      const [ns, name] = splitKey(key);
      const run = this.store.get<WorkflowRun>('WorkflowRun', ns, name);
      if (!run) continue;
      this.log.info(
        {
          run: key,
          workflow: run.spec.workflow,
          version: run.status?.version,
          initiator: run.spec.initiator?.type ?? 'manual',
          ...(run.spec.restartOf ? { restartOf: run.spec.restartOf.run } : {}),
        },
        'run started',
      );
      this.observe((o) => o.runStarted(run));
      this.safeHook(() => this.hooks.runStarted?.(run));
    }
    for (const key of [...pass.finished, ...pass.finishedRuns]) {
      if (!ok(key)) continue;
      const [ns, name] = splitKey(key);
      const run = this.store.get<WorkflowRun>('WorkflowRun', ns, name);
      this.runs.delete(key);
      this.clearTimers(key);
      if (!run) continue;
      void this.recordLastRun(key, pass.phases.get(key));
      const fields = {
        run: key,
        workflow: run.spec.workflow,
        phase: run.status?.phase,
        ...(run.status?.duration ? { duration: run.status.duration } : {}),
        ...(run.status?.message ? { reason: run.status.message } : {}),
      };
      if (run.status?.phase === 'Failed') this.log.warn(fields, 'run finished');
      else this.log.info(fields, 'run finished');
      if (run.status?.phase && TERMINAL.has(run.status.phase)) this.observe((o) => o.runFinished(run));
      this.notifyParent(run);
      this.safeHook(() => this.hooks.runFinished?.(run));
    }
    if (this.inbox.length > 0 || this.toStart.size > 0) this.kick();
  }

  /** Reports to the observer; an observer that throws is logged, never fails the pass. */
  private observe(fn: (o: ControllerObserver) => void): void {
    const o = this.observer;
    if (o) this.safeHook(() => fn(o));
  }

  private safeHook(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'hook failed');
    }
  }

  /** A child run finished: tell its parent's subworkflow step (only a child the controller started). */
  private notifyParent(child: Stored<WorkflowRun>): void {
    const parent = child.spec.initiator?.parent;
    const phase = child.status?.phase;
    if (child.spec.initiator?.type !== 'subworkflow' || !parent?.step || !phase || !TERMINAL.has(phase))
      return;
    const attempt = verifiedChildAttempt(this.store, child);
    if (attempt === undefined) {
      this.log.warn(
        { run: runKey(child.metadata.namespace, child.metadata.name), parent: parent.run },
        'run claims a parent that did not start it: its result is not reported to that parent',
      );
      return;
    }
    const merged = phase === 'Succeeded' ? this.childOutputs(child) : undefined;
    const tooLarge = merged && 'error' in merged ? merged.error : undefined;
    const message = tooLarge ?? child.status?.message;
    this.push(runKey(child.metadata.namespace, parent.run), {
      type: 'ChildRunFinished',
      instanceId: parent.step,
      attempt,
      childRun: child.metadata.name,
      phase: tooLarge ? 'Failed' : (phase as 'Succeeded' | 'Failed' | 'Stopped'),
      ...(message ? { message } : {}),
      ...(merged && 'outputs' in merged ? { outputs: merged.outputs } : {}),
    });
  }

  /**
   * A subworkflow step's outputs: the output parameters of the child's step instances merged
   * into one map, the instance that ended last winning a name, so the parent reads
   * `steps.<step>.outputs.<param>` just as if the child's step were its own.
   */
  private childOutputs(child: Stored<WorkflowRun>): { outputs: Record<string, Value> } | { error: string } {
    const done = this.store
      .getStepInstances(child.metadata.namespace, child.metadata.name, { phase: 'Succeeded', limit: 100_000 })
      .items.map((r) => r.data as StepInstanceStatus)
      .filter((s) => s.outputs && Object.keys(s.outputs).length > 0)
      .sort((a, b) => (a.endTime ?? '').localeCompare(b.endTime ?? ''));
    const outputs: Record<string, Value> = Object.assign({}, ...done.map((s) => s.outputs));
    // each child step kept within the limits, but 10,000 of them merged need not be
    try {
      checkOutputs(outputs as Record<string, JsonValue>, this.stepLimits);
      const size = Buffer.byteLength(JSON.stringify(outputs));
      if (size > this.stepLimits.outputsBytes)
        throw new StepFileError(
          'EXECUTOR_OUTPUTS_TOO_LARGE',
          `outputs: ${size} bytes merged, over the limit outputsBytes=${this.stepLimits.outputsBytes}`,
        );
    } catch (err) {
      const code = err instanceof StepFileError ? err.code : 'EXECUTOR_OUTPUTS_INVALID';
      return {
        error: `${code}: the outputs of child run ${child.metadata.name}, merged: ${(err as Error).message}`,
      };
    }
    return { outputs };
  }

  private setTimer(run: string, at: number, event: EngineEvent): void {
    const key = `${run}\u0000${JSON.stringify(event)}`;
    const old = this.timers.get(key);
    if (old) clearTimeout(old);
    const t = setTimeout(
      () => {
        this.timers.delete(key);
        this.push(run, event);
      },
      Math.max(0, at - this.now()),
    );
    t.unref();
    this.timers.set(key, t);
  }
}

/** The writes of one run in a pass (owner: the run's key; '' for writes of no run). */
interface CommitUnit {
  owner: string;
  writes: ((w: ControllerWriteBatch) => void)[];
}

/** An object to write without its resourceVersion: the write overwrites (last writer wins). */
export function unconditional<T extends ResourceObject>(obj: T): T {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return { ...obj, metadata } as T;
}

interface Pass {
  started: string[];
  failRuns: {
    run: Stored<WorkflowRun>;
    message: string;
    phase?: 'Failed' | 'Stopped';
    /** The condition's reason (default StartFailed, or NotStarted for Stopped). */
    reason?: string;
  }[];
  finishedRuns: string[];
  putTasks: TaskEntry[];
  deleteTasks: { namespace: string; run: string; instance: string }[];
  /** Attempts whose end this pass commits: the launcher is told once it is committed. */
  settled: AttemptKey[];
  /** Runs whose writes the pass held back (statusIntervalMs): their ended attempts wait too. */
  deferred: Set<string>;
  launches: TaskEntry[];
  /** Running attempts evicted by the pass (or recovered mid-eviction): killed after the commit. */
  evictions: TaskEntry[];
  timers: { run: string; at: number; event: EngineEvent }[];
  artifacts: { namespace: string; action: Extract<EngineAction, { type: 'AnnounceArtifact' }> }[];
  children: { parent: ActiveRun; action: Extract<EngineAction, { type: 'StartChildRun' }> }[];
  childLaunched: {
    parent: ActiveRun;
    action: Extract<EngineAction, { type: 'StartChildRun' }>;
    name: string;
  }[];
  childFinished: Stored<WorkflowRun>[];
  /** Child runs whose name another run already holds: the step attempt fails. */
  childRefused: {
    parent: ActiveRun;
    action: Extract<EngineAction, { type: 'StartChildRun' }>;
    name: string;
  }[];
  stopChildren: { owner: string; namespace: string; name: string }[];
  /** Writes of hooks (admission), committed with the pass. */
  extra: { owner: string; write: (w: ControllerWriteBatch) => void }[];
  finished: string[];
  /** Step instances that reached a final phase in this pass, by run (reported once committed). */
  endedSteps: { active: ActiveRun; steps: StepInstanceStatus[] }[];
  /** The phase each run's status was committed with in this pass. */
  phases: Map<string, string | undefined>;
}

function newPass(): Pass {
  return {
    started: [],
    failRuns: [],
    finishedRuns: [],
    putTasks: [],
    deleteTasks: [],
    settled: [],
    deferred: new Set(),
    launches: [],
    evictions: [],
    timers: [],
    artifacts: [],
    children: [],
    childLaunched: [],
    childFinished: [],
    childRefused: [],
    stopChildren: [],
    finished: [],
    endedSteps: [],
    extra: [],
    phases: new Map(),
  };
}

/** Removes, in place, the attempt keys of the run `key` (`ns/name`). */
function dropRunKeys(keys: AttemptKey[], key: string): void {
  const kept = keys.filter((k) => runKey(k.namespace, k.run) !== key);
  keys.splice(0, keys.length, ...kept);
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

function toRecord(a: DataArtifact): ArtifactRecord {
  return {
    name: a.spec.name,
    ...(a.spec.partition ? { partition: a.spec.partition } : {}),
    ...(a.spec.location ? { location: a.spec.location } : {}),
  };
}

/** The part of a resolved step the executor needs (it runs in another process: keep it small). */
function toExecutorStep(step: ResolvedStep): LaunchRequest['step'] {
  return {
    name: step.name,
    type: step.type,
    ...(step.shell ? { shell: step.shell } : {}),
    ...(step.container ? { container: step.container } : {}),
    ...(step.spark ? { spark: step.spark } : {}),
    ...(step.copy ? { copy: step.copy } : {}),
    parameters: step.parameters as LaunchRequest['step']['parameters'],
  };
}

/** `views{country=US,dateint=20240101}`: an input as a person reads it in a log or a message. */
function describeSelector(sel: ArtifactSelector): string {
  const parts = Object.entries(sel.partition ?? {}).map(([k, v]) => `${k}=${v}`);
  return parts.length > 0 ? `${sel.name}{${parts.join(',')}}` : sel.name;
}

/** The scheduled slot of a cron run (epoch ms), recorded by the system in spec.initiator. */
function scheduledSlot(run: WorkflowRun): number | undefined {
  const init = run.spec.initiator;
  if (init?.type !== 'cron' || init.scheduledTime === undefined) return undefined;
  const ms = Date.parse(init.scheduledTime);
  return Number.isFinite(ms) ? ms : undefined;
}
