// Artifact triggers: a workflow's `triggers.artifacts` list fires one run per distinct set of
// announced DataArtifacts that satisfies every entry. Pure; see docs/triggers.md.

import { createHash } from 'node:crypto';
import type { DataArtifact } from '../crds/index.ts';

type PartitionValue = string | number | boolean;
export type PartitionMap = Record<string, PartitionValue>;

/** One entry of `spec.triggers.artifacts`. */
export interface ArtifactTriggerEntry {
  name: string;
  partition?: PartitionMap;
}

/** An announced artifact (DataArtifact spec fields, plus its id/time when known). */
export interface AnnouncedArtifact {
  name: string;
  partition?: PartitionMap;
  /** e.g. the DataArtifact object name; informational. */
  id?: string;
  /** Where the data lives (DataArtifact spec.location); passed on to the run's TRIGGER. */
  location?: string;
  /** Epoch ms; orders the fires (oldest complete set first). */
  announcedAt?: number;
}

export interface ArtifactTriggerFire {
  /** Stable key of the matched set: same names and partitions give the same key, whatever the order or object ids. */
  key: string;
  /** One artifact per trigger entry, in entry order. */
  artifacts: AnnouncedArtifact[];
}

export interface ArtifactTriggerOptions {
  /** Most fires returned by one call (default 100); the rest come on the next evaluation. */
  maxFires?: number;
}

/**
 * Matching: an artifact satisfies an entry when the names are equal and the artifact's partition
 * contains every key of the entry's partition with an equal value (values compare as strings;
 * a `${...}` in a trigger's partition is taken literally, as no run exists yet to evaluate it).
 *
 * Sets: one artifact per entry. Where two chosen artifacts share a partition key that neither of
 * their entries fixes (e.g. `dateint`), the values must be equal: "views and clicks of the same
 * day" fire together, not every combination of days.
 *
 * Idempotent: a set whose key is in `alreadyFiredKeys` is not returned, so re-announcing an
 * artifact (same name and partition) or re-evaluating after a restart does not fire twice.
 * Result order: by the time the set became complete (latest announcement in it), then key.
 */
export function artifactTriggerFires(
  trigger: readonly ArtifactTriggerEntry[],
  announced: readonly AnnouncedArtifact[],
  alreadyFiredKeys: ReadonlySet<string> | readonly string[],
  options: ArtifactTriggerOptions = {},
): ArtifactTriggerFire[] {
  if (trigger.length === 0) return [];
  const fired = alreadyFiredKeys instanceof Set ? alreadyFiredKeys : new Set(alreadyFiredKeys);
  const maxFires = options.maxFires ?? 100;
  const candidates = trigger.map((entry) => distinctMatches(entry, announced));
  if (candidates.some((c) => c.length === 0)) return [];

  const out: ArtifactTriggerFire[] = [];
  const chosen: AnnouncedArtifact[] = [];
  // Enumeration is bounded: collecting stops well past maxFires even if many sets were fired before.
  const budget = { remaining: Math.max(maxFires, 1) * 100 + fired.size };
  const visit = (i: number): void => {
    if (budget.remaining <= 0) return;
    if (i === trigger.length) {
      budget.remaining--;
      const key = artifactSetKey(chosen);
      if (!fired.has(key)) out.push({ key, artifacts: [...chosen] });
      return;
    }
    for (const c of candidates[i]!) {
      if (!joinsWith(trigger, chosen, i, c)) continue;
      chosen.push(c);
      visit(i + 1);
      chosen.pop();
    }
  };
  visit(0);
  out.sort((a, b) => completedAt(a) - completedAt(b) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out.slice(0, maxFires);
}

/** A DataArtifact object as trigger input (id = object name, time = status.announcedAt or creation). */
export function announcedFromDataArtifact(da: DataArtifact): AnnouncedArtifact {
  const meta = da.metadata as { name?: string; creationTimestamp?: string };
  const time = Date.parse(da.status?.announcedAt ?? meta.creationTimestamp ?? '');
  return {
    name: da.spec.name,
    partition: da.spec.partition,
    id: meta.name,
    ...(da.spec.location !== undefined ? { location: da.spec.location } : {}),
    announcedAt: Number.isFinite(time) ? time : undefined,
  };
}

export function artifactMatches(entry: ArtifactTriggerEntry, artifact: AnnouncedArtifact): boolean {
  if (artifact.name !== entry.name) return false;
  const have = artifact.partition ?? {};
  for (const [k, v] of Object.entries(entry.partition ?? {})) {
    if (!(k in have) || String(have[k]) !== String(v)) return false;
  }
  return true;
}

/** Stable identity of a set of artifacts: names and partitions (values as strings), in entry order. */
export function artifactSetKey(artifacts: readonly AnnouncedArtifact[]): string {
  const canonical = artifacts.map((a) => [a.name, canonicalPartition(a.partition)]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 32);
}

function canonicalPartition(p: PartitionMap | undefined): [string, string][] {
  return Object.entries(p ?? {})
    .map(([k, v]): [string, string] => [k, String(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Matching artifacts with duplicates (re-announcements of the same name+partition) collapsed to the earliest. */
function distinctMatches(
  entry: ArtifactTriggerEntry,
  announced: readonly AnnouncedArtifact[],
): AnnouncedArtifact[] {
  const byIdentity = new Map<string, AnnouncedArtifact>();
  for (const a of announced) {
    if (!artifactMatches(entry, a)) continue;
    const id = JSON.stringify(canonicalPartition(a.partition));
    const seen = byIdentity.get(id);
    if (!seen || (a.announcedAt ?? 0) < (seen.announcedAt ?? 0)) byIdentity.set(id, a);
  }
  return [...byIdentity.values()];
}

function joinsWith(
  trigger: readonly ArtifactTriggerEntry[],
  chosen: readonly AnnouncedArtifact[],
  j: number,
  candidate: AnnouncedArtifact,
): boolean {
  const cp = candidate.partition ?? {};
  const fixedJ = trigger[j]!.partition ?? {};
  for (let i = 0; i < chosen.length; i++) {
    const ap = chosen[i]!.partition ?? {};
    const fixedI = trigger[i]!.partition ?? {};
    for (const k of Object.keys(ap)) {
      if (!(k in cp) || k in fixedI || k in fixedJ) continue;
      if (String(ap[k]) !== String(cp[k])) return false;
    }
  }
  return true;
}

function completedAt(f: ArtifactTriggerFire): number {
  return Math.max(...f.artifacts.map((a) => a.announcedAt ?? 0));
}
