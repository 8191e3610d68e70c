// Concurrency admission for new runs of one workflow: `spec.concurrency` {maxActiveRuns, policy}.
// Pure; the caller serialises decisions per workflow (one admission at a time) and acts on them.

export type ConcurrencyPolicy = 'queue' | 'skip' | 'replace';

export interface ConcurrencyConfig {
  /** Unset: no limit. Values below 1 are treated as 1 (the schema rejects them anyway). */
  maxActiveRuns?: number;
  /** Default `queue`. */
  policy?: ConcurrencyPolicy;
}

export interface ActiveRunRef {
  id: string;
  /** Epoch ms the run started (oldest is replaced first). */
  startedMs: number;
  /** A stop was already requested: it no longer counts against the limit and is not stopped again. */
  stopping?: boolean;
}

export interface QueuedRunRef {
  id: string;
  /** Epoch ms the run was queued (first in, first out). */
  queuedMs: number;
}

export type Admission =
  | { decision: 'start' }
  | { decision: 'queue' }
  | { decision: 'skip'; reason: string }
  /** Stop these runs (oldest first) and start the new one now. */
  | { decision: 'replace'; stop: string[] };

function limitOf(c: ConcurrencyConfig | undefined): number {
  const max = c?.maxActiveRuns;
  if (max === undefined || max === null || !Number.isFinite(max)) return Number.POSITIVE_INFINITY;
  return Math.max(1, Math.floor(max));
}

/**
 * Decide what a new run does. `queue`: start when below the limit and nobody is queued (queued
 * runs go first: FIFO), else queue. `skip`: start below the limit, else the run is not started
 * (recorded as skipped). `replace`: start now, stopping the oldest active runs to make room.
 */
export function admitRun(
  concurrency: ConcurrencyConfig | undefined,
  activeRuns: readonly ActiveRunRef[],
  queuedRuns: readonly QueuedRunRef[] = [],
): Admission {
  const max = limitOf(concurrency);
  const active = activeRuns.filter((r) => !r.stopping);
  const policy = concurrency?.policy ?? 'queue';
  if (policy === 'queue') {
    return active.length < max && queuedRuns.length === 0 ? { decision: 'start' } : { decision: 'queue' };
  }
  if (active.length < max) return { decision: 'start' };
  if (policy === 'skip') {
    return {
      decision: 'skip',
      reason: `${active.length} run(s) active, maxActiveRuns is ${max} and the concurrency policy is skip`,
    };
  }
  const excess = active.length - max + 1;
  const stop = [...active]
    .sort((a, b) => a.startedMs - b.startedMs || (a.id < b.id ? -1 : 1))
    .slice(0, excess)
    .map((r) => r.id);
  return { decision: 'replace', stop };
}

/**
 * Queued runs to start now, in order: the oldest queued first, as many as there are free slots.
 * Call whenever a run ends or the limit changes.
 */
export function runsToDequeue(
  concurrency: ConcurrencyConfig | undefined,
  activeRuns: readonly ActiveRunRef[],
  queuedRuns: readonly QueuedRunRef[],
): string[] {
  const free = limitOf(concurrency) - activeRuns.filter((r) => !r.stopping).length;
  if (free <= 0) return [];
  return [...queuedRuns]
    .sort((a, b) => a.queuedMs - b.queuedMs || (a.id < b.id ? -1 : 1))
    .slice(0, free)
    .map((r) => r.id);
}
