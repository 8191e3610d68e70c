// The standalone shell: the embedded SQLite store, the local offer source, the local
// launcher, the run controller and the workflow services, wired together. Used by
// `mesonctl server`, `mesonctl run` and the benchmarks. The Kubernetes operator builds the
// same Controller and WorkflowServices on the Kubernetes store, node offers and Pods
// (src/operator/reconciler.ts).
//
// The controllers use the asynchronous store port (src/store/port.ts) through sqlite-async.ts;
// the REST API, retention and notifications still take the synchronous SqliteStore. Both are
// one database: `watch` is the synchronous store's, so a listener sees every write, made
// through either.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { CopyLimits, StepLimits } from '../../executors/limits.ts';
import type { RunLimits } from '../engine/index.ts';
import { LocalLauncher } from '../launchers/local.ts';
import type { AttemptUpdate, Launcher } from '../launchers/types.ts';
import { LocalOfferSource } from '../offer-adapter/local.ts';
import type { Resources } from '../offer-adapter/types.ts';
import { type RetentionPolicy, RetentionSweeper } from '../retention/index.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import {
  Controller,
  type ControllerObserver,
  type Logger,
  type OfferSource,
  silentLogger,
} from './controller.ts';
import { lockDataDir } from './data-dir-lock.ts';
import type { PreemptionSettings } from './preemption.ts';
import { WorkflowServices, type WorkflowServicesDeps } from './workflows.ts';

export interface StandaloneOptions {
  /** Directory of the database and attempt files. */
  dataDir: string;
  /**
   * One working directory for all steps, also the base of copy steps' relative paths (`mesonctl
   * run`: the current directory). Default: each attempt its own (`<attempt dir>/work`), and copy
   * steps confined to `<dataDir>/files/<namespace>`.
   */
  cwd?: string;
  /** Names of the server's environment variables that steps may see; the rest is withheld. */
  envPassthrough?: string[];
  /** More directories (absolute) and object store prefixes (`s3://bucket/prefix/`) copy steps may use. */
  copyRoots?: string[];
  /** Bounds on copies to and from an object store (defaults: executors/copy-s3.ts). */
  copyLimits?: Partial<CopyLimits>;
  /** Limits on step outputs, links and messages (defaults: executors/limits.ts). */
  stepLimits?: Partial<StepLimits>;
  logger?: Logger;
  now?: () => number;
  /** Machine capacity override (tests, benchmarks). */
  capacity?: Partial<Resources>;
  hostname?: string;
  /** How often executors' status files are polled when not started by this process. */
  pollMs?: number;
  /** Webhook allow-list and limits; DNS lookup and HTTP transport for tests. */
  webhook?: WorkflowServicesDeps['webhook'];
  baseUrl?: string;
  cronTickMs?: number;
  /** false: cron and artifact triggers do not fire. */
  triggers?: boolean;
  /**
   * Retention of finished runs (src/retention): server-wide defaults (a workflow's
   * spec.retention overrides them), sweep period and per-sweep bound. false: no sweep (a
   * deleted run's files are still removed).
   */
  retention?:
    | {
        defaults?: RetentionPolicy;
        intervalMs?: number;
        maxDeletesPerSweep?: number;
        fileGraceMs?: number;
      }
    | false;
  /**
   * Replaces the launcher the controller uses (given the local one and the controller's update
   * callback). For benchmarks that isolate orchestration from process start-up.
   */
  /** Reports of the run controller's work (Prometheus metrics: createMetrics().controller). */
  observer?: ControllerObserver;
  wrapLauncher?: (local: LocalLauncher, onUpdate: (u: AttemptUpdate) => void) => Launcher;
  /** What one run may cost (the engine's defaults for what is not given). */
  runLimits?: Partial<RunLimits>;
  /** The admin's preemption settings (src/controller/preemption.ts); absent: off. */
  preemption?: PreemptionSettings;
  /** The controller's statusIntervalMs (default 0: a pass writes what it changed). */
  statusIntervalMs?: number;
  /**
   * Puts other offer sources and launchers around the local ones (`mesonctl server
   * --mesos-master`: withMesos). Given the local offers, the launcher (after wrapLauncher) and
   * the controller's callbacks.
   */
  wrapSources?: (
    local: { offers: LocalOfferSource; launcher: Launcher },
    controller: ControllerCallbacks,
  ) => Sources;
}

/** What a wrapSources hook may call on the controller. */
export interface ControllerCallbacks {
  onUpdate: (u: AttemptUpdate) => void;
  /** Offers arrived or went: run a scheduling pass. */
  offersChanged: () => void;
}

/** The controller's offers and launcher, as a wrapSources hook builds them. */
export interface Sources {
  offers: OfferSource;
  launcher: Launcher;
  /** After every pass, how many tasks are still queued (MesosOfferPool.demand). */
  onQueued?: (queued: number) => void;
  /** Started before the controller, stopped after it. */
  start?(): void;
  stop?(): void | Promise<void>;
}

export interface Standalone {
  /** The synchronous store (REST API, retention, notifications). */
  store: SqliteStore;
  /** The same database on the port the controllers use. */
  asyncStore: SqliteAsyncStore;
  controller: Controller;
  services: WorkflowServices;
  retention: RetentionSweeper;
  launcher: LocalLauncher;
  /** The launcher the controller uses (the local one unless wrapLauncher or wrapSources replaced it). */
  controllerLauncher: Launcher;
  offers: LocalOfferSource;
  /** The offers the controller uses (the local ones unless wrapSources replaced them). */
  controllerOffers: OfferSource;
  start(): void;
  /** Stops reconciling and closes the store; executors keep running. */
  stop(): void;
}

/** The directory of a namespace's files, the default copy root of its steps. */
export function namespaceFiles(dataDir: string, namespace: string): string {
  const safe = namespace.replace(/[^A-Za-z0-9._-]/g, '_');
  return join(dataDir, 'files', safe === '.' || safe === '..' ? '_' : safe);
}

export function createStandalone(opts: StandaloneOptions): Standalone {
  const logger = opts.logger ?? silentLogger;
  const now = opts.now ?? Date.now;
  const unlock = lockDataDir(opts.dataDir);
  let store: SqliteStore;
  try {
    store = new SqliteStore({ dir: opts.dataDir });
  } catch (err) {
    unlock();
    throw err;
  }
  const offers = new LocalOfferSource({
    ...(opts.capacity ? { capacity: opts.capacity } : {}),
    ...(opts.hostname ? { hostname: opts.hostname } : {}),
  });
  let controller: Controller | undefined;
  let seq = 0;
  const prefix = randomBytes(3).toString('hex');
  const launcher = new LocalLauncher({
    attemptDir: (k, id) => store.attemptDir(k.namespace, k.run, k.instance, k.attempt, id),
    onUpdate: (u) => controller?.onAttemptUpdate(u),
    newLaunchId: () => `${prefix}${(++seq).toString(36)}`,
    now,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
    ...(opts.envPassthrough?.length ? { envPassthrough: opts.envPassthrough } : {}),
    ...(opts.stepLimits ? { limits: opts.stepLimits } : {}),
    copyRoots: (ns) => [opts.cwd ?? namespaceFiles(opts.dataDir, ns), ...(opts.copyRoots ?? [])],
    ...(opts.copyLimits && Object.keys(opts.copyLimits).length > 0 ? { copyLimits: opts.copyLimits } : {}),
    compileCacheDir: join(opts.dataDir, 'node-compile-cache'),
  });
  const asyncStore = new SqliteAsyncStore(store);
  const services = new WorkflowServices({
    store: asyncStore,
    notifyStore: store,
    now,
    logger,
    ...(opts.webhook ? { webhook: opts.webhook } : {}),
    ...(opts.baseUrl ? { baseUrl: opts.baseUrl } : {}),
    ...(opts.cronTickMs ? { cronTickMs: opts.cronTickMs } : {}),
    ...(opts.triggers === false ? { triggers: false } : {}),
  });
  const retentionOpts = opts.retention === false ? { intervalMs: 0 } : (opts.retention ?? {});
  const retention = new RetentionSweeper({
    store,
    logger,
    now,
    filesRoot: store.attemptsRoot,
    ...retentionOpts,
  });
  const onUpdate = (u: AttemptUpdate) => controller?.onAttemptUpdate(u);
  const wrapped = opts.wrapLauncher ? opts.wrapLauncher(launcher, onUpdate) : launcher;
  const sources: Sources = opts.wrapSources
    ? opts.wrapSources(
        { offers, launcher: wrapped },
        { onUpdate, offersChanged: () => controller?.offersChanged() },
      )
    : { offers, launcher: wrapped };
  const used = sources.launcher;
  const ctl = new Controller({
    store: asyncStore,
    launcher: used,
    offers: sources.offers,
    ...(sources.onQueued ? { onQueued: sources.onQueued } : {}),
    ...(opts.observer ? { observer: opts.observer } : {}),
    now,
    logger,
    hooks: services,
    ...(opts.runLimits ? { runLimits: opts.runLimits } : {}),
    ...(opts.preemption ? { preemption: opts.preemption } : {}),
    ...(opts.stepLimits ? { stepLimits: opts.stepLimits } : {}),
    ...(opts.statusIntervalMs ? { statusIntervalMs: opts.statusIntervalMs } : {}),
  });
  controller = ctl;
  let stopped = false;
  return {
    store,
    asyncStore,
    controller: ctl,
    services,
    retention,
    launcher,
    controllerLauncher: used,
    offers,
    controllerOffers: sources.offers,
    start() {
      sources.start?.();
      services.start(ctl);
      ctl.start();
      retention.start();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      retention.stop();
      services.stop();
      ctl.stop();
      void Promise.resolve(sources.stop?.()).catch((err: unknown) =>
        logger.warn({ err: (err as Error).message }, 'stopping the offer sources failed'),
      );
      store.close();
      unlock();
    },
  };
}
