// Prometheus metrics (text exposition format at GET /metrics), built on prom-client.
//
// Everything here is derived from the Store port, so the same code serves the standalone server
// and the operator:
// - run counters from Store.watch (committed changes only: a rolled-back transaction counts nothing);
// - step attempt counters and durations from the step-instance records the engine writes;
// - gauges (active runs, their step instances by phase: why a step is not running yet,
//   queued/launched tasks) computed at scrape time from indexed queries whose
//   cost follows the unfinished runs and the tasks, never all runs stored;
// - store transaction durations by timing Store.transaction;
// - prom-client's process metrics (CPU, memory, event loop lag, GC, open fds).
//
// Label cardinality is bounded: labels are namespace, workflow and phase only (never a run or
// step id), and at most `maxWorkflows` distinct (namespace, workflow) pairs get their own series;
// the ones after that are counted under namespace="_other", workflow="_other" (whoever may create
// workflows could otherwise grow the scrape without bound).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ControllerObserver } from '../controller/controller.ts';
import type { Change, StepInstanceRecord, Store, StoreWriter, TaskRecord } from '../store/types.ts';
import { controllerMetrics } from './controller.ts';

/** Default bound of distinct (namespace, workflow) label pairs (MESON_METRICS_MAX_WORKFLOWS). */
export const DEFAULT_METRICS_MAX_WORKFLOWS = 2000;
/** Step instances whose last phase is remembered to count each attempt once (oldest forgotten first). */
export const STEP_MEMORY = 100_000;
/** The label value for series past the `maxWorkflows` bound. */
export const OTHER = '_other';

const FINISHED_RUN = new Set(['Succeeded', 'Failed', 'Stopped']);
const FINISHED_STEP = new Set(['Succeeded', 'Failed', 'Stopped']);

export interface MetricsOptions {
  /** Distinct (namespace, workflow) pairs with their own series (default DEFAULT_METRICS_MAX_WORKFLOWS). */
  maxWorkflows?: number;
  /** Register prom-client's process metrics (default true). */
  processMetrics?: boolean;
  /** Clock for transaction timing, in milliseconds (default performance.now). */
  clock?: () => number;
}

export interface Metrics {
  readonly registry: Registry;
  /** The text exposition body and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /**
   * Observes `store`: counters from its changes and writes, gauges from its queries at scrape
   * time. Returns the function that stops observing (and restores the store's methods).
   */
  observe(store: Store): () => void;
  /** The run controller's observer (scheduling passes, offers, queue time, failed commits). */
  readonly controller: ControllerObserver;
}

type Labels = { namespace: string; workflow: string };

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
    help: 'WorkflowRuns created.',
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
    help: 'Step attempts that ended, by final phase.',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    registers: [registry],
  });
  const stepDuration = new Histogram({
    name: 'meson_step_duration_seconds',
    help: 'Duration of ended step attempts (startTime to endTime).',
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

  let store: Store | undefined;
  const activeRuns = new Gauge({
    name: 'meson_runs_active',
    help: 'Unfinished WorkflowRuns, by phase (Pending, Running).',
    labelNames: ['namespace', 'workflow', 'phase'] as const,
    registers: [registry],
    collect() {
      if (!store) return;
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
      if (!store) return;
      try {
        const list: TaskRecord[] = store.listTasks();
        this.reset();
        for (const t of list) this.inc({ namespace: boundedNs(t.namespace), state: t.state });
      } catch {
        scrapeErrors.inc();
      }
    },
  });
  void activeRuns;
  void tasks;

  // --- runs: from committed changes -------------------------------------------------------
  /** uid -> last phase of every unfinished run seen (removed when it finishes or is deleted). */
  const runPhase = new Map<string, string>();
  /** `${namespace}/${run}` -> workflow, for step records (which name only the run). */
  const runWorkflow = new Map<string, string>();

  const onChange = (c: Change) => {
    if (c.kind !== 'WorkflowRun') return;
    const o = c.object;
    const ns = o.metadata.namespace;
    const key = `${ns}/${o.metadata.name}`;
    const workflow = ((o.spec ?? {}) as { workflow?: string }).workflow ?? '';
    const status = (o.status ?? {}) as { phase?: string; startTime?: string; endTime?: string };
    if (c.type === 'DELETED') {
      runPhase.delete(o.metadata.uid);
      runWorkflow.delete(key);
      return;
    }
    remember(runWorkflow, key, workflow);
    const labels = bounded(ns, workflow);
    const before = runPhase.get(o.metadata.uid);
    if (c.type === 'ADDED' && before === undefined) runsCreated.inc(labels);
    const phase = status.phase ?? 'Pending';
    if (phase === before) return;
    if (phase === 'Running') runsStarted.inc(labels);
    if (FINISHED_RUN.has(phase)) {
      // a run seen only finished (created finished, or finished before we observed it) counts
      // once too; a finished run that is modified again does not (it is no longer in runPhase)
      if (before === undefined && c.type === 'MODIFIED') return;
      runPhase.delete(o.metadata.uid);
      runsFinished.inc({ ...labels, phase });
      const secs = seconds(status.startTime, status.endTime);
      if (secs !== undefined) runDuration.observe({ ...labels, phase }, secs);
      return;
    }
    runPhase.set(o.metadata.uid, phase);
  };

  // --- steps: from the records the engine writes ------------------------------------------
  /** `${namespace}/${run}/${id}` -> `${phase}#${attempts}` last counted. */
  const stepSeen = new Map<string, string>();
  const stepRecords = (records: StepInstanceRecord[]) => {
    for (const r of records) {
      if (!FINISHED_STEP.has(r.phase)) continue;
      const data = r.data as { attempts?: number; startTime?: string; endTime?: string };
      const key = `${r.namespace}/${r.run}/${r.id}`;
      const mark = `${r.phase}#${data.attempts ?? 0}#${data.endTime ?? ''}`;
      if (stepSeen.get(key) === mark) continue;
      remember(stepSeen, key, mark);
      const labels = bounded(r.namespace, workflowOf(r.namespace, r.run));
      stepAttempts.inc({ ...labels, phase: r.phase });
      const secs = seconds(data.startTime, data.endTime);
      if (secs !== undefined) stepDuration.observe({ ...labels, phase: r.phase }, secs);
    }
  };
  const workflowOf = (namespace: string, run: string): string => {
    const known = runWorkflow.get(`${namespace}/${run}`);
    if (known !== undefined) return known;
    const obj = store?.get('WorkflowRun', namespace, run);
    const wf = ((obj?.spec ?? {}) as { workflow?: string }).workflow ?? '';
    if (obj) remember(runWorkflow, `${namespace}/${run}`, wf);
    return wf;
  };

  const controller = controllerMetrics(registry);
  return {
    controller,
    registry,
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    observe(s: Store) {
      if (store) throw new Error('metrics: already observing a store');
      store = s;
      for (const r of s.listRuns(undefined, { finished: false })) {
        runPhase.set(r.metadata.uid, ((r.status ?? {}) as { phase?: string }).phase ?? 'Pending');
      }
      const unwatch = s.watch(onChange);
      const restore = instrument(s, {
        transaction: (ms, ok) => txDuration.observe({ outcome: ok ? 'commit' : 'error' }, ms / 1000),
        steps: stepRecords,
        clock,
      });
      return () => {
        unwatch();
        restore();
        store = undefined;
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

interface Hooks {
  transaction(ms: number, ok: boolean): void;
  steps(records: StepInstanceRecord[]): void;
  clock(): number;
}

/**
 * Wraps the store's transaction and putStepInstances on the instance itself, so that every
 * holder of the object (controller, API) is observed. Step records written in a transaction
 * are reported only once it commits. Returns the function that puts the originals back.
 */
function instrument(store: Store, hooks: Hooks): () => void {
  const own = store as unknown as Record<string, unknown>;
  const hadTx = Object.hasOwn(own, 'transaction');
  const hadPut = Object.hasOwn(own, 'putStepInstances');
  const origTx = store.transaction.bind(store);
  const origPut = store.putStepInstances;
  let depth = 0;
  let pending: StepInstanceRecord[][] = [];
  const wrapWriter = (w: StoreWriter): StoreWriter =>
    new Proxy(w, {
      get(target, prop, receiver) {
        if (prop === 'putStepInstances') {
          return (records: StepInstanceRecord[]) => {
            if (target === store) origPut.call(store, records);
            else target.putStepInstances(records);
            pending.push(records);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  own.transaction = function transaction<R>(fn: (w: StoreWriter) => R): R {
    if (depth > 0) return origTx((w: StoreWriter) => fn(wrapWriter(w)));
    const t0 = hooks.clock();
    depth++;
    let ok = false;
    try {
      const r = origTx((w: StoreWriter) => fn(wrapWriter(w)));
      ok = true;
      return r;
    } finally {
      depth--;
      hooks.transaction(hooks.clock() - t0, ok);
      const done = pending;
      pending = [];
      if (ok) for (const records of done) hooks.steps(records);
    }
  };
  own.putStepInstances = (records: StepInstanceRecord[]) => {
    origPut.call(store, records);
    if (depth > 0) pending.push(records);
    else hooks.steps(records);
  };
  return () => {
    if (hadTx) own.transaction = origTx;
    else delete own.transaction;
    if (hadPut) own.putStepInstances = origPut;
    else delete own.putStepInstances;
  };
}
