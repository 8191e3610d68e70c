// The cron part of a controller loop, pure: given every workflow's cron triggers and their
// persisted cursors, which runs are due now and when to wake up next. The shell sleeps until
// `nextWakeMs`, creates the runs in `due` (named by cronRunName, so a crash and retry cannot
// create a run twice), then persists `cursors`.

import { createHash } from 'node:crypto';
import { type CatchUpPolicy, DEFAULT_CATCH_UP, dueFires } from './catch-up.ts';
import { CronError, parseSchedule } from './cron.ts';

export interface CronTriggerSpec {
  schedule: string;
  timezone?: string;
}

export interface WorkflowCronInput {
  namespace?: string;
  /** Workflow name. */
  workflow: string;
  triggers: readonly CronTriggerSpec[] | undefined;
  /** Persisted cursors by cronTriggerKey; a missing key is a new trigger (unless `evaluatedUpToMs` is set). */
  cursors?: Readonly<Record<string, number | null | undefined>>;
  /**
   * Alternative to per-trigger cursors: one instant per workflow up to which every trigger was
   * evaluated (the `evaluatedUpToMs` of the previous plan). Used for triggers without a cursor.
   */
  evaluatedUpToMs?: number | null;
  /** Per-workflow override of the catch-up policy. */
  catchUp?: CatchUpPolicy;
}

export interface PlannedCronFire {
  namespace?: string;
  workflow: string;
  triggerKey: string;
  /** The scheduled instant (epoch ms); the run's RUN_TS should be this, not the wall clock. */
  slotMs: number;
  /** Deterministic WorkflowRun name for this slot (idempotent creation). */
  runName: string;
}

export interface CronPlan {
  due: PlannedCronFire[];
  /** Cursors to persist (after the due runs exist), for every valid trigger, by workflow. */
  cursors: { namespace?: string; workflow: string; triggerKey: string; cursor: number }[];
  /** The earliest next slot over all triggers, or null when none will ever fire. */
  nextWakeMs: number | null;
  /** `nowMs`: persist it per workflow instead of `cursors` if that is simpler (same guarantees). */
  evaluatedUpToMs: number;
  /** Triggers that cannot be evaluated (the validator normally rejects them first). */
  errors: { namespace?: string; workflow: string; triggerKey: string; code: string; message: string }[];
  /** Missed slots not run because of the catch-up policy, for logging. */
  skipped: { namespace?: string; workflow: string; triggerKey: string; count: number }[];
}

/** Identifies a trigger by what it means, so reordering the list keeps its cursor and editing it starts afresh. */
export function cronTriggerKey(trigger: CronTriggerSpec): string {
  return `${trigger.timezone ?? 'UTC'} ${trigger.schedule.trim()}`;
}

/**
 * `<workflow>-cron-<yyyymmddThhmmssZ>`, lower case, at most 63 characters (long workflow names are
 * shortened with a hash). Two triggers of one workflow due at the same instant share one run.
 */
export function cronRunName(workflow: string, slotMs: number): string {
  const stamp = new Date(slotMs)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'z')
    .replace(/[-:]/g, '')
    .toLowerCase();
  const suffix = `-cron-${stamp}`;
  const room = 63 - suffix.length;
  let base = workflow.toLowerCase();
  if (base.length > room) {
    const hash = createHash('sha256').update(workflow).digest('hex').slice(0, 6);
    base = `${base.slice(0, room - 7).replace(/[-.]+$/, '')}-${hash}`;
  }
  return base + suffix;
}

export function planCronFires(
  workflows: readonly WorkflowCronInput[],
  nowMs: number,
  defaultPolicy: CatchUpPolicy = DEFAULT_CATCH_UP,
): CronPlan {
  const plan: CronPlan = {
    due: [],
    cursors: [],
    nextWakeMs: null,
    evaluatedUpToMs: nowMs,
    errors: [],
    skipped: [],
  };
  for (const wf of workflows) {
    const where = { namespace: wf.namespace, workflow: wf.workflow };
    const seenRuns = new Set<string>();
    const seenKeys = new Set<string>();
    for (const trigger of wf.triggers ?? []) {
      const triggerKey = cronTriggerKey(trigger);
      if (seenKeys.has(triggerKey)) continue;
      seenKeys.add(triggerKey);
      let result: ReturnType<typeof dueFires>;
      try {
        const schedule = parseSchedule(trigger.schedule, trigger.timezone);
        const cursor = wf.cursors?.[triggerKey] ?? wf.evaluatedUpToMs ?? null;
        result = dueFires(schedule, cursor, nowMs, wf.catchUp ?? defaultPolicy);
      } catch (e) {
        const code = e instanceof CronError ? e.code : 'CRON_INVALID';
        plan.errors.push({ ...where, triggerKey, code, message: (e as Error).message });
        continue;
      }
      for (const slotMs of result.fires) {
        const runName = cronRunName(wf.workflow, slotMs);
        if (seenRuns.has(runName)) continue;
        seenRuns.add(runName);
        plan.due.push({ ...where, triggerKey, slotMs, runName });
      }
      if (result.skipped > 0) plan.skipped.push({ ...where, triggerKey, count: result.skipped });
      plan.cursors.push({ ...where, triggerKey, cursor: result.cursor });
      if (result.nextFireMs !== null && (plan.nextWakeMs === null || result.nextFireMs < plan.nextWakeMs)) {
        plan.nextWakeMs = result.nextFireMs;
      }
    }
  }
  plan.due.sort((a, b) => a.slotMs - b.slotMs);
  return plan;
}
