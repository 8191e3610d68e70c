import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LeaderElectionConfigError,
  LeaderElector,
  type LeaderElectorOptions,
  type LeaseClient,
  LeaseConflictError,
  type LeaseRecord,
  type LeaseSnapshot,
} from './leader.ts';

/** One Lease in memory with resourceVersion semantics; a per-client switch makes requests fail. */
class MemoryLease {
  stored: LeaseSnapshot | undefined;
  private rv = 0;
  writes = 0;
  set(record: LeaseRecord): void {
    this.stored = { record: { ...record }, resourceVersion: String(++this.rv) };
  }
  client(failing: { on: boolean } = { on: false }): LeaseClient {
    const check = () => {
      if (failing.on) throw new Error('connection refused');
    };
    return {
      describe: () => 'ns/lease',
      get: async () => {
        check();
        return this.stored && structuredClone(this.stored);
      },
      create: async (record) => {
        check();
        if (this.stored) throw new LeaseConflictError('exists');
        this.writes++;
        this.set(record);
        return structuredClone(this.stored!);
      },
      update: async (record, rv) => {
        check();
        if (!this.stored || this.stored.resourceVersion !== rv) throw new LeaseConflictError('conflict');
        this.writes++;
        this.set(record);
        return structuredClone(this.stored!);
      },
    };
  }
}

const TIMING = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 1_000 };

function elector(identity: string, client: LeaseClient, extra: Partial<LeaderElectorOptions> = {}) {
  const events: string[] = [];
  const e = new LeaderElector({
    client,
    identity,
    ...TIMING,
    random: () => 0.5,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: ({ lost, reason }) => events.push(`stopped lost=${lost} ${reason}`),
    ...extra,
  });
  return { e, events };
}

/** a starts first (and leads), b 10 ms later. */
async function twoCandidates(lease: MemoryLease, aFailing = { on: false }) {
  const a = elector('a', lease.client(aFailing));
  const b = elector('b', lease.client());
  a.e.start();
  await vi.advanceTimersByTimeAsync(10);
  b.e.start();
  return [a, b] as const;
}

/** Advances the fake clock in 50 ms steps until `e` leads; the time it did, or undefined. */
async function whenLeading(e: LeaderElector, maxMs: number): Promise<number | undefined> {
  for (let t = 0; t < maxMs; t += 50) {
    await vi.advanceTimersByTimeAsync(50);
    if (e.isLeader()) return Date.now();
  }
  return undefined;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeaderElector', () => {
  it('lets exactly one of two candidates lead, and keeps renewing', async () => {
    const lease = new MemoryLease();
    const [a, b] = await twoCandidates(lease);
    await vi.advanceTimersByTimeAsync(60_000);
    expect([a.e.isLeader(), b.e.isLeader()]).toEqual([true, false]);
    expect(a.events).toEqual(['started']);
    expect(b.events).toEqual([]);
    expect(b.e.observedLeader()).toBe('a');
    expect(lease.stored?.record).toMatchObject({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      leaseTransitions: 0,
    });
    // renewed about once per retry period (1 s plus jitter): not a tight loop
    expect(lease.writes).toBeGreaterThan(40);
    expect(lease.writes).toBeLessThan(60);
    await a.e.stop();
    await b.e.stop();
  });

  it('releases on stop(): holder "" and duration 1 s, and a standby takes over at its next try', async () => {
    const lease = new MemoryLease();
    const [a, b] = await twoCandidates(lease);
    await vi.advanceTimersByTimeAsync(5_000);
    const stoppedAt = Date.now();
    await a.e.stop();
    expect(lease.stored?.record).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(a.events).toEqual(['started', 'stopped lost=false released']);
    const tookOverAt = await whenLeading(b.e, 5_000);
    expect(tookOverAt).toBeDefined();
    expect(tookOverAt! - stoppedAt).toBeLessThanOrEqual(1_250);
    expect(lease.stored?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    await b.e.stop();
  });

  it('releases a Lease taken in the same moment as stop() was called (never left to expire)', async () => {
    const lease = new MemoryLease();
    const base = lease.client();
    let stopNow: (() => void) | undefined;
    const client: LeaseClient = {
      ...base,
      create: async (record) => {
        const made = await base.create(record);
        stopNow?.(); // the stop signal arrives while the create is answered
        return made;
      },
    };
    const a = elector('a', client);
    let stopping: Promise<void> | undefined;
    stopNow = () => {
      stopping = a.e.stop();
    };
    a.e.start();
    await vi.advanceTimersByTimeAsync(10);
    await stopping;
    expect(a.events).toEqual([]);
    expect(lease.stored?.record).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
  });

  it('replaces a leader that stopped renewing (killed) only after the lease duration', async () => {
    const lease = new MemoryLease();
    const dead = { on: false };
    const [a, b] = await twoCandidates(lease, dead);
    await vi.advanceTimersByTimeAsync(3_000);
    dead.on = true; // a's last renewal is at most one retry period ago
    const killedAt = Date.now();
    const tookOverAt = await whenLeading(b.e, 20_000);
    expect(tookOverAt).toBeDefined();
    const after = tookOverAt! - killedAt;
    // never before the lease (as b last saw it renewed) expired, and within one more retry after
    expect(after).toBeGreaterThanOrEqual(15_000 - 1_200);
    expect(after).toBeLessThanOrEqual(15_000 + 1_250);
    // a, cut off, gave up leading after its renew deadline: before b could take over
    expect(a.e.isLeader()).toBe(false);
    expect(a.events[1]).toMatch(/^stopped lost=true could not renew for 10000 ms/);
    dead.on = false;
    await a.e.stop();
    await b.e.stop();
  });

  it('stops leading at once when it sees the lease held by another (stolen)', async () => {
    const lease = new MemoryLease();
    const a = elector('a', lease.client());
    a.e.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.e.isLeader()).toBe(true);
    lease.set({
      holderIdentity: 'intruder',
      leaseDurationSeconds: 15,
      renewTime: Date.now(),
      leaseTransitions: 7,
    });
    await vi.advanceTimersByTimeAsync(1_300);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['started', 'stopped lost=true the lease is held by intruder']);
    // and campaigns again: it may lead once the intruder's lease expires unrenewed
    await vi.advanceTimersByTimeAsync(17_000);
    expect(a.e.isLeader()).toBe(true);
    expect(lease.stored?.record).toMatchObject({ holderIdentity: 'a', leaseTransitions: 8 });
    await a.e.stop();
  });

  it('treats a hanging request as a failed try and loses leadership after the renew deadline', async () => {
    const lease = new MemoryLease();
    let hang = false;
    const base = lease.client();
    const client: LeaseClient = {
      ...base,
      get: () => (hang ? new Promise(() => {}) : base.get()),
    };
    const a = elector('a', client);
    a.e.start();
    await vi.advanceTimersByTimeAsync(2_000);
    hang = true;
    await vi.advanceTimersByTimeAsync(9_000);
    expect(a.e.isLeader()).toBe(true);
    await vi.advanceTimersByTimeAsync(12_000);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events[1]).toMatch(/lost=true could not renew/);
    hang = false;
    await a.e.stop();
  });

  it('does not take a lease another holds and keeps valid, whatever its renewTime says (clock skew)', async () => {
    const lease = new MemoryLease();
    // a renewTime far in the past by our clock: the holder's clock may be behind; what counts is
    // that the record keeps changing
    lease.set({ holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: 0, leaseTransitions: 0 });
    const b = elector('b', lease.client());
    b.e.start();
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(5_000);
      lease.set({ holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: i, leaseTransitions: 0 });
    }
    expect(b.e.isLeader()).toBe(false);
    await vi.advanceTimersByTimeAsync(17_000);
    expect(b.e.isLeader()).toBe(true);
    await b.e.stop();
  });

  it('refuses timings where the leader could outlive its lease', () => {
    const client = new MemoryLease().client();
    const make = (t: Partial<typeof TIMING>) => () =>
      new LeaderElector({ client, identity: 'x', ...TIMING, ...t });
    expect(make({ renewDeadlineMs: 15_000 })).toThrow(LeaderElectionConfigError);
    expect(make({ renewDeadlineMs: 1_100 })).toThrow(/retry period/);
    expect(make({ leaseDurationMs: 15_500 })).toThrow(/whole seconds/);
    expect(() => new LeaderElector({ client, identity: '' })).toThrow(/identity/);
    expect(make({})).not.toThrow();
  });
});
