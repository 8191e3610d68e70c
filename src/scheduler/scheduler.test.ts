import { describe, expect, it } from 'vitest';
import { Scheduler } from './scheduler.ts';
import { makeTask, TaskError } from './task.ts';
import { GiB, offer, task } from './test-helpers.ts';

describe('Scheduler (incremental)', () => {
  it('queues, places on offers, keeps Kubernetes/local remainders for the next pass', () => {
    const s = new Scheduler();
    s.addOffer(offer('node-1', 4, 8));
    s.enqueue(task('a', 3, 1));
    const first = s.schedule(0);
    expect(first.placements.map((p) => p.taskId)).toEqual(['a']);
    expect(s.currentOffers()[0]!.resources.cpuMillis).toBe(1000);
    s.enqueue(task('b', 1, 1));
    s.enqueue(task('c', 1, 1, { submittedAt: 1 }));
    const second = s.schedule(1);
    expect(second.placements.map((p) => p.taskId)).toEqual(['b']);
    expect(s.queuedTasks().map((t) => t.id)).toEqual(['c']);
    expect(s.whyQueued('c')!.reasons[0]!.message).toBe(
      'cpus: 1 of 1 hosts lacked it (requested 1, most free on those hosts 0)',
    );
  });

  it('consumes Mesos offers a placement used (the master re-offers the rest)', () => {
    const s = new Scheduler();
    s.addOffer(offer('agent-host', 4, 8, { id: 'm1', source: 'mesos' }));
    s.addOffer(offer('agent-host', 4, 8, { id: 'm2', source: 'mesos' }));
    s.addOffer(offer('other', 4, 8, { id: 'm3', source: 'mesos' }));
    s.enqueue(task('a', 6, 1));
    const res = s.schedule(0);
    expect(res.placements[0]!.offerIds).toEqual(['m1', 'm2']);
    expect(s.currentOffers().map((o) => o.id)).toEqual(['m3']);
  });

  it('stays consistent when a pass consumes the offers of many hosts', () => {
    const s = new Scheduler();
    for (let i = 0; i < 100; i++) s.addOffer(offer(`h${i}`, 4, 4, { id: `m${i}`, source: 'mesos' }));
    for (let i = 0; i < 60; i++) s.enqueue(task(`t${i}`, 4, 1, { submittedAt: i }));
    expect(s.schedule(0).placements).toHaveLength(60);
    expect(s.currentOffers()).toHaveLength(40);
    expect(s.queuedCount).toBe(0);
    for (let i = 60; i < 110; i++) s.enqueue(task(`t${i}`, 4, 1, { submittedAt: i }));
    const res = s.schedule(1);
    expect(res.placements).toHaveLength(40);
    expect(new Set(res.placements.map((p) => p.hostname)).size).toBe(40);
    expect(s.currentOffers()).toHaveLength(0);
    // Explained against the hosts as the pass left them (full), before their offers were spent.
    expect(s.whyQueued('t100')!.reasons[0]!.message).toBe(
      'cpus: 40 of 40 hosts lacked it (requested 4, most free on those hosts 0)',
    );
    s.schedule(2);
    expect(s.whyQueued('t100')!.reasons[0]!.key).toBe('no-offers');
  });

  it('declines offers at expiry and after that never places on them', () => {
    const s = new Scheduler();
    s.addOffer(offer('h1', 1, 1, { id: 'o1', expiresAt: 100 }));
    s.addOffer(offer('h2', 8, 8, { id: 'o2', expiresAt: 500 }));
    s.enqueue(task('big', 4, 1));
    const early = s.schedule(50);
    expect(early.declines).toEqual([]);
    expect(early.placements.map((p) => p.hostname)).toEqual(['h2']);
    const later = s.schedule(100);
    expect(later.declines).toEqual([
      { offerId: 'o1', hostname: 'h1', source: 'kubernetes', reason: 'expired' },
    ]);
    expect(s.currentOffers().map((o) => o.id)).toEqual(['o2']);
    // An unused offer is kept (not declined) until it expires.
    expect(s.schedule(499).declines).toEqual([]);
    expect(s.schedule(500).declines.map((d) => d.offerId)).toEqual(['o2']);
  });

  it('rescinds offers, replaces re-added ids, declines malformed ones at the next pass', () => {
    const s = new Scheduler();
    s.addOffer(offer('h1', 1, 1, { id: 'o1' }));
    s.addOffer(offer('h1', 8, 8, { id: 'o1' })); // an updated view of the same capacity
    expect(s.currentOffers().map((o) => o.resources.cpuMillis)).toEqual([8000]);
    expect(s.rescindOffer('o1')).toBe(true);
    expect(s.rescindOffer('o1')).toBe(false);
    s.addOffer({ ...offer('h2', 1, 1, { id: 'broken' }), hostname: '' });
    s.enqueue(task('t', 1, 1));
    const res = s.schedule(0);
    expect(res.placements).toEqual([]);
    expect(res.declines).toMatchObject([{ offerId: 'broken', reason: 'invalid' }]);
    expect(res.unplaced[0]!.reasons[0]!.key).toBe('no-offers');
  });

  it('removes queued tasks', () => {
    const s = new Scheduler();
    s.enqueue(task('t', 1, 1));
    expect(s.remove('t')).toBe(true);
    expect(s.remove('t')).toBe(false);
    s.addOffer(offer('h', 4, 4));
    expect(s.schedule(0).placements).toEqual([]);
  });

  it('keeps fair share across passes and releases it when tasks finish', () => {
    const capacity = { cpuMillis: 10_000, memoryBytes: 100 * GiB, diskBytes: 0, gpus: 0 };
    const s = new Scheduler({ capacity });
    s.addOffer(offer('h', 2, 100));
    s.enqueue(task('a0', 2, 1, { tenant: 'a' }));
    expect(s.schedule(0).placements.map((p) => p.taskId)).toEqual(['a0']);
    // a now holds 2 cores; with one core offered, b (share 0) goes before a's older task.
    s.addOffer(offer('h2', 1, 100));
    s.enqueue(task('a1', 1, 1, { tenant: 'a', submittedAt: 1 }));
    s.enqueue(task('b0', 1, 1, { tenant: 'b', submittedAt: 2 }));
    expect(s.schedule(1).placements.map((p) => p.taskId)).toEqual(['b0']);
    // After a0 and b0 finish, a (share 0 again) and b tie; a's head is older.
    expect(s.taskFinished('a0')).toBe(true);
    expect(s.taskFinished('b0')).toBe(true);
    expect(s.taskFinished('b0')).toBe(false);
    s.addOffer(offer('h3', 1, 100));
    s.enqueue(task('b1', 1, 1, { tenant: 'b', submittedAt: 3 }));
    expect(s.schedule(2).placements.map((p) => p.taskId)).toEqual(['a1']);
  });

  it('enforces quota over what it has placed', () => {
    const s = new Scheduler({ quotas: { ns: { cpuMillis: 2000 } } });
    s.addOffer(offer('h', 8, 8));
    for (let i = 0; i < 3; i++) s.enqueue(task(`t${i}`, 1, 1, { submittedAt: i }));
    const res = s.schedule(0);
    expect(res.placements.map((p) => p.taskId)).toEqual(['t0', 't1']);
    expect(s.whyQueued('t2')!.outcome).toBe('over-quota');
    s.taskFinished('t0');
    expect(s.schedule(1).placements.map((p) => p.taskId)).toEqual(['t2']);
  });

  it('sees running group members after a restart (markRunning) for unique hosts', () => {
    const s = new Scheduler();
    s.addOffer(offer('h1', 8, 8));
    s.addOffer(offer('h2', 8, 8));
    const member = (id: string) => task(id, 1, 1, { groupId: 'fe', constraints: { uniqueHost: true } });
    s.markRunning(member('m0'), 'h1');
    s.enqueue(member('m1'));
    s.enqueue(member('m2'));
    const res = s.schedule(0);
    expect(res.placements.map((p) => `${p.taskId}@${p.hostname}`)).toEqual(['m1@h2']);
    expect(s.whyQueued('m2')!.reasons[0]!.message).toBe(
      'uniqueHost: 2 of 2 hosts: host already runs a task of group fe',
    );
    // m1, placed by the pass, now counts as running on h2; once m0 ends, h1 is free for m2.
    s.taskFinished('m0');
    expect(s.schedule(0).placements.map((p) => `${p.taskId}@${p.hostname}`)).toEqual(['m2@h1']);
  });

  it('refuses an invalid task at enqueue with a coded error naming the field', () => {
    const s = new Scheduler();
    expect(() => s.enqueue(task('t', 1, 1, { tenant: '' }))).toThrow(TaskError);
    expect(() => s.enqueue(task('t', 1, 1, { constraints: { uniqueHost: true } }))).toThrow(
      'task t: constraints.uniqueHost: needs a groupId',
    );
  });
});

describe('makeTask', () => {
  it('builds a task from a step with Kubernetes quantities', () => {
    const t = makeTask({
      id: 'run-1/train[3]',
      tenant: 'ml-team',
      priority: 5,
      resources: {
        cpus: '500m',
        memory: '2Gi',
        gpus: 1,
        disk: '10G',
        ports: 1,
        extended: { 'example.com/fpga': 1 },
      },
      constraints: { nodeSelector: { pool: 'gpu' } },
      groupId: 'run-1/train',
      submittedAt: 1234,
    });
    expect(t).toEqual({
      id: 'run-1/train[3]',
      tenant: 'ml-team',
      priority: 5,
      resources: {
        cpuMillis: 500,
        memoryBytes: 2 * GiB,
        diskBytes: 10e9,
        gpus: 1,
        ports: 1,
        scalars: { 'example.com/fpga': 1 },
      },
      constraints: { nodeSelector: { pool: 'gpu' } },
      groupId: 'run-1/train',
      submittedAt: 1234,
    });
    expect(
      makeTask({ id: 'x', tenant: 'y', submittedAt: 0, resources: { cpus: 1.5 } }).resources.cpuMillis,
    ).toBe(1500);
  });

  it('names the field of a bad quantity', () => {
    try {
      makeTask({ id: 'x', tenant: 'y', submittedAt: 0, resources: { memory: '2 GB' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TaskError);
      expect((err as TaskError).code).toBe('SCHEDULER_TASK_INVALID');
      expect((err as Error).message).toMatch(/^resources\.memory: invalid quantity "2 GB"/);
    }
  });
});
