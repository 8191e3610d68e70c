// Exact integer arithmetic on Resources and port ranges.
import type { PortRange, ResourceRequest, Resources } from './types.ts';

export function addResources(a: Resources, b: Resources): Resources {
  const out: Resources = {
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryBytes: a.memoryBytes + b.memoryBytes,
    diskBytes: a.diskBytes + b.diskBytes,
    gpus: a.gpus + b.gpus,
  };
  if (a.ports || b.ports) out.ports = mergePortRanges([...(a.ports ?? []), ...(b.ports ?? [])]);
  if (a.scalars || b.scalars) out.scalars = combineScalars(a.scalars, b.scalars, 1);
  return out;
}

/** a minus what a request (or another Resources without ports) takes; ports are left to the caller. */
export function subtractRequest(a: Resources, r: ResourceRequest | Resources): Resources {
  const out: Resources = {
    cpuMillis: a.cpuMillis - r.cpuMillis,
    memoryBytes: a.memoryBytes - r.memoryBytes,
    diskBytes: a.diskBytes - r.diskBytes,
    gpus: a.gpus - r.gpus,
  };
  if (a.ports) out.ports = a.ports.map((p) => ({ ...p }));
  if (a.scalars || r.scalars) out.scalars = combineScalars(a.scalars, r.scalars, -1);
  return out;
}

export function addRequests(a: ResourceRequest, b: ResourceRequest, sign = 1): ResourceRequest {
  const out: ResourceRequest = {
    cpuMillis: a.cpuMillis + sign * b.cpuMillis,
    memoryBytes: a.memoryBytes + sign * b.memoryBytes,
    diskBytes: a.diskBytes + sign * b.diskBytes,
    gpus: a.gpus + sign * b.gpus,
  };
  const ports = (a.ports ?? 0) + sign * (b.ports ?? 0);
  if (ports !== 0) out.ports = ports;
  if (a.scalars || b.scalars) out.scalars = combineScalars(a.scalars, b.scalars, sign);
  return out;
}

function combineScalars(
  a: Record<string, number> | undefined,
  b: Record<string, number> | undefined,
  sign: number,
): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = (out[k] ?? 0) + sign * v;
  return out;
}

/** Sorted, non-overlapping, adjacent ranges joined. */
export function mergePortRanges(ranges: PortRange[]): PortRange[] {
  const sorted = ranges.filter((r) => r.end >= r.begin).sort((x, y) => x.begin - y.begin);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.begin <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push({ begin: r.begin, end: r.end });
  }
  return out;
}

export function countPorts(ranges: readonly PortRange[] | undefined): number {
  let n = 0;
  for (const r of ranges ?? []) n += r.end - r.begin + 1;
  return n;
}

/** Takes the `count` lowest ports; returns the ports taken and the ranges left. */
export function takePorts(
  ranges: readonly PortRange[],
  count: number,
): { taken: number[]; left: PortRange[] } | undefined {
  if (countPorts(ranges) < count) return undefined;
  const taken: number[] = [];
  const left: PortRange[] = [];
  for (const r of ranges) {
    let begin = r.begin;
    while (taken.length < count && begin <= r.end) taken.push(begin++);
    if (begin <= r.end) left.push({ begin, end: r.end });
  }
  return { taken, left };
}

/** Ports as ranges (for a launch's resources). */
export function portsToRanges(ports: readonly number[]): PortRange[] {
  return mergePortRanges(ports.map((p) => ({ begin: p, end: p })));
}
