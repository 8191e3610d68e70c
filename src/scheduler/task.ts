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
  for (const [i, a] of (c.attributes ?? []).entries()) {
    const p = requirementProblem(a, `constraints.attributes[${i}]`);
    if (p) return `task ${task.id}: ${p}`;
  }
  if (c.nodeAffinity !== undefined) {
    if (!Array.isArray(c.nodeAffinity))
      return `task ${task.id}: constraints.nodeAffinity: expected a list of terms`;
    for (const [i, term] of c.nodeAffinity.entries()) {
      if (!Array.isArray(term)) {
        return `task ${task.id}: constraints.nodeAffinity[${i}]: expected a list of requirements`;
      }
      for (const [j, a] of term.entries()) {
        const p = requirementProblem(a, `constraints.nodeAffinity[${i}][${j}]`);
        if (p) return `task ${task.id}: ${p}`;
      }
    }
  }
  if (c.tolerations !== undefined) {
    if (!Array.isArray(c.tolerations)) return `task ${task.id}: constraints.tolerations: expected a list`;
    for (const [i, t] of c.tolerations.entries()) {
      const at = `task ${task.id}: constraints.tolerations[${i}]`;
      if (typeof t !== 'object' || t === null) return `${at}: expected an object`;
      if (t.operator !== undefined && t.operator !== 'Equal' && t.operator !== 'Exists') {
        return `${at}.operator: expected Equal or Exists`;
      }
      if (t.effect !== undefined && !['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(t.effect)) {
        return `${at}.effect: expected NoSchedule, PreferNoSchedule or NoExecute`;
      }
      if (t.operator === 'Exists' && t.value !== undefined && t.value !== '') {
        return `${at}.value: must be empty when operator is Exists`;
      }
      if ((t.key === undefined || t.key === '') && t.operator !== 'Exists') {
        return `${at}.operator: a toleration without a key must use Exists`;
      }
    }
  }
  return undefined;
}

function requirementProblem(a: AttributeRequirement, path: string): string | undefined {
  if (typeof a !== 'object' || a === null) return `${path}: expected {key, operator, values}`;
  if (!['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'].includes(a.operator)) {
    return `${path}.operator: expected In, NotIn, Exists, DoesNotExist, Gt or Lt`;
  }
  if ((a.operator === 'Gt' || a.operator === 'Lt') && !Number.isFinite(Number(a.values?.[0]))) {
    return `${path}.values: ${a.operator} needs one number`;
  }
  return undefined;
}
