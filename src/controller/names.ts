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
