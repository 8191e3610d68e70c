// The incremental run state machine. State is indexed (instances by id, per-block counters in
// frames with parent pointers, sets of open/parked instances) so that one event costs O(the
// work it causes), never O(all instances). Block completion goes through an agenda instead of
// recursion, so a 10,000-step sequence of noops completes without deep stacks.
//
// Frames are the runtime activations of plan nodes: one per node per scope (loop iteration,
// foreach item). They live only while their block is running; what is persisted is the step
// instances plus a little engineState, and a restored machine rebuilds its frames by replaying
// the definition over the recorded instances (every decision is a pure function of the
// parameters and the recorded outputs, so the replay takes the same branches).
import { type Condition, STEP_PHASES } from '../crds/index.ts';
import { builtinValues, ExprBudget, resolveParameters, withExprBudget } from '../expr/index.ts';
import { limitHint, limitMessage, type RunLimits, resolveRunLimits, type StructuralLimit } from './limits.ts';
import { compilePlan, directSteps, type Plan, type PlanNode, stepsDownstreamOf } from './plan.ts';
import { artifactMatches, backoffMs, retryLimit } from './policy.ts';
import { childParameters, evaluateAt, ResolveError, resolveStep } from './resolve.ts';
import type {
  ArtifactRecord,
  ArtifactSelector,
  EngineAction,
  EngineEvent,
  EpochMs,
  InstanceSummary,
  ResolvedStep,
  RestoreRunInput,
  RunInitiator,
  RunMachine,
  RunPhase,
  RunSubject,
  SnapshotOptions,
  StartRunInput,
  StepInstanceStatus,
  StepPhase,
  TimerRef,
  Value,
  WorkflowRunStatus,
} from './types.ts';
import { WaitIndex } from './wait-index.ts';

interface Scope {
  vars: Record<string, Value>;
  indices: number[];
  iterators: PlanNode[];
  /** `[i][j]` for the indices, appended to step names to form instance ids. */
  suffix: string;
  /** The loop/foreach variables bound so far (LOOP_INDEX, `as` names). */
  iterationVars: Record<string, Value>;
}

interface Frame {
  node: PlanNode;
  parent: Frame | null;
  scope: Scope;
  done: boolean;
  /** sequence: child running; loop: current iteration; foreach: next item to start. */
  next: number;
  /** parallel/or/xor: branches not finished; foreach: iterations running. */
  pending: number;
  items: Value[] | null;
}

interface Inst {
  s: StepInstanceStatus;
  /** Creation order (for stable listings). */
  seq: number;
  node: PlanNode | null;
  frame: Frame | null;
  resolved: ResolvedStep | null;
  /** Per input, the artifact that matched it (WaitingForInputs). */
  matched: (ArtifactRecord | undefined)[] | null;
}

/** engineState as persisted in the run status (opaque to users). */
interface EngineState {
  runTs: number;
  initiator?: RunInitiator;
  restartOf?: string;
  [k: string]: Value | RunInitiator | undefined;
}

/** Instances listed by a 'relevant' snapshot unless the caller says otherwise. */
const DEFAULT_RELEVANT_LIMIT = 500;
/** Length of the recently-changed list (the tail of a 'relevant' snapshot). */
const RECENT_CAP = 2000;

const TERMINAL: ReadonlySet<RunPhase> = new Set(['Succeeded', 'Failed', 'Stopped']);

/** A caller's programming error (not a problem of the run): thrown before any state changes. */
export class EngineUsageError extends Error {
  override name = 'EngineUsageError';
  code = 'ENGINE_USAGE';
}

/** status.trigger: what the TRIGGER value of the run's expressions was built from. */
function runTrigger(initiator: RunInitiator | undefined): NonNullable<WorkflowRunStatus['trigger']> {
  const out: NonNullable<WorkflowRunStatus['trigger']> = { type: initiator?.type ?? 'manual' };
  if (initiator?.scheduledTime !== undefined) out.scheduledTime = initiator.scheduledTime;
  if (initiator?.date !== undefined) out.date = initiator.date;
  if (initiator?.artifacts !== undefined) out.artifacts = initiator.artifacts.map((a) => ({ ...a }));
  return out;
}

/** An input as a message names it: `views {dateint=20200105, country=US}`. */
function describeSelector(sel: ArtifactSelector): string {
  const parts = Object.entries(sel.partition ?? {}).map(([k, v]) => `${k}=${String(v)}`);
  return parts.length > 0 ? `${sel.name} {${parts.join(', ')}}` : sel.name;
}

function checkTime(what: string, ms: unknown): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms))
    throw new EngineUsageError(`${what} must be epoch milliseconds, got ${String(ms)}`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class Run implements RunMachine {
  readonly runId: string;
  private readonly subject: RunSubject;
  private plan: Plan | null = null;
  private now: EpochMs;
  private runTs: EpochMs = 0;
  private initiator: RunInitiator | undefined;
  private restartOf: string | undefined;
  private params: Record<string, Value> = {};
  private baseVars: Record<string, Value> = {};

  private _phase: RunPhase = 'Pending';
  private startTime: string | undefined;
  private endTime: string | undefined;
  private message: string | undefined;
  private conditions: Condition[] = [];

  private readonly instances = new Map<string, Inst>();
  private readonly byStep = new Map<string, Inst[]>();
  private readonly counts = new Map<StepPhase, number>();
  private readonly changed = new Set<Inst>();
  private _runChanged = true;

  /** Instances with an attempt in flight (Queued/Running, or a child run). */
  private readonly open = new Set<Inst>();
  /** Instances waiting for a retry timer. */
  private readonly retrying = new Set<Inst>();
  /** Instances in WaitingForInputs, and the same indexed by their input selectors. */
  private readonly waiting = new Set<Inst>();
  private readonly waitIndex = new WaitIndex<Inst>();

  /** Failed instances, and the most recently changed ones (bounded), for 'relevant' snapshots. */
  private readonly failed = new Set<Inst>();
  private readonly recent = new Set<Inst>();
  /** Per step name, a counter bumped on every change of one of its instances. */
  private readonly stepGen = new Map<string, number>();
  /** Fan-in views (`steps.x` read from outside x's foreach), by id prefix. */
  private readonly fanIn = new Map<string, { gen: number; value: Value | undefined }>();

  private agenda: { frame: Frame; ok: boolean }[] = [];
  /** Failures held back while replaying (see finish). */
  private failures: { frame: Frame; ok: boolean }[] = [];
  /** No new work starts (the run failed or was stopped). */
  private halted = false;
  /** The root failed; the run becomes Failed when the last open attempt ends. */
  private failing = false;
  /**
   * While replaying a restored run: new work (instances not recorded as started, Skipped
   * marks) waits here until the replay is complete.
   */
  private deferred: (() => void)[] | null = null;
  /** Restart `from: failed`: the previous run's succeeded instances, by id. */
  private reuse: Map<string, StepInstanceStatus> | null = null;
  private actions: EngineAction[] = [];
  private isoMs = Number.NaN;
  private isoText = '';

  private readonly limits: RunLimits;
  /** Every evaluation of this run while this machine lives (see RunLimits.exprRunBudget). */
  private readonly exprRunBudget: ExprBudget;
  /** Loop and foreach iterations started (RunLimits.maxIterations). */
  private iterations = 0;
  /** A run limit was reached: nothing new starts, not even while replaying. */
  private limitReached = false;

  private constructor(subject: RunSubject, now: EpochMs) {
    this.subject = subject;
    this.runId = subject.runId;
    this.now = now;
    this.limits = resolveRunLimits(subject.limits);
    this.exprRunBudget = new ExprBudget(
      this.limits.exprRunBudget,
      `the expressions of run ${subject.runId}`,
      limitHint('exprRunBudget'),
    );
  }

  /** Runs `f` with every evaluation in it charged to the run's budget. */
  private metered<T>(f: () => T): T {
    return withExprBudget(this.exprRunBudget, f);
  }

  // --- construction ------------------------------------------------------------------------

  static create(input: StartRunInput): { machine: Run; actions: EngineAction[] } {
    checkTime('now', input.now);
    if (input.runTs !== undefined) checkTime('runTs', input.runTs);
    const run = new Run(input, input.now);
    return run.metered(() => run.start(input));
  }

  private start(input: StartRunInput): { machine: Run; actions: EngineAction[] } {
    this.runTs = input.runTs ?? input.now;
    this.initiator = input.initiator;
    this.startTime = iso(input.now);
    this._phase = 'Running';
    this.setConditions();
    if (input.restartOf) {
      this.restartOf = input.restartOf.run;
      this.reuse = new Map();
      for (const rec of input.restartOf.instances ?? input.restartOf.status.steps ?? [])
        if (rec.phase === 'Succeeded') this.reuse.set(rec.id, rec);
    }
    const overrides = { ...(input.restartOf?.status.parameters ?? {}), ...(input.overrides ?? {}) };
    let builtins: Record<string, Value>;
    try {
      this.plan = compilePlan(input.definition, undefined, this.limits.maxBlockDepth);
      if (input.restartOf?.fromStep !== undefined && this.reuse) {
        const again = stepsDownstreamOf(this.plan, input.restartOf.fromStep);
        for (const [id, rec] of this.reuse) if (again.has(rec.step)) this.reuse.delete(id);
      }
      builtins = builtinValues({
        runTs: this.runTs,
        runId: input.runId,
        workflowId: input.workflow,
        workflowVersion: input.version,
        ...(this.initiator ? { trigger: this.initiator } : {}),
      });
    } catch (e) {
      this.finalize('Failed', errorMessage(e));
      return { machine: this, actions: this.takeActions() };
    }
    try {
      const budget = new ExprBudget(
        this.limits.exprBudget,
        'the workflow parameters',
        limitHint('exprBudget'),
        this.exprRunBudget,
      );
      const resolved = resolveParameters(input.parameters ?? [], { builtins, overrides, limits: { budget } });
      for (const [k, v] of Object.entries(resolved)) if (!(k in builtins)) this.params[k] = v;
      for (const [k, v] of Object.entries(overrides)) if (!(k in this.params)) this.params[k] = v;
    } catch (e) {
      this.finalize('Failed', `spec.parameters: ${errorMessage(e)}`);
      return { machine: this, actions: this.takeActions() };
    }
    this.baseVars = { ...builtins, ...this.params };
    this.startNode(this.plan.root, null, this.rootScope());
    this.settle();
    this.reuse = null;
    return { machine: this, actions: this.takeActions() };
  }

  /**
   * Rebuilds a machine from a persisted status. Returns the actions that must hold for the
   * run's open work (launch/adopt attempts in flight, timers, input watches), to be applied
   * idempotently by the shell.
   */
  static restore(input: RestoreRunInput): { machine: Run; actions: EngineAction[] } {
    checkTime('now', input.now);
    const run = new Run(input, input.now);
    return run.metered(() => run.replay(input));
  }

  private replay(input: RestoreRunInput): { machine: Run; actions: EngineAction[] } {
    const { status } = input;
    const es = (status.engineState ?? {}) as Partial<EngineState>;
    this.runTs = typeof es.runTs === 'number' ? es.runTs : Date.parse(status.startTime ?? '') || input.now;
    this.initiator = es.initiator;
    this.restartOf = es.restartOf;
    this._phase = status.phase ?? 'Running';
    this.startTime = status.startTime ?? iso(input.now);
    this.endTime = status.endTime;
    this.message = status.message;
    this.conditions = (status.conditions ?? []).map((c) => ({ ...c }));
    this.params = { ...((status.parameters ?? {}) as Record<string, Value>) };
    for (const rec of input.instances ?? status.steps ?? []) this.register(null, { ...rec }, null);
    this._runChanged = false;
    if (TERMINAL.has(this._phase)) return { machine: this, actions: [] };
    this._phase = 'Running';
    try {
      this.plan = compilePlan(input.definition, undefined, this.limits.maxBlockDepth);
      const builtins = builtinValues({
        runTs: this.runTs,
        runId: input.runId,
        workflowId: input.workflow,
        workflowVersion: input.version,
        ...(this.initiator ? { trigger: this.initiator } : {}),
      });
      this.baseVars = { ...builtins, ...this.params };
    } catch (e) {
      this.finalize('Failed', errorMessage(e));
      return { machine: this, actions: this.takeActions() };
    }
    this.deferred = [];
    this.startNode(this.plan.root, null, this.rootScope());
    this.drain();
    const deferred = this.deferred;
    this.deferred = null;
    if (!this.halted) for (const start of deferred) start();
    this.settle();
    return { machine: this, actions: this.takeActions() };
  }

  /** `now` as an RFC 3339 string, formatted once per distinct `now` (it is hot: one per change). */
  private nowIso(): string {
    if (this.isoMs !== this.now) {
      this.isoMs = this.now;
      this.isoText = iso(this.now);
    }
    return this.isoText;
  }

  private rootScope(): Scope {
    return { vars: this.baseVars, indices: [], iterators: [], suffix: '', iterationVars: {} };
  }

  // --- RunMachine --------------------------------------------------------------------------

  get phase(): RunPhase {
    return this._phase;
  }

  get runChanged(): boolean {
    return this._runChanged;
  }

  apply(event: EngineEvent, now: EpochMs): EngineAction[] {
    checkTime('now', now);
    if (TERMINAL.has(this._phase) || typeof event !== 'object' || event === null) return [];
    this.now = now;
    return this.metered(() => this.applyEvent(event));
  }

  private applyEvent(event: EngineEvent): EngineAction[] {
    switch (event.type) {
      case 'StepLaunched':
      case 'StepRunning': {
        const inst = this.openAttempt(event.instanceId, event.attempt);
        if (!inst) break;
        const s = inst.s;
        if (event.placement) s.placement = { ...event.placement };
        if (event.type === 'StepLaunched' && event.childRun) s.childRun = event.childRun;
        if (event.links) s.links = [...event.links];
        if (event.type === 'StepRunning') {
          if (event.outputs) s.outputs = { ...(s.outputs ?? {}), ...event.outputs };
          this.setPhase(inst, 'Running');
        }
        if (s.startTime === undefined) {
          s.startTime = this.nowIso();
          this.armTimeout(inst);
        }
        this.touch(inst);
        break;
      }
      case 'StepSucceeded': {
        const inst = this.openAttempt(event.instanceId, event.attempt);
        if (!inst) break;
        this.close(inst);
        if (event.outputs) inst.s.outputs = { ...(inst.s.outputs ?? {}), ...event.outputs };
        if (event.links) inst.s.links = [...event.links];
        this.succeed(inst);
        break;
      }
      case 'StepFailed': {
        const inst = this.openAttempt(event.instanceId, event.attempt);
        if (!inst) break;
        this.close(inst);
        this.failAttempt(inst, event.message || 'failed', event.exitCode);
        break;
      }
      case 'StepPreempted': {
        const inst = this.openAttempt(event.instanceId, event.attempt);
        if (!inst) break;
        this.close(inst);
        this.preempted(inst, event.message || 'preempted');
        break;
      }
      case 'ChildRunFinished': {
        const inst = this.openAttempt(event.instanceId, event.attempt);
        if (!inst) break;
        this.close(inst);
        if (event.childRun) inst.s.childRun = event.childRun;
        if (event.phase === 'Succeeded') {
          if (event.outputs) inst.s.outputs = { ...(inst.s.outputs ?? {}), ...event.outputs };
          this.succeed(inst);
        } else {
          const child = event.childRun ?? inst.s.childRun ?? 'child run';
          const detail = event.message ? `: ${event.message}` : '';
          this.failAttempt(
            inst,
            `child run ${child} ${event.phase === 'Failed' ? 'failed' : 'was stopped'}${detail}`,
          );
        }
        break;
      }
      case 'Timer':
        this.onTimer(event.timer);
        break;
      case 'ArtifactsAvailable':
        this.onArtifacts(event.artifacts ?? [], event.instanceId);
        break;
      case 'Stop':
        this.stop(event.reason);
        break;
    }
    this.settle();
    return this.takeActions();
  }

  snapshot(options: SnapshotOptions = {}): WorkflowRunStatus {
    const status: WorkflowRunStatus = { phase: this._phase, version: this.subject.version };
    if (this.startTime) status.startTime = this.startTime;
    if (this.endTime) status.endTime = this.endTime;
    if (this.message) status.message = this.message;
    status.parameters = { ...this.params };
    status.trigger = runTrigger(this.initiator);
    const summary = this.summary();
    status.summary = { total: summary.total, phases: summary.phases };
    const limit = options.limit ?? DEFAULT_RELEVANT_LIMIT;
    if (options.steps === 'relevant' && this.instances.size > limit) {
      status.steps = this.relevant(limit).map((i) => ({ ...i.s }));
      status.summary.truncated = true;
    } else if (options.steps !== 'none')
      status.steps = Array.from(this.instances.values(), (i) => ({ ...i.s }));
    const es: EngineState = { runTs: this.runTs };
    if (this.initiator) es.initiator = this.initiator;
    if (this.restartOf) es.restartOf = this.restartOf;
    status.engineState = es as unknown as Value;
    status.conditions = this.conditions.map((c) => ({ ...c }));
    this._runChanged = false;
    return status;
  }

  /** At most `limit` instances: failed, in flight, waiting, then recently changed; creation order. */
  private relevant(limit: number): Inst[] {
    const picked = new Set<Inst>();
    const take = (from: Iterable<Inst>) => {
      for (const i of from) {
        if (picked.size >= limit) return;
        picked.add(i);
      }
    };
    take(this.failed);
    take(this.open);
    take(this.retrying);
    take(this.waiting);
    take([...this.recent].reverse());
    return [...picked].sort((a, b) => a.seq - b.seq);
  }

  changedInstances(): StepInstanceStatus[] {
    const out = Array.from(this.changed, (i) => ({ ...i.s }));
    this.changed.clear();
    return out;
  }

  instance(id: string): StepInstanceStatus | undefined {
    const i = this.instances.get(id);
    return i ? { ...i.s } : undefined;
  }

  summary(): InstanceSummary {
    const phases: InstanceSummary['phases'] = {};
    for (const p of STEP_PHASES) {
      const n = this.counts.get(p) ?? 0;
      if (n > 0) phases[p] = n;
    }
    return { total: this.instances.size, phases };
  }

  // --- instances ---------------------------------------------------------------------------

  private register(node: PlanNode | null, s: StepInstanceStatus, frame: Frame | null): Inst {
    const inst: Inst = { s, seq: this.instances.size, node, frame, resolved: null, matched: null };
    if (s.phase === 'Failed') this.failed.add(inst);
    this.instances.set(s.id, inst);
    let list = this.byStep.get(s.step);
    if (!list) {
      list = [];
      this.byStep.set(s.step, list);
    }
    list.push(inst);
    this.counts.set(s.phase, (this.counts.get(s.phase) ?? 0) + 1);
    this.bump(s.step);
    return inst;
  }

  private touch(inst: Inst): void {
    this.changed.add(inst);
    this.bump(inst.s.step);
    // Move to the end of the bounded recency list.
    this.recent.delete(inst);
    this.recent.add(inst);
    if (this.recent.size > RECENT_CAP) this.recent.delete(this.recent.values().next().value as Inst);
  }

  /** Invalidates the cached fan-in views of a step (see outputsInScope). */
  private bump(step: string): void {
    this.stepGen.set(step, (this.stepGen.get(step) ?? 0) + 1);
  }

  private setPhase(inst: Inst, phase: StepPhase): void {
    const old = inst.s.phase;
    if (old !== phase) {
      this.counts.set(old, (this.counts.get(old) ?? 1) - 1);
      this.counts.set(phase, (this.counts.get(phase) ?? 0) + 1);
      inst.s.phase = phase;
      if (phase === 'Failed') this.failed.add(inst);
      else if (old === 'Failed') this.failed.delete(inst);
    }
    this.touch(inst);
  }

  private openAttempt(id: string, attempt: number): Inst | undefined {
    const inst = this.instances.get(id);
    if (!inst || !this.open.has(inst) || inst.s.attempts !== attempt) return undefined;
    return inst;
  }

  private close(inst: Inst): void {
    this.open.delete(inst);
  }

  // --- run limits --------------------------------------------------------------------------

  /** Whether one more step instance fits the run's limit; otherwise fails the run at `f`. */
  private admitInstance(f: Frame, id: string): boolean {
    const max = this.limits.maxStepInstances;
    if (this.instances.size < max) return true;
    this.reachLimit(
      f,
      'maxStepInstances',
      `the run would have more than ${max} step instances (the next was ${id})`,
    );
    return false;
  }

  /** Counts one loop/foreach iteration of block `f`; false (and the run fails) past the limit. */
  private admitIteration(f: Frame): boolean {
    if (this.limitReached) return false;
    const max = this.limits.maxIterations;
    if (++this.iterations <= max) return true;
    this.reachLimit(
      f,
      'maxIterations',
      `the run would start more than ${max} loop and foreach iterations (the next in ${f.node.path})`,
    );
    return false;
  }

  /**
   * A run limit was reached at block `f`: the block fails (and with it the run, as for a step
   * failure: attempts in flight finish) and nothing new starts, not even in a replay.
   */
  private reachLimit(f: Frame, key: StructuralLimit, what: string): void {
    this.limitReached = true;
    this.halted = true;
    this.finish(f, false, limitMessage(key, this.limits, what));
  }

  // --- blocks ------------------------------------------------------------------------------

  private startNode(node: PlanNode, parent: Frame | null, scope: Scope): void {
    const f: Frame = { node, parent, scope, done: false, next: 0, pending: 0, items: null };
    // A replay walks on past a failure: what was recorded as started must be re-attached.
    // Past a run limit nothing is walked: the walk itself is what the limit bounds.
    if ((this.halted && this.deferred === null) || this.limitReached) {
      f.done = true;
      return;
    }
    switch (node.kind) {
      case 'step':
        this.startStep(f);
        break;
      case 'sequence':
        if (node.children.length === 0) this.finish(f, true);
        else this.startNode(node.children[0] as PlanNode, f, scope);
        break;
      case 'parallel':
        f.pending = node.children.length;
        if (f.pending === 0) this.finish(f, true);
        for (const c of node.children) this.startNode(c, f, scope);
        break;
      case 'or':
      case 'xor':
        this.startBranches(f);
        break;
      case 'loop':
        if (!this.admitIteration(f)) break;
        this.startNode(node.children[0] as PlanNode, f, this.iterScope(scope, node, 0, 'LOOP_INDEX', 0));
        break;
      case 'foreach':
        this.startForeach(f);
        break;
    }
  }

  private iterScope(scope: Scope, node: PlanNode, index: number, name: string, value: Value): Scope {
    const vars = { ...scope.vars, [name]: value };
    return {
      vars,
      indices: [...scope.indices, index],
      iterators: [...scope.iterators, node],
      suffix: `${scope.suffix}[${index}]`,
      iterationVars: { ...scope.iterationVars, [name]: value },
    };
  }

  /** Variables for the node's own expressions: the scope plus `steps` when it reads them. */
  private exprVars(node: PlanNode, scope: Scope): Record<string, Value> {
    if (node.stepRefs === null) return scope.vars;
    return { ...scope.vars, steps: this.stepsView(node.stepRefs, scope) };
  }

  private evalBoolean(path: string, src: string, vars: Record<string, Value>): boolean {
    const v = evaluateAt(path, src, vars);
    if (typeof v !== 'boolean')
      throw new ResolveError(
        path,
        `expected a boolean, got ${v === null ? 'null' : typeof v}: ${JSON.stringify(v)}`,
      );
    return v;
  }

  private startBranches(f: Frame): void {
    const node = f.node;
    const taken: number[] = [];
    try {
      const vars = this.exprVars(node, f.scope);
      for (let i = 0; i < node.conditions.length; i++) {
        const cond = node.conditions[i];
        if (cond === null || cond === undefined) {
          if (taken.length === 0) taken.push(i);
          break;
        }
        if (this.evalBoolean(`${node.path}[${i}].when`, cond, vars)) {
          taken.push(i);
          if (node.kind === 'xor') break;
        }
      }
    } catch (e) {
      this.finish(f, false, errorMessage(e));
      return;
    }
    node.children.forEach((c, i) => {
      if (!taken.includes(i)) for (const st of directSteps(c)) this.markSkipped(st, f);
    });
    f.pending = taken.length;
    if (taken.length === 0) this.finish(f, true);
    for (const i of taken) this.startNode(node.children[i] as PlanNode, f, f.scope);
  }

  private markSkipped(node: PlanNode, block: Frame): void {
    const name = (node.step as { name: string }).name;
    const id = name + block.scope.suffix;
    if (this.instances.has(id)) return;
    if (this.deferred) {
      this.deferred.push(() => this.markSkipped(node, block));
      return;
    }
    if (!this.admitInstance(block, id)) return;
    const inst = this.register(node, { id, step: name, phase: 'Skipped', message: 'branch not taken' }, null);
    this.touch(inst);
  }

  private startForeach(f: Frame): void {
    const node = f.node;
    const spec = node.foreach as NonNullable<PlanNode['foreach']>;
    try {
      const v = evaluateAt(`${node.path}.items`, spec.items, this.exprVars(node, f.scope));
      if (!Array.isArray(v))
        throw new ResolveError(
          `${node.path}.items`,
          `expected a list, got ${v === null ? 'null' : typeof v}`,
        );
      f.items = v;
    } catch (e) {
      this.finish(f, false, errorMessage(e));
      return;
    }
    this.fillForeach(f);
  }

  private fillForeach(f: Frame): void {
    const items = f.items as Value[];
    const spec = f.node.foreach as NonNullable<PlanNode['foreach']>;
    const limit = spec.parallelism ?? Number.POSITIVE_INFINITY;
    const body = f.node.children[0] as PlanNode;
    while (
      (!this.halted || this.deferred !== null) &&
      f.next < items.length &&
      f.pending < limit &&
      this.admitIteration(f)
    ) {
      const i = f.next++;
      f.pending++;
      this.startNode(body, f, this.iterScope(f.scope, f.node, i, spec.as, items[i] as Value));
    }
    if (f.next >= items.length && f.pending === 0) this.finish(f, true);
  }

  private finish(f: Frame, ok: boolean, failure?: string): void {
    if (f.done) return;
    f.done = true;
    if (!ok && failure && this.message === undefined) {
      this.message = failure;
      this._runChanged = true;
    }
    // In a replay, failures are delivered after every success: whatever a block had started
    // before it failed must be re-attached before the failure closes the block.
    if (!ok && this.deferred !== null) this.failures.push({ frame: f, ok });
    else this.agenda.push({ frame: f, ok });
  }

  /** Delivers block completions until none is left (iterative: no recursion on long chains). */
  private drain(): void {
    for (;;) {
      for (let i = 0; i < this.agenda.length; i++) {
        const { frame, ok } = this.agenda[i] as { frame: Frame; ok: boolean };
        this.childDone(frame, ok);
      }
      this.agenda = [];
      if (this.failures.length === 0) return;
      this.agenda = this.failures;
      this.failures = [];
    }
  }

  private childDone(child: Frame, ok: boolean): void {
    const p = child.parent;
    if (p === null) {
      this.rootDone(ok);
      return;
    }
    if (p.done) return;
    if (!ok) {
      this.finish(p, false);
      return;
    }
    const node = p.node;
    switch (node.kind) {
      case 'sequence':
        p.next++;
        if (p.next >= node.children.length) this.finish(p, true);
        else this.startNode(node.children[p.next] as PlanNode, p, p.scope);
        break;
      case 'parallel':
      case 'or':
      case 'xor':
        if (--p.pending === 0) this.finish(p, true);
        break;
      case 'loop': {
        const loop = node.loop as NonNullable<PlanNode['loop']>;
        let again: boolean;
        try {
          again = this.evalBoolean(`${node.path}.while`, loop.while, this.exprVars(node, child.scope));
        } catch (e) {
          this.finish(p, false, errorMessage(e));
          return;
        }
        if (!again) this.finish(p, true);
        else if (p.next + 1 >= loop.maxIterations)
          this.finish(
            p,
            false,
            `${node.path}: loop exceeded maxIterations (${loop.maxIterations}): \`while\` was still true after iteration ${p.next} (LOOP_INDEX is 0-based)`,
          );
        else if (this.admitIteration(p)) {
          p.next++;
          this.startNode(
            node.children[0] as PlanNode,
            p,
            this.iterScope(p.scope, node, p.next, 'LOOP_INDEX', p.next),
          );
        }
        break;
      }
      case 'foreach':
        p.pending--;
        this.fillForeach(p);
        break;
      case 'step':
        break;
    }
  }

  private rootDone(ok: boolean): void {
    if (ok) {
      this.finalize('Succeeded');
      return;
    }
    this.failing = true;
    this.halted = true;
    this.setConditions();
    // A run over a limit does not wait for its attempts in flight (a 100,000-way foreach would
    // run on for hours): they are killed, and the run fails now.
    if (this.limitReached)
      for (const inst of [...this.open]) {
        const why = 'stopped: the run reached a limit';
        this.kill(inst, why);
        inst.s.endTime = this.nowIso();
        inst.s.message = why;
        this.setPhase(inst, 'Stopped');
      }
    for (const inst of this.retrying) {
      this.retrying.delete(inst);
      inst.s.message = `${inst.s.message ?? ''}; retry cancelled: the run failed`;
      delete inst.s.nextAttemptTime;
      inst.s.endTime = this.nowIso();
      this.setPhase(inst, 'Failed');
    }
    for (const inst of this.waiting) {
      this.stopWaiting(inst);
      inst.s.message = 'not run: the run failed';
      this.setPhase(inst, 'Skipped');
    }
  }

  private settle(): void {
    this.drain();
    if (this._phase === 'Running' && this.failing && this.open.size === 0)
      this.finalize('Failed', this.message ?? 'failed');
  }

  private finalize(phase: 'Succeeded' | 'Failed' | 'Stopped', message?: string): void {
    this._phase = phase;
    this.halted = true;
    this.endTime = this.nowIso();
    if (message !== undefined) this.message = message;
    this.setConditions();
    this._runChanged = true;
    const done: EngineAction = { type: 'RunFinished', phase };
    if (this.message !== undefined) done.message = this.message;
    this.actions.push(done);
  }

  private setConditions(): void {
    const phase = this._phase;
    const reason = phase === 'Running' && this.failing ? 'Failing' : phase;
    const want: [string, boolean][] = [
      ['Running', phase === 'Running' || phase === 'Pending'],
      ['Succeeded', phase === 'Succeeded'],
      ['Failed', phase === 'Failed'],
    ];
    const at = this.nowIso();
    for (const [type, on] of want) {
      const status = on ? 'True' : 'False';
      let c = this.conditions.find((x) => x.type === type);
      if (!c) {
        c = { type, status, lastTransitionTime: at, reason };
        this.conditions.push(c);
      } else if (c.status !== status) {
        c.status = status;
        c.lastTransitionTime = at;
      }
      c.reason = reason;
      if (this.message !== undefined && (type === 'Failed' || !on)) c.message = this.message;
      else delete c.message;
    }
    this._runChanged = true;
  }

  // --- steps -------------------------------------------------------------------------------

  private startStep(f: Frame): void {
    const node = f.node;
    const step = node.step as NonNullable<PlanNode['step']>;
    const id = step.name + f.scope.suffix;
    const inst = this.instances.get(id);
    if (inst && inst.frame !== null) {
      // Cannot happen with unique step names; fail loudly rather than run twice.
      this.finish(f, false, `${node.path}: duplicate step instance id ${id}`);
      return;
    }
    if (inst) {
      // A recorded instance (restore): it carries on from where it was.
      inst.frame = f;
      inst.node = node;
      if (this.reattach(inst)) return;
    }
    if (this.deferred) {
      // New work found while replaying: the order of the replay is not the order in which
      // things happened, so start it only once the whole replay shows the run still going.
      this.deferred.push(() => this.startFresh(f, id));
      return;
    }
    this.startFresh(f, id);
  }

  /** Creates (or resets a recorded, never-started) instance and resolves and launches it. */
  private startFresh(f: Frame, id: string): void {
    if (this.halted) return;
    const node = f.node;
    const step = node.step as NonNullable<PlanNode['step']>;
    let inst = this.instances.get(id);
    if (inst) {
      inst.s = { id, step: step.name, phase: inst.s.phase, attempts: 0 };
      this.setPhase(inst, 'Pending');
    } else {
      if (!this.admitInstance(f, id)) return;
      const reused = this.reuse?.get(id);
      if (reused) {
        inst = this.register(node, { ...reused, message: `reused from run ${this.restartOf}` }, f);
        this.touch(inst);
        this.finish(f, true);
        return;
      }
      inst = this.register(node, { id, step: step.name, phase: 'Pending', attempts: 0 }, f);
      this.touch(inst);
    }
    if (!this.resolve(inst)) return;
    this.proceed(inst);
  }

  private resolve(inst: Inst): boolean {
    const node = inst.node as PlanNode;
    const frame = inst.frame as Frame;
    try {
      const vars = node.stepRefs === null ? frame.scope.vars : this.exprVars(node, frame.scope);
      // One budget for all the expressions of the instance (its parameters and every field).
      const budget = new ExprBudget(
        this.limits.exprBudget,
        `the expressions of step ${inst.s.id}`,
        limitHint('exprBudget'),
        this.exprRunBudget,
      );
      inst.resolved = withExprBudget(budget, () =>
        resolveStep(
          node.step as NonNullable<PlanNode['step']>,
          node.path,
          vars,
          node.hasTemplates,
          frame.scope.iterationVars,
        ),
      );
      return true;
    } catch (e) {
      const message = errorMessage(e);
      inst.s.message = message;
      inst.s.endTime = this.nowIso();
      this.setPhase(inst, 'Failed');
      this.finish(frame, false, `step ${inst.s.id} failed: ${message}`);
      return false;
    }
  }

  /** Re-attaches a recorded instance during restore; false when it must run as new. */
  private reattach(inst: Inst): boolean {
    const s = inst.s;
    const frame = inst.frame as Frame;
    switch (s.phase) {
      case 'Succeeded':
        this.finish(frame, true);
        return true;
      case 'Failed':
        this.finish(frame, false, `step ${s.id} failed: ${s.message ?? 'failed'}`);
        return true;
      case 'Skipped':
      case 'Stopped':
        return false;
      case 'Pending':
        if (!s.nextAttemptTime || !s.attempts) return false;
        if (!this.resolve(inst)) return true;
        this.retrying.add(inst);
        this.actions.push({
          type: 'WakeAt',
          at: Date.parse(s.nextAttemptTime),
          timer: { instanceId: s.id, attempt: s.attempts, kind: 'retry' },
        });
        return true;
      case 'WaitingForInputs':
        if (!this.resolve(inst)) return true;
        this.enterWaiting(inst);
        return true;
      case 'Queued':
      case 'Running': {
        if (!this.resolve(inst)) return true;
        this.open.add(inst);
        this.emitLaunch(inst, true);
        if (s.startTime !== undefined) this.armTimeout(inst);
        return true;
      }
    }
    return false;
  }

  private proceed(inst: Inst): void {
    if ((inst.resolved as ResolvedStep).inputs.length > 0) this.enterWaiting(inst);
    else this.launch(inst);
  }

  private enterWaiting(inst: Inst): void {
    const inputs = (inst.resolved as ResolvedStep).inputs;
    inst.matched = inputs.map(() => undefined);
    this.waiting.add(inst);
    this.waitIndex.add(inst, inputs);
    const limit = inst.node?.step?.inputsTimeoutSeconds;
    // the deadline is kept in the status, so a restored run keeps the one it had
    if (limit && inst.s.inputsDeadline === undefined) inst.s.inputsDeadline = iso(this.now + limit * 1000);
    if (inst.s.phase !== 'WaitingForInputs') this.setPhase(inst, 'WaitingForInputs');
    this.actions.push({ type: 'WaitForInputs', instanceId: inst.s.id, inputs });
    if (inst.s.inputsDeadline !== undefined)
      this.actions.push({
        type: 'WakeAt',
        at: Date.parse(inst.s.inputsDeadline),
        timer: { instanceId: inst.s.id, attempt: inst.s.attempts ?? 0, kind: 'inputs' },
      });
  }

  /** inputsTimeoutSeconds passed: the step fails, naming the inputs it still lacks. */
  private inputsTimedOut(inst: Inst, timer: TimerRef): void {
    if (!this.waiting.has(inst)) return;
    const due = Date.parse(inst.s.inputsDeadline ?? '');
    if (!Number.isFinite(due)) return;
    if (this.now < due) {
      this.actions.push({ type: 'WakeAt', at: due, timer });
      return;
    }
    const inputs = (inst.resolved as ResolvedStep).inputs;
    const missing = inputs.filter((_, i) => inst.matched?.[i] === undefined).map(describeSelector);
    this.stopWaiting(inst);
    const s = inst.s;
    s.message = `inputs not announced within ${inst.node?.step?.inputsTimeoutSeconds}s (inputsTimeoutSeconds): still waiting for ${missing.join(', ')}`;
    s.endTime = this.nowIso();
    this.setPhase(inst, 'Failed');
    if (inst.frame) this.finish(inst.frame, false, `step ${s.id} failed: ${s.message}`);
  }

  private stopWaiting(inst: Inst): void {
    this.waiting.delete(inst);
    this.waitIndex.remove(inst, (inst.resolved as ResolvedStep).inputs);
    inst.matched = null;
    this.actions.push({ type: 'CancelWaitForInputs', instanceId: inst.s.id });
  }

  private onArtifacts(artifacts: ArtifactRecord[], only?: string): void {
    const ready = new Set<Inst>();
    for (const a of artifacts) {
      if (typeof a?.name !== 'string') continue;
      const candidates = only
        ? [this.instances.get(only)].filter((i): i is Inst => i !== undefined && this.waiting.has(i))
        : this.waitIndex.candidates(a);
      for (const inst of candidates ?? []) {
        const inputs = (inst.resolved as ResolvedStep).inputs;
        const matched = inst.matched as (ArtifactRecord | undefined)[];
        let missing = 0;
        for (let i = 0; i < inputs.length; i++) {
          if (matched[i] === undefined && artifactMatches(inputs[i] as (typeof inputs)[number], a))
            matched[i] = a;
          if (matched[i] === undefined) missing++;
        }
        if (missing === 0) ready.add(inst);
      }
    }
    for (const inst of ready) {
      if (this.halted) break;
      this.stopWaiting(inst);
      this.launch(inst);
    }
  }

  private launch(inst: Inst): void {
    const s = inst.s;
    const resolved = inst.resolved as ResolvedStep;
    s.attempts = (s.attempts ?? 0) + 1;
    delete s.nextAttemptTime;
    delete s.endTime;
    delete s.startTime;
    if (resolved.type === 'noop') {
      s.startTime = this.nowIso();
      this.succeed(inst);
      return;
    }
    this.open.add(inst);
    if (resolved.type === 'subworkflow') {
      s.startTime = this.nowIso();
      this.setPhase(inst, 'Running');
      this.emitLaunch(inst, false);
      this.armTimeout(inst);
      return;
    }
    this.setPhase(inst, 'Queued');
    this.emitLaunch(inst, false);
  }

  private emitLaunch(inst: Inst, recovered: boolean): void {
    const s = inst.s;
    const resolved = inst.resolved as ResolvedStep;
    const attempt = s.attempts ?? 1;
    if (resolved.type === 'subworkflow') {
      const sw = resolved.subworkflow as NonNullable<ResolvedStep['subworkflow']>;
      const action: EngineAction = {
        type: 'StartChildRun',
        instanceId: s.id,
        attempt,
        workflow: sw.workflow,
        parameters: childParameters(resolved),
        initiator: { type: 'subworkflow', parent: { run: this.runId, step: s.id } },
      };
      if (sw.version !== undefined) action.version = sw.version;
      if (recovered) action.recovered = true;
      this.actions.push(action);
      return;
    }
    const action: EngineAction = { type: 'LaunchStep', instanceId: s.id, attempt, step: resolved };
    if (recovered) action.recovered = true;
    this.actions.push(action);
  }

  private armTimeout(inst: Inst): void {
    const t = inst.node?.step?.timeoutSeconds;
    if (!t || inst.s.startTime === undefined) return;
    this.actions.push({
      type: 'WakeAt',
      at: Date.parse(inst.s.startTime) + t * 1000,
      timer: { instanceId: inst.s.id, attempt: inst.s.attempts ?? 1, kind: 'timeout' },
    });
  }

  private succeed(inst: Inst): void {
    const s = inst.s;
    s.endTime = this.nowIso();
    if (s.startTime === undefined) s.startTime = s.endTime;
    delete s.message;
    this.setPhase(inst, 'Succeeded');
    for (const artifact of (inst.resolved as ResolvedStep).outputs)
      this.actions.push({
        type: 'AnnounceArtifact',
        instanceId: s.id,
        artifact,
        producer: { workflow: this.subject.workflow, run: this.runId, step: s.id },
      });
    if (inst.frame) this.finish(inst.frame, true);
  }

  /**
   * An attempt evicted for a higher-tier step: not the step's own failure, so a new attempt is
   * launched at once and the preemption is not counted against retry.limit (failAttempt counts
   * attempts minus preemptions). In a run that is already failing it ends like a failure.
   */
  private preempted(inst: Inst, message: string): void {
    const s = inst.s;
    if (this.halted || !inst.node?.step) {
      this.failAttempt(inst, message);
      return;
    }
    s.preemptions = (s.preemptions ?? 0) + 1;
    delete s.exitCode;
    this.launch(inst);
    // after launch, which clears the attempt's times: the why stays until the next attempt ends
    s.message = `attempt ${s.attempts! - 1} preempted: ${message}`;
    this.touch(inst);
  }

  private failAttempt(inst: Inst, message: string, exitCode?: number): void {
    const s = inst.s;
    const step = inst.node?.step;
    const attempts = s.attempts ?? 1;
    if (exitCode !== undefined) s.exitCode = exitCode;
    else delete s.exitCode;
    s.endTime = this.nowIso();
    // preempted attempts were not the step's failures: they do not use up its retries
    if (step && !this.halted && attempts - (s.preemptions ?? 0) <= retryLimit(step)) {
      const delay = backoffMs(step, attempts);
      s.message = `attempt ${attempts} failed: ${message}`;
      if (delay === 0) {
        this.launch(inst);
        return;
      }
      const at = this.now + delay;
      s.nextAttemptTime = iso(at);
      this.setPhase(inst, 'Pending');
      this.retrying.add(inst);
      this.actions.push({
        type: 'WakeAt',
        at,
        timer: { instanceId: s.id, attempt: attempts, kind: 'retry' },
      });
      return;
    }
    s.message = attempts > 1 ? `failed after ${attempts} attempts: ${message}` : message;
    this.setPhase(inst, 'Failed');
    if (inst.frame) this.finish(inst.frame, false, `step ${s.id} failed: ${s.message}`);
  }

  private onTimer(timer: TimerRef): void {
    const inst = this.instances.get(timer?.instanceId);
    if (!inst) return;
    const s = inst.s;
    if (timer.kind === 'inputs') {
      if ((s.attempts ?? 0) === timer.attempt) this.inputsTimedOut(inst, timer);
      return;
    }
    if (s.attempts !== timer.attempt) return;
    if (timer.kind === 'retry') {
      if (!this.retrying.has(inst)) return;
      const due = Date.parse(s.nextAttemptTime ?? '');
      if (this.now < due) {
        this.actions.push({ type: 'WakeAt', at: due, timer });
        return;
      }
      this.retrying.delete(inst);
      this.launch(inst);
      return;
    }
    const t = inst.node?.step?.timeoutSeconds;
    if (!this.open.has(inst) || !t || s.startTime === undefined) return;
    const due = Date.parse(s.startTime) + t * 1000;
    if (this.now < due) {
      this.actions.push({ type: 'WakeAt', at: due, timer });
      return;
    }
    const reason = `timed out after ${t}s`;
    this.kill(inst, reason);
    this.failAttempt(inst, reason);
  }

  /** Asks the shell to end the open attempt and closes it. */
  private kill(inst: Inst, reason: string): void {
    const s = inst.s;
    const attempt = s.attempts ?? 1;
    if (inst.resolved?.type === 'subworkflow') {
      const action: EngineAction = { type: 'StopChildRun', instanceId: s.id, attempt, reason };
      if (s.childRun) action.childRun = s.childRun;
      this.actions.push(action);
    } else this.actions.push({ type: 'KillStep', instanceId: s.id, attempt, reason });
    this.close(inst);
  }

  private stop(reason?: string): void {
    const why = reason ? `stopped: ${reason}` : 'stopped';
    this.halted = true;
    const at = this.nowIso();
    for (const inst of [...this.open]) {
      this.kill(inst, why);
      inst.s.endTime = at;
      inst.s.message = why;
      this.setPhase(inst, 'Stopped');
    }
    for (const inst of this.retrying) {
      delete inst.s.nextAttemptTime;
      inst.s.message = why;
      inst.s.endTime = at;
      this.setPhase(inst, 'Stopped');
    }
    this.retrying.clear();
    for (const inst of [...this.waiting]) {
      this.stopWaiting(inst);
      inst.s.message = why;
      inst.s.endTime = at;
      this.setPhase(inst, 'Stopped');
    }
    this.agenda = [];
    this.finalize('Stopped', reason ? `stopped: ${reason}` : 'stopped');
  }

  // --- steps.<name>.outputs ----------------------------------------------------------------

  private stepsView(refs: string[] | 'all', scope: Scope): Record<string, Value> {
    const plan = this.plan as Plan;
    const names = refs === 'all' ? plan.steps.keys() : refs;
    const out: Record<string, Value> = {};
    for (const name of names) {
      const node = plan.steps.get(name);
      if (!node) continue;
      const view = this.outputsInScope(name, node, scope);
      if (view !== undefined) out[name] = view;
    }
    return out;
  }

  /**
   * `steps.<name>` as seen from `scope`: the instance in the same iteration for the iterators
   * both share; past iterators the reader is not inside, a loop gives its latest iteration and
   * a foreach gives, per output, the list of values in iteration order.
   */
  private outputsInScope(name: string, node: PlanNode, scope: Scope): Value | undefined {
    const its = node.iterators;
    let common = 0;
    while (common < its.length && common < scope.iterators.length && its[common] === scope.iterators[common])
      common++;
    const prefix =
      name +
      (common === scope.indices.length
        ? scope.suffix
        : scope.indices
            .slice(0, common)
            .map((i) => `[${i}]`)
            .join(''));
    if (common === its.length) {
      const inst = this.instances.get(prefix);
      return inst ? viewOf(inst) : undefined;
    }
    // A fan-in view costs O(instances of the step): cache it until one of them changes, so
    // that 10,000 readers of a 10,000-way foreach do not cost 10^8.
    const gen = this.stepGen.get(name) ?? 0;
    const cached = this.fanIn.get(prefix);
    if (cached && cached.gen === gen) return cached.value;
    // In index order (not creation order, which a restore from a store may not preserve).
    const list = (this.byStep.get(name) ?? [])
      .filter((i) => i.s.id.startsWith(`${prefix}[`))
      .map((i) => ({ i, key: indexPath(i.s.id, name.length) }))
      .sort((a, b) => compareIndexPaths(a.key, b.key))
      .map((x) => x.i);
    let value: Value | undefined;
    if (list.length === 0) value = undefined;
    else if (its.slice(common).every((n) => n.kind === 'loop')) value = viewOf(list[list.length - 1] as Inst);
    else {
      const outputs: Record<string, Value[]> = {};
      const keys = new Set<string>();
      for (const i of list) for (const k of Object.keys(i.s.outputs ?? {})) keys.add(k);
      for (const k of keys) outputs[k] = list.map((i) => (i.s.outputs?.[k] ?? null) as Value);
      value = { outputs, phases: list.map((i) => i.s.phase) };
    }
    this.fanIn.set(prefix, { gen, value });
    return value;
  }

  private takeActions(): EngineAction[] {
    const out = this.actions;
    this.actions = [];
    return out;
  }
}

/** The `[i][j]...` indices of an instance id, after the step name. */
function indexPath(id: string, nameLength: number): number[] {
  const out: number[] = [];
  for (const m of id.slice(nameLength).matchAll(/\[(\d+)\]/g)) out.push(Number(m[1]));
  return out;
}

function compareIndexPaths(a: number[], b: number[]): number {
  for (let k = 0; k < Math.min(a.length, b.length); k++)
    if (a[k] !== b[k]) return (a[k] as number) - (b[k] as number);
  return a.length - b.length;
}

function viewOf(inst: Inst): Value {
  return { outputs: (inst.s.outputs ?? {}) as Value, phase: inst.s.phase };
}
