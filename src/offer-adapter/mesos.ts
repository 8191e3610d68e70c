/**
 * Mesos v1 resources, attributes and offers (JSON shapes of the v1 scheduler API) to and from the
 * offer model. Mesos scalars keep 3 decimals; `mem` and `disk` are in MB, where Mesos' MB is
 * 2^20 bytes (its Bytes::MEGABYTES), so `mem: 1024` is exactly Kubernetes' `1Gi`.
 */
import { mergePortRanges } from './resources.ts';
import type { Offer, PortRange, ResourceRequest, Resources } from './types.ts';

export const MESOS_MB = 1024 * 1024;

export interface MesosRange {
  begin: number | string;
  end: number | string;
}

export interface MesosResource {
  name: string;
  type: 'SCALAR' | 'RANGES' | 'SET';
  scalar?: { value: number };
  ranges?: { range: MesosRange[] };
  set?: { item: string[] };
  role?: string;
  reservations?: unknown[];
  [extra: string]: unknown;
}

export interface MesosAttribute {
  name: string;
  type: 'SCALAR' | 'RANGES' | 'SET' | 'TEXT';
  scalar?: { value: number };
  ranges?: { range: MesosRange[] };
  set?: { item: string[] };
  text?: { value: string };
}

export interface MesosOffer {
  id: { value: string };
  framework_id?: { value: string };
  agent_id: { value: string };
  hostname: string;
  resources?: MesosResource[];
  attributes?: MesosAttribute[];
  [extra: string]: unknown;
}

/** Mesos keeps 3 decimals of a scalar; so do we, in integer thousandths. */
function thousandths(v: number): number {
  return Math.round(v * 1000);
}

function megabytesToBytes(mb: number): number {
  // thousandths of a MB times 2^20 / 1000 = 2^17 / 125: exact in integers, rounded once.
  return Math.round((thousandths(mb) * 131_072) / 125);
}

/**
 * Bytes to MB with 3 decimals, rounded up so that a task never gets less than it asked for. A
 * byte count read from Mesos was rounded to the nearest byte, so it stands for [bytes - 0.5,
 * bytes + 0.5): rounding up from its lower end gives the Mesos value back exactly.
 */
export function bytesToMegabytes(bytes: number): number {
  if (bytes <= 0) return 0;
  // bigint: bytes * 250 leaves the safe-integer range above ~32 TiB.
  const n = (2n * BigInt(bytes) - 1n) * 125n;
  const q = n / 262_144n + (n % 262_144n === 0n ? 0n : 1n);
  return Number(q) / 1000;
}

function toRanges(r: { range: MesosRange[] } | undefined): PortRange[] {
  return (r?.range ?? []).map((x) => ({ begin: Number(x.begin), end: Number(x.end) }));
}

/**
 * Sums Mesos resources by name (entries reserved for different roles add up). `ports` become
 * port ranges; other scalars go to `scalars`; SET resources are ignored (nothing schedules on them).
 */
export function resourcesFromMesos(list: readonly MesosResource[]): Resources {
  const out: Resources = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  let ports: PortRange[] | undefined;
  for (const r of list) {
    if (r.type === 'RANGES') {
      if (r.name === 'ports') ports = [...(ports ?? []), ...toRanges(r.ranges)];
      continue;
    }
    if (r.type !== 'SCALAR') continue;
    const v = r.scalar?.value ?? 0;
    switch (r.name) {
      case 'cpus':
        out.cpuMillis += thousandths(v);
        break;
      case 'mem':
        out.memoryBytes += megabytesToBytes(v);
        break;
      case 'disk':
        out.diskBytes += megabytesToBytes(v);
        break;
      case 'gpus':
        out.gpus += Math.round(v);
        break;
      default:
        out.scalars ??= {};
        out.scalars[r.name] = (thousandths(out.scalars[r.name] ?? 0) + thousandths(v)) / 1000;
    }
  }
  if (ports) out.ports = mergePortRanges(ports);
  return out;
}

function scalar(name: string, value: number, role: string | undefined): MesosResource {
  const r: MesosResource = { name, type: 'SCALAR', scalar: { value } };
  if (role !== undefined) r.role = role;
  return r;
}

/**
 * Resources (of a task, or what is left of an offer) as Mesos resources. Zero amounts are left
 * out, as Mesos rejects zero scalars in a TaskInfo. `assignedPorts` are the ports a placement took.
 */
export function resourcesToMesos(
  r: Resources | ResourceRequest,
  opts: { role?: string; assignedPorts?: readonly number[] } = {},
): MesosResource[] {
  const out: MesosResource[] = [];
  if (r.cpuMillis > 0) out.push(scalar('cpus', r.cpuMillis / 1000, opts.role));
  if (r.memoryBytes > 0) out.push(scalar('mem', bytesToMegabytes(r.memoryBytes), opts.role));
  if (r.diskBytes > 0) out.push(scalar('disk', bytesToMegabytes(r.diskBytes), opts.role));
  if (r.gpus > 0) out.push(scalar('gpus', r.gpus, opts.role));
  for (const [name, v] of Object.entries(r.scalars ?? {})) if (v > 0) out.push(scalar(name, v, opts.role));
  const ranges = opts.assignedPorts
    ? mergePortRanges(opts.assignedPorts.map((p) => ({ begin: p, end: p })))
    : Array.isArray(r.ports)
      ? r.ports
      : [];
  if (ranges.length > 0) {
    const res: MesosResource = {
      name: 'ports',
      type: 'RANGES',
      ranges: { range: ranges.map((p) => ({ ...p })) },
    };
    if (opts.role !== undefined) res.role = opts.role;
    out.push(res);
  }
  return out;
}

function rangesText(r: { range: MesosRange[] } | undefined): string {
  return `[${toRanges(r)
    .map((x) => `${x.begin}-${x.end}`)
    .join(', ')}]`;
}

/** Attributes flattened to text the way Mesos prints them: `rack:r1`, `[1-10, 20-30]`, `{a,b}`. */
export function attributesFromMesos(list: readonly MesosAttribute[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list ?? []) {
    switch (a.type) {
      case 'TEXT':
        out[a.name] = a.text?.value ?? '';
        break;
      case 'SCALAR':
        out[a.name] = String(a.scalar?.value ?? 0);
        break;
      case 'RANGES':
        out[a.name] = rangesText(a.ranges);
        break;
      case 'SET':
        out[a.name] = `{${(a.set?.item ?? []).join(',')}}`;
        break;
    }
  }
  return out;
}

/** A Mesos offer as an Offer; `ttlMs` sets the expiry after which it is declined if unused. */
export function offerFromMesos(o: MesosOffer, opts: { receivedAt: number; ttlMs?: number }): Offer {
  const offer: Offer = {
    id: o.id.value,
    source: 'mesos',
    hostname: o.hostname,
    agentId: o.agent_id.value,
    resources: resourcesFromMesos(o.resources ?? []),
    attributes: attributesFromMesos(o.attributes),
    receivedAt: opts.receivedAt,
  };
  if (opts.ttlMs !== undefined) offer.expiresAt = opts.receivedAt + opts.ttlMs;
  return offer;
}
