// Garbage collection of finished runs' step Pods (`mesonctl operator --pod-gc`), as Argo's
// podGC strategies OnWorkflowSuccess / OnWorkflowCompletion: a finished Pod holds no node, but it
// stays in etcd and in the launcher's cache until its run is deleted (it is owned by the run), and
// a wide foreach leaves thousands.
//
// Only a finished run's Pods are deleted: by then the controller has committed every attempt's
// outcome, so a new leader never adopts an attempt whose Pod is gone (it would run it again).
// Deleting a Pod deletes its logs; docs/operator.md says what remains reachable.
//
// Contract: runFinished is called after the run's terminal status is committed; sweep() may be
// called any time (idempotent: a collection delete of Pods already gone deletes nothing), and
// catches up on runs that finished under a previous leader or while a delete failed.
import type { WorkflowRun } from '../crds/index.ts';
import type { Stored } from '../store/types.ts';

export const POD_GC_POLICIES = ['Never', 'OnRunSuccess', 'OnRunCompletion'] as const;
export type PodGcPolicy = (typeof POD_GC_POLICIES)[number];

/** Sweep interval (catch-up for runs whose delete failed or finished under another leader). */
export const POD_GC_SWEEP_MS = 5 * 60_000;

export interface PodGcDeps {
  /** Deletes every step Pod of the run with this uid (a collection delete by its label). */
  deleteRunPods(namespace: string, runUid: string): Promise<void>;
  /**
   * The run as the store has it (undefined: gone, its Pods go with it by owner reference, or in
   * a namespace this operator does not serve). May throw: the sweep skips that run.
   */
  getRun(namespace: string, name: string): Stored<WorkflowRun> | undefined;
  /** Runs that still have step Pods, as `[namespace, run]` (the launcher's cache). */
  runsWithPods(): Iterable<[string, string]>;
  logger: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

/** Whether the policy deletes the Pods of a run in this phase. */
export function collects(policy: PodGcPolicy, phase: string | undefined): boolean {
  if (policy === 'OnRunSuccess') return phase === 'Succeeded';
  if (policy === 'OnRunCompletion') return phase === 'Succeeded' || phase === 'Failed' || phase === 'Stopped';
  return false;
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
    if (collects(this.policy, run.status?.phase)) this.collect(run);
  }

  /** Deletes the Pods of every finished run the policy covers that still has Pods. */
  sweep(): void {
    if (this.policy === 'Never') return;
    const seen = new Set<string>();
    for (const [ns, name] of this.deps.runsWithPods()) {
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
      if (run && collects(this.policy, run.status?.phase)) this.collect(run);
    }
  }

  /** Resolves when the deletes started so far have ended (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.pending.values());
  }

  private collect(run: Stored<WorkflowRun>): void {
    const key = `${run.metadata.namespace}/${run.metadata.name}`;
    if (this.pending.has(key)) return;
    const p = this.deps
      .deleteRunPods(run.metadata.namespace, run.metadata.uid)
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
