// The pure run engine's entry points. See src/engine/types.ts for the contract and
// docs/engine.md for the semantics of every block.
import { Run } from './machine.ts';
import type {
  CreatedRun,
  EngineEvent,
  EngineResult,
  EpochMs,
  RestoreRunInput,
  RunSubject,
  StartRunInput,
  StepInstanceStatus,
  WorkflowRunStatus,
} from './types.ts';

export {
  DEFAULT_RUN_LIMITS,
  limitHint,
  RUN_LIMIT_CODES,
  RUN_LIMIT_SETTINGS,
  type RunLimits,
  resolveRunLimits,
} from './limits.ts';
export { EngineUsageError } from './machine.ts';
export { compilePlan, PlanError } from './plan.ts';
export { artifactMatches, backoffMs, DEFAULT_BACKOFF } from './policy.ts';
export { ResolveError } from './resolve.ts';
export type * from './types.ts';

/** Starts a run: resolves the workflow parameters and launches what can run now. */
export function createRun(input: StartRunInput): CreatedRun {
  return Run.create(input);
}

/**
 * Rebuilds the machine of a run from its persisted status (after a controller restart). The
 * actions returned are those that must hold for its open work ("ensure" semantics: adopt a
 * live executor rather than start a second one).
 */
export function restoreRun(input: RestoreRunInput): CreatedRun {
  return Run.restore(input);
}

/** createRun + snapshot. */
export function startRun(input: StartRunInput): EngineResult {
  const { machine, actions } = Run.create(input);
  return { status: machine.snapshot(), actions };
}

/**
 * Functional form: restores the machine from `status`, applies one event and returns the new
 * status (pass `instances` when `status` does not list them). Costs O(instances) per call;
 * long-running shells keep a RunMachine instead. The
 * actions re-emitted by the restore are dropped: only the event's consequences are returned.
 */
export function applyEvent(
  subject: RunSubject,
  status: WorkflowRunStatus,
  event: EngineEvent,
  now: EpochMs,
  instances?: StepInstanceStatus[],
): EngineResult {
  const { machine } = Run.restore({ ...subject, status, now, instances });
  const actions = machine.apply(event, now);
  return { status: machine.snapshot(), actions };
}
