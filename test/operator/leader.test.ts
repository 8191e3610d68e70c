// Leader election on a real coordination.k8s.io/v1 Lease: one leader of two, prompt hand-over
// on graceful stop, takeover after a leader dies without releasing, and a leader that finds the
// Lease taken stops leading.
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { kubeLeaseClient, LeaderElector, type LeaseClient } from '../../src/operator/leader.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';

const ns = useNamespace('leader');
const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250 };
const running: LeaderElector[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

function candidate(identity: string, client?: LeaseClient) {
  const events: { at: number; event: string }[] = [];
  const e = new LeaderElector({
    client: client ?? kubeLeaseClient(ns.kc, ns.name, 'test-lease'),
    identity,
    ...TIMING,
    onStartedLeading: () => events.push({ at: Date.now(), event: 'started' }),
    onStoppedLeading: ({ lost, reason }) =>
      events.push({ at: Date.now(), event: `stopped lost=${lost}: ${reason}` }),
  });
  running.push(e);
  e.start();
  return { e, events };
}

async function holder(): Promise<string | undefined> {
  const lease = await ns.kc
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'test-lease', namespace: ns.name });
  return lease.spec?.holderIdentity;
}

const leading = (e: LeaderElector) => async () => (e.isLeader() ? Date.now() : undefined);

describe('leader election on a real Lease', () => {
  it('elects exactly one of two; the Lease names it; the other stands by', async () => {
    const a = candidate('a');
    await waitFor('a to lead', leading(a.e));
    const b = candidate('b');
    await waitFor('b to observe a', async () => (b.e.observedLeader() === 'a' ? true : undefined));
    await new Promise((r) => setTimeout(r, 2 * TIMING.leaseDurationMs));
    expect([a.e.isLeader(), b.e.isLeader()]).toEqual([true, false]);
    expect(await holder()).toBe('a');
    const lease = await ns.kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'test-lease', namespace: ns.name });
    expect(lease.spec?.leaseDurationSeconds).toBe(3);
    // renewed recently (the renew time is written in microseconds, as the API requires)
    expect(Date.now() - new Date(lease.spec!.renewTime as unknown as string).getTime()).toBeLessThan(1_500);
  });

  it('hands over within 2 s of a graceful stop (the Lease is released, not left to expire)', async () => {
    const a = candidate('a');
    await waitFor('a to lead', leading(a.e));
    const b = candidate('b');
    await waitFor('b to observe a', async () => (b.e.observedLeader() === 'a' ? true : undefined));
    const stoppedAt = Date.now();
    await a.e.stop();
    expect(a.events.map((e) => e.event)).toEqual(['started', 'stopped lost=false: released']);
    const tookOver = await waitFor('b to lead', leading(b.e), { intervalMs: 20 });
    const handover = tookOver - stoppedAt;
    expect(handover).toBeLessThan(2_000);
    expect(await holder()).toBe('b');
    process.stderr.write(`leader election: graceful hand-over in ${handover} ms\n`);
  });

  it('replaces a leader that died without releasing, after the lease duration and not before', async () => {
    const cut = { on: false };
    const real = kubeLeaseClient(ns.kc, ns.name, 'test-lease');
    // a "killed" leader: its requests never arrive any more
    const dying: LeaseClient = {
      describe: real.describe,
      get: () => (cut.on ? new Promise(() => {}) : real.get()),
      create: (r) => (cut.on ? new Promise(() => {}) : real.create(r)),
      update: (r, v) => (cut.on ? new Promise(() => {}) : real.update(r, v)),
    };
    const a = candidate('a', dying);
    await waitFor('a to lead', leading(a.e));
    const b = candidate('b');
    await waitFor('b to observe a', async () => (b.e.observedLeader() === 'a' ? true : undefined));
    cut.on = true;
    const diedAt = Date.now();
    const tookOver = await waitFor('b to lead', leading(b.e), { timeoutMs: 10_000, intervalMs: 20 });
    const after = tookOver - diedAt;
    // at most one retry period passed between a's last renewal and its death
    expect(after).toBeGreaterThanOrEqual(TIMING.leaseDurationMs - TIMING.retryPeriodMs * 1.2 - 100);
    expect(after).toBeLessThan(TIMING.leaseDurationMs + 1_000);
    // and a had given up leading before b took over (renew deadline < lease duration)
    const aStopped = a.events.find((e) => e.event.startsWith('stopped'));
    expect(aStopped?.event).toMatch(/lost=true: could not renew/);
    expect(aStopped!.at).toBeLessThanOrEqual(tookOver);
    process.stderr.write(`leader election: killed leader replaced after ${after} ms (lease 3 s)\n`);
    cut.on = false;
  });

  it('stops leading when the Lease is taken by someone else', async () => {
    const a = candidate('a');
    await waitFor('a to lead', leading(a.e));
    const api = ns.kc.makeApiClient(CoordinationV1Api);
    const lease = await api.readNamespacedLease({ name: 'test-lease', namespace: ns.name });
    lease.spec = {
      ...lease.spec,
      holderIdentity: 'intruder',
      leaseDurationSeconds: 60,
      renewTime: new V1MicroTime(),
      acquireTime: new V1MicroTime(),
    };
    await api.replaceNamespacedLease({ name: 'test-lease', namespace: ns.name, body: lease });
    const takenAt = Date.now();
    await waitFor('a to stop leading', async () => (a.e.isLeader() ? undefined : true), { intervalMs: 20 });
    expect(Date.now() - takenAt).toBeLessThan(TIMING.retryPeriodMs * 1.2 + 1_000);
    expect(a.events.at(-1)?.event).toBe('stopped lost=true: the lease is held by intruder');
    // it does not take the intruder's lease back while that is valid
    await new Promise((r) => setTimeout(r, 2 * TIMING.leaseDurationMs));
    expect(a.e.isLeader()).toBe(false);
    expect(await holder()).toBe('intruder');
  });
});
