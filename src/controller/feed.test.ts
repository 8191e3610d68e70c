import { describe, expect, it } from 'vitest';
import type { Task } from '../scheduler/index.ts';
import { TaskFeed } from './feed.ts';

function task(id: string, tenant = 't', priority = 0, submittedAt = 0): Task {
  return {
    id,
    tenant,
    priority,
    submittedAt,
    resources: { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 },
  };
}

function sink() {
  const got: string[] = [];
  return { got, enqueue: (t: Task) => got.push(t.id) };
}

describe('TaskFeed', () => {
  it('names the tenants that still have tasks, fed or waiting', () => {
    const feed = new TaskFeed(1);
    feed.add(task('a1', 'a'));
    feed.add(task('a2', 'a'));
    feed.add(task('b1', 'b'));
    expect(feed.waitingTenants().sort()).toEqual(['a', 'b']);
    const s = sink();
    feed.fill(s);
    feed.placed('b1');
    expect(feed.waitingTenants()).toEqual(['a']);
    feed.placed('a1');
    expect(feed.waitingTenants()).toEqual(['a']); // a2 waits to be fed
    feed.remove('a2');
    expect(feed.waitingTenants()).toEqual([]);
  });

  it('feeds each tenant up to its window, highest priority then oldest first', () => {
    const feed = new TaskFeed(2);
    feed.add(task('a1', 'a', 0, 1));
    feed.add(task('a2', 'a', 0, 2));
    feed.add(task('a3', 'a', 5, 3));
    feed.add(task('b1', 'b', 0, 1));
    const s = sink();
    feed.fill(s);
    expect(s.got).toEqual(['a3', 'a1', 'b1']);
    expect(feed.size).toBe(4);
    feed.placed('a3');
    feed.fill(s);
    expect(s.got).toEqual(['a3', 'a1', 'b1', 'a2']);
  });

  it('feeds a more important tier first, whatever its priority and age', () => {
    const feed = new TaskFeed(1);
    feed.add(task('batch', 't', 9, 1));
    feed.add({ ...task('urgent', 't', 0, 5), tier: 0 });
    feed.add({ ...task('later', 't', 100, 0), tier: 3 });
    const s = sink();
    feed.fill(s);
    expect(s.got).toEqual(['batch']); // tier 0 (absent) with the highest priority of tier 0
    feed.placed('batch');
    feed.fill(s);
    feed.placed('urgent');
    feed.fill(s);
    expect(s.got).toEqual(['batch', 'urgent', 'later']);
  });

  it('removes tasks from the backlog or reports that the scheduler has them', () => {
    const feed = new TaskFeed(1);
    feed.add(task('x'));
    feed.add(task('y', 't', 0, 1));
    feed.fill(sink());
    expect(feed.remove('x')).toBe('scheduler');
    expect(feed.remove('y')).toBe('backlog');
    expect(feed.remove('z')).toBeUndefined();
    const s = sink();
    feed.fill(s);
    expect(s.got).toEqual([]);
    expect(feed.size).toBe(0);
  });

  it('widens the window of a tenant whose whole window stayed unplaced', () => {
    const feed = new TaskFeed(1);
    for (let i = 0; i < 4; i++) feed.add(task(`t${i}`, 't', 0, i));
    const s = sink();
    feed.fill(s);
    feed.passDone(new Set());
    feed.fill(s);
    expect(s.got).toEqual(['t0', 't1']);
    feed.passDone(new Set(['t']));
    feed.fill(s);
    expect(s.got).toEqual(['t0', 't1']);
  });

  it('handles 10,000 tasks in order', () => {
    const feed = new TaskFeed(256);
    for (let i = 0; i < 10_000; i++) feed.add(task(`n${i}`, 't', 0, i));
    const s = sink();
    let rounds = 0;
    while (feed.size > 0) {
      feed.fill(s);
      for (const id of s.got.slice(-256)) feed.placed(id);
      rounds++;
    }
    expect(s.got).toHaveLength(10_000);
    expect(s.got[9999]).toBe('n9999');
    expect(rounds).toBeLessThanOrEqual(40);
  });
});
