import { describe, expect, it } from 'vitest';
import { schedulePass } from './scheduler.ts';
import { GiB, offer, task } from './test-helpers.ts';
import type { Task } from './types.ts';

const now = 0;

/** One big host, so order (not fit) decides; tasks 1 core each. */
function order(tasks: Task[], state = {}, cores = 100): string[] {
  const res = schedulePass({ tasks, offers: [offer('h', cores, 1000)], now, state });
  return res.placements.map((p) => p.taskId);
}

describe('queue order', () => {
  it('FIFO within equal standing (submission time, then id)', () => {
    const tasks = [
      task('c', 1, 1, { submittedAt: 3 }),
      task('a', 1, 1, { submittedAt: 1 }),
      task('b', 1, 1, { submittedAt: 1 }),
    ];
    expect(order(tasks)).toEqual(['a', 'b', 'c']);
  });

  it('higher priority first within a tenant', () => {
    const tasks = [
      task('low', 1, 1, { submittedAt: 1, priority: 0 }),
      task('high', 1, 1, { submittedAt: 2, priority: 10 }),
    ];
    expect(order(tasks)).toEqual(['high', 'low']);
  });

  it('lower tiers are served entirely first, whatever the tenant shares', () => {
    const tasks = [
      task('t1-a', 1, 1, { tenant: 'a', tier: 1 }),
      task('t0-b1', 1, 1, { tenant: 'b', tier: 0 }),
      task('t0-b2', 1, 1, { tenant: 'b', tier: 0, submittedAt: 1 }),
    ];
    // With only two cores, tier 0 takes both.
    expect(order(tasks, {}, 2)).toEqual(['t0-b1', 't0-b2']);
  });

  it('DRF across three tenants: lowest dominant share next, re-evaluated after each placement', () => {
    // Cluster: 10 cores, 100 GiB. Tenant a runs 4 cores (share 0.4 by CPU); b runs 20 GiB (0.2 by
    // memory); c runs nothing. Each queues 1-core, 1-GiB tasks.
    const tasks: Task[] = [];
    for (const tenant of ['a', 'b', 'c']) {
      for (let i = 0; i < 4; i++) tasks.push(task(`${tenant}${i}`, 1, 1, { tenant, submittedAt: i }));
    }
    const state = {
      usage: {
        a: { cpuMillis: 4000, memoryBytes: 0, diskBytes: 0, gpus: 0 },
        b: { cpuMillis: 0, memoryBytes: 20 * GiB, diskBytes: 0, gpus: 0 },
      },
      capacity: { cpuMillis: 10_000, memoryBytes: 100 * GiB, diskBytes: 0, gpus: 0 },
    };
    // c 0 -> c0 (c 0.1) -> c1 (c 0.2) -> tie b/c at 0.2, b's head is older -> b0 (b 0.21)
    // -> c2 (c 0.3) -> b1 (b 0.22) -> b2 (b 0.23); a (0.4) never gets a turn on 6 cores.
    const placed = schedulePass({ tasks, offers: [offer('h', 6, 100)], now, state }).placements.map(
      (p) => p.taskId,
    );
    expect(placed).toEqual(['c0', 'c1', 'b0', 'c2', 'b1', 'b2']);
  });

  it('DRF weights scale shares', () => {
    const tasks = [
      task('a0', 1, 1, { tenant: 'a' }),
      task('a1', 1, 1, { tenant: 'a', submittedAt: 1 }),
      task('b0', 1, 1, { tenant: 'b', submittedAt: 5 }),
    ];
    const capacity = { cpuMillis: 10_000, memoryBytes: 100 * GiB, diskBytes: 0, gpus: 0 };
    const usage = { b: { cpuMillis: 1000, memoryBytes: 0, diskBytes: 0, gpus: 0 } };
    expect(order(tasks, { capacity, usage }, 2)).toEqual(['a0', 'a1']);
    // Weight 4 makes b's share 0.025, below a's 0.1 after a0.
    expect(order(tasks, { capacity, usage, weights: { b: 4 } }, 2)).toEqual(['a0', 'b0']);
  });

  it('quota: a task that would push its tenant past a limit stays queued, smaller ones still go', () => {
    const tasks = [
      task('big', 3, 1, { tenant: 'a', submittedAt: 0 }),
      task('small', 1, 1, { tenant: 'a', submittedAt: 1 }),
      task('other', 3, 1, { tenant: 'b', submittedAt: 2 }),
    ];
    const res = schedulePass({
      tasks,
      offers: [offer('h', 100, 1000)],
      now,
      state: {
        usage: { a: { cpuMillis: 2000, memoryBytes: 0, diskBytes: 0, gpus: 0 } },
        quotas: { a: { cpuMillis: 4000 } },
      },
    });
    expect(res.placements.map((p) => p.taskId).sort()).toEqual(['other', 'small']);
    expect(res.unplaced).toEqual([
      {
        taskId: 'big',
        outcome: 'over-quota',
        reasons: [
          {
            key: 'quota:cpus',
            hosts: 0,
            totalHosts: 1,
            message: 'quota: tenant a would use 5 cpus, over its quota of 4 (2 in use)',
          },
        ],
      },
    ]);
  });

  it('quota counts what the pass itself placed', () => {
    const tasks = [0, 1, 2].map((i) => task(`t${i}`, 1, 1, { submittedAt: i }));
    const res = schedulePass({
      tasks,
      offers: [offer('h', 10, 10)],
      now,
      state: { quotas: { ns: { cpuMillis: 2000 } } },
    });
    expect(res.placements.map((p) => p.taskId)).toEqual(['t0', 't1']);
    expect(res.unplaced[0]!.outcome).toBe('over-quota');
  });
});
