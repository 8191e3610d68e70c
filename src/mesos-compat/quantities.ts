/**
 * Exact resource arithmetic in Mesos' own units, for the master-compatible endpoint: scalars in
 * integer thousandths (Mesos keeps 3 decimals) and port ranges. Host capacity converts DOWN to
 * these units and task requests UP, so an accepted offer can never exceed what the host has.
 */
import { MESOS_MB } from '../offer-adapter/mesos.ts';
import { mergePortRanges } from '../offer-adapter/resources.ts';
import type { PortRange, Resources } from '../offer-adapter/types.ts';
import type { Resource } from './schemas.ts';

export interface Quantities {
  /** name -> amount in thousandths (cpus 1.5 = 1500; mem in thousandths of a MB). */
  scalars: Map<string, number>;
  ports: PortRange[];
}

export function emptyQuantities(): Quantities {
  return { scalars: new Map(), ports: [] };
}

/** Bytes to thousandths of a Mesos MB, rounded down (capacity must not grow in conversion). */
function bytesToMilliMbFloor(bytes: number): number {
  return Number((BigInt(Math.max(0, Math.floor(bytes))) * 1000n) / BigInt(MESOS_MB));
}

/** A host's free capacity (the project's offer model) in Mesos units, rounded down. */
export function quantitiesFromCapacity(r: Resources): Quantities {
  const q = emptyQuantities();
  const put = (name: string, v: number) => {
    if (v > 0) q.scalars.set(name, v);
  };
  put('cpus', Math.floor(r.cpuMillis));
  put('mem', bytesToMilliMbFloor(r.memoryBytes));
  put('disk', bytesToMilliMbFloor(r.diskBytes));
  put('gpus', Math.floor(r.gpus) * 1000);
  for (const [k, v] of Object.entries(r.scalars ?? {})) put(k, Math.floor(v * 1000));
  q.ports = mergePortRanges(r.ports ?? []);
  return q;
}

/**
 * Mesos resources (of a task) as quantities. A scalar's thousandths are rounded UP, so a task
 * asking for 0.0001 cpus counts as 0.001. SET resources are ignored (nothing here offers any).
 */
export function quantitiesFromResources(list: readonly Resource[]): Quantities {
  const q = emptyQuantities();
  for (const r of list) {
    if (r.type === 'SCALAR') {
      const v = Math.ceil((r.scalar?.value ?? 0) * 1000 - 1e-6);
      if (v > 0) q.scalars.set(r.name, (q.scalars.get(r.name) ?? 0) + v);
    } else if (r.type === 'RANGES' && r.name === 'ports') {
      q.ports = mergePortRanges([
        ...q.ports,
        ...(r.ranges?.range ?? []).map((x) => ({ begin: x.begin, end: x.end })),
      ]);
    }
  }
  return q;
}

export function addQuantities(a: Quantities, b: Quantities): Quantities {
  const scalars = new Map(a.scalars);
  for (const [k, v] of b.scalars) scalars.set(k, (scalars.get(k) ?? 0) + v);
  return { scalars, ports: mergePortRanges([...a.ports, ...b.ports]) };
}

/** a − b, clamped at zero (callers check `fits` first when exactness matters). */
export function subtractQuantities(a: Quantities, b: Quantities): Quantities {
  const scalars = new Map<string, number>();
  for (const [k, v] of a.scalars) {
    const left = v - (b.scalars.get(k) ?? 0);
    if (left > 0) scalars.set(k, left);
  }
  return { scalars, ports: subtractRanges(a.ports, b.ports) };
}

/** Whether `need` fits in `have`: every scalar, and every port inside a free range. */
export function fits(need: Quantities, have: Quantities): boolean {
  for (const [k, v] of need.scalars) if (v > (have.scalars.get(k) ?? 0)) return false;
  return subtractRanges(need.ports, have.ports).length === 0;
}

export function isEmpty(q: Quantities): boolean {
  return q.scalars.size === 0 && q.ports.length === 0;
}

/** Quantities as Mesos JSON resources (role `*`). */
export function quantitiesToResources(q: Quantities): Resource[] {
  const out: Resource[] = [];
  for (const [name, v] of [...q.scalars].sort(([a], [b]) => a.localeCompare(b))) {
    out.push({ name, type: 'SCALAR', scalar: { value: v / 1000 }, role: '*' });
  }
  if (q.ports.length > 0) {
    out.push({ name: 'ports', type: 'RANGES', ranges: { range: q.ports.map((p) => ({ ...p })) }, role: '*' });
  }
  return out;
}

/** Ranges of `a` not covered by `b`. */
export function subtractRanges(a: PortRange[], b: PortRange[]): PortRange[] {
  let out = mergePortRanges(a);
  for (const cut of mergePortRanges(b)) {
    const next: PortRange[] = [];
    for (const r of out) {
      if (cut.end < r.begin || cut.begin > r.end) {
        next.push(r);
        continue;
      }
      if (cut.begin > r.begin) next.push({ begin: r.begin, end: cut.begin - 1 });
      if (cut.end < r.end) next.push({ begin: cut.end + 1, end: r.end });
    }
    out = next;
  }
  return out;
}
