// Lineage of a data artifact: who consumes it. A Workflow consumes an artifact when one of its
// artifact triggers (spec.triggers.artifacts) or one of its steps' inputs (step.inputs, anywhere
// in the definition) names its data set with a partition the artifact's partition satisfies. A
// run consumed it when an artifact trigger started it with this artifact (spec.initiator.artifacts).
// Pure: the route (./routes/artifacts.ts) reads the store.
//
// Hostile input: a definition comes from a workflow author, and one applied with kubectl
// without the admission webhook is unchecked. The walk follows only the definition's structural
// keys (never a parameter value or a step's own fields), and stops after MAX_WALK nodes or at
// depth MAX_DEPTH: cost is bounded whatever the object holds.

/** Nodes one definition walk visits at most. */
export const MAX_WALK = 10_000;
/** Deepest nesting of blocks walked. */
export const MAX_DEPTH = 64;

type PartitionValue = string | number | boolean;
export type Partition = Record<string, PartitionValue>;

export interface ArtifactKey {
  name: string;
  partition?: Partition;
}

/** How a workflow consumes an artifact: a trigger entry, or a step's input. */
export interface WorkflowConsumer {
  via: 'trigger' | 'input';
  /** The step whose inputs name it (via input). */
  step?: string;
  /** The partition as the workflow writes it (a step input's may hold `${...}` templates). */
  partition?: Partition;
}

/**
 * An entry names `artifact` when the data set names are equal and every key of the entry's
 * partition is in the artifact's with an equal value (as strings). A step input's value with a
 * `${...}` template is resolved per run: it matches any value (the workflow may wait on it). A
 * trigger's partition is literal (as the trigger reads it: src/triggers/artifacts.ts).
 */
export function entryMatches(entry: ArtifactKey, artifact: ArtifactKey, templates: boolean): boolean {
  if (entry.name !== artifact.name) return false;
  const have = artifact.partition ?? {};
  for (const [k, v] of Object.entries(entry.partition ?? {})) {
    if (templates && typeof v === 'string' && v.includes('${')) {
      if (!Object.hasOwn(have, k)) return false;
      continue;
    }
    if (!Object.hasOwn(have, k) || String(have[k]) !== String(v)) return false;
  }
  return true;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function refsOf(list: unknown): ArtifactKey[] {
  if (!Array.isArray(list)) return [];
  return list.filter(
    (r): r is ArtifactKey =>
      isObject(r) && typeof r.name === 'string' && (r.partition === undefined || isObject(r.partition)),
  );
}

/** The ways a Workflow's spec (triggers, definition) consumes `artifact`; [] when it does not. */
export function workflowConsumes(spec: unknown, artifact: ArtifactKey): WorkflowConsumer[] {
  if (!isObject(spec)) return [];
  const out: WorkflowConsumer[] = [];
  const triggers = isObject(spec.triggers) ? spec.triggers.artifacts : undefined;
  for (const t of refsOf(triggers))
    if (entryMatches(t, artifact, false))
      out.push({ via: 'trigger', ...(t.partition ? { partition: t.partition } : {}) });
  let budget = MAX_WALK;
  const walk = (node: unknown, depth: number): void => {
    if (!isObject(node) || depth > MAX_DEPTH || --budget < 0) return;
    const step = node.step;
    if (isObject(step) && typeof step.name === 'string') {
      for (const input of refsOf(step.inputs))
        if (entryMatches(input, artifact, true))
          out.push({
            via: 'input',
            step: step.name,
            ...(input.partition ? { partition: input.partition } : {}),
          });
    }
    for (const key of ['sequence', 'parallel'] as const) {
      const list = node[key];
      if (!Array.isArray(list)) continue;
      for (const child of list) {
        if (budget <= 0) return; // a million siblings cost the budget, not a million calls
        walk(child, depth + 1);
      }
    }
    for (const key of ['or', 'xor'] as const) {
      const branches = node[key];
      if (!Array.isArray(branches)) continue;
      for (const b of branches) {
        if (budget <= 0) return;
        if (!isObject(b)) continue;
        walk(b.then, depth + 1);
        walk(b.otherwise, depth + 1);
      }
    }
    for (const key of ['loop', 'foreach'] as const) {
      const block = node[key];
      if (isObject(block)) walk(block.do, depth + 1);
    }
  };
  walk(spec.definition, 0);
  return out;
}

/** Whether an artifact trigger started `run` with `artifact` (same data set and partition). */
export function startedBy(run: unknown, artifact: ArtifactKey): boolean {
  if (!isObject(run) || !isObject(run.spec) || !isObject(run.spec.initiator)) return false;
  const initiator = run.spec.initiator;
  if (initiator.type !== 'artifact') return false;
  const key = partitionKey(artifact.partition);
  return refsOf(initiator.artifacts).some(
    (a) => a.name === artifact.name && partitionKey(a.partition) === key,
  );
}

/** A partition as a comparable string: keys sorted, values as strings. */
export function partitionKey(p: Partition | undefined): string {
  return JSON.stringify(
    Object.entries(p ?? {})
      .map(([k, v]) => [k, String(v)])
      .sort(([x], [y]) => (x! < y! ? -1 : x! > y! ? 1 : 0)),
  );
}
