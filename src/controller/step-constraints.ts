// A step's `constraints` (src/crds/workflow.ts) as the scheduler's task constraints, so a step can
// ask for hosts by label or attribute, e.g. `attributes: {meson.dev/source: mesos}` for a Mesos
// agent (every offer carries `meson.dev/source`: local, mesos, kubernetes) or a Mesos agent's own
// attribute. `uniqueHost` spreads the instances of one step of one run (a foreach) over hosts.
import type { ResolvedStep } from '../engine/index.ts';
import type { AttributeRequirement, TaskConstraints } from '../scheduler/index.ts';

/**
 * The scheduler's view of a step's constraints. `taskId` is `namespace/run/instance` (names
 * without `/`): the unique-host group is the step within its run.
 */
export function stepConstraints(
  step: Pick<ResolvedStep, 'name' | 'constraints'>,
  taskId: string,
): { constraints?: TaskConstraints; groupId?: string } {
  const c = step.constraints;
  if (!c) return {};
  const out: TaskConstraints = {};
  if (c.nodeSelector && Object.keys(c.nodeSelector).length > 0) out.nodeSelector = { ...c.nodeSelector };
  const attributes: AttributeRequirement[] = Object.entries(c.attributes ?? {}).map(([key, value]) => ({
    key,
    operator: 'In',
    values: [value],
  }));
  if (attributes.length > 0) out.attributes = attributes;
  if (!c.uniqueHost) return Object.keys(out).length > 0 ? { constraints: out } : {};
  out.uniqueHost = true;
  const [namespace, run] = taskId.split('/');
  return { constraints: out, groupId: `${namespace}/${run}/${step.name}` };
}
