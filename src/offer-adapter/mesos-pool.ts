/**
 * A Mesos master's outstanding offers as one of the controller's offer sources (the controller's
 * `OfferSource` port). The master accounts for what its tasks use, so holding and releasing only
 * remember what a placement granted (the Mesos launcher turns it into the TaskInfo's resources).
 *
 * Offer hygiene, as a Mesos framework must keep it:
 * - an offer that a scheduling pass saw and left unused for `declineAfterMs` is DECLINEd with
 *   `refuseSeconds` (nothing queued fits it now; the master may offer the host to others);
 * - an offer no pass has seen is declined after `offerHoldMs` (no pass ran: nothing is queued);
 * - `demand(queued)` is the queue signal: 0 SUPPRESSes offers, more than 0 REVIVEs them (and
 *   clears the master's decline filters) when they were suppressed or declined since;
 * - an ACCEPT spends every offer of the host (`take`): they are gone from `offers()` at once, so a
 *   following pass cannot place on them again before the master answers.
 */
import type { TaskInfo } from '../mesos-compat/schemas.ts';
import type { Offer, ResourceRequest } from './types.ts';

/** What the pool and the Mesos launcher need of a scheduler client (MesosMasterSource). */
export interface MesosSchedulerClient {
  offers(): Offer[];
  accept(offerIds: string[], tasks: TaskInfo[], refuseSeconds?: number): Promise<void>;
  decline(offerIds: string[], refuseSeconds: number): Promise<void>;
  revive(): Promise<void>;
  suppress(): Promise<void>;
  kill(taskId: string, agentId?: string): Promise<void>;
  /** Explicit reconciliation of these tasks (their states come back as updates). */
  reconcile(tasks: { taskId: string; agentId?: string }[]): Promise<void>;
}

export interface MesosOfferPoolOptions {
  client: MesosSchedulerClient;
  /** Name reported as the default host of adopted attempts (default `mesos`). */
  hostname?: string;
  /** Decline an offer a pass saw but did not use after this long (default 1000 ms). */
  declineAfterMs?: number;
  /** Decline an offer no pass has seen after this long (default 5000 ms). */
  offerHoldMs?: number;
  /** Filters.refuse_seconds of those declines (default 5, as Mesos). */
  refuseSeconds?: number;
  /** Period of the decline check (default 250 ms); 0: only when `tick()` is called (tests). */
  tickMs?: number;
  now?: () => number;
  log?: (msg: string, fields?: object) => void;
}

export const MESOS_POOL_DEFAULTS = {
  declineAfterMs: 1000,
  offerHoldMs: 5000,
  refuseSeconds: 5,
  tickMs: 250,
} as const;

/** Attribute every Mesos offer carries, so a step can ask for (or avoid) Mesos hosts. */
export const SOURCE_ATTRIBUTE = 'meson.dev/source';

export class MesosOfferPool {
  readonly source = 'mesos' as const;
  readonly hostname: string;
  readonly client: MesosSchedulerClient;
  private readonly o: Required<Omit<MesosOfferPoolOptions, 'log' | 'hostname' | 'client'>> &
    Pick<MesosOfferPoolOptions, 'log'>;
  /** Offers given to the scheduler: id -> when first shown. */
  private readonly shown = new Map<string, number>();
  /** Offers spent by an ACCEPT or a DECLINE of ours (the client forgets them too). */
  private readonly spent = new Set<string>();
  /** The last pass's offers by host. */
  private byHost = new Map<string, Offer[]>();
  private readonly held = new Map<string, ResourceRequest>();
  /**
   * Placed, not launched yet: host -> tasks. The controller commits a placement before it launches
   * (a Kubernetes store takes a round trip, or more under load), and the offers it was placed on
   * must not be declined meanwhile as if no pass had used them.
   */
  private readonly placing = new Map<string, { tasks: Set<string>; since: number }>();
  private suppressed = false;
  private declinedSinceRevive = false;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: MesosOfferPoolOptions) {
    this.client = opts.client;
    this.hostname = opts.hostname ?? 'mesos';
    this.o = {
      ...MESOS_POOL_DEFAULTS,
      now: Date.now,
      ...(opts.declineAfterMs !== undefined ? { declineAfterMs: opts.declineAfterMs } : {}),
      ...(opts.offerHoldMs !== undefined ? { offerHoldMs: opts.offerHoldMs } : {}),
      ...(opts.refuseSeconds !== undefined ? { refuseSeconds: opts.refuseSeconds } : {}),
      ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    };
  }

  start(): void {
    if (this.timer || this.o.tickMs <= 0) return;
    this.timer = setInterval(() => this.tick(), this.o.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The master's outstanding offers not yet spent, each tagged with `meson.dev/source: mesos`. */
  offers(now: number): Offer[] {
    const out: Offer[] = [];
    const byHost = new Map<string, Offer[]>();
    /** host name -> the agent that has it in this list (Mesos does not promise unique host names). */
    const agentOf = new Map<string, string | undefined>();
    for (const o of this.client.offers()) {
      if (this.spent.has(o.id)) continue;
      if (!this.shown.has(o.id)) this.shown.set(o.id, now);
      // a second agent with a taken host name gets its own name: merged into one placement
      // target, two agents' offers would make an ACCEPT the master refuses, again and again
      let hostname = o.hostname;
      if (agentOf.has(hostname) && agentOf.get(hostname) !== o.agentId)
        hostname = `${o.hostname}@${o.agentId}`;
      agentOf.set(hostname, o.agentId);
      const offer: Offer = { ...o, hostname, attributes: { ...o.attributes, [SOURCE_ATTRIBUTE]: 'mesos' } };
      out.push(offer);
      byHost.set(hostname, [...(byHost.get(hostname) ?? []), offer]);
    }
    this.byHost = byHost;
    return out;
  }

  /** `host`: where the task was placed (the controller's node, without the composite's prefix). */
  hold(taskId: string, req: ResourceRequest, host?: string): void {
    this.held.set(taskId, req);
    if (host === undefined) return;
    const p = this.placing.get(host) ?? { tasks: new Set<string>(), since: this.o.now() };
    p.tasks.add(taskId);
    this.placing.set(host, p);
  }

  release(taskId: string): void {
    this.held.delete(taskId);
    for (const [host, p] of this.placing) {
      p.tasks.delete(taskId);
      if (p.tasks.size === 0) this.placing.delete(host);
    }
  }

  /** What the placement of `taskId` granted (set by hold), for its TaskInfo. */
  granted(taskId: string): ResourceRequest | undefined {
    return this.held.get(taskId);
  }

  /**
   * Spends the offers of `hostname` that the last pass saw (a placement there uses them all):
   * they leave `offers()` now. Empty when they were rescinded or spent meanwhile.
   */
  take(hostname: string): Offer[] {
    const live = new Set(this.client.offers().map((o) => o.id));
    const offers = (this.byHost.get(hostname) ?? []).filter((o) => live.has(o.id) && !this.spent.has(o.id));
    for (const o of offers) this.spent.add(o.id);
    this.byHost.delete(hostname);
    this.placing.delete(hostname);
    return offers;
  }

  /**
   * The queue signal: how many tasks wait for offers. 0 suppresses offers (a framework with
   * nothing to run should not be offered anything); more revives them when they were suppressed
   * or when hosts were declined since the last revive (their filters would keep them away).
   */
  demand(queued: number): void {
    if (queued === 0) {
      if (this.suppressed) return;
      this.suppressed = true;
      // not sent (not subscribed yet, a refused call): the next demand(0) sends it again
      this.call('SUPPRESS', this.client.suppress(), () => {
        this.suppressed = false;
      });
      return;
    }
    if (!this.suppressed && !this.declinedSinceRevive) return;
    this.suppressed = false;
    this.declinedSinceRevive = false;
    this.call('REVIVE', this.client.revive(), () => {
      this.declinedSinceRevive = true;
    });
  }

  /**
   * A new subscription: the master does not know of an earlier SUPPRESS (nor a lost REVIVE), so
   * the next `demand` says again what the queue needs.
   */
  subscribed(): void {
    this.suppressed = false;
    this.declinedSinceRevive = true;
  }

  get isSuppressed(): boolean {
    return this.suppressed;
  }

  /** Declines the offers left unused too long (see the file comment). */
  tick(): void {
    const now = this.o.now();
    const live = this.client.offers();
    const liveIds = new Set(live.map((o) => o.id));
    for (const id of this.shown.keys()) if (!liveIds.has(id)) this.shown.delete(id);
    for (const id of this.spent) if (!liveIds.has(id)) this.spent.delete(id);
    // offers of a host with a placement on its way to launch are used, not stale, for up to
    // offerHoldMs after the placement (should the launch never come, e.g. an adopted task's host)
    const placedAt = new Map<string, number>();
    for (const [host, p] of this.placing)
      for (const o of this.byHost.get(host) ?? []) placedAt.set(o.id, p.since);
    const stale: string[] = [];
    for (const o of live) {
      if (this.spent.has(o.id)) continue;
      const since = placedAt.get(o.id);
      if (since !== undefined) {
        if (now - since >= this.o.offerHoldMs) stale.push(o.id);
        continue;
      }
      const shownAt = this.shown.get(o.id);
      const age = now - (o.receivedAt ?? now);
      if ((shownAt !== undefined && now - shownAt >= this.o.declineAfterMs) || age >= this.o.offerHoldMs)
        stale.push(o.id);
    }
    if (stale.length === 0) return;
    for (const id of stale) this.spent.add(id);
    this.declinedSinceRevive = true;
    this.call('DECLINE', this.client.decline(stale, this.o.refuseSeconds));
  }

  private call(what: string, p: Promise<void>, onFail?: () => void): void {
    p.catch((err: unknown) => {
      onFail?.();
      this.o.log?.(`mesos ${what} failed`, { error: (err as Error).message });
    });
  }
}
