// Building and checking Tasks. makeTask takes a step's resources as Kubernetes quantities.
import { resourcesFromKubernetes } from '../offer-adapter/kubernetes-resources.ts';
import { bytes, cpuMillis, QuantityError } from '../offer-adapter/quantity.ts';
import type { ResourceRequest } from '../offer-adapter/types.ts';
import type { AttributeRequirement, Task, TaskConstraints } from './types.ts';

export class TaskError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskError';
    this.code = code;
  }
}

/** A step's resources as written in a manifest: `cpus: '500m' | 0.5`, `memory: '1Gi'`. */
export interface TaskResourcesSpec {
  /** Cores as a Kubernetes quantity (`500m`, `2`, 0.5). */
  cpus?: string | number;
  /** Bytes as a Kubernetes quantity (`512Mi`, `1G`) or a number of bytes. */
  memory?: string | number;
  gpus?: string | number;
  /** Bytes, like memory. */
  disk?: string | number;
  /** How many host ports to assign. */
  ports?: number;
  /** Extended resources (`example.com/fpga: 1`). */
  extended?: Record<string, string | number>;
}

export interface TaskSpec {
  id: string;
  tenant: string;
  priority?: number;
  tier?: number;
  resources?: TaskResourcesSpec;
  constraints?: TaskConstraints;
  groupId?: string;
  submittedAt: number;
}

function field<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof QuantityError) {
      throw new TaskError('SCHEDULER_TASK_INVALID', `${path}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/**
 * A Task from a step-like spec with Kubernetes quantities.
 * @throws TaskError (SCHEDULER_TASK_INVALID) naming the field, for bad quantities or fields.
 */
export function makeTask(spec: TaskSpec): Task {
  const r = spec.resources ?? {};
  const resources: ResourceRequest = {
    cpuMillis: r.cpus === undefined ? 0 : field('resources.cpus', () => cpuMillis(r.cpus!)),
    memoryBytes: r.memory === undefined ? 0 : field('resources.memory', () => bytes(r.memory!)),
    diskBytes: r.disk === undefined ? 0 : field('resources.disk', () => bytes(r.disk!)),
    gpus: r.gpus === undefined ? 0 : field('resources.gpus', () => bytes(r.gpus!)),
  };
  if (r.ports !== undefined) resources.ports = r.ports;
  if (r.extended) {
    const ext = field('resources.extended', () => resourcesFromKubernetes(r.extended));
    if (ext.scalars) resources.scalars = ext.scalars;
  }
  const task: Task = {
    id: spec.id,
    tenant: spec.tenant,
    priority: spec.priority ?? 0,
    resources,
    submittedAt: spec.submittedAt,
  };
  if (spec.tier !== undefined) task.tier = spec.tier;
  if (spec.constraints) task.constraints = spec.constraints;
  if (spec.groupId !== undefined) task.groupId = spec.groupId;
  const problem = taskProblem(task);
  if (problem) throw new TaskError('SCHEDULER_TASK_INVALID', problem);
  return task;
}

const AMOUNTS = ['cpuMillis', 'memoryBytes', 'diskBytes', 'gpus'] as const;

function badAmount(v: unknown): boolean {
  return typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0;
}

/** What is wrong with a task (field path and expectation), or undefined. Never throws. */
export function taskProblem(task: Task): string | undefined {
  if (typeof task !== 'object' || task === null) return 'task: expected an object';
  if (typeof task.id !== 'string' || task.id === '') return 'id: expected a non-empty string';
  if (typeof task.tenant !== 'string' || task.tenant === '')
    return `task ${task.id}: tenant: expected a non-empty string`;
  if (typeof task.priority !== 'number' || !Number.isFinite(task.priority)) {
    return `task ${task.id}: priority: expected a finite number`;
  }
  if (task.tier !== undefined && (!Number.isInteger(task.tier) || task.tier < 0)) {
    return `task ${task.id}: tier: expected a non-negative integer`;
  }
  if (typeof task.submittedAt !== 'number' || !Number.isFinite(task.submittedAt)) {
    return `task ${task.id}: submittedAt: expected epoch milliseconds`;
  }
  const r = task.resources;
  if (typeof r !== 'object' || r === null) return `task ${task.id}: resources: expected an object`;
  if (badAmount(r.cpuMillis) || badAmount(r.memoryBytes) || badAmount(r.diskBytes) || badAmount(r.gpus)) {
    for (const k of AMOUNTS) {
      if (badAmount(r[k]))
        return `task ${task.id}: resources.${k}: expected a non-negative integer, got ${r[k]}`;
    }
  }
  if (r.ports !== undefined && badAmount(r.ports)) {
    return `task ${task.id}: resources.ports: expected a non-negative integer count, got ${r.ports}`;
  }
  if (r.scalars !== undefined) {
    for (const k in r.scalars) {
      const v = r.scalars[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        return `task ${task.id}: resources.scalars.${k}: expected a non-negative number, got ${v}`;
      }
    }
  }
  const c = task.constraints;
  if (c === undefined) return undefined;
  if (c.uniqueHost && task.groupId === undefined) {
    return `task ${task.id}: constraints.uniqueHost: needs a groupId`;
  }
  // Indexed loops and paths built only for an error: a pass checks every task it is given, and
  // the garbage of iterators and path strings per valid task added up to collections mid-pass.
  const attributes = c.attributes ?? NONE;
  if (!Array.isArray(attributes)) return `task ${task.id}: constraints.attributes: expected a list`;
  for (let i = 0; i < attributes.length; i++) {
    const p = requirementProblem(attributes[i]!, 'constraints.attributes', i);
    if (p) return `task ${task.id}: ${p}`;
  }
  if (c.nodeAffinity !== undefined) {
    if (!Array.isArray(c.nodeAffinity))
      return `task ${task.id}: constraints.nodeAffinity: expected a list of terms`;
    for (let i = 0; i < c.nodeAffinity.length; i++) {
      const term = c.nodeAffinity[i];
      if (!Array.isArray(term)) {
        return `task ${task.id}: constraints.nodeAffinity[${i}]: expected a list of requirements`;
      }
      for (let j = 0; j < term.length; j++) {
        const p = requirementProblem(term[j]!, 'constraints.nodeAffinity', i, j);
        if (p) return `task ${task.id}: ${p}`;
      }
    }
  }
  if (c.tolerations !== undefined) {
    if (!Array.isArray(c.tolerations)) return `task ${task.id}: constraints.tolerations: expected a list`;
    for (let i = 0; i < c.tolerations.length; i++) {
      const t = c.tolerations[i];
      if (typeof t !== 'object' || t === null) return `${tolerationPath(task.id, i)}: expected an object`;
      if (t.operator !== undefined && t.operator !== 'Equal' && t.operator !== 'Exists') {
        return `${tolerationPath(task.id, i)}.operator: expected Equal or Exists`;
      }
      if (t.effect !== undefined && !EFFECTS.includes(t.effect)) {
        return `${tolerationPath(task.id, i)}.effect: expected NoSchedule, PreferNoSchedule or NoExecute`;
      }
      if (t.operator === 'Exists' && t.value !== undefined && t.value !== '') {
        return `${tolerationPath(task.id, i)}.value: must be empty when operator is Exists`;
      }
      if ((t.key === undefined || t.key === '') && t.operator !== 'Exists') {
        return `${tolerationPath(task.id, i)}.operator: a toleration without a key must use Exists`;
      }
    }
  }
  return undefined;
}

function tolerationPath(id: string, i: number): string {
  return `task ${id}: constraints.tolerations[${i}]`;
}

function listPath(list: string, i: number, j: number): string {
  return j < 0 ? `${list}[${i}]` : `${list}[${i}][${j}]`;
}

const NONE: readonly AttributeRequirement[] = [];
const EFFECTS: readonly string[] = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'];

/** `list[i]` (or `list[i][j]`)'s problem; the path is written only when there is one. */
function requirementProblem(a: AttributeRequirement, list: string, i: number, j = -1): string | undefined {
  if (typeof a !== 'object' || a === null) return `${listPath(list, i, j)}: expected {key, operator, values}`;
  if (!OPERATORS.includes(a.operator)) {
    return `${listPath(list, i, j)}.operator: expected In, NotIn, Exists, DoesNotExist, Gt or Lt`;
  }
  if ((a.operator === 'Gt' || a.operator === 'Lt') && !Number.isFinite(Number(a.values?.[0]))) {
    return `${listPath(list, i, j)}.values: ${a.operator} needs one number`;
  }
  return undefined;
}
