// Hard and soft placement constraints: node selector, attribute requirements, GPU, unique host.
import type { AttributeRequirement, HostReason, HostView, SoftConstraint, Task } from './types.ts';

export function requirementHolds(
  req: AttributeRequirement,
  attributes: Readonly<Record<string, string>>,
): boolean {
  const v = attributes[req.key];
  switch (req.operator) {
    case 'In':
      return v !== undefined && (req.values ?? []).includes(v);
    case 'NotIn':
      return v === undefined || !(req.values ?? []).includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
    case 'Gt':
    case 'Lt': {
      if (v === undefined) return false;
      const have = Number(v);
      const bound = Number(req.values?.[0]);
      if (!Number.isFinite(have) || !Number.isFinite(bound)) return false;
      return req.operator === 'Gt' ? have > bound : have < bound;
    }
  }
}

export function describeRequirement(req: AttributeRequirement): string {
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return `${req.key} in (${values.join(', ')})`;
    case 'NotIn':
      return `${req.key} not in (${values.join(', ')})`;
    case 'Exists':
      return `${req.key} exists`;
    case 'DoesNotExist':
      return `${req.key} does not exist`;
    case 'Gt':
      return `${req.key} > ${values[0]}`;
    case 'Lt':
      return `${req.key} < ${values[0]}`;
  }
}

/**
 * A task's hard constraints compiled once per pass. `check` returns true when all hold; `explain`
 * lists every one that fails (for "why queued").
 */
export class HardConstraints {
  private readonly selectorKeys: string[];
  private readonly selectorValues: string[];
  private readonly requirements: AttributeRequirement[];
  private readonly needsGpu: boolean;
  private readonly avoidGpuHosts: boolean;
  /** Hosts the task's unique-host group already occupies (shared with the pass, which grows it). */
  readonly groupHosts: Set<string> | undefined;
  readonly groupId: string | undefined;
  /** True when nothing beyond resources has to be checked. */
  readonly trivial: boolean;

  constructor(task: Task, opts: { reserveGpuHosts: boolean; groupHosts: Set<string> | undefined }) {
    const c = task.constraints;
    const selector = c?.nodeSelector ?? {};
    this.selectorKeys = Object.keys(selector);
    this.selectorValues = this.selectorKeys.map((k) => selector[k]!);
    this.requirements = c?.attributes ?? [];
    this.needsGpu = task.resources.gpus > 0;
    this.avoidGpuHosts = opts.reserveGpuHosts && !this.needsGpu;
    this.groupHosts = c?.uniqueHost && task.groupId !== undefined ? opts.groupHosts : undefined;
    this.groupId = task.groupId;
    this.trivial =
      this.selectorKeys.length === 0 &&
      this.requirements.length === 0 &&
      !this.needsGpu &&
      !this.avoidGpuHosts &&
      !this.groupHosts;
  }

  /** True when the task's constraints can rule out hosts regardless of what runs on them. */
  get selective(): boolean {
    return (
      this.selectorKeys.length > 0 || this.requirements.length > 0 || this.needsGpu || this.avoidGpuHosts
    );
  }

  /** The constraints that depend only on the host's labels and GPUs (not on the group's hosts). */
  checkStatic(host: HostView): boolean {
    const attrs = host.attributes;
    for (let i = 0; i < this.selectorKeys.length; i++) {
      if (attrs[this.selectorKeys[i]!] !== this.selectorValues[i]) return false;
    }
    for (const r of this.requirements) if (!requirementHolds(r, attrs)) return false;
    if (this.needsGpu && host.capacity.gpus === 0) return false;
    if (this.avoidGpuHosts && host.capacity.gpus > 0) return false;
    return true;
  }

  check(host: HostView): boolean {
    if (!this.checkStatic(host)) return false;
    return !this.groupHosts?.has(host.hostname);
  }

  explain(host: HostView, out: HostReason[]): void {
    const attrs = host.attributes;
    for (let i = 0; i < this.selectorKeys.length; i++) {
      const k = this.selectorKeys[i]!;
      if (attrs[k] !== this.selectorValues[i]) {
        out.push({
          kind: 'constraint',
          constraint: 'nodeSelector',
          message: `${k}=${this.selectorValues[i]}`,
        });
      }
    }
    for (const r of this.requirements) {
      if (!requirementHolds(r, attrs)) {
        out.push({ kind: 'constraint', constraint: 'attribute', message: describeRequirement(r) });
      }
    }
    if (this.needsGpu && host.capacity.gpus === 0) {
      out.push({ kind: 'constraint', constraint: 'gpu', message: 'host has no GPUs' });
    }
    if (this.avoidGpuHosts && host.capacity.gpus > 0) {
      out.push({ kind: 'constraint', constraint: 'gpu', message: 'GPU host reserved for GPU tasks' });
    }
    if (this.groupHosts?.has(host.hostname)) {
      out.push({
        kind: 'constraint',
        constraint: 'uniqueHost',
        message: `host already runs a task of group ${this.groupId}`,
      });
    }
  }
}

/** 0..1: the weighted share of the task's preferences the host meets. */
export function softScore(soft: readonly SoftConstraint[], host: HostView): number {
  let total = 0;
  let met = 0;
  for (const s of soft) {
    const w = Math.max(s.weight, 0);
    total += w;
    if (requirementHolds(s.requirement, host.attributes)) met += w;
  }
  return total === 0 ? 0 : met / total;
}
