/**
 * Hosts bucketed by free CPU so that a pass visits only hosts that can hold a task's CPU, in
 * tightest-first (or loosest-first) order, instead of scoring every host for every task.
 *
 * Each host keeps its offers with what is left of each, so that placements can be charged to
 * offers exactly and Kubernetes/local remainders stay usable after a pass.
 */
import { countPorts, mergePortRanges, takePorts } from '../offer-adapter/resources.ts';
import type { Offer, PortRange, ResourceRequest, Resources, Taint } from '../offer-adapter/types.ts';
import type { BucketScan } from './bucket-scan.ts';
import type { HostView } from './types.ts';

/** CPU width of one bucket (0.1 core); hosts beyond the last bucket share it. */
const BUCKET_MILLIS = 100;
const BUCKET_COUNT = 2048;
const WORDS = BUCKET_COUNT / 32;
const NO_PORTS: number[] = [];

export class HostSlot implements HostView {
  readonly hostname: string;
  agentId: string | undefined;
  attributes: Record<string, string>;
  /** The host's taints (Kubernetes nodes), undefined when none. */
  taints: Taint[] | undefined = undefined;
  /** The NoSchedule/NoExecute ones (the ones a task must tolerate), undefined when none. */
  blockingTaints: Taint[] | undefined = undefined;
  /** Offers of the host, each with what is still free of it (copied; callers' objects untouched). */
  offers: Offer[] = [];
  /** Ids of `offers`; replaced, never mutated, so placements can share it. */
  offerIds: readonly string[] = [];
  free: Resources;
  capacity: Resources;
  /** Seeded tie-break rank: among equally fit hosts the lower rank wins. */
  readonly rank: number;
  /** The host class whose buckets hold it (same capacity and blocking taints). */
  cls: HostClass | undefined = undefined;
  bucket = -1;
  position = -1;
  /** Position in HostIndex.slots. */
  slotIndex = -1;
  freePorts = 0;
  /** Placed on during the current pass (Mesos offers of such hosts are consumed). */
  used = false;
  /** Id of the host's set of labels (shared by hosts with equal labels); -1 until asked for. */
  labelSet = -1;
  /** The host's label set's bit in its class (HostClass.labelBitOf), set as it enters the class. */
  labelBit = 0;
  /**
   * `free` and `capacity` flattened into plain number fields of this one class, kept in step by
   * the index (syncFlat): the per-host test of a search reads these without going through two
   * objects whose shapes vary with the offer. Scalars are by the index's scalar id; a missing
   * entry (undefined) means none.
   */
  freeCpu = 0;
  freeMem = 0;
  freeDisk = 0;
  freeGpus = 0;
  capCpu = 0;
  capMem = 0;
  freeScalars: number[] = [];

  constructor(hostname: string, rank: number) {
    this.hostname = hostname;
    this.rank = rank;
    this.agentId = undefined;
    this.attributes = {};
    this.free = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
    this.capacity = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  }
}

/** 32-bit FNV-1a of the hostname mixed with the seed: a rank independent of arrival order. */
export function hostRank(hostname: string, seed: number): number {
  let h = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < hostname.length; i++) {
    h ^= hostname.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

function copyResources(r: Resources): Resources {
  const out: Resources = {
    cpuMillis: r.cpuMillis,
    memoryBytes: r.memoryBytes,
    diskBytes: r.diskBytes,
    gpus: r.gpus,
  };
  if (r.ports) out.ports = r.ports.map((p) => ({ begin: p.begin, end: p.end }));
  if (r.scalars) out.scalars = { ...r.scalars };
  return out;
}

/** The host's taints: those of all its offers (deduplicated), and the blocking subset. */
function setTaints(slot: HostSlot): void {
  const seen = new Set<string>();
  const all: Taint[] = [];
  for (const o of slot.offers) {
    for (const t of o.taints ?? []) {
      const k = `${t.key}\u0000${t.value ?? ''}\u0000${t.effect}`;
      if (seen.has(k)) continue;
      seen.add(k);
      all.push(t);
    }
  }
  const blocking = all.filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  slot.taints = all.length > 0 ? all : undefined;
  slot.blockingTaints = blocking.length > 0 ? blocking : undefined;
}

/** FNV-1a of a string, continuing from h. */
function fnv(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}

/**
 * A hash of a set of labels, the same in any order (a sum over the labels of a hash of each
 * key and value pair); equal hashes are then compared label by label (sameLabels).
 */
function labelsHash(attrs: Readonly<Record<string, string>>): number {
  let sum = 0;
  for (const k in attrs) {
    // The key's hash, a separator no key contains (0xffff is not a character), then the value's.
    let h = fnv(0x811c9dc5, k);
    h = fnv(Math.imul(h ^ 0xffff, 0x01000193), attrs[k]!);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    sum = (sum + (h ^ (h >>> 12))) | 0;
  }
  return sum;
}

/** Whether two label sets hold the same labels (own keys, any order). */
function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  let n = 0;
  for (const k in b) {
    const v = a[k];
    if (v !== b[k] || v === undefined) return false;
    n++;
  }
  for (const _ in a) n--;
  return n === 0;
}

/** A blocking-taint set as text, the same for the same taints in any order. */
function taintKey(taints: readonly Taint[] | undefined): string {
  if (taints === undefined) return '';
  return taints
    .map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`)
    .sort()
    .join(',');
}

/**
 * Hosts of one class: the same capacity (CPU, memory, GPUs) and the same blocking taints, such as
 * one node pool. Each class has its own CPU buckets and bounds, so that the bounds use the class's
 * exact capacity (hosts of 8 and 64 CPUs no longer share one loose bound), and a search skips at
 * once the classes whose taints the task does not tolerate or that lack GPUs it needs. Past
 * `maxClasses`, the remaining hosts share one mixed class, whose bounds use its capacity extremes
 * and whose hosts are checked one by one (as before classes existed).
 */
export class HostClass {
  /** Creation order (a stable tie-break between classes). */
  readonly id: number;
  /** False for the mixed class: capacity and taints vary between its hosts. */
  readonly uniform: boolean;
  /** Uniform classes: the blocking taints and GPU capacity every host of the class has. */
  readonly blockingTaints: readonly Taint[] | undefined;
  readonly capGpus: number;
  size = 0;
  /**
   * How many hosts of the class carry each label value (label, value, count): lets a search skip
   * a class where no host can match a task's selector or affinity.
   */
  readonly labelValues = new Map<string, Map<string, number>>();
  /** How many hosts of the class carry each label (any value). */
  readonly labelTotals = new Map<string, number>();
  readonly buckets: HostSlot[][] = [];
  /** Bit b set when bucket b has hosts. */
  readonly nonEmpty = new Uint32Array(WORDS);
  /**
   * Lazy bounds of the memory-used fraction of the hosts in each bucket (never tightened on
   * removal, reset when the bucket empties): with the bucket's CPU range they bound the best score
   * any host of the bucket can reach, so a search can skip buckets that cannot beat what it has.
   */
  readonly bucketMaxMemUsed = new Float64Array(BUCKET_COUNT);
  /**
   * Max-tree over bucketMaxMemUsed (leaves at BUCKET_COUNT + b): the largest memory share in any
   * bucket from b up, in O(log buckets), lets a packing search stop as soon as no bucket above can
   * beat the best host found.
   */
  private readonly memTree = new Float64Array(2 * BUCKET_COUNT);
  readonly bucketMinMemUsed = new Float64Array(BUCKET_COUNT).fill(1);
  /**
   * Min-tree over bucketMinMemUsed: the smallest memory share in any bucket from b down, so that
   * a spread search (which visits buckets downwards) can stop once no bucket below can beat the
   * best host found, as packing does with memTree.
   */
  private readonly minMemTree = new Float64Array(2 * BUCKET_COUNT).fill(1);
  /**
   * Upper bounds of the free memory and free GPUs of the hosts in each bucket (-1: no host), and
   * of the free memory of its untainted hosts (what a task without tolerations can use). Raised
   * whenever a host enters or changes in the bucket, set to the exact values by a search that
   * scans the whole bucket and finds no host for its task (tighten), reset when it empties. A
   * search skips buckets where no host can hold the task's memory or GPUs, which the CPU buckets
   * alone do not see.
   */
  readonly bucketMaxFreeMem = new Float64Array(BUCKET_COUNT).fill(-1);
  readonly bucketMaxFreeMemUntainted = new Float64Array(BUCKET_COUNT).fill(-1);
  readonly bucketMaxFreeGpus = new Float64Array(BUCKET_COUNT).fill(-1);
  /**
   * Bumped whenever a host enters bucket b or changes while in it (not when one leaves): a
   * remembered scan of the bucket (bucket-scan.ts) is valid while this holds.
   */
  readonly bucketVersion = new Float64Array(BUCKET_COUNT);
  /** The remembered scans of each bucket, one per task shape (owned by the search). */
  readonly bucketScans: (BucketScan[] | undefined)[] = new Array(BUCKET_COUNT).fill(undefined);
  /**
   * The label sets of the hosts in each bucket, as bits (HostClass.labelBitOf): raised whenever a
   * host enters the bucket or changes in it, set exactly by a search that scans the whole bucket
   * (tighten), cleared when it empties. A label-constrained search skips a bucket none of whose
   * label sets pass, without looking at its hosts (a node selector on one zone skips the buckets
   * holding only other zones' hosts).
   */
  readonly bucketLabelBits = new Int32Array(BUCKET_COUNT);
  /**
   * Each label set (HostIndex.labelSetOf id) of the class's hosts, with its bit: the first 31 get
   * one bit each, the rest share OVERFLOW_LABEL_BIT, which no search can rule out. Grows only:
   * an entry of a set whose hosts have left only costs a bit, and as label-set ids are reused it
   * holds at most as many entries as there were label sets at once. A reused id keeps its bit
   * here, for the new labels (a search reads the labels of the id as they are now); bits its
   * former hosts left in buckets only make those buckets look possible.
   */
  readonly labelBitOf = new Map<number, number>();
  /** Capacity extremes over the hosts ever indexed (stale values only loosen the bounds). */
  maxCapCpu = 0;
  minCapCpu = Number.POSITIVE_INFINITY;
  maxCapMem = 0;
  minCapMem = Number.POSITIVE_INFINITY;
  /** Hosts without CPU or memory capacity score on one dimension; bounds then do not apply. */
  oneDimensionalHosts = 0;

  constructor(id: number, uniform: boolean, blockingTaints: readonly Taint[] | undefined, capGpus: number) {
    this.id = id;
    this.uniform = uniform;
    this.blockingTaints = blockingTaints;
    this.capGpus = capGpus;
  }

  /** Counts a host in (its capacity widens the extremes; stale extremes only loosen bounds). */
  enter(slot: HostSlot): void {
    this.size++;
    let bit = this.labelBitOf.get(slot.labelSet);
    if (bit === undefined) {
      bit = this.labelBitOf.size < 31 ? 1 << this.labelBitOf.size : OVERFLOW_LABEL_BIT;
      this.labelBitOf.set(slot.labelSet, bit);
    }
    slot.labelBit = bit;
    this.countLabels(slot.attributes, 1);
    const c = slot.capacity;
    if (c.cpuMillis === 0 || c.memoryBytes === 0) {
      this.oneDimensionalHosts++;
      return;
    }
    if (c.cpuMillis > this.maxCapCpu) this.maxCapCpu = c.cpuMillis;
    if (c.cpuMillis < this.minCapCpu) this.minCapCpu = c.cpuMillis;
    if (c.memoryBytes > this.maxCapMem) this.maxCapMem = c.memoryBytes;
    if (c.memoryBytes < this.minCapMem) this.minCapMem = c.memoryBytes;
  }

  /** Counts a host out (with the capacity it entered with). */
  leave(slot: HostSlot): void {
    this.size--;
    this.countLabels(slot.attributes, -1);
    const c = slot.capacity;
    if (c.cpuMillis === 0 || c.memoryBytes === 0) this.oneDimensionalHosts--;
  }

  private countLabels(attributes: Readonly<Record<string, string>>, sign: 1 | -1): void {
    for (const key in attributes) {
      const value = attributes[key]!;
      const total = (this.labelTotals.get(key) ?? 0) + sign;
      if (total > 0) this.labelTotals.set(key, total);
      else this.labelTotals.delete(key);
      let values = this.labelValues.get(key);
      if (values === undefined) {
        values = new Map();
        this.labelValues.set(key, values);
      }
      const n = (values.get(value) ?? 0) + sign;
      if (n > 0) values.set(value, n);
      else {
        values.delete(value);
        if (values.size === 0) this.labelValues.delete(key);
      }
    }
  }

  unbucket(slot: HostSlot): void {
    if (slot.bucket < 0) return;
    const list = this.buckets[slot.bucket]!;
    const last = list.pop()!;
    if (last !== slot) {
      list[slot.position] = last;
      last.position = slot.position;
    }
    if (list.length === 0) {
      this.nonEmpty[slot.bucket >>> 5]! &= ~(1 << (slot.bucket & 31));
      this.bucketMaxMemUsed[slot.bucket] = 0;
      this.setMemTree(slot.bucket, 0);
      this.bucketMinMemUsed[slot.bucket] = 1;
      this.setMinMemTree(slot.bucket, 1);
      this.bucketMaxFreeMem[slot.bucket] = -1;
      this.bucketMaxFreeMemUntainted[slot.bucket] = -1;
      this.bucketMaxFreeGpus[slot.bucket] = -1;
      this.bucketLabelBits[slot.bucket] = 0;
    }
    slot.bucket = -1;
    slot.position = -1;
  }

  rebucket(slot: HostSlot): void {
    const b = HostIndex.bucketOf(slot.free.cpuMillis);
    this.bucketVersion[b]!++;
    if (b !== slot.bucket) {
      this.unbucket(slot);
      let list = this.buckets[b];
      if (list === undefined) {
        list = [];
        this.buckets[b] = list;
      }
      slot.bucket = b;
      slot.position = list.length;
      list.push(slot);
      this.nonEmpty[b >>> 5]! |= 1 << (b & 31);
    }
    const cap = slot.capacity.memoryBytes;
    const used = cap > 0 ? 1 - slot.free.memoryBytes / cap : 0;
    if (used > this.bucketMaxMemUsed[b]!) {
      this.bucketMaxMemUsed[b] = used;
      this.setMemTree(b, used);
    }
    if (used < this.bucketMinMemUsed[b]!) {
      this.bucketMinMemUsed[b] = used;
      this.setMinMemTree(b, used);
    }
    const freeMem = slot.freeMem;
    if (freeMem > this.bucketMaxFreeMem[b]!) this.bucketMaxFreeMem[b] = freeMem;
    if (slot.blockingTaints === undefined && freeMem > this.bucketMaxFreeMemUntainted[b]!) {
      this.bucketMaxFreeMemUntainted[b] = freeMem;
    }
    if (slot.freeGpus > this.bucketMaxFreeGpus[b]!) this.bucketMaxFreeGpus[b] = slot.freeGpus;
    this.bucketLabelBits[b]! |= slot.labelBit;
  }

  /** Sets bucket b's free-resource bounds to exact values a scan of all its hosts found. */
  tighten(
    b: number,
    maxFreeMem: number,
    maxFreeMemUntainted: number,
    maxFreeGpus: number,
    labelBits: number,
  ): void {
    this.bucketLabelBits[b] = labelBits;
    this.bucketMaxFreeMem[b] = maxFreeMem;
    this.bucketMaxFreeMemUntainted[b] = maxFreeMemUntainted;
    this.bucketMaxFreeGpus[b] = maxFreeGpus;
  }

  private setMemTree(b: number, v: number): void {
    const t = this.memTree;
    let i = BUCKET_COUNT + b;
    t[i] = v;
    for (i >>= 1; i >= 1; i >>= 1) {
      const l = t[2 * i]!;
      const r = t[2 * i + 1]!;
      const m = Math.max(l, r);
      if (t[i] === m) return; // the ancestors already hold the right maxima
      t[i] = m;
    }
  }

  private setMinMemTree(b: number, v: number): void {
    const t = this.minMemTree;
    let i = BUCKET_COUNT + b;
    t[i] = v;
    for (i >>= 1; i >= 1; i >>= 1) {
      const m = Math.min(t[2 * i]!, t[2 * i + 1]!);
      if (t[i] === m) return;
      t[i] = m;
    }
  }

  /** Lower bound of the memory-used share of every host in buckets b and below. */
  minMemUsedUpTo(b: number): number {
    const t = this.minMemTree;
    let l = BUCKET_COUNT;
    let r = BUCKET_COUNT + b + 1; // exclusive
    let m = 1;
    while (l < r) {
      if (l & 1) {
        if (t[l]! < m) m = t[l]!;
        l++;
      }
      if (r & 1) {
        r--;
        if (t[r]! < m) m = t[r]!;
      }
      l >>= 1;
      r >>= 1;
    }
    return m;
  }

  /** Upper bound of the memory-used share of every host in buckets b and above. */
  maxMemUsedFrom(b: number): number {
    const t = this.memTree;
    let l = BUCKET_COUNT + b;
    let r = 2 * BUCKET_COUNT; // exclusive
    let m = 0;
    while (l < r) {
      if (l & 1) {
        if (t[l]! > m) m = t[l]!;
        l++;
      }
      if (r & 1) {
        r--;
        if (t[r]! > m) m = t[r]!;
      }
      l >>= 1;
      r >>= 1;
    }
    return m;
  }

  /** The next non-empty bucket at or above b, or -1. */
  nextBucketUp(b: number): number {
    let w = b >>> 5;
    if (w >= WORDS) return -1;
    let bits = this.nonEmpty[w]! & (~0 << (b & 31));
    while (bits === 0) {
      if (++w >= WORDS) return -1;
      bits = this.nonEmpty[w]!;
    }
    return (w << 5) + (31 - Math.clz32(bits & -bits));
  }

  /** The next non-empty bucket at or below b, or -1. */
  nextBucketDown(b: number): number {
    if (b < 0) return -1;
    let w = b >>> 5;
    const shift = 31 - (b & 31);
    let bits = shift === 0 ? this.nonEmpty[w]! : (this.nonEmpty[w]! << shift) >>> shift;
    while (bits === 0) {
      if (--w < 0) return -1;
      bits = this.nonEmpty[w]!;
    }
    return (w << 5) + (31 - Math.clz32(bits));
  }
}

/** The label bit shared by the label sets of a class past its first 31 (never ruled out). */
export const OVERFLOW_LABEL_BIT = 1 << 31;

/** Default of the HostIndex's maxClasses. */
export const MAX_HOST_CLASSES = 32;

export class HostIndex {
  readonly slots: HostSlot[] = [];
  /** Extended scalar names by id (per index, so that task-supplied names die with it). */
  private readonly scalarIds = new Map<string, number>();
  readonly byName = new Map<string, HostSlot>();
  /** Host classes in creation order; classes are kept when they empty (a pool often refills). */
  readonly classes: HostClass[] = [];
  private readonly classByKey = new Map<string, HostClass>();
  private mixed: HostClass | undefined;
  private readonly maxClasses: number;
  readonly seed: number;
  /** Hosts placed on since the last drainUsed (each once), so callers need not scan placements. */
  private usedSlots: HostSlot[] = [];
  /**
   * Label sets by a hash of their labels, with a copy of the labels and the number of hosts of
   * each id: hosts of one node pool and zone share one, so a pass tests a task's labels once per
   * set, not once per host. An id is freed with its last host and reused, so ids stay below the
   * number of hosts. Finding a host's set allocates nothing (no sorted key text).
   */
  private readonly labelSetsByHash = new Map<number, number | number[]>();
  private readonly labelSetLabels: (Readonly<Record<string, string>> | undefined)[] = [];
  private readonly labelSetHashes: number[] = [];
  private readonly labelSetHosts: number[] = [];
  private readonly freeLabelSets: number[] = [];
  /**
   * Sums of the hosts' capacity and free resources (DRF's default cluster capacity), kept in
   * step as offers come and go and placements are charged (integers: exact below 2^53).
   */
  private readonly capacityTotal: ResourceRequest = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  private readonly freeTotal: ResourceRequest = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };

  constructor(seed: number, opts: { maxClasses?: number } = {}) {
    this.seed = seed;
    this.maxClasses = Math.max(0, opts.maxClasses ?? MAX_HOST_CLASSES);
  }

  static readonly BUCKET_MILLIS = BUCKET_MILLIS;
  static readonly LAST_BUCKET = BUCKET_COUNT - 1;

  get size(): number {
    return this.byName.size;
  }

  static bucketOf(cpuMillis: number): number {
    const b = Math.floor(cpuMillis / BUCKET_MILLIS);
    return b < 0 ? 0 : b >= BUCKET_COUNT ? BUCKET_COUNT - 1 : b;
  }

  /** Sums over every host of its capacity and of what is free on it now. Read-only views. */
  totals(): { capacity: Readonly<ResourceRequest>; free: Readonly<ResourceRequest> } {
    return { capacity: this.capacityTotal, free: this.freeTotal };
  }

  /** Adds (sign 1) or takes away (sign -1) a host's capacity and free resources in the sums. */
  private tally(slot: HostSlot, sign: 1 | -1): void {
    const cap = this.capacityTotal;
    const free = this.freeTotal;
    const c = slot.capacity;
    const f = slot.free;
    cap.cpuMillis += sign * c.cpuMillis;
    cap.memoryBytes += sign * c.memoryBytes;
    cap.diskBytes += sign * c.diskBytes;
    cap.gpus += sign * c.gpus;
    free.cpuMillis += sign * f.cpuMillis;
    free.memoryBytes += sign * f.memoryBytes;
    free.diskBytes += sign * f.diskBytes;
    free.gpus += sign * f.gpus;
  }

  /** The hosts placed on since the last call, with their `used` flags cleared. */
  drainUsed(): HostSlot[] {
    const out = this.usedSlots;
    this.usedSlots = [];
    for (const s of out) s.used = false;
    return out;
  }

  /**
   * The id of the host's label set: equal for hosts with equal labels, below labelSetLimit.
   * Made when the host's labels are set (addOffer), as its label counts are: a hash of its labels
   * and a comparison with the sets of equal hash, so that a search never makes one inside a
   * decision (made lazily there, the first label-constrained tasks paid for thousands of hosts).
   */
  labelSetOf(slot: HostSlot): number {
    if (slot.labelSet >= 0) return slot.labelSet;
    const attrs = slot.attributes;
    const hash = labelsHash(attrs);
    const known = this.labelSetsByHash.get(hash);
    let id = -1;
    if (typeof known === 'number') {
      if (sameLabels(this.labelSetLabels[known]!, attrs)) id = known;
    } else if (known !== undefined) {
      for (let i = 0; i < known.length && id < 0; i++)
        if (sameLabels(this.labelSetLabels[known[i]!]!, attrs)) id = known[i]!;
    }
    if (id < 0) {
      id = this.freeLabelSets.pop() ?? this.labelSetLabels.length;
      // A copy: the host's attributes object may be the caller's offer's.
      this.labelSetLabels[id] = { ...attrs };
      this.labelSetHashes[id] = hash;
      this.labelSetHosts[id] = 0;
      if (known === undefined) this.labelSetsByHash.set(hash, id);
      else if (typeof known === 'number') this.labelSetsByHash.set(hash, [known, id]);
      else known.push(id);
    }
    this.labelSetHosts[id]!++;
    slot.labelSet = id;
    return id;
  }

  /** The labels of a label set (undefined for a freed id). */
  labelsOfSet(id: number): Readonly<Record<string, string>> | undefined {
    return this.labelSetLabels[id];
  }

  /** Every label set id is below this. */
  get labelSetLimit(): number {
    return this.labelSetLabels.length;
  }

  /** The host's labels are about to change or it leaves: it no longer counts for its set. */
  private releaseLabelSet(slot: HostSlot): void {
    const id = slot.labelSet;
    if (id < 0) return;
    slot.labelSet = -1;
    if (--this.labelSetHosts[id]! > 0) return;
    const hash = this.labelSetHashes[id]!;
    const known = this.labelSetsByHash.get(hash);
    if (typeof known === 'number') this.labelSetsByHash.delete(hash);
    else if (known !== undefined) {
      known.splice(known.indexOf(id), 1);
      if (known.length === 1) this.labelSetsByHash.set(hash, known[0]!);
    }
    this.labelSetLabels[id] = undefined;
    this.freeLabelSets.push(id);
  }

  /** Adds an offer to its host (creating the host). */
  addOffer(offer: Offer): HostSlot {
    let slot = this.byName.get(offer.hostname);
    if (slot) {
      this.tally(slot, -1);
      this.leaveClass(slot);
      this.releaseLabelSet(slot);
    }
    const own: Offer = { ...offer, resources: copyResources(offer.resources) };
    if (!slot) {
      slot = new HostSlot(offer.hostname, hostRank(offer.hostname, this.seed));
      this.byName.set(offer.hostname, slot);
      slot.slotIndex = this.slots.length;
      this.slots.push(slot);
    }
    slot.offers.push(own);
    slot.offerIds = [...slot.offerIds, own.id];
    if (offer.agentId !== undefined) slot.agentId = offer.agentId;
    slot.attributes =
      slot.offers.length === 1 ? offer.attributes : { ...slot.attributes, ...offer.attributes };
    this.labelSetOf(slot);
    if (offer.taints !== undefined || slot.taints !== undefined) setTaints(slot);
    this.recompute(slot);
    if (offer.capacity) slot.capacity = { ...copyResources(offer.capacity) };
    this.widenCapacity(slot);
    slot.capCpu = slot.capacity.cpuMillis;
    slot.capMem = slot.capacity.memoryBytes;
    this.enterClass(slot);
    this.tally(slot, 1);
    return slot;
  }

  /** Takes the host out of its class (and its buckets). */
  private leaveClass(slot: HostSlot): void {
    const cls = slot.cls;
    if (cls === undefined) return;
    cls.unbucket(slot);
    cls.leave(slot);
    slot.cls = undefined;
  }

  /** Puts the host in the class of its capacity and taints (a new one, or the mixed one past maxClasses). */
  private enterClass(slot: HostSlot): void {
    const c = slot.capacity;
    const key = `${c.cpuMillis}|${c.memoryBytes}|${c.gpus}|${taintKey(slot.blockingTaints)}`;
    let cls = this.classByKey.get(key);
    if (cls === undefined) {
      if (this.classes.length < this.maxClasses) {
        cls = new HostClass(this.classes.length, true, slot.blockingTaints, c.gpus);
        this.classByKey.set(key, cls);
        this.classes.push(cls);
      } else {
        if (this.mixed === undefined) {
          this.mixed = new HostClass(this.classes.length, false, undefined, -1);
          this.classes.push(this.mixed);
        }
        cls = this.mixed;
      }
    }
    slot.cls = cls;
    cls.enter(slot);
    cls.rebucket(slot);
  }

  /** Removes one offer; the host goes when its last offer does. Returns the offer's host. */
  removeOffer(offerId: string, hostname: string): HostSlot | undefined {
    const slot = this.byName.get(hostname);
    if (!slot) return undefined;
    const i = slot.offers.findIndex((o) => o.id === offerId);
    if (i < 0) return undefined;
    slot.offers.splice(i, 1);
    slot.offerIds = slot.offers.map((o) => o.id);
    if (slot.offers.length === 0) {
      this.removeHost(slot);
      return slot;
    }
    this.tally(slot, -1);
    this.leaveClass(slot);
    if (slot.taints !== undefined) setTaints(slot);
    this.recompute(slot);
    this.enterClass(slot);
    this.tally(slot, 1);
    return slot;
  }

  removeHost(slot: HostSlot): void {
    if (this.byName.get(slot.hostname) !== slot) return;
    this.tally(slot, -1);
    this.leaveClass(slot);
    this.releaseLabelSet(slot);
    this.byName.delete(slot.hostname);
    // Swap-remove: O(1) even when a pass consumes the offers of thousands of hosts.
    const i = slot.slotIndex;
    if (i < 0 || this.slots[i] !== slot) return;
    const last = this.slots.pop()!;
    if (last !== slot) {
      this.slots[i] = last;
      last.slotIndex = i;
    }
    slot.slotIndex = -1;
  }

  /** Free = sum of the offers' remaining resources. */
  private recompute(slot: HostSlot): void {
    const f: Resources = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
    let ports: PortRange[] | undefined;
    for (const o of slot.offers) {
      const r = o.resources;
      f.cpuMillis += r.cpuMillis;
      f.memoryBytes += r.memoryBytes;
      f.diskBytes += r.diskBytes;
      f.gpus += r.gpus;
      if (r.ports) ports = ports ? [...ports, ...r.ports] : r.ports;
      if (r.scalars) {
        f.scalars ??= {};
        for (const k in r.scalars) f.scalars[k] = (f.scalars[k] ?? 0) + r.scalars[k]!;
      }
    }
    if (ports) f.ports = slot.offers.length === 1 ? ports.map((p) => ({ ...p })) : mergePortRanges(ports);
    slot.free = f;
    slot.freePorts = countPorts(f.ports);
    this.syncFlat(slot);
  }

  /** The id of an extended scalar, or -1 when no host of this index ever offered it. */
  scalarIdOf(name: string): number {
    return this.scalarIds.get(name) ?? -1;
  }

  private syncFlat(slot: HostSlot): void {
    const f = slot.free;
    slot.freeCpu = f.cpuMillis;
    slot.freeMem = f.memoryBytes;
    slot.freeDisk = f.diskBytes;
    slot.freeGpus = f.gpus;
    const fs: number[] = [];
    if (f.scalars) {
      for (const k in f.scalars) {
        let id = this.scalarIds.get(k);
        if (id === undefined) {
          id = this.scalarIds.size;
          this.scalarIds.set(k, id);
        }
        while (fs.length < id) fs.push(0);
        fs[id] = f.scalars[k]!;
      }
    }
    slot.freeScalars = fs;
  }

  private widenCapacity(slot: HostSlot): void {
    const c = slot.capacity;
    const f = slot.free;
    if (c.cpuMillis < f.cpuMillis) c.cpuMillis = f.cpuMillis;
    if (c.memoryBytes < f.memoryBytes) c.memoryBytes = f.memoryBytes;
    if (c.diskBytes < f.diskBytes) c.diskBytes = f.diskBytes;
    if (c.gpus < f.gpus) c.gpus = f.gpus;
  }

  /**
   * Charges a placement to the host: takes the request from its offers in order and the ports
   * from their ranges. The caller has checked that the host fits.
   */
  charge(slot: HostSlot, r: ResourceRequest): number[] {
    const wantPorts = r.ports ?? 0;
    const ports = slot.offers.length === 1 ? NO_PORTS : this.chargeOffers(slot, r);
    const free = slot.free;
    free.cpuMillis -= r.cpuMillis;
    free.memoryBytes -= r.memoryBytes;
    free.diskBytes -= r.diskBytes;
    free.gpus -= r.gpus;
    slot.freeCpu = free.cpuMillis;
    slot.freeMem = free.memoryBytes;
    slot.freeDisk = free.diskBytes;
    slot.freeGpus = free.gpus;
    const t = this.freeTotal;
    t.cpuMillis -= r.cpuMillis;
    t.memoryBytes -= r.memoryBytes;
    t.diskBytes -= r.diskBytes;
    t.gpus -= r.gpus;
    let taken = ports;
    if (wantPorts > 0) {
      const took = takePorts(free.ports ?? [], wantPorts)!;
      free.ports = took.left;
      slot.freePorts -= wantPorts;
      if (slot.offers.length === 1) taken = took.taken;
    }
    if (r.scalars) {
      const fs = free.scalars ?? {};
      free.scalars = fs;
      const flat = slot.freeScalars;
      for (const k in r.scalars) {
        const left = (fs[k] ?? 0) - r.scalars[k]!;
        fs[k] = left;
        const id = this.scalarIds.get(k);
        if (id !== undefined && id < flat.length) flat[id] = left;
      }
    }
    if (slot.offers.length === 1) {
      // One offer: its remainder is the host's free resources.
      const only = slot.offers[0]!;
      only.resources = free;
    }
    if (!slot.used) {
      slot.used = true;
      this.usedSlots.push(slot);
    }
    slot.cls!.rebucket(slot);
    return taken;
  }

  /** Several offers: takes the request from them in order (remainders stay exact per offer). */
  private chargeOffers(slot: HostSlot, r: ResourceRequest): number[] {
    let ports: number[] = [];
    let cpu = r.cpuMillis;
    let mem = r.memoryBytes;
    let disk = r.diskBytes;
    let gpus = r.gpus;
    let portsLeft = r.ports ?? 0;
    const scalarsLeft = r.scalars ? { ...r.scalars } : undefined;
    for (const o of slot.offers) {
      const f = { ...o.resources };
      o.resources = f;
      const tc = Math.min(cpu, f.cpuMillis);
      f.cpuMillis -= tc;
      cpu -= tc;
      const tm = Math.min(mem, f.memoryBytes);
      f.memoryBytes -= tm;
      mem -= tm;
      const td = Math.min(disk, f.diskBytes);
      f.diskBytes -= td;
      disk -= td;
      const tg = Math.min(gpus, f.gpus);
      f.gpus -= tg;
      gpus -= tg;
      if (portsLeft > 0 && f.ports) {
        const n = Math.min(portsLeft, countPorts(f.ports));
        const took = takePorts(f.ports, n)!;
        f.ports = took.left;
        ports = ports.concat(took.taken);
        portsLeft -= n;
      }
      if (scalarsLeft && f.scalars) {
        f.scalars = { ...f.scalars };
        for (const k in scalarsLeft) {
          const t = Math.min(scalarsLeft[k]!, f.scalars[k] ?? 0);
          if (t > 0) {
            f.scalars[k]! -= t;
            scalarsLeft[k]! -= t;
          }
        }
      }
    }
    return ports.sort((a, b) => a - b);
  }
}
