// Garbage collection of step Pods (`mesonctl operator --pod-gc`), as Argo's podGC strategies: a
// finished Pod holds no node, but it stays in etcd and in the launcher's cache until its run is
// deleted (it is owned by the run), and a wide foreach leaves thousands.
//
// OnRunSuccess / OnRunCompletion delete a finished run's Pods here. OnPodSuccess / OnPodCompletion
// delete each Pod as its attempt's end is committed (the Kubernetes launcher's `settled`), and use
// this collector to catch up, at the run's end, on Pods whose delete failed or that ended under an
// earlier leader. Either way a Pod goes only once the controller has committed its attempt's
// outcome, so a new leader never adopts an attempt whose Pod is gone (it would run it again).
// Deleting a Pod deletes its logs; docs/operator.md says what remains reachable.
//
// Contract: runFinished is called after the run's terminal status is committed; sweep() may be
// called any time (idempotent: a collection delete of Pods already gone deletes nothing), and
// catches up on runs that finished under a previous leader or while a delete failed.
import type { WorkflowRun } from '../crds/index.ts';
import type { Stored } from '../store/types.ts';

export const POD_GC_POLICIES = [
  'Never',
  'OnRunSuccess',
  'OnRunCompletion',
  'OnPodSuccess',
  'OnPodCompletion',
] as const;
export type PodGcPolicy = (typeof POD_GC_POLICIES)[number];

/** Whether the policy deletes each finished Pod as its attempt ends (not only whole runs'). */
export function perPod(policy: PodGcPolicy): boolean {
  return policy === 'OnPodSuccess' || policy === 'OnPodCompletion';
}

/** Which of a run's step Pods a collection deletes: all, or only those that succeeded. */
export type PodSelection = 'all' | 'succeeded';

const FINAL = new Set(['Succeeded', 'Failed', 'Stopped']);

/** Sweep interval (catch-up for runs whose delete failed or finished under another leader). */
export const POD_GC_SWEEP_MS = 5 * 60_000;

export interface PodGcDeps {
  /** Deletes the step Pods of the run with this uid (a collection delete by its label). */
  deleteRunPods(namespace: string, runUid: string, which: PodSelection): Promise<void>;
  /**
   * The run as the store has it (undefined: gone, its Pods go with it by owner reference, or in
   * a namespace this operator does not serve). May throw: the sweep skips that run.
   */
  getRun(namespace: string, name: string): Stored<WorkflowRun> | undefined;
  /** Runs that still have step Pods, as `[namespace, run, the Pod's phase]` (the launcher's cache). */
  runsWithPods(): Iterable<[string, string, string | undefined]>;
  logger: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

/** Which Pods of a run in this phase the policy deletes (undefined: none, the run keeps them). */
export function collects(policy: PodGcPolicy, phase: string | undefined): PodSelection | undefined {
  if (policy === 'OnRunSuccess') return phase === 'Succeeded' ? 'all' : undefined;
  if (!FINAL.has(phase ?? '')) return undefined;
  if (policy === 'OnRunCompletion' || policy === 'OnPodCompletion') return 'all';
  // failed Pods stay for their logs, as with Argo's OnPodSuccess
  if (policy === 'OnPodSuccess') return 'succeeded';
  return undefined;
}

export class PodGarbageCollector {
  private readonly policy: PodGcPolicy;
  private readonly deps: PodGcDeps;
  /** Deletes under way, by `ns/run`: one at a time per run. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(policy: PodGcPolicy, deps: PodGcDeps) {
    this.policy = policy;
    this.deps = deps;
  }

  runFinished(run: Stored<WorkflowRun>): void {
    const which = collects(this.policy, run.status?.phase);
    if (which) this.collect(run, which);
  }

  /** Deletes the Pods of every finished run the policy covers that still has Pods. */
  sweep(): void {
    if (this.policy === 'Never') return;
    const seen = new Set<string>();
    const succeededOnly = this.policy === 'OnPodSuccess';
    for (const [ns, name, podPhase] of this.deps.runsWithPods()) {
      // a failed Pod that the policy keeps is no reason to collect its run again
      if (succeededOnly && podPhase !== 'Succeeded') continue;
      const key = `${ns}/${name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let run: Stored<WorkflowRun> | undefined;
      try {
        run = this.deps.getRun(ns, name);
      } catch (err) {
        // e.g. a Pod of a namespace this operator does not serve: not its to collect
        this.deps.logger.warn({ run: key, err: (err as Error).message }, 'pod GC skips a run it cannot read');
        continue;
      }
      const which = run && collects(this.policy, run.status?.phase);
      if (run && which) this.collect(run, which);
    }
  }

  /** Resolves when the deletes started so far have ended (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.pending.values());
  }

  private collect(run: Stored<WorkflowRun>, which: PodSelection): void {
    const key = `${run.metadata.namespace}/${run.metadata.name}`;
    if (this.pending.has(key)) return;
    const p = this.deps
      .deleteRunPods(run.metadata.namespace, run.metadata.uid, which)
      .then(
        () => this.deps.logger.info({ run: key, podGc: this.policy }, 'deleted the finished run’s step pods'),
        // the next sweep tries again
        (err: unknown) =>
          this.deps.logger.warn(
            { run: key, err: (err as Error).message },
            'could not delete the finished run’s step pods',
          ),
      )
      .finally(() => this.pending.delete(key));
    this.pending.set(key, p);
  }
}
