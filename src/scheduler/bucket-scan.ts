/**
 * Remembered scans of one bucket, so that a run of tasks of one shape does not rescan the same
 * bucket for each task.
 *
 * Without good-enough hits, a search must score every host of a bucket to find its best (and,
 * among equal scores, the lowest rank). When a bucket holds hundreds of hosts in the same state
 * (freshly added nodes, nodes running the same number of pods), each of a foreach's tasks would
 * scan them all again only to take the next host. A scan therefore keeps the best SCAN_KEEP
 * hosts, in the order (score descending, rank ascending) a full scan would rank them.
 *
 * Exactness: the list stays valid while the bucket only loses hosts. Every host entering the
 * bucket, and every change to a host that stays in it, bumps the bucket's version
 * (HostIndex.rebucket) and so discards the list. A host's score depends only on its own state and
 * the task's shape, so while the version holds, the first listed host still in the bucket is
 * what a full scan would pick; when none is left, the bucket is scanned again.
 *
 * A scan that went through the whole bucket and kept every host that fits is complete: while the
 * version holds, once its hosts have all left the bucket no host in the bucket fits the shape, and
 * the bucket is skipped instead of scanned again (a bucket of hosts whose labels a constrained
 * task's do not match would otherwise be rescanned by each such task).
 *
 * Only for tasks whose fit and score depend on the host and the resource request alone:
 * built-in fitness, no soft constraints, no hard constraints, no plugin filters. A scan that
 * meets a good-enough host returns it at once and records nothing; a recorded scan met none, and
 * as hosts only leave, none appears later.
 */
import type { ResourceRequest } from '../offer-adapter/types.ts';
import type { HostSlot } from './host-index.ts';
import type { ScalarRequest } from './pass.ts';

/** How many of a bucket's best hosts a scan keeps. */
export const SCAN_KEEP = 32;
/**
 * Scans a bucket keeps, one per task shape (resources and label constraints): tasks of many
 * shapes interleave (B3: 1 to 8 cores times a dozen selectors and affinities), and a scan
 * replaced before its shape comes back costs a rescan of the whole bucket. Only buckets of
 * SCAN_MIN_HOSTS or more hosts keep any.
 */
export const SCAN_SHAPES = 128;
/** Smaller buckets are cheap to rescan and are not remembered. */
export const SCAN_MIN_HOSTS = 16;

let resets = 0;

export class BucketScan {
  /** The bucket version the list was made at. */
  version = -1;
  /** When it was last reset (the least recent is replaced first). */
  stamp = 0;
  /** The task's label constraints (HardConstraints.labelKey): they decide which hosts qualify. */
  labels = '';
  kind = -1;
  goodEnough = 0;
  cpu = 0;
  mem = 0;
  disk = 0;
  gpus = 0;
  ports = 0;
  scalarIds: number[] = [];
  scalarAmounts: number[] = [];
  scalarCount = 0;
  /** Best first; `head` skips entries already seen to have left the bucket. */
  readonly hosts: HostSlot[] = [];
  readonly scores: number[] = [];
  length = 0;
  head = 0;
  /** Hosts offered since the reset (kept or not). */
  offered = 0;
  /**
   * Set when the scan went through the whole bucket and kept every host that fits (no more than
   * SCAN_KEEP did): once the listed hosts have all left the bucket, no host in it fits.
   */
  complete = false;

  /** Whether this scan was made for a task of this shape at this bucket version. */
  matches(
    version: number,
    kind: number,
    goodEnough: number,
    r: ResourceRequest,
    sc: ScalarRequest,
    labels: string,
  ): boolean {
    // The label texts last: equally long ones (zones of one letter) are compared character by
    // character, the numbers rule most scans out first.
    if (
      this.version !== version ||
      this.cpu !== r.cpuMillis ||
      this.mem !== r.memoryBytes ||
      this.kind !== kind ||
      this.goodEnough !== goodEnough ||
      this.disk !== r.diskBytes ||
      this.gpus !== r.gpus ||
      this.ports !== (r.ports ?? 0) ||
      this.scalarCount !== sc.count ||
      this.labels !== labels
    ) {
      return false;
    }
    for (let i = 0; i < sc.count; i++) {
      if (this.scalarIds[i] !== sc.ids[i] || this.scalarAmounts[i] !== sc.amounts[i]) return false;
    }
    return true;
  }

  /** Starts a new list for a task of this shape (the arrays are reused). */
  reset(
    version: number,
    kind: number,
    goodEnough: number,
    r: ResourceRequest,
    sc: ScalarRequest,
    labels: string,
  ): void {
    this.labels = labels;
    this.version = version;
    this.stamp = ++resets;
    this.kind = kind;
    this.goodEnough = goodEnough;
    this.cpu = r.cpuMillis;
    this.mem = r.memoryBytes;
    this.disk = r.diskBytes;
    this.gpus = r.gpus;
    this.ports = r.ports ?? 0;
    for (let i = 0; i < sc.count; i++) {
      this.scalarIds[i] = sc.ids[i]!;
      this.scalarAmounts[i] = sc.amounts[i]!;
    }
    this.scalarCount = sc.count;
    this.length = 0;
    this.head = 0;
    this.offered = 0;
    this.complete = false;
  }

  /** The bucket has been scanned to its end (no good-enough host met). */
  finish(): void {
    this.complete = this.offered <= SCAN_KEEP;
  }

  /** Offers a host that fits; kept if among the SCAN_KEEP best so far. */
  offer(host: HostSlot, score: number): void {
    this.offered++;
    let n = this.length;
    if (n === SCAN_KEEP) {
      const last = n - 1;
      if (!ranksBefore(score, host.rank, this.scores[last]!, this.hosts[last]!.rank)) return;
      n = last;
    } else {
      this.length = n + 1;
    }
    // Insertion from the end; equal (score, rank) keeps bucket order, as a scan's strict test does.
    let i = n;
    while (i > 0 && ranksBefore(score, host.rank, this.scores[i - 1]!, this.hosts[i - 1]!.rank)) {
      this.hosts[i] = this.hosts[i - 1]!;
      this.scores[i] = this.scores[i - 1]!;
      i--;
    }
    this.hosts[i] = host;
    this.scores[i] = score;
  }

  /** The best listed host still in bucket b, or undefined when the list is used up. */
  firstIn(b: number): HostSlot | undefined {
    while (this.head < this.length) {
      const s = this.hosts[this.head]!;
      if (s.bucket === b) return s;
      this.head++;
    }
    return undefined;
  }

  /** The score of the host firstIn returned. */
  headScore(): number {
    return this.scores[this.head]!;
  }
}

function ranksBefore(score: number, rank: number, otherScore: number, otherRank: number): boolean {
  return score > otherScore || (score === otherScore && rank < otherRank);
}
