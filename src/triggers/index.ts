export { isValidTimezone } from '../time/zone.ts';
export {
  type AnnouncedArtifact,
  type ArtifactTriggerEntry,
  type ArtifactTriggerFire,
  announcedFromDataArtifact,
  artifactMatches,
  artifactSetKey,
  artifactTriggerFires,
} from './artifacts.ts';
export {
  type CatchUpMode,
  type CatchUpPolicy,
  DEFAULT_CATCH_UP,
  type DueFires,
  dueFires,
} from './catch-up.ts';
export {
  type ActiveRunRef,
  type Admission,
  admitRun,
  type ConcurrencyConfig,
  type ConcurrencyPolicy,
  type QueuedRunRef,
  runsToDequeue,
} from './concurrency.ts';
export {
  CronError,
  type CronErrorCode,
  type CronFormat,
  nextFireAfter,
  nextFires,
  parseSchedule,
  type Schedule,
} from './cron.ts';
export {
  type CronPlan,
  type CronTriggerSpec,
  cronRunName,
  cronTriggerKey,
  type PlannedCronFire,
  planCronFires,
  type WorkflowCronInput,
} from './cron-plan.ts';
