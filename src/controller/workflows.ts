// The Workflow side of the controller: versions (src/versions), validation conditions,
// cron and artifact triggers (src/triggers), concurrency admission, webhook notifications
// (src/notify). It plugs into the run Controller through RunHooks.
//
// Idempotency: `ensureVersion` may run any number of times for one spec (the content hash
// decides); cron fires are decided from the last fire persisted in the store (one state key per
// trigger), artifact fires from the set keys persisted per workflow, so a restart neither repeats
// nor misses a fire (missed cron slots follow src/triggers' catch-up policy: `latest`).
import type {
  DataArtifact,
  Partition,
  StepInstanceStatus,
  Workflow,
  WorkflowRun,
  WorkflowVersion,
} from '../crds/index.ts';
import { API_VERSION } from '../crds/index.ts';
import { validateDocument } from '../crds/validate.ts';
import {
  buildRunNotification,
  eventForPhaseChange,
  WebhookQueue,
  type WebhookQueueDeps,
} from '../notify/index.ts';
import {
  type ControllerStore,
  type ControllerWriteBatch,
  type StoreReads,
  updateStatusRetrying,
} from '../store/port.ts';
import type { ResourceObject, Store, Stored, StoreError } from '../store/types.ts';
import {
  type AnnouncedArtifact,
  announcedFromDataArtifact,
  artifactTriggerFires,
} from '../triggers/artifacts.ts';
import { dueFires } from '../triggers/catch-up.ts';
import { admitRun, runsToDequeue } from '../triggers/concurrency.ts';
import { parseSchedule, type Schedule } from '../triggers/cron.ts';
import { cronRunName } from '../triggers/cron-plan.ts';
import { nextVersion, versionStatus, WORKFLOW_LABEL } from '../versions/index.ts';
import { BACKFILL_LABEL, BACKFILL_PARALLELISM } from './annotations.ts';
import { type Controller, type Logger, type RunHooks, unconditional } from './controller.ts';
import { verifiedChildAttempt } from './names.ts';

const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped']);

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Makes the version for the Workflow's current spec if it has none, and writes the Workflow's
 * status (versions, Ready condition). An invalid Workflow gets Ready=False with the issues and
 * no version. Returns the workflow's status. Safe to call repeatedly and inside a transaction.
 */
export function ensureVersion(
  store: Pick<StoreReads, 'list'>,
  w: VersionWriter,
  wf: Stored<Workflow>,
  now: number,
): Workflow['status'] {
  const ns = wf.metadata.namespace;
  const versions = store.list<WorkflowVersion>('WorkflowVersion', ns, {
    labels: { [WORKFLOW_LABEL]: wf.metadata.name },
  }).items;
  const issues = validateDocument({ ...wf, status: undefined });
  const prev = (wf.status ?? {}) as NonNullable<Workflow['status']>;
  const ts = new Date(now).toISOString();
  let status: NonNullable<Workflow['status']>;
  if (issues.length > 0) {
    const message = issues
      .slice(0, 10)
      .map((i) => `${i.path}: ${i.message}`)
      .join('; ');
    status = {
      ...prev,
      ...versionStatus(wf, versions),
      observedGeneration: wf.metadata.generation,
      conditions: [{ type: 'Ready', status: 'False', reason: 'Invalid', message, lastTransitionTime: ts }],
    };
  } else {
    const next = nextVersion(wf, versions);
    if (next.create) {
      w.create<WorkflowVersion>('WorkflowVersion', next.create);
      // the status needs the version's spec only, which the create does not change
      versions.unshift(next.create as Stored<WorkflowVersion>);
    }
    const pin = wf.spec.activeVersion;
    const pinned = pin === undefined || versions.some((v) => v.spec.version === pin);
    const have = versions.map((v) => v.spec.version).sort((a, b) => a - b);
    status = {
      ...prev,
      ...versionStatus(wf, versions),
      observedGeneration: wf.metadata.generation,
      conditions: [
        pinned
          ? {
              type: 'Ready',
              status: 'True',
              reason: 'Versioned',
              message:
                pin !== undefined && pin !== next.latest
                  ? `version ${next.latest} (runs use version ${pin}: spec.activeVersion)`
                  : `version ${next.latest}`,
              lastTransitionTime: ts,
            }
          : {
              // no run could start: say so now rather than in every run that fails
              type: 'Ready',
              status: 'False',
              reason: 'VersionNotFound',
              message: `spec.activeVersion: workflow "${wf.metadata.name}" has no version ${pin} (versions: ${have.join(', ')})`,
              lastTransitionTime: ts,
            },
      ],
    };
  }
  // a condition that did not change keeps the time of its last transition (Kubernetes semantics)
  const before = prev.conditions?.find((c) => c.type === 'Ready');
  const after = status.conditions?.[0];
  if (
    before &&
    after &&
    before.status === after.status &&
    before.reason === after.reason &&
    before.message === after.message
  ) {
    status.conditions = [{ ...after, lastTransitionTime: before.lastTransitionTime }];
  }
  if (JSON.stringify(status) !== JSON.stringify(wf.status)) w.updateStatus('Workflow', { ...wf, status });
  return status;
}

/**
 * What ensureVersion writes with: the synchronous store's writer (REST API, manifests) or the
 * port's batch (the controller), whose results are not needed.
 */
export interface VersionWriter {
  create<T extends ResourceObject>(kind: 'WorkflowVersion', obj: T): unknown;
  updateStatus<T extends ResourceObject>(kind: 'Workflow', obj: T): unknown;
}

/** Runs one task per key at a time; asked again while it runs, it runs exactly once more after. */
export class KeyedSerial {
  private readonly running = new Map<string, { again: boolean }>();
  run(key: string, task: () => Promise<void>): void {
    const cur = this.running.get(key);
    if (cur) {
      cur.again = true;
      return;
    }
    const state = { again: false };
    this.running.set(key, state);
    void (async () => {
      try {
        do {
          state.again = false;
          await task();
        } while (state.again);
      } finally {
        this.running.delete(key);
      }
    })();
  }
  get busy(): boolean {
    return this.running.size > 0;
  }
}

/** The port's reads plus, when the store has it (SQLite), its indexed query of runs. */
type ServicesStore = ControllerStore & { listRuns?: Store['listRuns'] };

interface CronEntry {
  namespace: string;
  workflow: string;
  index: number;
  schedule: Schedule;
}

export interface WorkflowServicesDeps {
  store: ServicesStore;
  /**
   * Where webhook deliveries are persisted (src/notify/queue.ts, on the synchronous port).
   * Absent (the operator, for now): notifications are not sent, and a workflow that asks for
   * them gets a warning in the log.
   */
  notifyStore?: Store;
  now?: () => number;
  logger: Logger;
  /**
   * Webhook delivery: allow-list, limits, and (tests) the DNS lookup and HTTP transport.
   * Deliveries are persisted in the store and resumed at start (src/notify/queue.ts).
   */
  webhook?: Omit<WebhookQueueDeps, 'store' | 'logger' | 'now'>;
  /** Base URL for links in notifications. */
  baseUrl?: string;
  /** How often cron triggers are evaluated (ms). */
  cronTickMs?: number;
  /** false: cron and artifact triggers do not fire (`mesonctl run` runs one workflow, once). */
  triggers?: boolean;
}

export class WorkflowServices implements RunHooks {
  private readonly store: ServicesStore;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly deps: WorkflowServicesDeps;
  private controller: Controller | undefined;
  private crons = new Map<string, CronEntry[]>();
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly lastPhase = new Map<string, string | undefined>();
  private stopped = false;
  private ticking = false;
  /** One reconcile per Workflow, one artifact evaluation per namespace at a time. */
  private readonly serial = new KeyedSerial();
  private readonly warnedNoNotify = new Set<string>();
  readonly webhooks: WebhookQueue | undefined;

  constructor(deps: WorkflowServicesDeps) {
    this.store = deps.store;
    this.now = deps.now ?? Date.now;
    this.log = deps.logger;
    this.deps = deps;
    this.webhooks = deps.notifyStore
      ? new WebhookQueue({
          ...deps.webhook,
          store: deps.notifyStore,
          logger: deps.logger,
          now: this.now,
        })
      : undefined;
  }

  start(controller: Controller): void {
    this.controller = controller;
    this.webhooks?.start();
    for (const wf of this.store.list<Workflow>('Workflow', undefined).items)
      this.reconcileByName(wf.metadata.namespace, wf.metadata.name);
    this.unwatch = this.store.watch((c) => {
      if (c.kind === 'Workflow') {
        if (c.type === 'DELETED') this.crons.delete(key(c.object.metadata.namespace, c.object.metadata.name));
        else this.reconcileByName(c.object.metadata.namespace, c.object.metadata.name);
      } else if (c.kind === 'DataArtifact' && c.type === 'ADDED' && this.deps.triggers !== false) {
        const ns = c.object.metadata.namespace;
        this.serial.run(`artifacts\u0000${ns}`, () => this.artifactAnnounced(ns));
      } else if (c.kind === 'WorkflowRun') {
        this.phaseChanged(c.object as Stored<WorkflowRun>, c.type === 'DELETED');
      }
    });
    if (this.deps.triggers === false) return;
    this.timer = setInterval(() => void this.tick(), this.deps.cronTickMs ?? 1000);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.webhooks?.stop();
    this.unwatch?.();
    if (this.timer) clearInterval(this.timer);
  }

  /** Reconciles a Workflow (one reconcile of it at a time; asked again meanwhile, once more after). */
  private reconcileByName(ns: string, name: string): void {
    this.serial.run(`workflow\u0000${ns}/${name}`, async () => {
      if (this.stopped) return;
      const wf = this.store.get<Workflow>('Workflow', ns, name);
      if (wf) await this.reconcile(wf);
    });
  }

  /** Versions + status + trigger registration for one Workflow. Never throws. */
  async reconcile(wf: Stored<Workflow>): Promise<void> {
    const k = key(wf.metadata.namespace, wf.metadata.name);
    try {
      // the status write carries the cached resourceVersion: on a conflict (the controller
      // wrote lastRun meanwhile) read the Workflow again and recompute
      let cur: Stored<Workflow> | undefined = wf;
      for (let attempt = 1; cur; attempt++) {
        const seen: Stored<Workflow> = cur;
        try {
          await this.store.transaction((w) => ensureVersion(this.store, w, seen, this.now()));
          break;
        } catch (err) {
          if ((err as StoreError).code !== 'STORE_CONFLICT' || attempt >= 5) throw err;
          cur = await this.store.getLive<Workflow>('Workflow', seen.metadata.namespace, seen.metadata.name);
        }
      }
      if (!cur) return;
      if ((wf.spec.notifications?.length ?? 0) > 0 && !this.webhooks && !this.warnedNoNotify.has(k)) {
        this.warnedNoNotify.add(k);
        this.log.warn(
          { workflow: k },
          'spec.notifications: webhook notifications are not sent by this process',
        );
      }
      const crons: CronEntry[] = [];
      for (const [i, c] of (wf.spec.triggers?.cron ?? []).entries()) {
        try {
          crons.push({
            namespace: wf.metadata.namespace,
            workflow: wf.metadata.name,
            index: i,
            schedule: parseSchedule(c.schedule, c.timezone),
          });
        } catch (err) {
          this.log.warn({ workflow: k, err: errorMessage(err) }, 'invalid cron trigger ignored');
        }
      }
      this.crons.set(k, crons);
    } catch (err) {
      this.log.error({ workflow: k, err: errorMessage(err) }, 'cannot reconcile workflow');
      await this.markBroken(wf, errorMessage(err));
    }
  }

  private async markBroken(wf: Stored<Workflow>, message: string): Promise<void> {
    try {
      await updateStatusRetrying<Workflow>(
        this.store,
        'Workflow',
        wf.metadata.namespace,
        wf.metadata.name,
        (cur) => ({
          ...(cur.status ?? {}),
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'ReconcileError',
              message,
              lastTransitionTime: new Date(this.now()).toISOString(),
            },
          ],
        }),
      );
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'cannot record workflow error');
    }
  }

  // --- cron ---------------------------------------------------------------------------------

  /** Evaluates every cron trigger; one tick at a time (a slow store skips ticks, never doubles one). */
  private async tick(): Promise<void> {
    if (this.stopped || this.ticking) return;
    this.ticking = true;
    try {
      const now = this.now();
      for (const entries of [...this.crons.values()]) {
        if (this.stopped) return;
        let next: number | null = null;
        const first = entries[0];
        for (const e of entries) {
          try {
            const n = await this.fireCron(e, now);
            if (n !== null && (next === null || n < next)) next = n;
          } catch (err) {
            this.log.error({ workflow: e.workflow, err: errorMessage(err) }, 'cron trigger failed');
          }
        }
        if (first) await this.publishNextSchedule(first.namespace, first.workflow, next);
      }
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Runs the due slots of one cron trigger and moves its cursor; returns its next slot (null
   * when suspended or exhausted). A suspended workflow's cursor follows the clock, so its
   * missed slots are skipped, not caught up, when it resumes.
   */
  private async fireCron(e: CronEntry, now: number): Promise<number | null> {
    const stateKey = `cron/${e.namespace}/${e.workflow}/${e.index}`;
    const last = this.store.getState<number>(stateKey) ?? null;
    const wf = this.store.get<Workflow>('Workflow', e.namespace, e.workflow);
    if (wf?.spec.suspend === true) {
      if (last !== now) await this.store.transaction((w) => w.setState(stateKey, now));
      return null;
    }
    const due = dueFires(e.schedule, last, now);
    if (due.fires.length === 0 && due.cursor === last) return due.nextFireMs;
    // runs and cursor in one transaction; run names derive from the slot, so even a replay
    // of this transaction cannot create a second run for one slot
    await this.store.transaction((w) => {
      for (const fire of due.fires) {
        const name = cronRunName(e.workflow, fire);
        if (this.store.get('WorkflowRun', e.namespace, name)) continue;
        const initiator = { type: 'cron' as const, scheduledTime: new Date(fire).toISOString() };
        this.createRun(w, e.namespace, e.workflow, initiator, `cron-${fire}`, name);
      }
      w.setState(stateKey, due.cursor);
    });
    if (wf && due.fires.length > 0) {
      const lastScheduleTime = new Date(due.fires[due.fires.length - 1]!).toISOString();
      await updateStatusRetrying<Workflow>(this.store, 'Workflow', e.namespace, e.workflow, (cur) => ({
        ...(cur.status ?? {}),
        lastScheduleTime,
      }));
    }
    return due.nextFireMs;
  }

  /** status.nextScheduleTime: the earliest next slot of the workflow's cron triggers, from the first evaluation on. */
  private async publishNextSchedule(ns: string, workflow: string, next: number | null): Promise<void> {
    const want = next === null ? undefined : new Date(next).toISOString();
    await updateStatusRetrying<Workflow>(this.store, 'Workflow', ns, workflow, (wf) => {
      if (wf.status?.nextScheduleTime === want) return undefined;
      const { nextScheduleTime: _old, ...rest } = wf.status ?? {};
      return { ...rest, ...(want !== undefined ? { nextScheduleTime: want } : {}) };
    });
  }

  // --- artifact triggers --------------------------------------------------------------------

  private async artifactAnnounced(ns: string): Promise<void> {
    if (this.stopped) return;
    try {
      const workflows = this.store
        .list<Workflow>('Workflow', ns)
        .items.filter((w) => (w.spec.triggers?.artifacts ?? []).length > 0);
      if (workflows.length === 0) return;
      const announced = this.store
        .list<DataArtifact>('DataArtifact', ns)
        .items.map(announcedFromDataArtifact);
      for (const wf of workflows) {
        const stateKey = `artifacts/${ns}/${wf.metadata.name}`;
        const fired = this.store.getState<string[]>(stateKey) ?? [];
        const fires = artifactTriggerFires(wf.spec.triggers!.artifacts!, announced, fired);
        if (fires.length === 0) continue;
        // a suspended workflow consumes the sets that complete meanwhile without running them:
        // resuming starts no catch-up storm (a backfill runs the dates it missed)
        const suspended = wf.spec.suspend === true;
        await this.store.transaction((w) => {
          if (!suspended)
            for (const f of fires)
              this.createRun(
                w,
                ns,
                wf.metadata.name,
                { type: 'artifact', artifacts: f.artifacts.map(triggerArtifact) },
                `artifact-${f.key}`,
              );
          w.setState(stateKey, [...fired, ...fires.map((f) => f.key)]);
        });
        if (suspended)
          this.log.info(
            { workflow: `${ns}/${wf.metadata.name}`, skipped: fires.length },
            'artifact trigger suspended: complete sets skipped',
          );
      }
    } catch (err) {
      this.log.error({ namespace: ns, err: errorMessage(err) }, 'artifact trigger evaluation failed');
    }
  }

  private createRun(
    w: ControllerWriteBatch,
    ns: string,
    workflow: string,
    initiator: NonNullable<WorkflowRun['spec']['initiator']>,
    cause: string,
    name?: string,
  ): void {
    const run: WorkflowRun = {
      apiVersion: API_VERSION,
      kind: 'WorkflowRun',
      metadata: {
        ...(name ? { name } : { generateName: `${workflow}-` }),
        namespace: ns,
        labels: { 'meson.dev/workflow': workflow },
        annotations: { 'meson.dev/trigger': cause },
      },
      spec: { workflow, initiator },
    };
    w.create('WorkflowRun', run);
    this.log.info({ workflow: `${ns}/${workflow}`, initiator: initiator.type, cause }, 'trigger fired');
  }

  // --- RunHooks: admission and notifications -------------------------------------------------

  /**
   * A child run of a subworkflow step is bounded by its parent, not by maxActiveRuns; a run that
   * merely claims to be one (spec.initiator written by a client) is bounded like any other.
   */
  private isChildRun(run: Stored<WorkflowRun>): boolean {
    return run.spec.initiator?.type === 'subworkflow' && verifiedChildAttempt(this.store, run) !== undefined;
  }

  /**
   * The unfinished runs of a workflow that admission counts (verified children excluded): all
   * admission needs, as finished runs neither count against the limit nor wait. An indexed
   * query: its cost follows the workflow's unfinished runs, not the runs kept in the store.
   */
  private unfinishedRunsOf(ns: string, workflow: string): Stored<WorkflowRun>[] {
    // the informer cache has no index: there it is a scan of the namespace's runs
    const runs = this.store.listRuns
      ? this.store.listRuns<WorkflowRun>(ns, { workflow, finished: false })
      : this.store
          .list<WorkflowRun>('WorkflowRun', ns)
          .items.filter(
            (r) => r.spec?.workflow === workflow && !(r.status?.phase && TERMINAL.has(r.status.phase)),
          );
    return runs.filter((r) => !this.isChildRun(r));
  }

  admit(
    run: Stored<WorkflowRun>,
    running: ReadonlySet<string> = new Set(),
    write: (fn: (w: ControllerWriteBatch) => void) => void = (fn) => this.writeNow(fn),
  ): 'start' | 'wait' | { reject: string } {
    // active: running per the store, or started by the controller in this very pass
    const live = (r: Stored<WorkflowRun>) =>
      isActive(r) || running.has(key(r.metadata.namespace, r.metadata.name));
    if (!this.backfillAdmits(run, live)) {
      this.markQueued(run, 'BackfillParallelism', 'waiting for a slot of its backfill (parallelism)', write);
      return 'wait';
    }
    const wf = this.store.get<Workflow>('Workflow', run.metadata.namespace, run.spec.workflow);
    const concurrency = wf?.spec.concurrency;
    if (!concurrency?.maxActiveRuns || this.isChildRun(run)) return 'start';
    const runs = this.unfinishedRunsOf(run.metadata.namespace, run.spec.workflow).filter(
      (r) => r.metadata.name !== run.metadata.name,
    );
    const active = runs.filter(live).map((r) => ({
      id: r.metadata.name,
      startedMs: Date.parse(r.status?.startTime ?? '') || 0,
      stopping: r.spec.stop === true,
    }));
    const queued = runs
      .filter(
        (r) => !live(r) && (!r.status?.phase || (r.status.phase === 'Pending' && !r.status.engineState)),
      )
      .filter((r) => byCreation(r, run) < 0)
      .map((r) => ({ id: r.metadata.name, queuedMs: Date.parse(r.metadata.creationTimestamp ?? '') || 0 }));
    // a backfill exists to run every date: over the limit its runs wait, whatever the policy
    // (skip would drop dates, replace would stop the backfill's own runs)
    const policy = run.metadata.labels?.[BACKFILL_LABEL]
      ? { ...concurrency, policy: 'queue' as const }
      : concurrency;
    const decision = admitRun(policy, active, queued);
    switch (decision.decision) {
      case 'start':
        return 'start';
      case 'queue':
        this.markQueued(
          run,
          'MaxActiveRuns',
          'waiting for an active run of the workflow to finish (concurrency.maxActiveRuns)',
          write,
        );
        return 'wait';
      case 'skip':
        return { reject: `skipped: ${decision.reason}` };
      case 'replace':
        for (const name of decision.stop) {
          const cur = this.store.get<WorkflowRun>('WorkflowRun', run.metadata.namespace, name);
          if (cur && !cur.spec.stop)
            write((w) =>
              w.update('WorkflowRun', unconditional({ ...cur, spec: { ...cur.spec, stop: true } })),
            );
        }
        return 'start';
    }
  }

  /** A backfill's runs start at most `parallelism` at a time, oldest first. */
  private backfillAdmits(run: Stored<WorkflowRun>, live: (r: Stored<WorkflowRun>) => boolean): boolean {
    const id = run.metadata.labels?.[BACKFILL_LABEL];
    if (!id) return true;
    const parallelism = Number(run.metadata.annotations?.[BACKFILL_PARALLELISM] ?? 1) || 1;
    const runs = this.backfillRuns(run.metadata.namespace, id);
    const active = runs.filter(live).length;
    if (active >= parallelism) return false;
    const waiting = runs.filter((r) => !live(r) && !(r.status?.phase && TERMINAL.has(r.status.phase)));
    const slots = parallelism - active;
    return waiting.slice(0, slots).some((r) => r.metadata.name === run.metadata.name);
  }

  /**
   * A backfill's runs in the order they start: by date, oldest first (they are all created in
   * one transaction, so creation order says nothing), then by creation.
   */
  private backfillRuns(ns: string, id: string): Stored<WorkflowRun>[] {
    const date = (r: Stored<WorkflowRun>) => r.spec.initiator?.date ?? Number.POSITIVE_INFINITY;
    return this.store
      .list<WorkflowRun>('WorkflowRun', ns, { labels: { [BACKFILL_LABEL]: id } })
      .items.sort((a, b) => date(a) - date(b) || byCreation(a, b));
  }

  /** Writes outside a controller pass (admit called directly): logged when they fail. */
  private writeNow(fn: (w: ControllerWriteBatch) => void): void {
    this.store.transaction(fn).catch((err: unknown) => {
      this.log.error({ err: errorMessage(err) }, 'admission write failed');
    });
  }

  private markQueued(
    run: Stored<WorkflowRun>,
    reason: string,
    message: string,
    write: (fn: (w: ControllerWriteBatch) => void) => void,
  ): void {
    if (run.status?.phase === 'Pending') return;
    const at = new Date(this.now()).toISOString();
    write((w) =>
      w.updateStatus('WorkflowRun', {
        ...unconditional(run),
        status: {
          phase: 'Pending',
          conditions: [
            {
              type: 'Queued',
              status: 'True',
              reason,
              message,
              lastTransitionTime: at,
            },
          ],
        },
      }),
    );
  }

  runFinished(run: Stored<WorkflowRun>): void {
    const ns = run.metadata.namespace;
    const backfill = run.metadata.labels?.[BACKFILL_LABEL];
    if (backfill && this.controller) {
      for (const r of this.backfillRuns(ns, backfill)) {
        if (r.status?.phase === 'Pending' && !r.status.engineState)
          this.controller.requeueRun(ns, r.metadata.name);
      }
    }
    const wf = this.store.get<Workflow>('Workflow', ns, run.spec.workflow);
    const concurrency = wf?.spec.concurrency;
    if (!concurrency?.maxActiveRuns || !this.controller) return;
    const runs = this.unfinishedRunsOf(ns, run.spec.workflow);
    const active = runs
      .filter((r) => r.status?.phase === 'Running' || (r.status?.phase === 'Pending' && r.status.engineState))
      .map((r) => ({ id: r.metadata.name, startedMs: Date.parse(r.status?.startTime ?? '') || 0 }));
    const queued = runs
      .filter((r) => r.status?.phase === 'Pending' && !r.status.engineState)
      .map((r) => ({ id: r.metadata.name, queuedMs: Date.parse(r.metadata.creationTimestamp ?? '') || 0 }));
    for (const name of runsToDequeue(concurrency, active, queued)) this.controller.requeueRun(ns, name);
  }

  /** Sends notifications on run phase changes (start, success, failure, stopped). */
  private phaseChanged(run: Stored<WorkflowRun>, deleted: boolean): void {
    const k = key(run.metadata.namespace, run.metadata.name);
    if (deleted) {
      this.lastPhase.delete(k);
      return;
    }
    const phase = run.status?.phase;
    const had = this.lastPhase.has(k);
    const prev = this.lastPhase.get(k);
    if (had && prev === phase) return;
    this.lastPhase.set(k, phase);
    if (phase && TERMINAL.has(phase)) this.lastPhase.delete(k);
    if (!had && phase && TERMINAL.has(phase) && run.status?.startTime === undefined) return;
    const event = eventForPhaseChange(prev as never, phase);
    if (!event) return;
    const wf = this.store.get<Workflow>('Workflow', run.metadata.namespace, run.spec.workflow);
    const notifications = wf?.spec.notifications;
    if (!notifications || notifications.length === 0) return;
    // step instances live outside the run object: the summary lists the failed ones
    const failed = this.store
      .getStepInstances(run.metadata.namespace, run.metadata.name, { phase: 'Failed', limit: 50 })
      .items.map((r) => r.data as StepInstanceStatus);
    const withSteps = { ...run, status: { ...(run.status ?? {}), steps: failed } };
    const body = buildRunNotification(
      withSteps,
      event,
      this.deps.baseUrl ? { baseUrl: this.deps.baseUrl } : {},
    );
    // webhook log lines name the run and event they are about; the deliveries are persisted
    // before their first attempt, so a restart resumes them (at least once)
    this.webhooks?.enqueue(notifications, body, { run: k, workflow: run.spec.workflow, event });
  }
}

/** An artifact of a trigger fire as the run records it (spec.initiator.artifacts). */
function triggerArtifact(a: AnnouncedArtifact): { name: string; partition?: Partition; location?: string } {
  return {
    name: a.name,
    ...(a.partition !== undefined ? { partition: a.partition } : {}),
    ...(a.location !== undefined ? { location: a.location } : {}),
  };
}

function isActive(r: Stored<WorkflowRun>): boolean {
  return (
    r.status?.phase === 'Running' || (r.status?.phase === 'Pending' && r.status.engineState !== undefined)
  );
}

function byCreation(a: Stored<WorkflowRun>, b: Stored<WorkflowRun>): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : a.metadata.name < b.metadata.name ? -1 : 1;
}

function key(ns: string, name: string): string {
  return `${ns}/${name}`;
}
