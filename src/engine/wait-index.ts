// An index of instances waiting for artifacts. A selector matches an artifact when the names
// are equal and the selector's partition is contained in the artifact's, so an artifact with
// partition keys K can only match selectors whose key set is a subset of K: the index looks up
// name + every subset of the artifact's partition (2^|K| exact lookups) instead of scanning
// every waiter of that name. Artifacts with many keys fall back to the scan.
import type { ArtifactRecord, ArtifactSelector } from './types.ts';

/** Above this many partition keys, enumerating subsets costs more than a scan. */
const MAX_SUBSET_KEYS = 8;

function signature(name: string, entries: [string, string][]): string {
  let sig = name;
  for (const [k, v] of entries) sig += `\u0000${k}\u0001${v}`;
  return sig;
}

function sortedEntries(partition: Record<string, unknown>): [string, string][] {
  return Object.keys(partition)
    .sort()
    .map((k) => [k, String(partition[k])]);
}

export class WaitIndex<W> {
  private readonly bySignature = new Map<string, Set<W>>();
  private readonly byName = new Map<string, Set<W>>();

  add(waiter: W, selectors: readonly ArtifactSelector[]): void {
    for (const s of selectors) {
      addTo(this.bySignature, signature(s.name, sortedEntries(s.partition)), waiter);
      addTo(this.byName, s.name, waiter);
    }
  }

  remove(waiter: W, selectors: readonly ArtifactSelector[]): void {
    for (const s of selectors) {
      removeFrom(this.bySignature, signature(s.name, sortedEntries(s.partition)), waiter);
      removeFrom(this.byName, s.name, waiter);
    }
  }

  /** Every waiter with a selector that may match `artifact` (a superset of the matches). */
  candidates(artifact: ArtifactRecord): Set<W> {
    const entries = sortedEntries(artifact.partition ?? {});
    if (entries.length > MAX_SUBSET_KEYS) return new Set(this.byName.get(artifact.name) ?? []);
    const out = new Set<W>();
    const subsets = 1 << entries.length;
    for (let mask = 0; mask < subsets; mask++) {
      const picked = entries.filter((_, i) => (mask & (1 << i)) !== 0);
      const set = this.bySignature.get(signature(artifact.name, picked));
      if (set) for (const w of set) out.add(w);
    }
    return out;
  }
}

function addTo<W>(map: Map<string, Set<W>>, key: string, w: W): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(w);
}

function removeFrom<W>(map: Map<string, Set<W>>, key: string, w: W): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(w);
  if (set.size === 0) map.delete(key);
}
