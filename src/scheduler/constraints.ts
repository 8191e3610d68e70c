// Hard and soft placement constraints: node selector, attribute requirements, required node
// affinity, taints and tolerations, GPU, unique host.
import type {
  AttributeRequirement,
  HostReason,
  HostView,
  SoftConstraint,
  Taint,
  Task,
  Toleration,
} from './types.ts';

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

/** Kubernetes' ToleratesTaint: effect and key match when set, then Exists, or Equal values. */
export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== taint.effect) return false;
  if (t.key !== undefined && t.key !== '' && t.key !== taint.key) return false;
  if (t.operator === 'Exists') return true;
  return (t.value ?? '') === (taint.value ?? '');
}

/** The first taint of `blocking` that no toleration tolerates, or undefined. */
export function untoleratedTaint(
  tolerations: readonly Toleration[],
  blocking: readonly Taint[] | undefined,
): Taint | undefined {
  if (blocking === undefined) return undefined;
  for (const taint of blocking) {
    let ok = false;
    for (const t of tolerations) {
      if (toleratesTaint(t, taint)) {
        ok = true;
        break;
      }
    }
    if (!ok) return taint;
  }
  return undefined;
}

/** `key=value:Effect`, as kubectl prints a taint. */
export function describeTaint(t: Taint): string {
  return `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`;
}

/** The taints of a host that keep tasks off it (NoSchedule, NoExecute). */
export function blockingTaintsOf(host: HostView): readonly Taint[] | undefined {
  const own = (host as { blockingTaints?: readonly Taint[] }).blockingTaints;
  if (own !== undefined || host.taints === undefined) return own;
  const b = host.taints.filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  return b.length > 0 ? b : undefined;
}

/** Whether the host satisfies every requirement of at least one term (Kubernetes nodeSelectorTerms). */
export function affinityHolds(
  terms: readonly (readonly AttributeRequirement[])[],
  attributes: Readonly<Record<string, string>>,
): boolean {
  for (const term of terms) {
    let all = true;
    for (const r of term) {
      if (!requirementHolds(r, attributes)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

export function describeAffinity(terms: readonly (readonly AttributeRequirement[])[]): string {
  if (terms.length === 0) return 'no terms (matches no host)';
  return terms.map((t) => `(${t.map(describeRequirement).join(', ')})`).join(' or ');
}

/**
 * A task's hard constraints compiled once per pass. `check` returns true when all hold; `explain`
 * lists every one that fails (for "why queued").
 */
export class HardConstraints {
  private readonly selectorKeys: string[];
  private readonly selectorValues: string[];
  private readonly requirements: AttributeRequirement[];
  private readonly affinity: AttributeRequirement[][] | undefined;
  private readonly tolerations: Toleration[];
  readonly needsGpu: boolean;
  /** GPU hosts are reserved for GPU tasks and this is not one. */
  readonly avoidGpuHosts: boolean;
  /** Hosts the task's unique-host group already occupies (shared with the pass, which grows it). */
  readonly groupHosts: Set<string> | undefined;
  readonly groupId: string | undefined;
  /** True when nothing beyond resources has to be checked. */
  readonly trivial: boolean;
  /** True when the task tolerates no taint: only untainted hosts can take it. */
  readonly toleratesNothing: boolean;
  /** True when no label constraint and no unique host apply (taints and GPUs aside). */
  readonly labelFree: boolean;

  constructor(task: Task, opts: { reserveGpuHosts: boolean; groupHosts: Set<string> | undefined }) {
    const c = task.constraints;
    const selector = c?.nodeSelector ?? {};
    this.selectorKeys = Object.keys(selector);
    this.selectorValues = this.selectorKeys.map((k) => selector[k]!);
    this.requirements = c?.attributes ?? [];
    this.affinity = c?.nodeAffinity;
    this.tolerations = c?.tolerations ?? [];
    this.needsGpu = task.resources.gpus > 0;
    this.avoidGpuHosts = opts.reserveGpuHosts && !this.needsGpu;
    this.groupHosts = c?.uniqueHost && task.groupId !== undefined ? opts.groupHosts : undefined;
    this.groupId = task.groupId;
    this.toleratesNothing = this.tolerations.length === 0;
    // Every task, constrained or not, is checked against a tainted host's taints (see
    // tolerates and hostFits). Tasks without tolerations all see the same hosts, so they stay
    // `trivial` (and share remembered bucket scans); tasks with tolerations do not.
    this.labelFree =
      this.selectorKeys.length === 0 &&
      this.requirements.length === 0 &&
      this.affinity === undefined &&
      !this.groupHosts;
    this.trivial =
      this.tolerations.length === 0 &&
      this.selectorKeys.length === 0 &&
      this.requirements.length === 0 &&
      this.affinity === undefined &&
      !this.needsGpu &&
      !this.avoidGpuHosts &&
      !this.groupHosts;
  }

  /** The label constraints as text: equal for tasks whose labels rule out the same hosts. */
  get labelKey(): string {
    this.labelText ??= JSON.stringify([
      this.selectorKeys,
      this.selectorValues,
      this.requirements,
      this.affinity,
    ]);
    return this.labelText;
  }

  private labelText: string | undefined;

  /**
   * False when no host with these label values can pass the label constraints (a necessary
   * condition: true does not mean one does). `values`: label, value, count of hosts.
   */
  mayMatch(values: ReadonlyMap<string, ReadonlyMap<string, number>>): boolean {
    return this.labelCoverage(values, undefined, Number.POSITIVE_INFINITY) !== COVER_NONE;
  }

  /**
   * What a host class's label counts say of the label constraints (unique host aside): COVER_NONE
   * when no host of it can pass them, COVER_ALL when every one does, else COVER_SOME. Exact per
   * requirement (the counts give how many hosts carry each value); a term of several
   * requirements is COVER_ALL only when each of them is, COVER_NONE when one is.
   * `totals`: hosts carrying each label (undefined: unknown, COVER_ALL is then never answered).
   */
  labelCoverage(
    values: ReadonlyMap<string, ReadonlyMap<string, number>>,
    totals: ReadonlyMap<string, number> | undefined,
    size: number,
  ): number {
    let out = COVER_ALL;
    for (let i = 0; i < this.selectorKeys.length; i++) {
      const n = values.get(this.selectorKeys[i]!)?.get(this.selectorValues[i]!) ?? 0;
      if (n === 0) return COVER_NONE;
      if (n < size) out = COVER_SOME;
    }
    for (const r of this.requirements) {
      const c = coverage(requirementPassing(r, values, totals, size), size);
      if (c === COVER_NONE) return COVER_NONE;
      if (c === COVER_SOME) out = COVER_SOME;
    }
    if (this.affinity === undefined) return out;
    let terms = COVER_NONE;
    for (const term of this.affinity) {
      let t = COVER_ALL;
      for (const r of term) {
        const c = coverage(requirementPassing(r, values, totals, size), size);
        if (c < t) t = c;
        if (t === COVER_NONE) break;
      }
      if (t > terms) terms = t;
      if (terms === COVER_ALL) break;
    }
    return Math.min(terms, out);
  }

  /**
   * At least how many of a class's `size` hosts pass the label constraints, from its label
   * counts: a host fails a conjunction only by failing one of its parts, so at least size minus
   * the failures of each part pass.
   */
  labelLowerBound(
    values: ReadonlyMap<string, ReadonlyMap<string, number>>,
    totals: ReadonlyMap<string, number>,
    size: number,
  ): number {
    let failing = 0;
    for (let i = 0; i < this.selectorKeys.length; i++) {
      failing += size - (values.get(this.selectorKeys[i]!)?.get(this.selectorValues[i]!) ?? 0);
    }
    for (const r of this.requirements) failing += size - atLeast(requirementPassing(r, values, totals, size));
    if (this.affinity !== undefined) {
      let best = 0;
      for (const term of this.affinity) {
        let termFailing = 0;
        for (const r of term) termFailing += size - atLeast(requirementPassing(r, values, totals, size));
        best = Math.max(best, size - termFailing);
      }
      failing += size - best;
    }
    return Math.max(0, size - failing);
  }

  /** True when label constraints can rule out hosts (a candidate list may be worth making). */
  get labelSelective(): boolean {
    return this.selectorKeys.length > 0 || this.requirements.length > 0 || this.affinity !== undefined;
  }

  /** Node selector, attribute requirements, required affinity and unique host (no taints, GPUs). */
  checkLabels(host: HostView): boolean {
    return this.labelsHold(host.attributes) && !this.groupHosts?.has(host.hostname);
  }

  /**
   * Per pass, by the host's label set (HostIndex.labelSetOf): 0 not known yet, 1 the labels hold,
   * 2 they do not. Set by the pass on the constraint sets it shares between tasks (labels do not
   * change within a pass); hosts of one pool and zone share a set, so each is tested once.
   */
  labelMemo: Uint8Array | undefined = undefined;

  /**
   * Per pass, by host class id: 0 not known yet, else what search decided for the class (its
   * taints, GPUs and label counts). Set by the pass on the constraint sets it makes.
   */
  classUse: Uint8Array | undefined = undefined;

  /**
   * Per pass, by host class id: 0 not known yet, else the class's label bits whose label sets
   * pass these constraints (pass.ts, passingLabelBits). Set by the pass on the sets it makes.
   */
  labelBits: Int32Array | undefined = undefined;

  labelsHold(attrs: Readonly<Record<string, string>>): boolean {
    for (let i = 0; i < this.selectorKeys.length; i++) {
      if (attrs[this.selectorKeys[i]!] !== this.selectorValues[i]) return false;
    }
    for (const r of this.requirements) if (!requirementHolds(r, attrs)) return false;
    return this.affinity === undefined || affinityHolds(this.affinity, attrs);
  }

  /** Whether the task tolerates every blocking taint of the host (hosts without any: true). */
  tolerates(blocking: readonly Taint[] | undefined): boolean {
    return blocking === undefined || untoleratedTaint(this.tolerations, blocking) === undefined;
  }

  /** The constraints that depend only on the host's labels and GPUs (not on the group's hosts). */
  checkStatic(host: HostView): boolean {
    if (!this.labelsHold(host.attributes)) return false;
    if (!this.tolerates(blockingTaintsOf(host))) return false;
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
    if (this.affinity !== undefined && !affinityHolds(this.affinity, attrs)) {
      out.push({ kind: 'constraint', constraint: 'nodeAffinity', message: describeAffinity(this.affinity) });
    }
    const blocking = blockingTaintsOf(host);
    if (blocking !== undefined) {
      for (const taint of blocking) {
        if (untoleratedTaint(this.tolerations, [taint]) !== undefined) {
          out.push({
            kind: 'constraint',
            constraint: 'taint',
            message: `untolerated taint ${describeTaint(taint)}`,
          });
        }
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

/** labelCoverage's answers, ordered (a term is as covered as its least covered requirement). */
export const COVER_NONE = 0;
export const COVER_SOME = 1;
export const COVER_ALL = 2;

/** Distinct values of a label past which Gt/Lt coverage is not counted (COVER_SOME instead). */
const MAX_COUNTED_VALUES = 64;

/** -1 (some number of hosts pass, not known how many) counts as none for a lower bound. */
function atLeast(passing: number): number {
  return Math.max(passing, 0);
}

function coverage(passing: number, size: number): number {
  return passing === 0 ? COVER_NONE : passing >= size ? COVER_ALL : COVER_SOME;
}

/**
 * How many of `size` hosts meet the requirement, from the counts of hosts per value of its label
 * (`totals`: hosts carrying the label at all; undefined when not known), or -1 when the counts
 * do not tell (then neither none nor all).
 */
function requirementPassing(
  r: AttributeRequirement,
  values: ReadonlyMap<string, ReadonlyMap<string, number>>,
  totals: ReadonlyMap<string, number> | undefined,
  size: number,
): number {
  const present = values.get(r.key);
  switch (r.operator) {
    case 'In':
    case 'NotIn': {
      let n = 0;
      if (present !== undefined) for (const v of new Set(r.values ?? [])) n += present.get(v) ?? 0;
      if (r.operator === 'In') return n;
      // Hosts without the label pass NotIn.
      return totals === undefined ? (n >= size ? 0 : -1) : size - n;
    }
    case 'Exists':
      return present === undefined ? 0 : (totals?.get(r.key) ?? -1);
    case 'DoesNotExist':
      return totals === undefined ? -1 : size - (totals.get(r.key) ?? 0);
    default: {
      // Gt, Lt: hosts without the label fail.
      if (present === undefined) return 0;
      if (present.size > MAX_COUNTED_VALUES) return -1;
      let passing = 0;
      for (const [v, n] of present) if (requirementHolds(r, { [r.key]: v })) passing += n;
      return passing;
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
