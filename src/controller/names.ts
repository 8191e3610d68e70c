// Deterministic object names: the controller may repeat an action after a restart, so the
// objects it creates are named from what caused them, and a second create finds the first.
import { createHash } from 'node:crypto';

/** A DNS-1123 label made of `parts` (lowercase alphanumerics and '-'), with a hash suffix when shortened. */
export function dnsName(...parts: string[]): string {
  const raw = parts.join('-');
  const clean = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  if (clean === raw && clean.length <= 63) return clean;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, 8);
  return `${clean.slice(0, 54).replace(/-$/, '')}-${hash}`;
}

/** The child WorkflowRun of a subworkflow step attempt. */
export function childRunName(parentRun: string, instanceId: string, attempt: number): string {
  return dnsName(parentRun, instanceId, `a${attempt}`);
}

/** The DataArtifact a step announces on success: one per (run, instance, artifact, partition). */
export function announcedArtifactName(
  name: string,
  run: string,
  instanceId: string,
  partition: Record<string, string>,
): string {
  const key = JSON.stringify([run, instanceId, name, Object.entries(partition).sort()]);
  return dnsName(name, createHash('sha256').update(key).digest('hex').slice(0, 10));
}

export const PARENT_RUN_LABEL = 'meson.dev/parent-run';

interface RunLike {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: { initiator?: { type: string; parent?: { run: string; step?: string } } };
}

/**
 * The attempt of its parent's step that `child` is, or undefined when it is not a run the
 * controller started for a subworkflow step: anyone who can create a WorkflowRun can write
 * `initiator: {type: subworkflow, parent: ...}`, and such a run must neither feed outputs to that
 * parent nor skip maxActiveRuns. A genuine child is named childRunName(parent, step, attempt) for
 * an attempt the parent's step has made (`parentAttempts`, from the parent's step instance) and
 * carries the parent-run label.
 */
export function childAttemptOf(child: RunLike, parentAttempts: number): number | undefined {
  const initiator = child.spec?.initiator;
  const parent = initiator?.parent;
  if (initiator?.type !== 'subworkflow' || !parent?.run || !parent.step) return undefined;
  if (child.metadata.labels?.[PARENT_RUN_LABEL] !== parent.run) return undefined;
  for (let a = Math.min(parentAttempts, 10_000); a >= 1; a--) {
    if (childRunName(parent.run, parent.step, a) === child.metadata.name) return a;
  }
  return undefined;
}

/** childAttemptOf, with the parent's attempts read from the store. */
export function verifiedChildAttempt(
  store: {
    getStepInstance(ns: string, run: string, id: string): { data: Record<string, unknown> } | undefined;
  },
  run: RunLike & { metadata: { namespace: string } },
): number | undefined {
  const parent = run.spec?.initiator?.parent;
  if (run.spec?.initiator?.type !== 'subworkflow' || !parent?.run || !parent.step) return undefined;
  const inst = store.getStepInstance(run.metadata.namespace, parent.run, parent.step);
  return childAttemptOf(run, Number(inst?.data.attempts ?? 0));
}
