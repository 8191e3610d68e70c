export {
  type FinishedPhase,
  hasLimit,
  keepLastReason,
  mergePolicy,
  type RetentionPolicy,
  type RetentionTtl,
  type TtlCutoff,
  ttlCutoffs,
} from './policy.ts';
export {
  DEFAULT_FILE_GRACE_MS,
  DEFAULT_MAX_DELETES_PER_SWEEP,
  DEFAULT_RETENTION,
  DEFAULT_SWEEP_INTERVAL_MS,
  type RetentionDeps,
  type RetentionLogger,
  RetentionSweeper,
  type SweepResult,
} from './sweeper.ts';
