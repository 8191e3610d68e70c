/**
 * Several offer sources (local + Mesos, Kubernetes + Mesos) as the controller's one offer stream.
 *
 * Each offer keeps its `source`; hosts of every member but the first are named
 * `<prefix><hostname>` (default prefix `<source>/`, e.g. `mesos/agent-7`), so that two members'
 * hosts never merge into one placement target and the controller's `record.node` tells which
 * member a placement belongs to (`memberOf`). The routing launcher (src/launchers/routing.ts)
 * uses that to launch, adopt and kill on the member's launcher.
 *
 * The controller calls `hold(taskId, req)` before it records where the task was placed, so a hold
 * waits here until the routing launcher `bind`s the task to its node (at launch or adoption);
 * the member then holds it on its own host name.
 */
import type { OfferSource } from '../controller/controller.ts';
import type { TaskConstraints } from '../scheduler/types.ts';
import type { Offer, ResourceRequest } from './types.ts';

export interface CompositeMember {
  source: OfferSource;
  /** Host name prefix of this member's offers; default '' for the first member, `<source>/` after. */
  prefix?: string;
}

export class CompositeOfferSource implements OfferSource {
  readonly source: OfferSource['source'];
  readonly hostname: string;
  private readonly members: { source: OfferSource; prefix: string }[];
  /** Holds waiting for their node (see the file comment). */
  private readonly pending = new Map<string, { req: ResourceRequest }>();
  /** taskId -> the member holding it. */
  private readonly bound = new Map<string, number>();

  constructor(members: CompositeMember[]) {
    if (members.length === 0) throw new Error('a composite offer source needs at least one member');
    this.members = members.map((m, i) => ({
      source: m.source,
      prefix: m.prefix ?? (i === 0 ? '' : `${m.source.source}/`),
    }));
    const prefixes = new Set<string>();
    for (const m of this.members) {
      if (prefixes.has(m.prefix))
        throw new Error(`two members of a composite offer source share the host prefix "${m.prefix}"`);
      prefixes.add(m.prefix);
    }
    const first = this.members[0]!.source;
    this.source = first.source;
    this.hostname = first.hostname;
  }

  offers(now: number): Offer[] {
    const out: Offer[] = [];
    for (const m of this.members) {
      for (const o of m.source.offers(now)) {
        // a host of this member whose name starts like another member's prefix would be routed there
        if (this.memberIndex(m.prefix + o.hostname) !== this.members.indexOf(m)) continue;
        out.push(m.prefix === '' ? o : { ...o, hostname: m.prefix + o.hostname });
      }
    }
    return out;
  }

  /**
   * The member a (prefixed) host name belongs to, and the host's own name there. The longest
   * matching prefix wins, so `''` (the first member's default) only takes what no other prefix does.
   */
  memberOf(node: string | undefined): { index: number; source: OfferSource; host: string } {
    const index = this.memberIndex(node ?? this.hostname);
    const m = this.members[index]!;
    return { index, source: m.source, host: (node ?? this.hostname).slice(m.prefix.length) };
  }

  /** The source of a node's member (a step on `mesos/agent-7` ran on Mesos). */
  sourceOf(node: string): OfferSource['source'] {
    return this.memberOf(node).source.source;
  }

  private memberIndex(node: string): number {
    let best = -1;
    for (let i = 0; i < this.members.length; i++) {
      const p = this.members[i]!.prefix;
      if (node.startsWith(p) && (best < 0 || p.length > this.members[best]!.prefix.length)) best = i;
    }
    return Math.max(best, 0);
  }

  hold(taskId: string, req: ResourceRequest, node?: string): void {
    this.release(taskId);
    if (node !== undefined) this.holdOn(taskId, req, node);
    else this.pending.set(taskId, { req });
  }

  /** The task was placed (launched or adopted) on `node`: its pending hold goes to that member. */
  bind(taskId: string, node: string | undefined): void {
    const p = this.pending.get(taskId);
    if (!p) return;
    this.pending.delete(taskId);
    this.holdOn(taskId, p.req, node ?? this.hostname);
  }

  private holdOn(taskId: string, req: ResourceRequest, node: string): void {
    const m = this.memberOf(node);
    m.source.hold(taskId, req, m.host);
    this.bound.set(taskId, m.index);
  }

  release(taskId: string): void {
    this.pending.delete(taskId);
    const i = this.bound.get(taskId);
    if (i === undefined) return;
    this.bound.delete(taskId);
    this.members[i]!.source.release(taskId);
  }

  /**
   * Why a request fits no member ever: only when every member knows it never will (a fixed
   * machine); a member that cannot tell (a Mesos cluster may grow) keeps the task queued.
   */
  neverFits(req: ResourceRequest, constraints?: TaskConstraints): string | undefined {
    const reasons: string[] = [];
    for (const m of this.members) {
      const why = m.source.neverFits?.(req, constraints);
      if (why === undefined) return undefined;
      reasons.push(why);
    }
    return reasons.join('; ');
  }
}
