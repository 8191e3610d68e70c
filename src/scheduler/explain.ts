// "Why is this task still queued?": every reason per host, and the same aggregated into lines.
import type { HardConstraints } from './constraints.ts';
import type { HostSlot } from './host-index.ts';
import type {
  HostFilter,
  HostReason,
  HostView,
  ReasonSummary,
  ResourceName,
  Resources,
  Taint,
  Task,
  Unplaced,
} from './types.ts';

/** A host as reasons see it. */
export interface ExplainHost extends HostView {
  readonly freePorts: number;
}

/**
 * A host as a pass left it, kept for reasons computed later (on first read): the index's hosts
 * change with the next offers and placements. Copies what charges mutate in place.
 */
export class HostSnapshot implements ExplainHost {
  readonly hostname: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly taints: readonly Taint[] | undefined;
  readonly blockingTaints: readonly Taint[] | undefined;
  readonly free: Readonly<Resources>;
  readonly capacity: Readonly<Resources>;
  readonly freePorts: number;

  constructor(s: HostSlot) {
    this.hostname = s.hostname;
    this.attributes = s.attributes;
    this.taints = s.taints;
    this.blockingTaints = s.blockingTaints;
    const free: Resources = { ...s.free };
    if (free.scalars) free.scalars = { ...free.scalars };
    this.free = free;
    this.capacity = { ...s.capacity };
    this.freePorts = s.freePorts;
  }
}

/** One shape's reasons over the given hosts: the aggregate lines and, when asked, every host's. */
export function explainShape(
  task: Task,
  hard: HardConstraints,
  hosts: readonly ExplainHost[],
  filters: readonly HostFilter[],
  perHostList: boolean,
): { reasons: ReasonSummary[]; hosts: { hostname: string; reasons: HostReason[] }[] | undefined } {
  const perHost: HostReason[][] = [];
  const list: { hostname: string; reasons: HostReason[] }[] = [];
  for (const s of hosts) {
    let reasons: HostReason[];
    try {
      reasons = hostReasons(task, s, hard, filters);
    } catch (err) {
      reasons = [
        { kind: 'filter', filter: 'explain', message: err instanceof Error ? err.message : String(err) },
      ];
    }
    perHost.push(reasons);
    if (perHostList) list.push({ hostname: s.hostname, reasons });
  }
  return { reasons: summarizeReasons(perHost, hosts.length), hosts: perHostList ? list : undefined };
}

/**
 * Makes `reasons` (and `hosts`) of the entry read-through: computed on first read, once for all
 * entries that share `compute`. A pass leaves many tasks queued whose reasons nobody reads; each
 * costs a check of every host.
 */
export function explainLazily(
  entry: Unplaced,
  compute: () => {
    reasons: ReasonSummary[];
    hosts: { hostname: string; reasons: HostReason[] }[] | undefined;
  },
  perHostList: boolean,
): void {
  const define = (key: 'reasons' | 'hosts', read: () => unknown) => {
    Object.defineProperty(entry, key, {
      enumerable: true,
      configurable: true,
      get: read,
      set(value: unknown) {
        Object.defineProperty(entry, key, { value, enumerable: true, configurable: true, writable: true });
      },
    });
  };
  define('reasons', () => compute().reasons);
  if (perHostList) define('hosts', () => compute().hosts);
}

/** Appends one reason per resource the host lacks. */
export function resourceShortfalls(task: Task, host: ExplainHost, out: HostReason[]): void {
  const r = task.resources;
  const f = host.free;
  const short = (resource: ResourceName, requested: number, available: number) => {
    if (requested > available) out.push({ kind: 'insufficient', resource, requested, available });
  };
  short('cpus', r.cpuMillis, f.cpuMillis);
  short('memory', r.memoryBytes, f.memoryBytes);
  short('disk', r.diskBytes, f.diskBytes);
  short('gpus', r.gpus, f.gpus);
  if (r.ports) short('ports', r.ports, host.freePorts);
  if (r.scalars) for (const k in r.scalars) short(`scalar:${k}`, r.scalars[k]!, f.scalars?.[k] ?? 0);
}

/** Every reason the host cannot take the task (empty when it can). */
export function hostReasons(
  task: Task,
  host: ExplainHost,
  hard: HardConstraints,
  filters: readonly HostFilter[],
): HostReason[] {
  const out: HostReason[] = [];
  resourceShortfalls(task, host, out);
  hard.explain(host, out);
  for (const f of filters) {
    const why = f.filter(task, host);
    if (why !== undefined) out.push({ kind: 'filter', filter: f.name, message: why });
  }
  return out;
}

const BINARY_UNITS: [string, number][] = [
  ['Ti', 2 ** 40],
  ['Gi', 2 ** 30],
  ['Mi', 2 ** 20],
  ['Ki', 2 ** 10],
];

function trim(n: number): string {
  return String(Math.round(n * 100) / 100);
}

export function formatBytes(n: number): string {
  for (const [unit, size] of BINARY_UNITS) if (Math.abs(n) >= size) return `${trim(n / size)}${unit}`;
  return String(n);
}

/** An amount of a resource as a user reads it: cpus in cores, memory and disk in binary units. */
export function formatAmount(resource: ResourceName, n: number): string {
  if (resource === 'cpus') return trim(n / 1000);
  if (resource === 'memory' || resource === 'disk') return formatBytes(n);
  return String(n);
}

function resourceLabel(resource: ResourceName): string {
  return resource.startsWith('scalar:') ? resource.slice('scalar:'.length) : resource;
}

/** 5000 -> "5,000" (toLocaleString is slow enough to show in a pass with many queued tasks). */
function count(n: number): string {
  const digits = String(n);
  let out = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ',';
    out += digits[i];
  }
  return out;
}

/** Aggregates per-host reasons into one line per distinct reason, most hosts first. */
export function summarizeReasons(perHost: readonly HostReason[][], totalHosts: number): ReasonSummary[] {
  if (totalHosts === 0) {
    return [
      { key: 'no-offers', hosts: 0, totalHosts: 0, message: 'no offers: no host currently offers resources' },
    ];
  }
  const groups = new Map<string, { hosts: number; reason: HostReason; maxAvailable: number }>();
  for (const reasons of perHost) {
    for (const r of reasons) {
      const key =
        r.kind === 'insufficient'
          ? `insufficient:${r.resource}`
          : r.kind === 'constraint'
            ? `${r.constraint}:${r.message}`
            : `filter:${r.filter}:${r.message}`;
      const g = groups.get(key);
      const available = r.kind === 'insufficient' ? r.available : 0;
      if (g) {
        g.hosts++;
        if (available > g.maxAvailable) g.maxAvailable = available;
      } else groups.set(key, { hosts: 1, reason: r, maxAvailable: available });
    }
  }
  const out: ReasonSummary[] = [];
  for (const [key, g] of groups) {
    const r = g.reason;
    const of = `${count(g.hosts)} of ${count(totalHosts)} hosts`;
    let message: string;
    if (r.kind === 'insufficient') {
      const label = resourceLabel(r.resource);
      message =
        `${label}: ${of} lacked it (requested ${formatAmount(r.resource, r.requested)}, ` +
        `most free on those hosts ${formatAmount(r.resource, g.maxAvailable)})`;
    } else if (r.kind === 'constraint') {
      message =
        r.constraint === 'nodeSelector'
          ? `nodeSelector ${r.message}: ${of} did not match`
          : r.constraint === 'attribute'
            ? `attribute ${r.message}: ${of} did not match`
            : r.constraint === 'nodeAffinity'
              ? `nodeAffinity ${r.message}: ${of} did not match`
              : `${r.constraint}: ${of}: ${r.message}`;
    } else {
      message = `${r.filter}: ${of} refused: ${r.message}`;
    }
    out.push({ key, hosts: g.hosts, totalHosts, message });
  }
  return out.sort((a, b) => b.hosts - a.hosts || (a.key < b.key ? -1 : 1));
}
