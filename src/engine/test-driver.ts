// A tiny executor for engine tests: it plays the shell. Launched steps run "instantly" in FIFO
// order with scripted outcomes, timers fire when the test advances the clock, artifacts are
// delivered on request. Only used by tests (src/engine/*.test.ts, test/bench).
import type { DefinitionNode, Parameter } from '../crds/index.ts';
import { createRun, restoreRun } from './index.ts';
import type {
  ArtifactRecord,
  EngineAction,
  EngineEvent,
  ResolvedStep,
  RunInitiator,
  RunMachine,
  StartRunInput,
  StepInstanceStatus,
  Value,
  WorkflowRunStatus,
} from './types.ts';

/** What a launched attempt does. `hang` keeps it running until the test acts. */
export type Outcome =
  | { succeed: Record<string, Value> | true }
  | { fail: string; exitCode?: number }
  | { childPhase: 'Succeeded' | 'Failed' | 'Stopped'; outputs?: Record<string, Value>; message?: string }
  | 'hang';

export type Script = (ctx: {
  instanceId: string;
  attempt: number;
  step: ResolvedStep;
}) => Outcome | undefined;

export interface DriverOptions {
  parameters?: Parameter[];
  overrides?: Record<string, Value>;
  initiator?: RunInitiator;
  /** Outcome per step name, or a function of the attempt. Default: succeed, no outputs. */
  script?: Record<string, Outcome | Script>;
  now?: number;
  runId?: string;
  restartOf?: StartRunInput['restartOf'];
}

interface Running {
  instanceId: string;
  attempt: number;
  step: string;
  outcome: Outcome;
  child: boolean;
}

export class Driver {
  machine: RunMachine;
  now: number;
  /** Every action the engine emitted, in order. */
  readonly actions: EngineAction[] = [];
  /** Launch order of attempts, as `id#attempt`. */
  readonly launches: string[] = [];
  /** Highest number of attempts in flight at once, per step name. */
  readonly maxConcurrent = new Map<string, number>();
  readonly timers: { at: number; event: EngineEvent }[] = [];
  readonly announced: ArtifactRecord[] = [];
  readonly watching = new Map<string, EngineAction>();
  private readonly running: Running[] = [];
  private readonly inFlight = new Map<string, number>();
  private readonly script: Record<string, Outcome | Script>;

  readonly definition: DefinitionNode;

  constructor(definition: DefinitionNode, options: DriverOptions = {}) {
    this.definition = definition;
    this.now = options.now ?? Date.parse('2026-01-01T00:00:00Z');
    this.script = options.script ?? {};
    const { machine, actions } = createRun({
      runId: options.runId ?? 'run-1',
      workflow: 'wf',
      version: 1,
      definition,
      parameters: options.parameters,
      overrides: options.overrides,
      initiator: options.initiator ?? { type: 'manual' },
      now: this.now,
      restartOf: options.restartOf,
    });
    this.machine = machine;
    this.take(actions);
  }

  /** Replaces the machine by one restored from its own snapshot (a controller restart). */
  restart(): EngineAction[] {
    const status = this.machine.snapshot();
    const { machine, actions } = restoreRun({
      runId: this.machine.runId,
      workflow: 'wf',
      version: 1,
      definition: this.definition,
      status,
      now: this.now,
    });
    this.machine = machine;
    return actions;
  }

  send(event: EngineEvent): EngineAction[] {
    if (
      event.type === 'StepSucceeded' ||
      event.type === 'StepFailed' ||
      event.type === 'StepPreempted' ||
      event.type === 'ChildRunFinished'
    ) {
      // A test playing the executor by hand: the attempt is no longer running here.
      const i = this.running.findIndex(
        (r) => r.instanceId === event.instanceId && r.attempt === event.attempt,
      );
      if (i >= 0) this.finishRunning(i);
    }
    const actions = this.machine.apply(event, this.now);
    this.take(actions);
    return actions;
  }

  private take(actions: EngineAction[]): void {
    for (const a of actions) {
      this.actions.push(a);
      switch (a.type) {
        case 'LaunchStep':
        case 'StartChildRun': {
          const step = a.type === 'LaunchStep' ? a.step.name : a.instanceId.replace(/\[.*$/, '');
          const s = this.script[step];
          const outcome =
            (typeof s === 'function' && a.type === 'LaunchStep'
              ? s({ instanceId: a.instanceId, attempt: a.attempt, step: a.step })
              : typeof s === 'function'
                ? undefined
                : s) ?? (a.type === 'LaunchStep' ? { succeed: true } : { childPhase: 'Succeeded' });
          this.launches.push(`${a.instanceId}#${a.attempt}`);
          this.running.push({
            instanceId: a.instanceId,
            attempt: a.attempt,
            step,
            outcome,
            child: a.type === 'StartChildRun',
          });
          const n = (this.inFlight.get(step) ?? 0) + 1;
          this.inFlight.set(step, n);
          this.maxConcurrent.set(step, Math.max(n, this.maxConcurrent.get(step) ?? 0));
          break;
        }
        case 'KillStep':
        case 'StopChildRun': {
          const i = this.running.findIndex((r) => r.instanceId === a.instanceId && r.attempt === a.attempt);
          if (i >= 0) this.finishRunning(i);
          break;
        }
        case 'WakeAt':
          this.timers.push({ at: a.at, event: { type: 'Timer', timer: a.timer } });
          break;
        case 'AnnounceArtifact':
          this.announced.push({ name: a.artifact.name, partition: a.artifact.partition });
          break;
        case 'WaitForInputs':
          this.watching.set(a.instanceId, a);
          break;
        case 'CancelWaitForInputs':
          this.watching.delete(a.instanceId);
          break;
        case 'RunFinished':
          break;
      }
    }
  }

  private finishRunning(i: number): Running {
    const [r] = this.running.splice(i, 1) as [Running];
    this.inFlight.set(r.step, (this.inFlight.get(r.step) ?? 1) - 1);
    return r;
  }

  /** Completes running attempts in launch order until none is left that is not hanging. */
  settle(): this {
    for (;;) {
      const i = this.running.findIndex((r) => r.outcome !== 'hang');
      if (i < 0) return this;
      const r = this.finishRunning(i);
      const o = r.outcome as Exclude<Outcome, 'hang'>;
      if (r.child) {
        const phase = 'childPhase' in o ? o.childPhase : 'fail' in o ? 'Failed' : 'Succeeded';
        const ev: EngineEvent = {
          type: 'ChildRunFinished',
          instanceId: r.instanceId,
          attempt: r.attempt,
          childRun: `child-${r.instanceId}-${r.attempt}`,
          phase,
        };
        if ('childPhase' in o && o.outputs) ev.outputs = o.outputs;
        if ('childPhase' in o && o.message) ev.message = o.message;
        this.send(ev);
        continue;
      }
      this.send({ type: 'StepRunning', instanceId: r.instanceId, attempt: r.attempt });
      if ('fail' in o)
        this.send({
          type: 'StepFailed',
          instanceId: r.instanceId,
          attempt: r.attempt,
          message: o.fail,
          exitCode: o.exitCode,
        });
      else if ('succeed' in o)
        this.send({
          type: 'StepSucceeded',
          instanceId: r.instanceId,
          attempt: r.attempt,
          outputs: o.succeed === true ? undefined : o.succeed,
        });
    }
  }

  /** Hanging attempts (running until the test acts). */
  hanging(): string[] {
    return this.running.filter((r) => r.outcome === 'hang').map((r) => `${r.instanceId}#${r.attempt}`);
  }

  /** Moves the clock forward, firing due timers in time order (and settling after each). */
  advance(ms: number): this {
    const until = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const t = this.timers[0];
      if (!t || t.at > until) break;
      this.timers.shift();
      this.now = Math.max(this.now, t.at);
      this.send(t.event);
      this.settle();
    }
    this.now = until;
    return this;
  }

  /** Runs until nothing moves without the test: settles and fires every timer. */
  finish(maxMs = 24 * 3600_000): this {
    this.settle();
    return this.advance(maxMs);
  }

  get phase(): string {
    return this.machine.phase;
  }

  status(): WorkflowRunStatus {
    return this.machine.snapshot();
  }

  /** id -> phase of every instance. */
  phases(): Record<string, string> {
    return Object.fromEntries((this.status().steps ?? []).map((s) => [s.id, s.phase]));
  }

  inst(id: string): StepInstanceStatus {
    const s = this.machine.instance(id);
    if (!s) throw new Error(`no instance ${id}; have ${Object.keys(this.phases()).join(', ')}`);
    return s;
  }
}

/** Shorthands for definitions in tests. */
export const noop = (name: string): DefinitionNode => ({ step: { name, noop: {} } });
export const sh = (
  name: string,
  script = `echo ${name}`,
  extra: Record<string, unknown> = {},
): DefinitionNode => ({
  step: { name, shell: { script }, ...extra },
});

/**
 * What a shell step's script says once its `${MESON_V_<n>}` references are replaced by the
 * values the executor puts in their variables: the text tests compare against.
 */
export function shellText(step: ResolvedStep | undefined): string | undefined {
  const shell = step?.shell;
  if (!shell) return undefined;
  const env = shell.env ?? {};
  return shell.script.replace(/\$\{(MESON_V_\d+)\}/g, (ref, name: string) => env[name] ?? ref);
}
