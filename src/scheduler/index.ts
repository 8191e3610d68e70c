export {
  affinityHolds,
  describeAffinity,
  describeRequirement,
  describeTaint,
  requirementHolds,
  softScore,
  toleratesTaint,
  untoleratedTaint,
} from './constraints.ts';
export { formatAmount, formatBytes } from './explain.ts';
export { byPriorityThenFifo, FairQueue } from './fair-queue.ts';
export { binPackingFitness, packedShare, spreadFitness } from './fitness.ts';
export { offerProblem, Scheduler, type SchedulerConfig, schedulePass } from './scheduler.ts';
export { makeTask, TaskError, type TaskResourcesSpec, type TaskSpec, taskProblem } from './task.ts';
export type * from './types.ts';
