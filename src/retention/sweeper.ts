// The retention sweep: deletes finished runs per their workflow's `spec.retention` over the
// server's defaults (./policy.ts), and removes a deleted run's files (attempt directories with
// logs and executor files) whoever deleted it (this sweep, the REST API, a cascade). The store
// deletes the run's step instances and task records in the same transaction as the run.
//
// What is never deleted:
// - a run that has not finished (no phase, Pending, Running), nor one that still has task
//   records (the controller has business with it);
// - a run an unfinished restart names in spec.restartOf (the restart reads the run's status
//   and step instances when it starts);
// - a subworkflow child whose parent run exists: children go with their parent (the parent's
//   recovery re-creates a missing child and would run it again), and a parent is only deleted
//   when all its descendants have finished. A child whose parent is gone is an ordinary run.
// DataArtifacts a run announced stay: other workflows consume them.
//
// The store is the port (src/store/port.ts), so the same sweep runs in operator mode: the
// decisions are taken on one synchronous snapshot of the cache (the run queries are the port's
// RunIndex capability: SQLite's indexes, or the Kubernetes informer cache), then each
// workflow's deletions are one awaited commit (Kubernetes: applied in order, children first, so
// an interrupted commit never leaves a child without the parent it goes with). Operator mode has
// no run files: the Pods (and their logs) are owned by their run and garbage-collected with it.
//
// I/O at the edges: clock, file removal and timers are injected; `sweep()` resolves with what
// it did.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Workflow, WorkflowRun } from '../crds/index.ts';
import { cacheRunIndex } from '../store/history.ts';
import type { AsyncStore, RunIndex } from '../store/port.ts';
import { asyncStoreOf, SqliteAsyncStore } from '../store/sqlite-async.ts';
import type { Store } from '../store/types.ts';
import { hasLimit, keepLastReason, mergePolicy, type RetentionPolicy, ttlCutoffs } from './policy.ts';

export interface RetentionLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const DEFAULT_RETENTION: RetentionPolicy = { keepLast: 1000 };
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
export const DEFAULT_MAX_DELETES_PER_SWEEP = 500;
export const DEFAULT_FILE_GRACE_MS = 5_000;

export interface RetentionDeps {
  /** The store port; a synchronous store is wrapped (the standalone controller still holds one). */
  store: AsyncStore | Store;
  logger: RetentionLogger;
  /** Server-wide defaults; a workflow's spec.retention overrides them field by field. */
  defaults?: RetentionPolicy;
  now?: () => number;
  /** Sweep period (default 60 s); 0 disables the periodic sweep (files are still removed). */
  intervalMs?: number;
  /** Runs deleted per sweep at most (the rest wait for the next sweep), default 500. */
  maxDeletesPerSweep?: number;
  /**
   * Root of the runs' files (`<root>/<namespace>/<run>/…`). When set, start() removes the
   * directories of runs that no longer exist (a crash between a delete and its file removal).
   */
  filesRoot?: string;
  /** Delay before a deleted run's files are removed, so that killed executors end first (5 s). */
  fileGraceMs?: number;
  removeDir?: (path: string) => Promise<void>;
  /**
   * The directory of a run's files (SqliteStore.runDir; the default for a SQLite store).
   * Without one (operator mode) no files are removed.
   */
  runDir?: (namespace: string, run: string) => string;
}

export interface SweepResult {
  deleted: { namespace: string; run: string; reason: string }[];
  /** Expired runs left for later, and why. */
  kept: { namespace: string; run: string; reason: string }[];
}

const FINISHED = new Set(['Succeeded', 'Failed', 'Stopped']);

function key(ns: string, name: string): string {
  return `${ns}/${name}`;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class RetentionSweeper {
  private readonly store: AsyncStore;
  private readonly runs: RunIndex;
  private readonly runDir: ((namespace: string, run: string) => string) | undefined;
  private readonly log: RetentionLogger;
  private readonly now: () => number;
  private readonly defaults: RetentionPolicy;
  private readonly removeDir: (path: string) => Promise<void>;
  private readonly deps: RetentionDeps;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly pending = new Set<Promise<void>>();
  /** Directories removed since the last sweep: removed again then (a dying executor may write late). */
  private recentlyRemoved = new Set<string>();
  private stopped = false;
  private sweeping = false;

  constructor(deps: RetentionDeps) {
    this.deps = deps;
    const store = asyncStoreOf(deps.store);
    this.store = store;
    this.runs = store.runIndex ?? cacheRunIndex(store);
    this.runDir =
      deps.runDir ??
      (store instanceof SqliteAsyncStore
        ? (ns: string, run: string) => store.sync.runDir(ns, run)
        : undefined);
    this.log = deps.logger;
    this.now = deps.now ?? Date.now;
    this.defaults = deps.defaults ?? DEFAULT_RETENTION;
    this.removeDir = deps.removeDir ?? ((p) => rm(p, { recursive: true, force: true }));
  }

  start(): void {
    this.unwatch = this.store.watch((c) => {
      if (c.kind === 'WorkflowRun' && c.type === 'DELETED') {
        this.removeRunFiles(c.object.metadata.namespace, c.object.metadata.name, this.deps.fileGraceMs);
      }
    });
    if (this.deps.filesRoot) this.track(this.removeOrphans(this.deps.filesRoot));
    const every = this.deps.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (every > 0) {
      this.timer = setInterval(() => this.safeSweep(), every);
      this.timer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    this.unwatch?.();
    if (this.timer) clearInterval(this.timer);
  }

  /** Resolves when every file removal started so far has ended (tests). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private safeSweep(): void {
    // a sweep slower than the period is not overlapped by the next one
    if (this.sweeping) return;
    this.sweeping = true;
    this.sweep()
      .catch((err) => this.log.error({ err: errorMessage(err) }, 'retention sweep failed'))
      .finally(() => {
        this.sweeping = false;
      });
  }

  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { deleted: [], kept: [] };
    if (this.stopped) return result;
    for (const dir of this.recentlyRemoved) this.track(this.removeDir(dir).catch(() => {}));
    this.recentlyRemoved = new Set();
    const now = this.now();
    // few: only the unfinished runs, through their index
    const neededByRestart = new Set(
      this.runs
        .listRuns<WorkflowRun>(undefined, { finished: false })
        .filter((r) => r.spec?.restartOf?.run)
        .map((r) => key(r.metadata.namespace, r.spec.restartOf!.run)),
    );
    let budget = this.deps.maxDeletesPerSweep ?? DEFAULT_MAX_DELETES_PER_SWEEP;
    // decided on one snapshot of the cache, committed after
    const commits: { namespace: string; names: string[] }[] = [];
    for (const { namespace, workflow } of this.runs.runWorkflows()) {
      if (budget <= 0) break;
      const wf = this.store.get<Workflow>('Workflow', namespace, workflow);
      const policy = mergePolicy(this.defaults, wf?.spec?.retention);
      if (!hasLimit(policy)) continue;
      const batch: string[] = [];
      for (const e of this.expired(namespace, workflow, policy, now, budget)) {
        if (budget <= 0) break;
        const protectedBy = neededByRestart.has(key(namespace, e.name))
          ? 'an unfinished restart of it has not read it yet'
          : this.store.listTasks({ namespace, run: e.name }).length > 0
            ? 'the controller still has tasks of it'
            : undefined;
        const family = protectedBy
          ? { ok: false as const, reason: protectedBy }
          : this.family(namespace, e.name);
        if (!family.ok) {
          result.kept.push({ namespace, run: e.name, reason: family.reason });
          continue;
        }
        batch.push(...family.names);
        budget -= family.names.length;
        result.deleted.push({ namespace, run: e.name, reason: e.reason });
        this.log.info(
          { run: key(namespace, e.name), children: family.names.length - 1, reason: e.reason },
          'run deleted by retention',
        );
      }
      if (batch.length > 0) commits.push({ namespace, names: batch });
    }
    // one commit (SQLite: one fsync) per workflow; children before their parents
    for (const { namespace, names } of commits) {
      if (this.stopped) break;
      await this.store.transaction((w) => {
        for (const name of names) w.delete('WorkflowRun', namespace, name);
      });
    }
    if (result.deleted.length > 0 || result.kept.length > 0) {
      this.log.info({ deleted: result.deleted.length, kept: result.kept.length }, 'retention sweep');
    }
    return result;
  }

  /**
   * The workflow's runs the policy selects, oldest end first: those beyond the keepLast newest
   * and those past their phase's TTL, each found through the store's index of finished runs
   * (never reading the runs kept). Protected runs are among them: the caller skips those.
   */
  private expired(ns: string, workflow: string, policy: RetentionPolicy, now: number, budget: number) {
    // a few more than the budget, so that protected runs do not stall the sweep
    const limit = budget + 100;
    const found = new Map<string, { name: string; endTime: string; reason: string }>();
    if (policy.keepLast !== undefined) {
      const reason = keepLastReason(policy.keepLast);
      for (const r of this.runs.finishedRuns(ns, workflow, { offset: policy.keepLast, limit }))
        found.set(r.name, { name: r.name, endTime: r.endTime, reason });
    }
    for (const cut of ttlCutoffs(policy, now)) {
      for (const r of this.runs.finishedRuns(ns, workflow, {
        phase: cut.phase,
        endedBefore: cut.endedBefore,
        limit,
      }))
        if (!found.has(r.name)) found.set(r.name, { name: r.name, endTime: r.endTime, reason: cut.reason });
    }
    return [...found.values()].sort((a, b) =>
      a.endTime < b.endTime ? -1 : a.endTime > b.endTime ? 1 : a.name < b.name ? -1 : 1,
    );
  }

  /**
   * The run and its subworkflow descendants, children first, unless one of them has not
   * finished or still has tasks (then nothing goes; the next sweep looks again).
   */
  private family(ns: string, name: string): { ok: true; names: string[] } | { ok: false; reason: string } {
    const all: string[] = [];
    const queue = [name];
    const seen = new Set<string>();
    while (queue.length > 0) {
      const next = queue.shift()!;
      if (seen.has(next)) continue;
      seen.add(next);
      all.push(next);
      for (const child of this.runs.listRuns<WorkflowRun>(ns, { parent: next })) {
        const phase = child.status?.phase;
        if (!phase || !FINISHED.has(phase)) {
          return { ok: false, reason: `its child run "${child.metadata.name}" has not finished` };
        }
        if (this.store.listTasks({ namespace: ns, run: child.metadata.name }).length > 0) {
          return { ok: false, reason: `its child run "${child.metadata.name}" still has tasks` };
        }
        queue.push(child.metadata.name);
      }
    }
    return { ok: true, names: all.reverse() };
  }

  private removeRunFiles(ns: string, run: string, graceMs = DEFAULT_FILE_GRACE_MS): void {
    if (!this.runDir) return;
    let dir: string;
    try {
      dir = this.runDir(ns, run);
    } catch (err) {
      // a name that cannot be a path never had files
      this.log.warn({ run: key(ns, run), err: errorMessage(err) }, 'run files not removed');
      return;
    }
    const removal = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, graceMs);
      t.unref();
    })
      .then(() => this.removeDir(dir))
      .then(() => {
        this.recentlyRemoved.add(dir);
      })
      .catch((err) => this.log.warn({ run: key(ns, run), err: errorMessage(err) }, 'run files not removed'));
    this.track(removal);
  }

  /** Directories `<root>/<ns>/<run>` of runs that no longer exist. */
  private async removeOrphans(root: string): Promise<void> {
    let removed = 0;
    try {
      for (const ns of await readdir(root, { withFileTypes: true })) {
        if (!ns.isDirectory()) continue;
        for (const run of await readdir(join(root, ns.name), { withFileTypes: true })) {
          if (!run.isDirectory() || this.stopped) continue;
          if (this.store.get('WorkflowRun', ns.name, run.name)) continue;
          await this.removeDir(join(root, ns.name, run.name));
          removed++;
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn({ err: errorMessage(err) }, 'cannot scan run files for deleted runs');
    }
    if (removed > 0) this.log.info({ removed }, 'removed the files of runs deleted earlier');
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}
