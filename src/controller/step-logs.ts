// Where the logs of a step instance are: its own run, or (a step reused by a restart from
// failed) the run that ran it; or why there are none (skipped, never started). Read by the
// REST logs route so that a skipped or reused step says so instead of answering 404.
import type { StepInstanceStatus, WorkflowRun } from '../crds/index.ts';
import type { Store } from '../store/types.ts';

/** Restarts of restarts are followed this far back (a chain longer than this is not walked). */
const MAX_RESTART_HOPS = 20;

export type StepLogSource = { run: string; attempts: number; reusedFrom?: string } | { none: string };

export function stepLogSource(
  store: Store,
  ns: string,
  run: string,
  step: string,
): StepLogSource | undefined {
  let current = run;
  for (let hop = 0; hop <= MAX_RESTART_HOPS; hop++) {
    const inst = store.getStepInstance(ns, current, step)?.data as StepInstanceStatus | undefined;
    if (!inst) return undefined;
    const prev = store.get<WorkflowRun>('WorkflowRun', ns, current)?.spec.restartOf?.run;
    // a reused instance keeps the record (attempts, outputs) of the run that ran it
    if (prev && inst.message === `reused from run ${prev}`) {
      current = prev;
      continue;
    }
    if (inst.phase === 'Skipped')
      return {
        none: `step "${step}" was skipped${inst.message ? ` (${inst.message})` : ''}: it never ran and has no logs`,
      };
    const attempts = inst.attempts ?? 0;
    if (attempts < 1 && current === run) return undefined;
    return current === run ? { run, attempts } : { run: current, attempts, reusedFrom: current };
  }
  return {
    none: `step "${step}" was reused through more than ${MAX_RESTART_HOPS} restarts: its logs are not followed`,
  };
}
