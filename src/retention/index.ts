export {
  type Expired,
  expiredRuns,
  type FinishedPhase,
  hasLimit,
  mergePolicy,
  type RetentionCandidate,
  type RetentionPolicy,
  type RetentionTtl,
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
