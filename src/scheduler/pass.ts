/**
 * One scheduling pass over an indexed set of hosts: tasks in fair order, hard constraints and
 * resource fit, fitness with soft constraints, a good-enough early exit, and bounds that skip
 * hosts which cannot beat the best found so far. Pure: no clock, no randomness of its own.
 */

import { BucketScan, SCAN_MIN_HOSTS, SCAN_SHAPES } from './bucket-scan.ts';
import { COVER_ALL, COVER_NONE, HardConstraints, softScore } from './constraints.ts';
import { explainLazily, explainShape, formatAmount, HostSnapshot } from './explain.ts';
import { FairQueue } from './fair-queue.ts';
import { type HostClass, HostIndex, type HostSlot, OVERFLOW_LABEL_BIT } from './host-index.ts';
import { type PreemptCandidate, planPreemptions } from './preempt.ts';
import { taskProblem } from './task.ts';
import type {
  AttributeRequirement,
  ClusterState,
  Eviction,
  FitnessFunction,
  HostFilter,
  Placement,
  ReasonSummary,
  ResourceName,
  ResourceRequest,
  SchedulerOptions,
  Task,
  Unplaced,
} from './types.ts';

export interface ResolvedOptions {
  /** 0 binpack, 1 spread, 2 plugin. */
  fitnessKind: 0 | 1 | 2;
  fitnessPlugin: FitnessFunction | undefined;
  /** Infinity when off. */
  goodEnough: number;
  softWeight: number;
  filters: HostFilter[];
  seed: number;
  reserveGpuHosts: boolean;
  explainHosts: boolean;
  decisionClock: (() => number) | undefined;
}

export function resolveOptions(o: SchedulerOptions = {}): ResolvedOptions {
  const fitness = o.fitness ?? 'binpack';
  return {
    fitnessKind: fitness === 'binpack' ? 0 : fitness === 'spread' ? 1 : 2,
    fitnessPlugin: typeof fitness === 'object' ? fitness : undefined,
    goodEnough: o.goodEnough === null ? Number.POSITIVE_INFINITY : (o.goodEnough ?? 0.5),
    softWeight: Math.min(1, Math.max(0, o.softWeight ?? 0.5)),
    filters: o.filters ?? [],
    seed: o.seed ?? 1,
    reserveGpuHosts: o.gpuHosts === 'reserved',
    explainHosts: o.explainHosts ?? true,
    decisionClock: o.decisionClock,
  };
}

export interface CoreResult {
  placements: Placement[];
  /** The task of each placement, index for index (for the Scheduler's bookkeeping). */
  placedTasks: Task[];
  unplaced: Unplaced[];
  /** Running tasks to evict for tasks left queued (preemption). */
  evictions: Eviction[];
  decisionMs?: number[];
}

/** Thrown inside a pass when a plugin fails; the task's outcome becomes 'broke'. */
class PluginFailure extends Error {
  readonly plugin: string;
  constructor(plugin: string, cause: unknown) {
    super(`${plugin}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.plugin = plugin;
  }
}

const EPSILON = 1e-9;

/** Constraint sets per pass that get a per-host memo of their label test (a byte per host each). */
export const MAX_LABEL_MEMOS = 256;
/** Constraint sets per pass for which the hosts passing them are listed (a check of every host each). */
export const MAX_CANDIDATE_LISTS = 64;

/** Shared by tasks with no hard constraints (the common case), to save an allocation per task. */
export const UNCONSTRAINED = new HardConstraints(
  {
    id: '',
    tenant: '',
    priority: 0,
    submittedAt: 0,
    resources: { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 },
  },
  { reserveGpuHosts: false, groupHosts: undefined },
);

/**
 * The search's best score so far ([BEST]) and its answer's score ([FOUND]): module state (search
 * is not re-entrant), in a typed array because a module-level `let` holding a fraction allocates
 * a heap number on every store (tens of thousands per pass, each a little more garbage to collect).
 */
const scores = new Float64Array(2);
const BEST = 0;
const FOUND = 1;

/**
 * A request's extended scalars as the index's scalar ids and amounts (parallel arrays), checked
 * per host without a for-in or a lookup by name. Amounts of 0 are left out: they always fit.
 */
export interface ScalarRequest {
  ids: number[];
  amounts: number[];
  count: number;
}

const NO_SCALARS: ScalarRequest = { ids: [], amounts: [], count: 0 };

/** Reused by search (which is not re-entrant) to avoid two allocations per task. */
const SEARCH_SCALARS: ScalarRequest = { ids: [], amounts: [], count: 0 };

export function scalarRequest(r: ResourceRequest, index: HostIndex, into?: ScalarRequest): ScalarRequest {
  const scalars = r.scalars;
  if (scalars === undefined) return NO_SCALARS;
  const out = into ?? { ids: [], amounts: [], count: 0 };
  let n = 0;
  for (const k in scalars) {
    const amount = scalars[k]!;
    if (!(amount > 0)) continue;
    out.ids[n] = index.scalarIdOf(k);
    out.amounts[n] = amount;
    n++;
  }
  out.count = n;
  return out;
}

/**
 * Resource fit and hard constraints of one host (plugin filters aside): the per-host work of a
 * search, also what a score-every-host placer does for every host.
 */
export function hostFits(r: ResourceRequest, sc: ScalarRequest, s: HostSlot, hard: HardConstraints): boolean {
  return resourcesFit(r, sc, s) && constraintsHold(s, hard, CHECK_ALL);
}

/** packedShare on the slot's flattened fields: the same arithmetic, so the same scores. */
function slotPackedShare(r: ResourceRequest, s: HostSlot): number {
  const capCpu = s.capCpu;
  const capMem = s.capMem;
  let sum = 0;
  let dims = 0;
  if (capCpu > 0) {
    sum += (capCpu - s.freeCpu + r.cpuMillis) / capCpu;
    dims++;
  }
  if (capMem > 0) {
    sum += (capMem - s.freeMem + r.memoryBytes) / capMem;
    dims++;
  }
  if (dims === 0) return 0;
  const f = sum / dims;
  return f > 1 ? 1 : Math.max(f, 0);
}

function passesFilters(filters: readonly HostFilter[], task: Task, host: HostSlot): boolean {
  for (const f of filters) {
    let why: string | undefined;
    try {
      why = f.filter(task, host);
    } catch (err) {
      throw new PluginFailure(`filter ${f.name}`, err);
    }
    if (why !== undefined) return false;
  }
  return true;
}

/**
 * Upper bound of the spread score (1 - packing share) of any host of bucket b of the class, given
 * a lower bound of the memory share used in it.
 */
function spreadBound(cls: HostClass, b: number, r: ResourceRequest, minMemUsed: number): number {
  let cpu = 0;
  if (b < HostIndex.LAST_BUCKET) {
    const highFree = (b + 1) * HostIndex.BUCKET_MILLIS;
    cpu = Math.min(1, Math.max(0, 1 - (highFree - r.cpuMillis) / cls.minCapCpu));
  }
  const mem = Math.min(1, minMemUsed + r.memoryBytes / cls.maxCapMem);
  return 1 - (cpu + mem) / 2;
}

/** Upper bound of the packing score of any host of the class in bucket b or above. */
function packBoundFrom(cls: HostClass, b: number, r: ResourceRequest, memUsed: number): number {
  const lowFree = b * HostIndex.BUCKET_MILLIS;
  const c = r.cpuMillis;
  const cpu = lowFree > c ? 1 - (lowFree - c) / cls.maxCapCpu : 1;
  return (cpu + Math.min(1, memUsed + r.memoryBytes / cls.minCapMem)) / 2;
}

/** Sets bucket b's free-memory and free-GPU bounds to the exact values over its hosts. */
function tightenBucket(cls: HostClass, b: number, list: readonly HostSlot[]): void {
  let mem = -1;
  let memUntainted = -1;
  let gpus = -1;
  let labels = 0;
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!;
    const fm = s.freeMem;
    if (fm > mem) mem = fm;
    if (fm > memUntainted && s.blockingTaints === undefined) memUntainted = fm;
    if (s.freeGpus > gpus) gpus = s.freeGpus;
    labels |= s.labelBit;
  }
  cls.tighten(b, mem, memUntainted, gpus, labels);
}

/**
 * Hosts that pass a task's label constraints, per class, in the order a search visits them (by
 * bucket when the list was made; charges later in the pass may leave the order slightly stale,
 * which changes only which good-enough host comes first). Used instead of walking the buckets
 * when few hosts qualify (a rare label).
 */
export type Candidates = Map<HostClass, HostSlot[]>;

/** How a search checks a host's hard constraints beyond resources. */
const CHECK_NONE = 0; // uniform class (taints and GPUs checked once for it), no label constraints
const CHECK_LABELS = 1; // uniform class: labels and unique host
const CHECK_ALL = 2; // the mixed class: everything, per host
const CHECK_GROUP = 3; // candidates (labels, taints and GPUs passed): unique host only

/** The index being searched (module state: search is not re-entrant). */
let searchIndex: HostIndex | undefined;

/** The search's best host so far and its score (module state: search is not re-entrant). */
let best: HostSlot | undefined;
/** Classes a search may use and their bounds (reused). */
const classOrder: HostClass[] = [];
const classBound: number[] = [];
const classFirst: number[] = [];
/** Whether every host of the class passes the task's label constraints. */
const classLabels: boolean[] = [];

/** classUse's answers (0: not known yet, in HardConstraints.classUse). */
const USE_NONE = 1; // the task can use no host of the class (taints, GPUs, labels)
const USE_SOME_LABELS = 2; // labels (and unique host) checked host by host
const USE_ALL_LABELS = 3; // every host passes the label constraints (unique host aside)

/**
 * Whether the task may use hosts of the class, from the class's taints and GPUs (uniform classes)
 * and its label counts; the same for every task with these constraints, so kept per pass.
 */
function classUse(hard: HardConstraints, cls: HostClass): number {
  const memo = hard.classUse;
  if (memo !== undefined && cls.id < memo.length) {
    const v = memo[cls.id]!;
    if (v !== 0) return v;
  }
  let use: number;
  if (
    cls.uniform &&
    ((cls.blockingTaints !== undefined && !hard.tolerates(cls.blockingTaints)) ||
      (hard.needsGpu ? cls.capGpus === 0 : hard.avoidGpuHosts && cls.capGpus > 0))
  ) {
    use = USE_NONE;
  } else if (!hard.labelSelective) {
    use = USE_ALL_LABELS;
  } else {
    // No host of the class carries the labels the task needs (a node pool of another type), or
    // every one does (a selector on the pool's own instance type).
    const cover = hard.labelCoverage(cls.labelValues, cls.labelTotals, cls.size);
    use = cover === COVER_NONE ? USE_NONE : cover === COVER_ALL ? USE_ALL_LABELS : USE_SOME_LABELS;
  }
  if (memo !== undefined && cls.id < memo.length) memo[cls.id] = use;
  return use;
}

/**
 * The label bits (HostClass.labelBitOf) of the class's label sets whose labels pass the task's
 * label constraints, OVERFLOW_LABEL_BIT always: a bucket holding none of them is skipped. The
 * same for every task with these constraints, so kept per pass (labels do not change in one).
 */
function passingLabelBits(hard: HardConstraints, cls: HostClass): number {
  const memo = hard.labelBits;
  if (memo !== undefined && cls.id < memo.length) {
    const v = memo[cls.id]!;
    if (v !== 0) return v;
  }
  let bits = OVERFLOW_LABEL_BIT;
  for (const [set, bit] of cls.labelBitOf) {
    if (bit === OVERFLOW_LABEL_BIT) continue;
    // A freed set has no host left (ids are freed with their last host): its bit stays clear.
    const labels = searchIndex!.labelsOfSet(set);
    if (labels !== undefined && hard.labelsHold(labels)) bits |= bit;
  }
  if (memo !== undefined && cls.id < memo.length) memo[cls.id] = bits;
  return bits;
}

function canBoundClass(cls: HostClass, kind: number): boolean {
  return kind !== 2 && cls.oneDimensionalHosts === 0 && cls.maxCapCpu > 0;
}

/**
 * The best host for the task, or undefined. Visits the classes the task can use, the most
 * promising first (by the best score any of their hosts could reach); in each, buckets
 * tightest-first for packing (loosest first for spread). Returns at the first host scoring at
 * least goodEnough, and skips classes and buckets whose bound cannot beat the best so far (so with
 * goodEnough off the answer equals a full scan).
 */
function search(
  index: HostIndex,
  task: Task,
  hard: HardConstraints,
  o: ResolvedOptions,
  /** The weight of the task's soft constraints in its score (0 without any). */
  w: number,
  /** Hosts passing the label constraints, when few do; undefined walks the buckets. */
  cand?: Candidates,
): HostSlot | undefined {
  searchIndex = index;
  const r = task.resources;
  const sc = scalarRequest(r, index, SEARCH_SCALARS);
  const kind = o.fitnessKind;
  const start = HostIndex.bucketOf(r.cpuMillis);
  const keep = 1 - w;
  best = undefined;
  scores[BEST] = Number.NEGATIVE_INFINITY;
  let n = 0;
  const classes = index.classes;
  for (let i = 0; i < classes.length; i++) {
    const cls = classes[i]!;
    if (cls.size === 0) continue;
    const use = classUse(hard, cls);
    if (use === USE_NONE) continue;
    if (cls.uniform && cls.capGpus < r.gpus) continue;
    if (cand !== undefined && !cand.has(cls)) continue;
    const first = kind === 1 ? cls.nextBucketDown(HostIndex.LAST_BUCKET) : cls.nextBucketUp(start);
    if (first < start) continue; // also -1: no host with the CPU
    // The bound orders and prunes classes; with one class (a homogeneous cluster) it is not needed.
    let bound = Number.POSITIVE_INFINITY;
    if (classes.length > 1 && canBoundClass(cls, kind)) {
      bound =
        kind === 1
          ? spreadBound(cls, first, r, cls.minMemUsedUpTo(first))
          : packBoundFrom(cls, first, r, cls.maxMemUsedFrom(first));
    }
    // Insertion by bound, highest first (few classes); equal bounds keep creation order.
    let j = n++;
    while (j > 0 && classBound[j - 1]! < bound) {
      classOrder[j] = classOrder[j - 1]!;
      classBound[j] = classBound[j - 1]!;
      classFirst[j] = classFirst[j - 1]!;
      classLabels[j] = classLabels[j - 1]!;
      j--;
    }
    classOrder[j] = cls;
    classBound[j] = bound;
    classFirst[j] = first;
    classLabels[j] = use === USE_ALL_LABELS;
  }
  for (let i = 0; i < n; i++) {
    // Classes come in falling bound order: once one cannot beat the best, none after it can.
    if (best !== undefined && keep * classBound[i]! + w + EPSILON < scores[BEST]) break;
    const cls = classOrder[i]!;
    const list = cand?.get(cls);
    const hit =
      list !== undefined
        ? scanList(list, task, hard, o, sc, w, CHECK_GROUP)
        : searchClass(cls, classFirst[i]!, start, task, hard, o, sc, w, classLabels[i]!);
    // A good-enough host ends this class's scan, not the search: a later class may still hold a
    // better host (its bound says whether it can), and taking the first good-enough host of the
    // first class would pack one class while better-shaped ones wait.
    if (
      hit !== undefined &&
      (scores[FOUND] > scores[BEST] || (scores[FOUND] === scores[BEST] && hit.rank < best!.rank))
    ) {
      best = hit;
      scores[BEST] = scores[FOUND];
    }
  }
  scores[FOUND] = scores[BEST];
  return best;
}

/**
 * Scores one host that fits (fitness, plugin, soft constraints) and keeps it if it beats the
 * best. Returns true when it scores at least goodEnough (scores[FOUND] is then its score).
 */
function consider(
  s: HostSlot,
  task: Task,
  o: ResolvedOptions,
  w: number,
  scan: BucketScan | undefined,
): boolean {
  const kind = o.fitnessKind;
  const r = task.resources;
  let score: number;
  if (kind === 0) score = slotPackedShare(r, s);
  else if (kind === 1) score = 1 - slotPackedShare(r, s);
  else {
    const plugin = o.fitnessPlugin!;
    try {
      score = plugin.fitness(task, s);
    } catch (err) {
      throw new PluginFailure(`fitness ${plugin.name}`, err);
    }
    score = Number.isFinite(score) ? Math.min(1, Math.max(0, score)) : 0;
  }
  if (w > 0) score = (1 - w) * score + w * softScore(task.constraints!.soft!, s);
  if (score >= o.goodEnough) {
    if (scan) scan.version = -1; // met a good-enough host: the list is incomplete
    scores[FOUND] = score;
    return true;
  }
  scan?.offer(s, score);
  if (score > scores[BEST] || (score === scores[BEST] && s.rank < best!.rank)) {
    best = s;
    scores[BEST] = score;
  }
  return false;
}

/** Resources of one host (ports and scalars included), without constraints. */
function resourcesFit(r: ResourceRequest, sc: ScalarRequest, s: HostSlot): boolean {
  if (
    s.freeCpu < r.cpuMillis ||
    s.freeMem < r.memoryBytes ||
    s.freeDisk < r.diskBytes ||
    s.freeGpus < r.gpus
  ) {
    return false;
  }
  if (r.ports !== undefined && r.ports > 0 && s.freePorts < r.ports) return false;
  if (sc.count > 0) {
    const fs = s.freeScalars;
    for (let i = 0; i < sc.count; i++) {
      const id = sc.ids[i]!;
      if (id < 0 || id >= fs.length || fs[id]! < sc.amounts[i]!) return false;
    }
  }
  return true;
}

function constraintsHold(s: HostSlot, hard: HardConstraints, check: number): boolean {
  if (check === CHECK_NONE) return true;
  if (check === CHECK_LABELS) {
    const memo = hard.labelMemo;
    if (memo === undefined) return hard.checkLabels(s);
    const set = s.labelSet >= 0 ? s.labelSet : searchIndex!.labelSetOf(s);
    if (set >= memo.length) return hard.checkLabels(s);
    let v = memo[set]!;
    if (v === 0) {
      v = hard.labelsHold(s.attributes) ? 1 : 2;
      memo[set] = v;
    }
    return v === 1 && (hard.groupHosts === undefined || !hard.groupHosts.has(s.hostname));
  }
  if (check === CHECK_GROUP) return hard.groupHosts === undefined || !hard.groupHosts.has(s.hostname);
  return (
    (s.blockingTaints === undefined || hard.tolerates(s.blockingTaints)) && (hard.trivial || hard.check(s))
  );
}

/** The bucket's remembered scan for this shape at this version, if any. */
function findScan(
  scans: readonly BucketScan[],
  version: number,
  kind: number,
  ge: number,
  r: ResourceRequest,
  sc: ScalarRequest,
  labels: string,
): BucketScan | undefined {
  for (let i = 0; i < scans.length; i++)
    if (scans[i]!.matches(version, kind, ge, r, sc, labels)) return scans[i];
  return undefined;
}

/** A scan to reuse for a new shape: an outdated one, a new one, or the least recently made. */
function spareScan(scans: BucketScan[], version: number): BucketScan {
  let oldest: BucketScan | undefined;
  for (let i = 0; i < scans.length; i++) {
    const x = scans[i]!;
    if (x.version !== version) return x;
    if (oldest === undefined || x.stamp < oldest.stamp) oldest = x;
  }
  if (scans.length < SCAN_SHAPES) {
    const fresh = new BucketScan();
    scans.push(fresh);
    return fresh;
  }
  return oldest!;
}

/**
 * Index in the scan of the best listed host still in bucket b that passes the task's constraints,
 * or -1. Hosts that fail stay listed (they are the best for other tasks).
 */
function firstPassing(scan: BucketScan, b: number, hard: HardConstraints, check: number): number {
  const hosts = scan.hosts;
  for (let i = scan.head; i < scan.length; i++) {
    const s = hosts[i]!;
    if (s.bucket !== b) {
      if (i === scan.head) scan.head++;
      continue;
    }
    if (constraintsHold(s, hard, check)) return i;
  }
  return -1;
}

/** Resources, constraints and plugin filters of one host. */
function usable(
  s: HostSlot,
  task: Task,
  hard: HardConstraints,
  o: ResolvedOptions,
  sc: ScalarRequest,
  check: number,
): boolean {
  return (
    resourcesFit(task.resources, sc, s) &&
    constraintsHold(s, hard, check) &&
    (o.filters.length === 0 || passesFilters(o.filters, task, s))
  );
}

/** A linear scan of candidate hosts of one class (no bucket bounds: their order may be stale). */
function scanList(
  list: readonly HostSlot[],
  task: Task,
  hard: HardConstraints,
  o: ResolvedOptions,
  sc: ScalarRequest,
  w: number,
  check: number,
): HostSlot | undefined {
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!;
    if (usable(s, task, hard, o, sc, check) && consider(s, task, o, w, undefined)) return s;
  }
  return undefined;
}

/** The buckets of one class, as search describes; returns a good-enough host or undefined. */
function searchClass(
  cls: HostClass,
  first: number,
  start: number,
  task: Task,
  hard: HardConstraints,
  o: ResolvedOptions,
  sc: ScalarRequest,
  w: number,
  /** Every host of the class passes the task's label constraints (class label counts). */
  labelsHold: boolean,
): HostSlot | undefined {
  const r = task.resources;
  const c = r.cpuMillis;
  const ge = o.goodEnough;
  const kind = o.fitnessKind;
  const filters = o.filters;
  const descending = kind === 1;
  const canBound = canBoundClass(cls, kind);
  const keep = 1 - w;
  const check = !cls.uniform
    ? CHECK_ALL
    : !labelsHold
      ? CHECK_LABELS
      : hard.groupHosts === undefined
        ? CHECK_NONE
        : CHECK_GROUP;
  // Scans of big buckets are remembered for tasks whose fit and score depend on nothing but the
  // host and the request (see bucket-scan.ts): in a uniform class, taints and GPUs are the
  // class's, so tolerating and GPU tasks qualify too.
  // Label constraints are part of the scan's key (labels only change with a host's offers, which
  // bumps the bucket's version); unique hosts are not (the group's hosts change within a pass).
  const remember =
    (cls.uniform ? hard.groupHosts === undefined : hard.trivial) &&
    w === 0 &&
    filters.length === 0 &&
    kind !== 2;
  // Where every host passes the labels, the task fits where a task without them fits.
  const labels = remember && !labelsHold ? hard.labelKey : '';
  const mem = r.memoryBytes;
  const gpus = r.gpus;
  const maxFreeMem = hard.toleratesNothing ? cls.bucketMaxFreeMemUntainted : cls.bucketMaxFreeMem;
  const maxFreeGpus = cls.bucketMaxFreeGpus;
  // Where hosts are checked for labels: the label sets that can pass (-1: no label check).
  const labelBits = check === CHECK_LABELS ? passingLabelBits(hard, cls) : -1;
  const bucketLabels = cls.bucketLabelBits;
  // Bounds (packing): a host with at least F millicores free scores at most
  // (1 - (F - c) / maxCapCpu + memUsed + m / minCapMem) / 2. Both parts only fall as buckets
  // rise (the memory part taken as the largest share in any bucket from here up), so once that
  // bound drops below the best host found, no bucket above can beat it: stop.
  const invMaxCap = 1 / cls.maxCapCpu;
  const memAdd = mem / cls.minCapMem;
  let b = first;
  while (b >= start) {
    // No host of the bucket has the memory or GPUs (bounds never below the truth), or the labels:
    // skip it.
    if (
      maxFreeMem[b]! < mem ||
      maxFreeGpus[b]! < gpus ||
      (labelBits !== -1 && (bucketLabels[b]! & labelBits) === 0)
    ) {
      b = descending ? cls.nextBucketDown(b - 1) : cls.nextBucketUp(b + 1);
      continue;
    }
    if (canBound && best !== undefined) {
      let bound: number;
      if (descending) {
        bound = spreadBound(cls, b, r, cls.bucketMinMemUsed[b]!);
        // Early stop, as for packing: buckets are visited downwards, so the CPU part of the bound
        // only falls; with the smallest memory share of any bucket from here down, once that
        // bound is below the best host found, no bucket below can beat it.
        if (keep * bound + w + EPSILON < scores[BEST]) {
          const below = spreadBound(cls, b, r, cls.minMemUsedUpTo(b));
          if (keep * below + w + EPSILON < scores[BEST]) break;
        }
      } else {
        const lowFree = b * HostIndex.BUCKET_MILLIS;
        const cpu = lowFree > c ? 1 - (lowFree - c) * invMaxCap : 1;
        bound = (cpu + Math.min(1, cls.bucketMaxMemUsed[b]! + memAdd)) / 2;
        if (keep * bound + w + EPSILON < scores[BEST]) {
          const above = (cpu + Math.min(1, cls.maxMemUsedFrom(b) + memAdd)) / 2;
          if (keep * above + w + EPSILON < scores[BEST]) break;
        }
      }
      if (keep * bound + w + EPSILON < scores[BEST]) {
        b = descending ? cls.nextBucketDown(b - 1) : cls.nextBucketUp(b + 1);
        continue;
      }
    }
    const list = cls.buckets[b]!;
    // A remembered scan of this bucket for this shape gives the bucket's best host at once;
    // otherwise the scan below is remembered (when the task qualifies and the bucket is big).
    let scan: BucketScan | undefined;
    if (remember && list.length >= SCAN_MIN_HOSTS) {
      let scans = cls.bucketScans[b];
      if (scans === undefined) {
        scans = [];
        cls.bucketScans[b] = scans;
      }
      const version = cls.bucketVersion[b]!;
      scan = findScan(scans, version, kind, ge, r, sc, labels);
      let s = scan?.firstIn(b);
      let score = s !== undefined ? scan!.headScore() : 0;
      // A complete scan used up: no host of the bucket fits (see bucket-scan.ts).
      let none = s === undefined && scan?.complete === true;
      if (s === undefined && !none && labels !== '') {
        // The scan of a task of the same resources without label constraints ranks every host
        // that fits; the first of its hosts that passes this task's labels is this task's best.
        const plain = findScan(scans, version, kind, ge, r, sc, '');
        const i = plain === undefined ? -1 : firstPassing(plain, b, hard, check);
        if (i >= 0) {
          s = plain!.hosts[i]!;
          score = plain!.scores[i]!;
        } else if (plain?.complete) {
          none = true; // every host that fits is listed there, and none passes the labels
        }
      }
      if (s !== undefined) {
        if (score > scores[BEST] || (score === scores[BEST] && s.rank < best!.rank)) {
          best = s;
          scores[BEST] = score;
        }
      }
      if (s !== undefined || none) {
        b = descending ? cls.nextBucketDown(b - 1) : cls.nextBucketUp(b + 1);
        continue;
      }
      scan ??= spareScan(scans, version);
      scan.reset(version, kind, ge, r, sc, labels);
    }
    let fits = 0;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (!resourcesFit(r, sc, s) || !constraintsHold(s, hard, check)) continue;
      fits++;
      if (filters.length > 0 && !passesFilters(filters, task, s)) continue;
      if (consider(s, task, o, w, scan)) return s;
    }
    scan?.finish();
    // A whole bucket where nothing fit: learn its exact free-resource bounds, so that later tasks
    // skip it if it lacks what they need. (Only then: the per-host bookkeeping would slow down
    // every scan that does find hosts.)
    if (fits === 0) tightenBucket(cls, b, list);
    b = descending ? cls.nextBucketDown(b - 1) : cls.nextBucketUp(b + 1);
  }
  return undefined;
}

/**
 * A task's cache keys, built once per task: tasks are immutable once handed to the scheduler
 * (documented), and a queued task is tried pass after pass. One lookup per decision finds them
 * all, and the strings, kept, hash once (a key built afresh for each lookup hashed it each time).
 */
interface TaskKeys {
  /** constraintKey. */
  readonly constraints: string;
  /** GPU need and constraints: tasks with equal keys share a pass's HardConstraints. */
  readonly hard: string;
  /** shapeKey's text, made on first need. */
  shape: string | undefined;
  /** Shared by the tasks of equal `hard` keys: what a pass makes for them. */
  readonly set: ConstraintSet;
  /**
   * The task's constraints, as flags read on every decision: its `constraints` objects come in
   * as many shapes as there are kinds of constraint, so reading their fields there was a slow
   * (megamorphic) lookup each. `free`: no selector, requirements, affinity, tolerations or
   * unique host (resources and GPUs alone decide); `unique`: a unique host in a group; `soft`:
   * soft constraints.
   */
  readonly free: boolean;
  readonly unique: boolean;
  readonly soft: boolean;
}

/**
 * What the tasks of equal constraints (and GPU need) share within a pass: their compiled
 * constraints and candidate list, found through the tasks' keys instead of a map lookup by key
 * per decision (two of them, each a cache miss in a big pass). Valid for the pass numbered
 * `pass` only.
 */
class ConstraintSet {
  pass = 0;
  hard: HardConstraints | undefined = undefined;
  /** eligibleHosts' answer: undefined not made yet, null made and not kept. */
  eligible: Candidates | null | undefined = undefined;
}

/** One ConstraintSet per interned `hard` key (emptied with the interned keys). */
const constraintSets = new Map<string, ConstraintSet>();

/** ConstraintSets kept (for tests of the bound). */
export function constraintSetCount(): number {
  return constraintSets.size;
}

/** ConstraintSets holding what a pass made (for tests: none once the pass is over). */
export function constraintSetsHoldingPassData(): number {
  let n = 0;
  for (const set of constraintSets.values()) if (set.hard !== undefined || set.eligible !== undefined) n++;
  return n;
}

/** Numbers the passes, so that a ConstraintSet knows whether its fields are this pass's. */
let passes = 0;

function constraintSetOf(hardKey: string): ConstraintSet {
  let set = constraintSets.get(hardKey);
  if (set === undefined) {
    set = new ConstraintSet();
    // Keys too long to intern are not kept: each of their tasks gets a set of its own.
    if (interned.get(hardKey) === hardKey) constraintSets.set(hardKey, set);
  }
  return set;
}

const taskKeys = new WeakMap<Task, TaskKeys>();

/**
 * One string object per distinct key, so that the per-pass maps find a key by identity instead of
 * comparing its text with another task's equal copy (a constraint key runs to hundreds of
 * characters). Bounded, as tasks choose their constraints: past MAX_INTERNED_CHARS it starts
 * afresh; keys made before still equal later ones, only found by comparing text.
 */
const interned = new Map<string, string>();
let internedChars = 0;
export const MAX_INTERNED_CHARS = 1 << 22;

/** Characters of the interned keys (for tests of the bound). */
export function internedKeyChars(): number {
  return internedChars;
}

function intern(key: string): string {
  if (key.length > MAX_INTERNED_CHARS >> 6) return key; // rare giants: compared by text
  const known = interned.get(key);
  if (known !== undefined) return known;
  if (internedChars + key.length > MAX_INTERNED_CHARS) {
    interned.clear();
    constraintSets.clear();
    internedChars = 0;
  }
  interned.set(key, key);
  internedChars += key.length;
  return key;
}

function keysOf(task: Task): TaskKeys {
  let keys = taskKeys.get(task);
  if (keys === undefined) {
    const constraints = computeConstraintKey(task);
    const hard = intern(`${task.resources.gpus > 0 ? 'gpu' : ''}|${constraints}`);
    const c = task.constraints;
    const unique = c?.uniqueHost === true && task.groupId !== undefined;
    keys = {
      constraints,
      hard,
      shape: undefined,
      set: constraintSetOf(hard),
      free: !c?.nodeSelector && !c?.attributes && !c?.nodeAffinity && !c?.tolerations && !unique,
      unique,
      soft: (c?.soft?.length ?? 0) > 0,
    };
    taskKeys.set(task, keys);
  }
  return keys;
}

function canonicalRequirement(r: AttributeRequirement): unknown[] {
  const values =
    r.operator === 'In' || r.operator === 'NotIn' ? [...new Set(r.values ?? [])].sort() : r.values;
  return [r.key, r.operator, values];
}

/**
 * The task's label constraints and tolerations as text, '' when it has none: tasks with equal
 * keys are refused by the same hosts' labels and taints. Cached per task.
 */
export function constraintKey(task: Task): string {
  return keysOf(task).constraints;
}

function computeConstraintKey(task: Task): string {
  const c = task.constraints;
  // Written in a canonical order (selector keys, In/NotIn values sorted), so that equal
  // constraints written differently share caches and remembered scans.
  return c && (c.nodeSelector || c.attributes || c.nodeAffinity || c.tolerations)
    ? JSON.stringify([
        c.nodeSelector &&
          Object.keys(c.nodeSelector)
            .sort()
            .map((k) => [k, c.nodeSelector![k]]),
        c.attributes?.map(canonicalRequirement),
        c.nodeAffinity?.map((term) => term.map(canonicalRequirement)),
        c.tolerations,
      ])
    : '';
}

/** Tasks with the same key fit the same hosts; once one fails in a pass, the rest fail too. */
function shapeKey(task: Task, keys: TaskKeys, byIdentity: boolean): string {
  let key = keys.shape;
  if (key === undefined) {
    const r = task.resources;
    key = `${r.cpuMillis}|${r.memoryBytes}|${r.diskBytes}|${r.gpus}|${r.ports ?? 0}`;
    if (r.scalars) key += `|${JSON.stringify(r.scalars)}`;
    if (keys.constraints !== '') key += `|${keys.constraints}`;
    if (task.constraints?.uniqueHost) key += `|group:${task.groupId}`;
    key = intern(key);
    keys.shape = key;
  }
  return byIdentity ? `${key}|id:${task.id}` : key;
}

/** DRF capacity: given, or everything offered plus everything running. */
function clusterCapacity(index: HostIndex, state: ClusterState): ResourceRequest {
  if (state.capacity) return state.capacity;
  const { capacity: cap, free: f } = index.totals();
  const free = { cpuMillis: f.cpuMillis, memoryBytes: f.memoryBytes, diskBytes: f.diskBytes, gpus: f.gpus };
  for (const u of Object.values(state.usage ?? {})) {
    free.cpuMillis += u.cpuMillis;
    free.memoryBytes += u.memoryBytes;
    free.diskBytes += u.diskBytes;
    free.gpus += u.gpus;
  }
  return {
    cpuMillis: Math.max(cap.cpuMillis, free.cpuMillis),
    memoryBytes: Math.max(cap.memoryBytes, free.memoryBytes),
    diskBytes: Math.max(cap.diskBytes, free.diskBytes),
    gpus: Math.max(cap.gpus, free.gpus),
  };
}

const QUOTA_DIMENSIONS: [keyof ResourceRequest & string, ResourceName][] = [
  ['cpuMillis', 'cpus'],
  ['memoryBytes', 'memory'],
  ['diskBytes', 'disk'],
  ['gpus', 'gpus'],
];

function quotaReasons(
  task: Task,
  used: ResourceRequest,
  state: ClusterState,
  totalHosts: number,
): ReasonSummary[] {
  const quota = state.quotas?.[task.tenant];
  if (!quota) return [];
  const out: ReasonSummary[] = [];
  for (const [field, name] of QUOTA_DIMENSIONS) {
    const limit = quota[field];
    if (typeof limit !== 'number') continue;
    const want = (used[field] as number) + (task.resources[field] as number);
    if (want > limit) {
      out.push({
        key: `quota:${name}`,
        hosts: 0,
        totalHosts,
        message:
          `quota: tenant ${task.tenant} would use ${formatAmount(name, want)} ${name}, ` +
          `over its quota of ${formatAmount(name, limit)} (${formatAmount(name, used[field] as number)} in use)`,
      });
    }
  }
  return out;
}

interface FailedShape {
  task: Task;
  hard: HardConstraints;
  entries: Unplaced[];
}

/**
 * Runs one pass. Mutates the index (charges placements to hosts); the caller owns it.
 * Contract: every task ends in exactly one of placements or unplaced.
 */
export function runPass(
  index: HostIndex,
  tasks: readonly Task[],
  state: ClusterState,
  o: ResolvedOptions,
  /** The tasks were validated on entry and their ids are unique (the Scheduler's queue). */
  trusted = false,
): CoreResult {
  const placements: Placement[] = [];
  const placedTasks: Task[] = [];
  const unplaced: Unplaced[] = [];
  const clock = o.decisionClock;
  const decisionMs: number[] | undefined = clock ? [] : undefined;
  const totalHosts = index.size;

  const valid: Task[] = trusted ? (tasks as Task[]) : [];
  const seen = new Set<string>();
  // Indexed: this loop runs once per pass, mostly before it is optimised, and a for-of then
  // allocates an iterator result per task.
  for (let i = 0; i < (trusted ? 0 : tasks.length); i++) {
    const t = tasks[i]!;
    const problem = taskProblem(t);
    if (problem || seen.has(t.id)) {
      const message = problem ?? `task ${t.id}: id appears twice in one pass`;
      unplaced.push({
        taskId: typeof t?.id === 'string' ? t.id : '',
        outcome: 'broke',
        reasons: [{ key: 'invalid', hosts: 0, totalHosts, message }],
        error: { code: problem ? 'SCHEDULER_TASK_INVALID' : 'SCHEDULER_TASK_DUPLICATE', message },
      });
      continue;
    }
    seen.add(t.id);
    valid.push(t);
  }

  const groupHosts = new Map<string, Set<string>>();
  for (const [g, hosts] of Object.entries(state.groupHosts ?? {})) groupHosts.set(g, new Set(hosts));
  const groupSet = (g: string) => {
    let s = groupHosts.get(g);
    if (!s) {
      s = new Set();
      groupHosts.set(g, s);
    }
    return s;
  };

  const queue = new FairQueue(valid, {
    usage: state.usage ?? {},
    weights: state.weights ?? {},
    capacity: clusterCapacity(index, state),
  });
  const failed = new Map<string, FailedShape>();
  const byIdentity = o.filters.length > 0 || o.fitnessKind === 2;
  const hasQuotas = state.quotas !== undefined;
  // Tasks left does-not-fit, in queue order, when preemption may find room for them.
  const preemptable: PreemptCandidate[] | undefined =
    state.preemption?.namespaces !== undefined && (state.running?.length ?? 0) > 0 ? [] : undefined;

  const pass = ++passes;
  // The sets this pass has filled, emptied when it ends: what they hold is sized by the index
  // (a label memo of a byte per host, candidate lists of hosts) and is of no use to a later pass.
  const filled: ConstraintSet[] = [];
  /** The task's ConstraintSet, its fields made this pass's. */
  const setOf = (keys: TaskKeys): ConstraintSet => {
    const set = keys.set;
    if (set.pass !== pass) {
      set.pass = pass;
      set.hard = undefined;
      set.eligible = undefined;
      filled.push(set);
    }
    return set;
  };
  let memos = 0;
  const classCount = index.classes.length;
  /** For a task that is not unconstrained. */
  const hardConstraintsOf = (task: Task, keys: TaskKeys): HardConstraints => {
    if (keys.unique) {
      const own = new HardConstraints(task, {
        reserveGpuHosts: o.reserveGpuHosts,
        groupHosts: groupSet(task.groupId!),
      });
      own.classUse = new Uint8Array(classCount);
      own.labelBits = new Int32Array(classCount);
      return own;
    }
    // The same for every task with these constraints (and GPU need) in this pass.
    const set = setOf(keys);
    let hard = set.hard;
    if (hard === undefined) {
      hard = new HardConstraints(task, { reserveGpuHosts: o.reserveGpuHosts, groupHosts: undefined });
      hard.classUse = new Uint8Array(classCount);
      hard.labelBits = new Int32Array(classCount);
      // A byte per host per constraint set: bounded, as tasks choose their constraints.
      if (!hard.labelFree && memos < MAX_LABEL_MEMOS) {
        hard.labelMemo = new Uint8Array(Math.max(index.slots.length, index.labelSetLimit));
        memos++;
      }
      set.hard = hard;
    }
    return hard;
  };
  // Per pass (labels and hosts do not change within one): hosts passing each constraint set, by
  // class in visiting order, kept only when at most 1 in 8 of the hosts a search would walk
  // qualify, where a short list beats walking the buckets.
  // In the task's ConstraintSet; null: made, not kept.
  let sweeps = 0;
  const eligibleHosts = (keys: TaskKeys, hard: HardConstraints): Candidates | undefined => {
    const set = setOf(keys);
    const known = set.eligible;
    if (known !== undefined) return known ?? undefined;
    // Compared with the hosts of the classes the search would walk anyway (those that may match
    // and whose taints the task tolerates): a label every host of a node pool has is not rare.
    // When the classes' label counts already show that more pass, no host is checked.
    let walked = 0;
    let passing = 0;
    for (const cls of index.classes) {
      if (classUse(hard, cls) === USE_NONE) continue;
      walked += cls.size;
      if (cls.uniform) passing += hard.labelLowerBound(cls.labelValues, cls.labelTotals, cls.size);
    }
    if (passing * 8 > walked) {
      set.eligible = null;
      return undefined;
    }
    // Each list costs a check of every host: past MAX_CANDIDATE_LISTS constraint sets in a pass
    // (tasks choose their constraints), the search walks the buckets instead.
    if (sweeps >= MAX_CANDIDATE_LISTS) return undefined;
    sweeps++;
    const hosts = index.slots.filter((s) => hard.checkStatic(s));
    let kept: Candidates | undefined;
    if (hosts.length * 8 <= walked) {
      const down = o.fitnessKind === 1;
      hosts.sort((a, b) => (down ? b.bucket - a.bucket : a.bucket - b.bucket) || a.position - b.position);
      kept = new Map();
      for (const s of hosts) {
        const list = kept.get(s.cls!);
        if (list) list.push(s);
        else kept.set(s.cls!, [s]);
      }
    }
    set.eligible = kept ?? null;
    return kept;
  };
  const decide = (task: Task): void => {
    if (hasQuotas) {
      const over = quotaReasons(task, queue.usageOf(task.tenant), state, totalHosts);
      if (over.length > 0) {
        unplaced.push({ taskId: task.id, outcome: 'over-quota', reasons: over });
        return;
      }
    }
    // Until something fails there is nothing to look up, so the shape key is not even built; a
    // task without constraints needs no keys until then (B2 never looks them up).
    let keys = task.constraints === undefined ? undefined : keysOf(task);
    // Nothing but resources decides where the task may go (the common case).
    const free = (keys === undefined || keys.free) && task.resources.gpus === 0 && !o.reserveGpuHosts;
    if (keys === undefined && (!free || failed.size > 0)) keys = keysOf(task);
    let key = failed.size > 0 ? shapeKey(task, keys!, byIdentity) : undefined;
    const known = key === undefined ? undefined : failed.get(key);
    if (known) {
      const entry: Unplaced = { taskId: task.id, outcome: 'does-not-fit', reasons: [] };
      known.entries.push(entry);
      unplaced.push(entry);
      preemptable?.push({ task, hard: known.hard, entry });
      return;
    }
    const hard = free ? UNCONSTRAINED : hardConstraintsOf(task, keys!);
    let slot: HostSlot | undefined;
    try {
      const w = keys?.soft ? o.softWeight : 0;
      slot = search(index, task, hard, o, w, hard.labelSelective ? eligibleHosts(keys!, hard) : undefined);
    } catch (err) {
      if (!(err instanceof PluginFailure)) throw err;
      unplaced.push({
        taskId: task.id,
        outcome: 'broke',
        reasons: [{ key: 'plugin', hosts: 0, totalHosts, message: err.message }],
        error: { code: 'SCHEDULER_PLUGIN_FAILED', message: err.message },
      });
      return;
    }
    if (!slot) {
      key ??= shapeKey(task, keys ?? keysOf(task), byIdentity);
      const entry: Unplaced = { taskId: task.id, outcome: 'does-not-fit', reasons: [] };
      failed.set(key, { task, hard, entries: [entry] });
      unplaced.push(entry);
      preemptable?.push({ task, hard, entry });
      return;
    }
    const score = scores[FOUND];
    const ports = index.charge(slot, task.resources);
    const placement: Placement = {
      taskId: task.id,
      hostname: slot.hostname,
      offerIds: slot.offerIds as string[],
      resources: task.resources,
      ports,
      score,
    };
    if (slot.agentId !== undefined) placement.agentId = slot.agentId;
    placements.push(placement);
    placedTasks.push(task);
    queue.charge(task);
    if (task.groupId !== undefined) groupSet(task.groupId).add(slot.hostname);
  };
  for (let task = queue.next(); task !== undefined; task = queue.next()) {
    const t0 = clock ? clock() : 0;
    decide(task);
    if (clock) decisionMs!.push(clock() - t0);
  }

  const evictions = preemptable ? planPreemptions(index, preemptable, state, o.filters) : [];

  // "Why queued", against the hosts as the pass leaves them, once per failed shape, computed
  // when first read (most are not).
  if (failed.size > 0) {
    const snapshot = index.slots.map((s) => new HostSnapshot(s));
    for (const shape of failed.values()) {
      let done: ReturnType<typeof explainShape> | undefined;
      const compute = () => {
        done ??= explainShape(shape.task, shape.hard, snapshot, o.filters, o.explainHosts);
        return done;
      };
      for (const e of shape.entries) explainLazily(e, compute, o.explainHosts);
    }
  }

  for (const set of filled) {
    set.hard = undefined;
    set.eligible = undefined;
  }

  const out: CoreResult = { placements, placedTasks, unplaced, evictions };
  if (decisionMs) out.decisionMs = decisionMs;
  return out;
}
