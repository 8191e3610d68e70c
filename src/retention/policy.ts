// Which finished runs a retention policy deletes. Pure: the sweeper (./sweeper.ts) gathers the
// candidates and their protections, and acts on the answer.
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

export interface RetentionCandidate {
  name: string;
  phase: FinishedPhase;
  /** Epoch ms the run ended (its creation time if it never started). */
  finishedMs: number;
  /** Why it must stay (a restart that has not started reads it, tasks still recorded...). */
  protectedBy?: string;
}

export interface Expired {
  name: string;
  reason: string;
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

/** The candidates to delete now, oldest first, each with the rule that selected it. */
export function expiredRuns(
  policy: RetentionPolicy,
  candidates: readonly RetentionCandidate[],
  nowMs: number,
): Expired[] {
  const newestFirst = [...candidates].sort(
    (a, b) => b.finishedMs - a.finishedMs || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0),
  );
  const out: Expired[] = [];
  newestFirst.forEach((c, rank) => {
    if (c.protectedBy) return;
    if (policy.keepLast !== undefined && rank >= policy.keepLast) {
      out.push({ name: c.name, reason: `beyond the ${policy.keepLast} newest finished runs (keepLast)` });
      return;
    }
    const ttl = policy.ttlSecondsAfterFinished?.[TTL_KEY[c.phase]];
    if (ttl !== undefined && nowMs - c.finishedMs >= ttl * 1000) {
      out.push({ name: c.name, reason: `${c.phase} more than ${ttl} s ago (ttlSecondsAfterFinished)` });
    }
  });
  return out.reverse();
}
