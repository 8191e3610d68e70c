// The local machine as an offer source (standalone mode): one offer that is the machine's CPUs
// and memory minus what the running steps hold. Steps hold what their placement granted until
// they finish; the controller calls hold/release.
import { cpus, hostname as osHostname, totalmem } from 'node:os';
import {
  affinityHolds,
  describeAffinity,
  describeRequirement,
  requirementHolds,
} from '../scheduler/constraints.ts';
import type { TaskConstraints } from '../scheduler/types.ts';
import { emptyResources, type Offer, type ResourceRequest, type Resources } from './types.ts';

export interface LocalOfferSourceOptions {
  hostname?: string;
  /** Machine capacity; defaults to os.cpus() and os.totalmem(). */
  capacity?: Partial<Resources>;
  attributes?: Record<string, string>;
}

export class LocalOfferSource {
  readonly source = 'local' as const;
  readonly hostname: string;
  readonly capacity: Resources;
  private readonly attributes: Record<string, string>;
  private readonly held = new Map<string, ResourceRequest>();
  private readonly used: Resources = emptyResources();
  private seq = 0;

  constructor(opts: LocalOfferSourceOptions = {}) {
    this.hostname = opts.hostname ?? osHostname();
    this.capacity = {
      cpuMillis: cpus().length * 1000,
      memoryBytes: totalmem(),
      diskBytes: Number.MAX_SAFE_INTEGER,
      gpus: 0,
      ...opts.capacity,
    };
    this.attributes = {
      'kubernetes.io/hostname': this.hostname,
      'meson.dev/source': 'local',
      ...opts.attributes,
    };
  }

  /** The current offer: capacity minus held resources (never negative). */
  offers(now: number): Offer[] {
    const free: Resources = {
      cpuMillis: Math.max(0, this.capacity.cpuMillis - this.used.cpuMillis),
      memoryBytes: Math.max(0, this.capacity.memoryBytes - this.used.memoryBytes),
      diskBytes: Math.max(0, this.capacity.diskBytes - this.used.diskBytes),
      gpus: Math.max(0, this.capacity.gpus - this.used.gpus),
    };
    return [
      {
        id: `local-${++this.seq}`,
        source: 'local',
        hostname: this.hostname,
        agentId: this.hostname,
        resources: free,
        capacity: { ...this.capacity },
        attributes: { ...this.attributes },
        receivedAt: now,
      },
    ];
  }

  /**
   * Why `req` can never be placed here, whatever finishes (it asks for more than the whole
   * machine has), or undefined. The machine is all there is: such a step would queue forever.
   */
  neverFits(req: ResourceRequest, constraints?: TaskConstraints): string | undefined {
    const c = this.capacity;
    const over: string[] = [];
    if (req.cpuMillis > c.cpuMillis)
      over.push(`cpus ${req.cpuMillis / 1000} (the machine has ${c.cpuMillis / 1000})`);
    if (req.memoryBytes > c.memoryBytes)
      over.push(`memory ${gib(req.memoryBytes)} (the machine has ${gib(c.memoryBytes)})`);
    if (req.diskBytes > c.diskBytes)
      over.push(`disk ${gib(req.diskBytes)} (the machine has ${gib(c.diskBytes)})`);
    if (req.gpus > c.gpus) over.push(`gpus ${req.gpus} (the machine has ${c.gpus})`);
    for (const [name, n] of Object.entries(req.scalars ?? {}))
      if (n > 0) over.push(`${name} ${n} (the machine has none)`);
    // the machine's labels never change either: a constraint it fails now, it always fails
    const unmet: string[] = [];
    for (const [k, v] of Object.entries(constraints?.nodeSelector ?? {}))
      if (!Object.hasOwn(this.attributes, k) || this.attributes[k] !== v) unmet.push(`${k}=${v}`);
    for (const r of constraints?.attributes ?? [])
      if (!requirementHolds(r, this.attributes)) unmet.push(describeRequirement(r));
    if (constraints?.nodeAffinity && !affinityHolds(constraints.nodeAffinity, this.attributes))
      unmet.push(`node affinity ${describeAffinity(constraints.nodeAffinity)}`);
    const why = [
      ...(over.length > 0 ? [`the step asks for ${over.join(', ')}`] : []),
      ...(unmet.length > 0
        ? [
            `its constraints ask for ${unmet.join(', ')} (the machine's attributes: ${describeAttributes(this.attributes)})`,
          ]
        : []),
    ];
    return why.length > 0 ? `cannot run on this machine: ${why.join('; ')}` : undefined;
  }

  /** Records that `taskId` holds `req` (idempotent per task id: a second hold replaces the first). */
  hold(taskId: string, req: ResourceRequest): void {
    this.release(taskId);
    this.held.set(taskId, req);
    this.used.cpuMillis += req.cpuMillis;
    this.used.memoryBytes += req.memoryBytes;
    this.used.diskBytes += req.diskBytes;
    this.used.gpus += req.gpus;
  }

  /** Returns what `taskId` held; unknown ids are ignored. */
  release(taskId: string): void {
    const req = this.held.get(taskId);
    if (!req) return;
    this.held.delete(taskId);
    this.used.cpuMillis -= req.cpuMillis;
    this.used.memoryBytes -= req.memoryBytes;
    this.used.diskBytes -= req.diskBytes;
    this.used.gpus -= req.gpus;
  }

  /** Resources currently held by running steps. */
  usage(): Resources {
    return { ...this.used };
  }
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1).replace(/\.0$/, '')}Gi`;
}

function describeAttributes(a: Record<string, string>): string {
  return Object.entries(a)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}
