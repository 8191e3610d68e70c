// The contract of the pure run engine: what a shell (standalone server, Kubernetes operator)
// feeds it (events) and what it asks the shell to do (actions). The engine has no I/O, no clock
// and no randomness: `now` (epoch milliseconds) and the run's identity are always passed in.
//
// Idempotency: every action is keyed by (instanceId, attempt). After a controller restart the
// engine re-emits the actions that must still hold ("ensure" semantics: a LaunchStep for an
// attempt whose executor is alive means "adopt it", not "start a second one"). Events for an
// unknown instance or an older attempt are ignored, so the shell may deliver events at least once.
//
// Step-instance ids (stable, see docs/engine.md): the step name followed by one `[i]` per
// enclosing loop/foreach, outermost first: `agg`, `agg[3]`, `agg[2][7]` (0-based iteration
// index; for a loop, the LOOP_INDEX). Step names are unique in a workflow, so ids are unique in
// a run and identical across restarts of the controller and `restartOf` runs.
import type {
  DefinitionNode,
  InitiatorType,
  Parameter,
  Partition,
  RunPhase,
  Step,
  StepInstanceStatus,
  StepPhase,
  WorkflowRunStatus,
} from '../crds/index.ts';
import type { Value } from '../expr/index.ts';
import type { RunLimits } from './limits.ts';

export type { RunPhase, StepInstanceStatus, StepPhase, Value, WorkflowRunStatus };

/** Milliseconds since the epoch. */
export type EpochMs = number;

/** Who started a run; recorded in the run's engineState and passed to child runs. */
export interface RunInitiator {
  type: InitiatorType;
  user?: string;
  parent?: { run: string; step?: string };
  /** cron: the scheduled slot (RFC 3339). */
  scheduledTime?: string;
  /** backfill: the run's date (dateint). */
  date?: number;
  /** artifact: the announced artifacts that fired the trigger. */
  artifacts?: { name: string; partition?: Record<string, string | number | boolean>; location?: string }[];
}

/** The identity of the run the engine drives (names, not objects). */
export interface RunIdentity {
  /** WorkflowRun name; RUN_ID. */
  runId: string;
  /** Workflow name; WORKFLOW_ID. */
  workflow: string;
  /** WorkflowVersion number being run; WORKFLOW_VERSION. */
  version: number;
  namespace?: string;
}

/** What the engine needs to know about the workflow version being run. */
export interface RunSubject extends RunIdentity {
  definition: DefinitionNode;
  /**
   * What the run may cost (src/engine/limits.ts; DEFAULT_RUN_LIMITS for what is not given).
   * A run that reaches one fails with a message starting with its RUN_LIMIT_* code.
   */
  limits?: Partial<RunLimits>;
}

export interface StartRunInput extends RunSubject {
  /** The workflow spec's parameters (resolved in dependency order at start). */
  parameters?: Parameter[];
  /** The run's parameter overrides (spec.parameters of the WorkflowRun). */
  overrides?: Record<string, Value>;
  initiator?: RunInitiator;
  now: EpochMs;
  /** RUN_TS; defaults to `now`. */
  runTs?: EpochMs;
  /**
   * Restart `from: failed`: the previous run's status (and its instances when they are kept
   * outside the status). Succeeded instances are adopted with their outputs and not relaunched;
   * every other instance runs again. The previous run's resolved parameters are reused unless
   * `overrides` sets them. With `fromStep` (restart from a step), the step and every step
   * downstream of it (plan.ts, stepsDownstreamOf) run again even where they succeeded.
   */
  restartOf?: { run: string; status: WorkflowRunStatus; instances?: StepInstanceStatus[]; fromStep?: string };
}

export interface RestoreRunInput extends RunSubject {
  status: WorkflowRunStatus;
  /** The run's instances when the status holds only a summary; default `status.steps`. */
  instances?: StepInstanceStatus[];
  now: EpochMs;
}

/** An artifact selector after interpolation (inputs to wait for, outputs to announce). */
export interface ArtifactSelector {
  name: string;
  partition: Record<string, string>;
  location?: string;
}

/** An announced artifact as the engine sees it (spec of a DataArtifact). */
export interface ArtifactRecord {
  name: string;
  partition?: Partition;
  location?: string;
}

/**
 * A step ready to execute: every string field of its type (`shell`, `container`, `spark`,
 * `copy`, `subworkflow`) interpolated, its parameters resolved to values, inputs/outputs
 * partitions interpolated.
 */
export type ResolvedStep = Omit<Step, 'parameters' | 'inputs' | 'outputs' | 'shell'> & {
  type: 'shell' | 'container' | 'spark' | 'copy' | 'subworkflow' | 'noop';
  /**
   * `script` has each `${EXPR}` replaced by a reference `${MESON_V_<n>}`; `env` maps those
   * variables to the values (see docs/executor-protocol.md). Absent when the script has no `${}`.
   */
  shell?: { script: string; env?: Record<string, string> };
  /**
   * Every variable visible to the step: built-ins, workflow params, loop/foreach vars, step
   * params. Values are shared with the engine and between instances (a 10,000-item list
   * parameter is one array referenced by every instance): a shell that serialises per task
   * should prefer `locals` and send the run-level values once.
   */
  parameters: Record<string, Value>;
  /** What is specific to this instance: its loop/foreach variables and the step's own parameters. */
  locals: Record<string, Value>;
  inputs: ArtifactSelector[];
  outputs: ArtifactSelector[];
};

// --- events (shell -> engine) ----------------------------------------------------------------

export interface Placement {
  source: 'kubernetes' | 'mesos' | 'local';
  node?: string;
}
export interface Link {
  name: string;
  url: string;
}

export type EngineEvent =
  /**
   * The attempt was placed / its process or pod started. Starts the timeout clock. May carry
   * the links the attempt has from its launch on (a Spark driver Pod's UI).
   */
  | {
      type: 'StepLaunched';
      instanceId: string;
      attempt: number;
      placement?: Placement;
      childRun?: string;
      links?: Link[];
    }
  /** The attempt is running; may carry links and partial output parameters. */
  | {
      type: 'StepRunning';
      instanceId: string;
      attempt: number;
      placement?: Placement;
      links?: Link[];
      outputs?: Record<string, Value>;
    }
  | {
      type: 'StepSucceeded';
      instanceId: string;
      attempt: number;
      outputs?: Record<string, Value>;
      links?: Link[];
    }
  | {
      type: 'StepFailed';
      instanceId: string;
      attempt: number;
      message: string;
      exitCode?: number;
    }
  /**
   * The attempt was evicted for a step of a higher tier (preemption). It ends, and the instance
   * gets a new attempt at once that, unlike a failure, does not count against `retry.limit`.
   */
  | { type: 'StepPreempted'; instanceId: string; attempt: number; message: string }
  /** A WakeAt came due; the shell echoes the action's `timer`. */
  | { type: 'Timer'; timer: TimerRef }
  /**
   * Announced artifacts (new ones, or the current matches when the shell starts watching).
   * With `instanceId`, only that instance is considered; otherwise every waiting instance.
   */
  | { type: 'ArtifactsAvailable'; artifacts: ArtifactRecord[]; instanceId?: string }
  /** A child run of a subworkflow step finished. */
  | {
      type: 'ChildRunFinished';
      instanceId: string;
      attempt: number;
      childRun?: string;
      phase: 'Succeeded' | 'Failed' | 'Stopped';
      outputs?: Record<string, Value>;
      message?: string;
    }
  /** Stop the run: running instances killed, waiting ones Stopped, the run Stopped. */
  | { type: 'Stop'; reason?: string };

export interface TimerRef {
  instanceId: string;
  attempt: number;
  kind: 'retry' | 'timeout' | 'inputs';
}

// --- actions (engine -> shell) ---------------------------------------------------------------

export type EngineAction =
  /** Run (or, with `recovered`, make sure it is running / adopt it) this attempt. */
  | { type: 'LaunchStep'; instanceId: string; attempt: number; step: ResolvedStep; recovered?: boolean }
  | { type: 'KillStep'; instanceId: string; attempt: number; reason: string }
  /** Start (or ensure) a child WorkflowRun; its initiator is `subworkflow` with this run as parent. */
  | {
      type: 'StartChildRun';
      instanceId: string;
      attempt: number;
      workflow: string;
      version?: number;
      parameters: Record<string, Value>;
      initiator: RunInitiator;
      recovered?: boolean;
    }
  | { type: 'StopChildRun'; instanceId: string; attempt: number; childRun?: string; reason: string }
  /** Announce a DataArtifact produced by a step that succeeded. */
  | {
      type: 'AnnounceArtifact';
      instanceId: string;
      artifact: ArtifactSelector;
      producer: { workflow: string; run: string; step: string };
    }
  /** Deliver a Timer event carrying `timer` at (or after) `at`. */
  | { type: 'WakeAt'; at: EpochMs; timer: TimerRef }
  /** Watch for artifacts matching every input; deliver ArtifactsAvailable (also for current matches). */
  | { type: 'WaitForInputs'; instanceId: string; inputs: ArtifactSelector[] }
  /** Stop watching (the instance got its inputs, or was stopped). */
  | { type: 'CancelWaitForInputs'; instanceId: string }
  /** The run reached a terminal phase (notifications, concurrency admission). */
  | { type: 'RunFinished'; phase: 'Succeeded' | 'Failed' | 'Stopped'; message?: string };

export interface EngineResult {
  status: WorkflowRunStatus;
  actions: EngineAction[];
}

/** Counts per phase, maintained incrementally. */
export interface InstanceSummary {
  total: number;
  phases: Partial<Record<StepPhase, number>>;
}

/**
 * The incremental engine: indexed run state, O(work caused) per event. Obtain one with
 * `createRun` or `restoreRun` (src/engine/index.ts).
 */
export interface RunMachine {
  readonly runId: string;
  readonly phase: RunPhase;
  /** Apply one event; returns the actions for the shell. Ignores a malformed event; throws EngineUsageError (before any change) only for a non-finite `now`. */
  apply(event: EngineEvent, now: EpochMs): EngineAction[];
  /**
   * The persistable status. `steps: 'all'` (default) lists every instance; `'none'` omits them
   * (the shell keeps them elsewhere); `'relevant'` lists all of them when there are at most
   * `limit` (default 500), else at most `limit` chosen as failed, in flight, waiting
   * (retry or inputs), then most recently changed, in creation order, with
   * `summary.truncated: true` (what the operator keeps inside a run object under 1 MiB).
   * `summary` is always complete. Costs O(listed instances).
   */
  snapshot(options?: SnapshotOptions): WorkflowRunStatus;
  /** Instances changed since the previous call (copies), in first-change order; clears the set. */
  changedInstances(): StepInstanceStatus[];
  /** Whether run-level fields (phase, conditions, message, ...) changed since the last snapshot. */
  readonly runChanged: boolean;
  instance(id: string): StepInstanceStatus | undefined;
  summary(): InstanceSummary;
}

export interface SnapshotOptions {
  steps?: 'all' | 'none' | 'relevant';
  limit?: number;
}

export interface CreatedRun {
  machine: RunMachine;
  actions: EngineAction[];
}

// Entry points (implemented in src/engine/index.ts):
//   createRun(input: StartRunInput): CreatedRun
//   restoreRun(input: RestoreRunInput): CreatedRun      // re-emits the actions that must hold
//   startRun(input: StartRunInput): EngineResult        // createRun + snapshot
//   applyEvent(subject: RunSubject, status, event, now, instances?): EngineResult  // restore + apply + snapshot (O(n))
//   artifactMatches(selector: ArtifactSelector, artifact: ArtifactRecord): boolean
export type StartRun = (input: StartRunInput) => EngineResult;
export type ApplyEvent = (
  subject: RunSubject,
  status: WorkflowRunStatus,
  event: EngineEvent,
  now: EpochMs,
  instances?: StepInstanceStatus[],
) => EngineResult;
