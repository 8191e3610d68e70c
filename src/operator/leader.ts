// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package
// (@kubernetes/client-node ships none): a candidate takes the Lease when it is free or expired,
// with optimistic concurrency on resourceVersion; the leader renews every retryPeriod and stops
// leading when it could not renew for renewDeadline or sees another holder; a graceful stop
// releases the Lease (holder "" and leaseDurationSeconds 1, like ReleaseOnCancel) so a standby
// takes over at its next try instead of after the lease duration.
//
// Expiry is judged on this process's clock from when the record was last seen to change
// (client-go's observedTime), never by comparing the holder's renewTime with our clock: two
// machines' clocks need not agree.
import { ApiException, CoordinationV1Api, type KubeConfig, V1MicroTime } from '@kubernetes/client-node';

export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** Epoch milliseconds. */
  acquireTime?: number;
  renewTime?: number;
  leaseTransitions: number;
}

export interface LeaseSnapshot {
  record: LeaseRecord;
  resourceVersion: string;
}

/** Thrown by create/update when someone else wrote first (409 / AlreadyExists). */
export class LeaseConflictError extends Error {
  override name = 'LeaseConflictError';
  code = 'LEASE_CONFLICT';
}

/** The Lease's storage; the API server in production, a map in unit tests. */
export interface LeaseClient {
  get(): Promise<LeaseSnapshot | undefined>;
  create(record: LeaseRecord): Promise<LeaseSnapshot>;
  update(record: LeaseRecord, resourceVersion: string): Promise<LeaseSnapshot>;
  /** What to call the lease in logs (namespace/name). */
  describe(): string;
}

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    }),
};

export interface ElectorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LeaderElectorOptions {
  client: LeaseClient;
  /** Unique per process: pod name plus a random suffix. */
  identity: string;
  /** How long a lease taken or renewed stays ours in others' view. Default 15 s. */
  leaseDurationMs?: number;
  /** The leader gives up when it could not renew for this long. Default 10 s. */
  renewDeadlineMs?: number;
  /** Between tries (candidates) and renewals (leader), plus up to 20 % jitter. Default 1 s. */
  retryPeriodMs?: number;
  onStartedLeading?: () => void;
  /** Called when leadership ends: lost (`lost: true`) or released by stop(). */
  onStoppedLeading?: (info: { lost: boolean; reason: string }) => void;
  /** Called when the observed holder changes (also to "" when released). */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  random?: () => number;
  logger?: ElectorLogger;
}

export const LEASE_DEFAULTS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 1_000 };
const JITTER = 0.2;

export class LeaderElectionConfigError extends Error {
  override name = 'LeaderElectionConfigError';
  code = 'LEADER_ELECTION_CONFIG';
}

function sameRecord(a: LeaseRecord | undefined, b: LeaseRecord): boolean {
  return (
    a !== undefined &&
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

export class LeaderElector {
  private readonly o: Required<
    Omit<LeaderElectorOptions, 'onStartedLeading' | 'onStoppedLeading' | 'onNewLeader' | 'logger'>
  > &
    LeaderElectorOptions;
  private observed: LeaseRecord | undefined;
  private observedAt = 0;
  private leading = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(options: LeaderElectorOptions) {
    this.o = {
      ...LEASE_DEFAULTS,
      clock: realClock,
      random: Math.random,
      ...options,
    } as typeof this.o;
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs, identity } = this.o;
    if (!identity) throw new LeaderElectionConfigError('leader election needs a non-empty identity');
    if (!(retryPeriodMs > 0)) throw new LeaderElectionConfigError('retry period must be positive');
    if (!(renewDeadlineMs > retryPeriodMs * (1 + JITTER)))
      throw new LeaderElectionConfigError(
        `renew deadline (${renewDeadlineMs} ms) must exceed the retry period with jitter (${retryPeriodMs * (1 + JITTER)} ms)`,
      );
    if (!(leaseDurationMs > renewDeadlineMs))
      throw new LeaderElectionConfigError(
        `lease duration (${leaseDurationMs} ms) must exceed the renew deadline (${renewDeadlineMs} ms): a leader must stop before others may take over`,
      );
    if (leaseDurationMs % 1000 !== 0)
      throw new LeaderElectionConfigError('lease duration must be whole seconds (leaseDurationSeconds)');
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen on the Lease ("" when free, undefined before the first read). */
  observedLeader(): string | undefined {
    return this.observed?.holderIdentity;
  }

  /** Starts campaigning; resolves at once. Leadership is reported through the callbacks. */
  start(): void {
    this.loop ??= this.run().catch((err) => {
      this.o.logger?.warn({ err: (err as Error).message }, 'leader election stopped on an error');
    });
  }

  /**
   * Stops campaigning and, when leading, releases the Lease so a standby takes over at its next
   * try. Resolves when done (the release is bounded by the renew deadline).
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    const wasLeading = this.leading;
    // A stop that lands just after the Lease was taken, before leading began, still releases it.
    if (!wasLeading && this.observed?.holderIdentity !== this.o.identity) return;
    this.leading = false;
    let reason = 'released';
    try {
      await this.timed(this.release(), 'release');
    } catch (err) {
      reason = `release failed (others take over when the lease expires): ${(err as Error).message}`;
      this.o.logger?.warn(
        { lease: this.o.client.describe(), err: (err as Error).message },
        'could not release the lease',
      );
    }
    if (wasLeading) this.o.onStoppedLeading?.({ lost: false, reason });
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private sleepRetry(): Promise<void> {
    const ms = this.o.retryPeriodMs * (1 + JITTER * this.o.random());
    return this.o.clock.sleep(ms, this.abort.signal);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // candidate: try until the lease is ours
      while (!this.stopped) {
        if (await this.tryQuietly()) break;
        await this.sleepRetry();
      }
      if (this.stopped) return;
      this.leading = true;
      this.o.logger?.info({ lease: this.o.client.describe(), identity: this.o.identity }, 'became leader');
      this.o.onStartedLeading?.();
      // leader: renew until stopped or lost
      let lastRenew = this.o.clock.now();
      let lostReason: string | undefined;
      while (!this.stopped) {
        await this.sleepRetry();
        if (this.stopped) return;
        const ok = await this.tryQuietly();
        if (ok) {
          lastRenew = this.o.clock.now();
          continue;
        }
        const holder = this.observed?.holderIdentity ?? '';
        if (holder !== '' && holder !== this.o.identity) {
          lostReason = `the lease is held by ${holder}`;
          break;
        }
        if (this.o.clock.now() - lastRenew >= this.o.renewDeadlineMs) {
          lostReason = `could not renew for ${this.o.renewDeadlineMs} ms`;
          break;
        }
      }
      if (this.stopped) return;
      this.leading = false;
      this.o.logger?.warn({ lease: this.o.client.describe(), reason: lostReason }, 'lost leadership');
      this.o.onStoppedLeading?.({ lost: true, reason: lostReason ?? 'lost' });
    }
  }

  /** One try, with errors (network, 5xx) counted as a failed try. */
  private async tryQuietly(): Promise<boolean> {
    try {
      return await this.timed(this.tryAcquireOrRenew(), 'acquire or renew');
    } catch (err) {
      this.o.logger?.warn(
        { lease: this.o.client.describe(), err: (err as Error).message },
        'lease request failed',
      );
      return false;
    }
  }

  /** A request may hang; it counts as failed after the renew deadline. */
  private async timed<T>(p: Promise<T>, what: string): Promise<T> {
    const ac = new AbortController();
    const timeout = this.o.clock.sleep(this.o.renewDeadlineMs, ac.signal).then(() => {
      if (!ac.signal.aborted) throw new Error(`${what}: no answer in ${this.o.renewDeadlineMs} ms`);
      return undefined as never;
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      ac.abort();
    }
  }

  private observe(record: LeaseRecord): void {
    if (sameRecord(this.observed, record)) return;
    const changedHolder = this.observed?.holderIdentity !== record.holderIdentity;
    this.observed = record;
    this.observedAt = this.o.clock.now();
    if (changedHolder) this.o.onNewLeader?.(record.holderIdentity);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, identity } = this.o;
    const now = this.o.clock.now();
    const leaseDurationSeconds = this.o.leaseDurationMs / 1000;
    const current = await client.get();
    if (!current) {
      try {
        const made = await client.create({
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        });
        this.observe(made.record);
        return true;
      } catch (err) {
        if (err instanceof LeaseConflictError) return false;
        throw err;
      }
    }
    this.observe(current.record);
    const held = current.record.holderIdentity;
    const valid = this.observedAt + current.record.leaseDurationSeconds * 1000 > now;
    if (held !== '' && held !== identity && valid) return false;
    const mine = held === identity;
    const next: LeaseRecord = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: mine ? (current.record.acquireTime ?? now) : now,
      renewTime: now,
      leaseTransitions: mine ? current.record.leaseTransitions : current.record.leaseTransitions + 1,
    };
    try {
      const updated = await client.update(next, current.resourceVersion);
      this.observe(updated.record);
      return true;
    } catch (err) {
      if (err instanceof LeaseConflictError) return false;
      throw err;
    }
  }

  private async release(): Promise<void> {
    const current = await this.o.client.get();
    if (!current || current.record.holderIdentity !== this.o.identity) return;
    const now = this.o.clock.now();
    const released = await this.o.client.update(
      {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: current.record.leaseTransitions,
      },
      current.resourceVersion,
    );
    this.observe(released.record);
  }
}

/** The Lease `namespace/name` on the API server. */
export function kubeLeaseClient(kc: KubeConfig, namespace: string, name: string): LeaseClient {
  const api = kc.makeApiClient(CoordinationV1Api);
  const ms = (t: unknown): number | undefined =>
    t === undefined || t === null ? undefined : new Date(t as string).getTime();
  const snapshot = (lease: {
    metadata?: { resourceVersion?: string };
    spec?: {
      holderIdentity?: string;
      leaseDurationSeconds?: number;
      acquireTime?: unknown;
      renewTime?: unknown;
      leaseTransitions?: number;
    };
  }): LeaseSnapshot => {
    const s = lease.spec ?? {};
    const acquireTime = ms(s.acquireTime);
    const renewTime = ms(s.renewTime);
    return {
      resourceVersion: lease.metadata?.resourceVersion ?? '',
      record: {
        holderIdentity: s.holderIdentity ?? '',
        leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
        ...(acquireTime !== undefined ? { acquireTime } : {}),
        ...(renewTime !== undefined ? { renewTime } : {}),
        leaseTransitions: s.leaseTransitions ?? 0,
      },
    };
  };
  const body = (record: LeaseRecord, resourceVersion?: string) => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    spec: {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      ...(record.acquireTime !== undefined ? { acquireTime: new V1MicroTime(record.acquireTime) } : {}),
      ...(record.renewTime !== undefined ? { renewTime: new V1MicroTime(record.renewTime) } : {}),
      leaseTransitions: record.leaseTransitions,
    },
  });
  const conflict = (err: unknown): never => {
    if (err instanceof ApiException && err.code === 409)
      throw new LeaseConflictError(`lease ${namespace}/${name} was written by someone else first`, {
        cause: err,
      });
    throw err;
  };
  return {
    describe: () => `${namespace}/${name}`,
    async get() {
      try {
        return snapshot(await api.readNamespacedLease({ name, namespace }));
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return undefined;
        throw err;
      }
    },
    async create(record) {
      try {
        return snapshot(await api.createNamespacedLease({ namespace, body: body(record) }));
      } catch (err) {
        return conflict(err);
      }
    },
    async update(record, resourceVersion) {
      try {
        return snapshot(
          await api.replaceNamespacedLease({ name, namespace, body: body(record, resourceVersion) }),
        );
      } catch (err) {
        return conflict(err);
      }
    },
  };
}
