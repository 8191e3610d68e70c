// Prometheus metrics (text exposition format at GET /metrics), built on prom-client. One module
// for both modes: the standalone server and the operator export the same metrics from the same
// sources.
// - Run and step counters, run and step duration histograms: from the run controller's
//   observer (ControllerObserver), told only what a committed pass wrote. The controller runs in
//   the standalone server and, in the operator, on the leader only: a follower counts nothing,
//   so summing a counter over the replicas counts each run once (each increment happened on the
//   replica that led when the run started or finished).
// - Gauges (active runs by phase, their step instances by phase: why a step is not running yet,
//   queued/launched tasks) computed at scrape time from the store port's reads (a GaugeSource):
//   the standalone server's store; the operator's leader's store (a follower reports none, so
//   `sum()` over replicas is the leader's value). Their cost follows the unfinished runs and the
//   tasks (SQLite: indexed queries; Kubernetes: a scan of the informer cache, no API call).
// - Webhook deliveries from the notification queue's DeliveryObserver (src/notify/queue.ts).
// - Store transaction durations (standalone: timing the SQLite Store's transaction).
// - prom-client's process metrics (CPU, memory, event loop lag, GC, open fds).
//
// Label cardinality is bounded: labels are namespace, workflow, phase and outcome only (never a
// run, step or attempt id, nor a webhook URL), and at most `maxWorkflows` distinct (namespace,
// workflow) pairs get their own series; the ones after that are counted under
// namespace="_other", workflow="_other" (whoever may create workflows could otherwise grow the
// scrape without bound).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ControllerObserver } from '../controller/controller.ts';
import type { StepInstanceStatus, WorkflowRun } from '../crds/index.ts';
import type { DeliveryObserver } from '../notify/queue.ts';
import { cacheRunIndex } from '../store/history.ts';
import type { AsyncStore } from '../store/port.ts';
import type { RunIndex, Store, Stored, StoreWriter, TaskRecord } from '../store/types.ts';
import { controllerMetrics } from './controller.ts';
import { webhookMetrics } from './webhooks.ts';

/** Default bound of distinct (namespace, workflow) label pairs (MESON_METRICS_MAX_WORKFLOWS). */
export const DEFAULT_METRICS_MAX_WORKFLOWS = 2000;
/** Step instances whose last phase is remembered to count each attempt once (oldest forgotten first). */
export const STEP_MEMORY = 100_000;
/** The label value for series past the `maxWorkflows` bound. */
export const OTHER = '_other';

export interface MetricsOptions {
  /** Distinct (namespace, workflow) pairs with their own series (default DEFAULT_METRICS_MAX_WORKFLOWS). */
  maxWorkflows?: number;
  /** Register prom-client's process metrics (default true). */
  processMetrics?: boolean;
  /** Clock for transaction timing, in milliseconds (default performance.now). */
  clock?: () => number;
}

/** The reads the gauges need at scrape time (both store ports have them: see gaugeSource). */
export interface GaugeSource {
  listRuns: RunIndex['listRuns'];
  countStepInstances(namespace: string, run: string): Record<string, number>;
  listTasks(): TaskRecord[];
}

/** The gauges' reads over either store port (the AsyncStore's run index, or a scan of its cache). */
export function gaugeSource(store: Store | AsyncStore): GaugeSource {
  const index: RunIndex = 'listRuns' in store ? store : (store.runIndex ?? cacheRunIndex(store));
  return {
    listRuns: (ns, q) => index.listRuns(ns, q),
    countStepInstances: (ns, run) => store.countStepInstances(ns, run),
    listTasks: () => store.listTasks(),
  };
}

export interface Metrics {
  readonly registry: Registry;
  /** The text exposition body and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /**
   * Standalone: gauges from `store`'s queries at scrape time, and its transactions timed.
   * Returns the function that stops observing (and restores the store's method).
   */
  observe(store: Store): () => void;
  /**
   * Gauges from whatever store `source` returns at scrape time (the operator: the leader's
   * reconciler store; undefined while not leading: no gauge series).
   */
  gaugesFrom(source: () => GaugeSource | undefined): void;
  /** The run controller's observer (runs, steps, scheduling passes, offers, queue time, failed commits). */
  readonly controller: ControllerObserver;
  /** The webhook notification queue's observer (deliveries by outcome, latency, pending). */
  readonly webhooks: DeliveryObserver;
}

type Labels = { namespace: string; workflow: string };

const workflowOf = (run: Stored<WorkflowRun>): string =>
  typeof run.spec?.workflow === 'string' ? run.spec.workflow : '';

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const maxWorkflows = opts.maxWorkflows ?? DEFAULT_METRICS_MAX_WORKFLOWS;
  const clock = opts.clock ?? (() => performance.now());
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'meson_' });

  const seen = new Set<string>();
  /** The labels of one (namespace, workflow), or the OTHER pair once the bound is reached. */
  const bounded = (namespace: string, workflow: string): Labels => {
    const key = `${namespace}\u0000${workflow}`;
    if (seen.has(key)) return { namespace, workflow };
    if (seen.size >= maxWorkflows) return { namespace: OTHER, workflow: OTHER };
    seen.add(key);
    seenNs.add(namespace);
    return { namespace, workflow };
  };
  const seenNs = new Set<string>();
  /** A namespace label under the same bound (namespaces of the labelled workflows come first). */
  const boundedNs = (namespace: string): string => {
    if (seenNs.has(namespace)) return namespace;
    if (seenNs.size >= maxWorkflows) return OTHER;
    seenNs.add(namespace);
    return namespace;
  };

  const runsCreated = new Counter({
    name: 'meson_runs_created_total',
    help: 'WorkflowRuns created (seen new by the run controller).',
    labelNames: ['namespace', 'workflow'] as const,
    registers: [registry],
  });
  const runsStarted = new Counter({
    name: 'meson_runs_started_total',
    help: 'WorkflowRuns that entered phase Running.',
    labelNames: ['namespace', 'workflow'] as const,
    registers: [registry],
  });
  const runsFinished = new Counter({
    name: 'meson_runs_finished_total',
    help: 'WorkflowRuns that reached a final phase (Succeeded, Failed, Stopped).',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: 'meson_run_duration_seconds',
    help: 'Run time of finished WorkflowRuns (status.startTime to status.endTime).',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    buckets: [1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
    registers: [registry],
  });
  const stepAttempts = new Counter({
    name: 'meson_step_attempts_total',
    help: 'Step instances that ended, by final phase.',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    registers: [registry],
  });
  const stepDuration = new Histogram({
    name: 'meson_step_duration_seconds',
    help: 'Duration of ended step instances (startTime to endTime).',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    buckets: [0.1, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600],
    registers: [registry],
  });
  const txDuration = new Histogram({
    name: 'meson_store_transaction_duration_seconds',
    help: 'Duration of store transactions (outermost only), by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const scrapeErrors = new Counter({
    name: 'meson_metrics_collect_errors_total',
    help: 'Scrapes whose store queries failed (the gauges then keep their last values).',
    registers: [registry],
  });

  let source: () => GaugeSource | undefined = () => undefined;
  const activeRuns = new Gauge({
    name: 'meson_runs_active',
    help: 'Unfinished WorkflowRuns, by phase (Pending, Running).',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    registers: [registry],
    collect() {
      const store = source();
      if (!store) {
        // not (or no longer) leading: no series, so sum() over the replicas is the leader's
        this.reset();
        stepInstances.reset();
        return;
      }
      try {
        const runs = store.listRuns(undefined, { finished: false });
        this.reset();
        stepInstances.reset();
        for (const r of runs) {
          const spec = (r.spec ?? {}) as { workflow?: string };
          const phase = ((r.status ?? {}) as { phase?: string }).phase ?? 'Pending';
          const labels = bounded(r.metadata.namespace, spec.workflow ?? '');
          this.inc({ ...labels, phase });
          // one indexed count per unfinished run
          const counts = store.countStepInstances(r.metadata.namespace, r.metadata.name);
          for (const [p, n] of Object.entries(counts))
            if (n > 0) stepInstances.inc({ ...labels, phase: p }, n);
        }
      } catch {
        scrapeErrors.inc();
      }
    },
  });
  // registered after meson_runs_active, whose collect() fills it (metrics are read in order)
  const stepInstances = new Gauge({
    name: 'meson_step_instances',
    help:
      'Step instances of unfinished runs by phase: WaitingForInputs (a data artifact is missing), ' +
      'Queued (waiting for placement), Pending (not yet reached or waiting for a retry), Running...',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    registers: [registry],
  });
  const tasks = new Gauge({
    name: 'meson_tasks',
    help: 'Step attempts handed to the scheduler, by state: queued (waiting for placement) or launched.',
    labelNames: ['namespace', 'state'] as const,
    registers: [registry],
    collect() {
      const store = source();
      if (!store) {
        this.reset();
        return;
      }
      try {
        const list = store.listTasks();
        this.reset();
        for (const t of list) this.inc({ namespace: boundedNs(t.namespace), state: t.state });
      } catch {
        scrapeErrors.inc();
      }
    },
  });
  void activeRuns;
  void tasks;

  // --- runs and steps: what the run controller committed ----------------------------------
  /** `${namespace}/${run}/${id}` -> the `${phase}#${attempts}#${endTime}` last counted. */
  const stepSeen = new Map<string, string>();
  const runs: Pick<ControllerObserver, 'runCreated' | 'runStarted' | 'runFinished' | 'stepsEnded'> = {
    runCreated(run) {
      runsCreated.inc(bounded(run.metadata.namespace, workflowOf(run)));
    },
    runStarted(run) {
      runsStarted.inc(bounded(run.metadata.namespace, workflowOf(run)));
    },
    runFinished(run) {
      const phase = run.status?.phase ?? '';
      const labels = { ...bounded(run.metadata.namespace, workflowOf(run)), phase };
      runsFinished.inc(labels);
      const secs = seconds(run.status?.startTime, run.status?.endTime);
      if (secs !== undefined) runDuration.observe(labels, secs);
    },
    stepsEnded(run, steps: StepInstanceStatus[]) {
      for (const st of steps) {
        const key = `${run.namespace}/${run.name}/${st.id}`;
        const mark = `${st.phase}#${st.attempts ?? 0}#${st.endTime ?? ''}`;
        if (stepSeen.get(key) === mark) continue;
        remember(stepSeen, key, mark);
        const labels = { ...bounded(run.namespace, run.workflow), phase: st.phase };
        stepAttempts.inc(labels);
        const secs = seconds(st.startTime, st.endTime);
        if (secs !== undefined) stepDuration.observe(labels, secs);
      }
    },
  };

  const controller: ControllerObserver = { ...controllerMetrics(registry), ...runs };
  const webhooks = webhookMetrics(registry);
  let observed: Store | undefined;
  return {
    controller,
    webhooks,
    registry,
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    gaugesFrom(fn) {
      source = fn;
    },
    observe(s: Store) {
      if (observed) throw new Error('metrics: already observing a store');
      observed = s;
      const gauges = gaugeSource(s);
      source = () => gauges;
      const restore = timeTransactions(s, clock, (ms, ok) =>
        txDuration.observe({ outcome: ok ? 'commit' : 'error' }, ms / 1000),
      );
      return () => {
        restore();
        source = () => undefined;
        observed = undefined;
      };
    },
  };
}

/** Seconds between two RFC 3339 times, when both parse and the second is not before the first. */
function seconds(start: string | undefined, end: string | undefined): number | undefined {
  if (!start || !end) return undefined;
  const ms = Date.parse(end) - Date.parse(start);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
}

/** Map.set with a bound: the oldest entry goes first. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > STEP_MEMORY) map.delete(map.keys().next().value as string);
}

/**
 * Wraps the store's transaction on the instance itself, so that every holder of the object
 * (controller, API) is timed; nested transactions join the outer one and are not timed apart.
 * Returns the function that puts the original back.
 */
function timeTransactions(
  store: Store,
  clock: () => number,
  done: (ms: number, ok: boolean) => void,
): () => void {
  const own = store as unknown as Record<string, unknown>;
  const had = Object.hasOwn(own, 'transaction');
  const orig = store.transaction;
  let depth = 0;
  own.transaction = function transaction<R>(fn: (w: StoreWriter) => R): R {
    if (depth > 0) return orig.call(store, fn) as R;
    const t0 = clock();
    depth++;
    let ok = false;
    try {
      const r = orig.call(store, fn) as R;
      ok = true;
      return r;
    } finally {
      depth--;
      done(clock() - t0, ok);
    }
  };
  return () => {
    if (had) own.transaction = orig;
    else delete own.transaction;
  };
}
