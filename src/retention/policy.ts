// Retention policies. Pure: the sweeper (./sweeper.ts) turns them into indexed store queries.
//
// A finished run goes when EITHER it is older than the `keepLast` newest finished runs of its
// workflow, OR the time-to-live of its phase has passed since it ended (Argo's ttlStrategy,
// Jenkins' "discard old builds"). Protected runs are never deleted, but they do count among the
// newest kept ones.

export type FinishedPhase = 'Succeeded' | 'Failed' | 'Stopped';

export interface RetentionTtl {
  succeeded?: number;
  failed?: number;
  stopped?: number;
}

export interface RetentionPolicy {
  /** Finished runs kept per workflow (the newest); unset: no count limit. */
  keepLast?: number;
  /** Seconds after it ended that a finished run is deleted, per phase; unset: no time limit. */
  ttlSecondsAfterFinished?: RetentionTtl;
}

/** The workflow's policy over the server's defaults, field by field (and TTL phase by phase). */
export function mergePolicy(defaults: RetentionPolicy, own: RetentionPolicy | undefined): RetentionPolicy {
  const keepLast = own?.keepLast ?? defaults.keepLast;
  const ttl = { ...defaults.ttlSecondsAfterFinished, ...definedOnly(own?.ttlSecondsAfterFinished) };
  return {
    ...(keepLast !== undefined ? { keepLast } : {}),
    ...(Object.keys(ttl).length > 0 ? { ttlSecondsAfterFinished: ttl } : {}),
  };
}

function definedOnly(ttl: RetentionTtl | undefined): RetentionTtl {
  return Object.fromEntries(Object.entries(ttl ?? {}).filter(([, v]) => v !== undefined));
}

export function hasLimit(policy: RetentionPolicy): boolean {
  return policy.keepLast !== undefined || Object.keys(policy.ttlSecondsAfterFinished ?? {}).length > 0;
}

const TTL_KEY: Record<FinishedPhase, keyof RetentionTtl> = {
  Succeeded: 'succeeded',
  Failed: 'failed',
  Stopped: 'stopped',
};

export interface TtlCutoff {
  phase: FinishedPhase;
  /** Runs of `phase` that ended before this time (RFC 3339, ms) have outlived their TTL. */
  endedBefore: string;
  reason: string;
}

/** Per phase with a TTL: the end time before which its runs are due (ended >= ttl ago). */
export function ttlCutoffs(policy: RetentionPolicy, nowMs: number): TtlCutoff[] {
  const out: TtlCutoff[] = [];
  for (const phase of ['Succeeded', 'Failed', 'Stopped'] as const) {
    const ttl = policy.ttlSecondsAfterFinished?.[TTL_KEY[phase]];
    if (ttl === undefined) continue;
    out.push({
      phase,
      // "ended at or before now - ttl", as a strict bound with millisecond times
      endedBefore: new Date(nowMs - ttl * 1000 + 1).toISOString(),
      reason: `${phase} more than ${ttl} s ago (ttlSecondsAfterFinished)`,
    });
  }
  return out;
}

export function keepLastReason(keepLast: number): string {
  return `beyond the ${keepLast} newest finished runs (keepLast)`;
}
