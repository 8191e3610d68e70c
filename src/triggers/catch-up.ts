// Which cron slots to run now, given the persisted cursor (the last slot handled) and the clock.
// Pure. See docs/triggers.md "Catch-up and restarts".

import { nextFireAfter, type Schedule } from './cron.ts';

export type CatchUpMode = 'latest' | 'all' | 'none';

export interface CatchUpPolicy {
  /**
   * What to do with slots that came due while nobody was evaluating the trigger (server down):
   * - `latest` (default): run once, for the most recent due slot (Airflow's catchup=False);
   * - `all`: run every due slot, oldest first, but at most `maxCatchUp` (the most recent ones);
   * - `none`: run only a slot that is on time (due within `graceMs`); older ones are skipped.
   */
  mode: CatchUpMode;
  /** For `all`: the most runs one evaluation creates (default 10). */
  maxCatchUp?: number;
  /** A slot due at most this long ago counts as on time (default 60 s). */
  graceMs?: number;
}

export const DEFAULT_CATCH_UP: CatchUpPolicy = { mode: 'latest' };
const DEFAULT_MAX_CATCH_UP = 10;
const DEFAULT_GRACE_MS = 60_000;
/** Counting skipped slots stops here (a per-second schedule down for a week has 604,800 slots). */
const COUNT_LIMIT = 1_000;

export interface DueFires {
  /** Slot instants (epoch ms, ascending) for which a run must be created now. */
  fires: number[];
  /** Slots that came due but are not run under the policy (at least this many if `skippedCapped`). */
  skipped: number;
  skippedCapped: boolean;
  /**
   * The new cursor to persist once the runs for `fires` exist: the latest due slot, or
   * `lastFireMs` unchanged when nothing was due, or `nowMs` when the trigger had no cursor yet.
   */
  cursor: number;
  /** The next slot after `nowMs` (when to wake up next), or null if the schedule is exhausted. */
  nextFireMs: number | null;
}

/**
 * Slots in (lastFireMs, nowMs] are due. With `lastFireMs === null` the trigger is new: nothing is
 * due, and the cursor starts at `nowMs` (persist it, so slots missed during a later outage are
 * seen). Idempotent: calling again with the returned cursor yields no fires until the next slot.
 * No duplicates and no missed slots across restarts as long as the caller persists `cursor` only
 * after the runs for `fires` are durably created (with names derived from the slot, so a crash
 * between the two makes the re-creation a no-op; see cronRunName).
 */
export function dueFires(
  schedule: Schedule,
  lastFireMs: number | null,
  nowMs: number,
  policy: CatchUpPolicy = DEFAULT_CATCH_UP,
): DueFires {
  const nextFireMs = nextFireAfter(schedule, nowMs);
  if (lastFireMs === null || lastFireMs >= nowMs) {
    return { fires: [], skipped: 0, skippedCapped: false, cursor: lastFireMs ?? nowMs, nextFireMs };
  }
  const first = nextFireAfter(schedule, lastFireMs);
  if (first === null || first > nowMs) {
    return { fires: [], skipped: 0, skippedCapped: false, cursor: lastFireMs, nextFireMs };
  }
  const keep = policy.mode === 'all' ? Math.max(1, Math.floor(policy.maxCatchUp ?? DEFAULT_MAX_CATCH_UP)) : 1;
  const recent = latestSlots(schedule, lastFireMs, nowMs, keep);
  const latest = recent[recent.length - 1]!;
  let fires = recent;
  if (policy.mode === 'none') {
    const grace = policy.graceMs ?? DEFAULT_GRACE_MS;
    fires = nowMs - latest <= grace ? [latest] : [];
  }
  const { count, capped } = countSlots(schedule, lastFireMs, nowMs);
  return { fires, skipped: count - fires.length, skippedCapped: capped, cursor: latest, nextFireMs };
}

/**
 * The last `n` slots in (afterMs, nowMs], ascending. Searches backwards from `nowMs` in doubling
 * windows so that a long outage of a frequent schedule costs O(log outage), not O(slots).
 */
function latestSlots(schedule: Schedule, afterMs: number, nowMs: number, n: number): number[] {
  let window = 60_000;
  for (;;) {
    const from = Math.max(afterMs, nowMs - window);
    const found: number[] = [];
    for (let t = nextFireAfter(schedule, from); t !== null && t <= nowMs; t = nextFireAfter(schedule, t)) {
      found.push(t);
      if (found.length > n) found.shift();
    }
    if (found.length >= n || from === afterMs) return found;
    window *= 4;
  }
}

function countSlots(schedule: Schedule, afterMs: number, nowMs: number): { count: number; capped: boolean } {
  let count = 0;
  for (let t = nextFireAfter(schedule, afterMs); t !== null && t <= nowMs; t = nextFireAfter(schedule, t)) {
    if (++count >= COUNT_LIMIT) return { count, capped: true };
  }
  return { count, capped: false };
}
