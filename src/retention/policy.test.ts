import { describe, expect, it } from 'vitest';
import { expiredRuns, hasLimit, mergePolicy, type RetentionCandidate } from './policy.ts';

const H = 3_600_000;
const NOW = Date.UTC(2026, 0, 10);
const c = (
  name: string,
  hoursAgo: number,
  phase: RetentionCandidate['phase'] = 'Succeeded',
  protectedBy?: string,
) => ({
  name,
  phase,
  finishedMs: NOW - hoursAgo * H,
  ...(protectedBy ? { protectedBy } : {}),
});

describe('retention policy', () => {
  it('keeps the keepLast newest finished runs and deletes the older ones, oldest first', () => {
    const runs = [c('a', 5), c('b', 1), c('c', 3), c('d', 4), c('e', 2)];
    expect(expiredRuns({ keepLast: 2 }, runs, NOW).map((e) => e.name)).toEqual(['a', 'd', 'c']);
    expect(expiredRuns({ keepLast: 0 }, runs, NOW)).toHaveLength(5);
    expect(expiredRuns({ keepLast: 10 }, runs, NOW)).toEqual([]);
    expect(expiredRuns({}, runs, NOW)).toEqual([]);
  });

  it('deletes by phase once its TTL has passed since the run ended (injected clock)', () => {
    const runs = [c('ok-old', 25), c('ok-new', 23), c('bad-old', 25, 'Failed'), c('stopped', 1, 'Stopped')];
    const policy = { ttlSecondsAfterFinished: { succeeded: 24 * 3600, stopped: 0 } };
    expect(expiredRuns(policy, runs, NOW).map((e) => e.name)).toEqual(['ok-old', 'stopped']);
    // one hour later, ok-new's day is up too; failures have no TTL here
    expect(expiredRuns(policy, runs, NOW + 1.5 * H).map((e) => e.name)).toEqual([
      'ok-old',
      'ok-new',
      'stopped',
    ]);
  });

  it('never selects a protected run, but counts it among the kept ones', () => {
    const runs = [
      c('newest', 1, 'Succeeded', 'restart pending'),
      c('mid', 2),
      c('old', 3, 'Failed', 'tasks'),
    ];
    expect(expiredRuns({ keepLast: 1 }, runs, NOW).map((e) => e.name)).toEqual(['mid']);
    expect(
      expiredRuns({ keepLast: 0, ttlSecondsAfterFinished: { failed: 0 } }, runs, NOW).map((e) => e.name),
    ).toEqual(['mid']);
  });

  it("merges a workflow's policy over the server defaults field by field", () => {
    const defaults = { keepLast: 1000, ttlSecondsAfterFinished: { succeeded: 60, failed: 120 } };
    expect(mergePolicy(defaults, undefined)).toEqual(defaults);
    expect(mergePolicy(defaults, { keepLast: 5, ttlSecondsAfterFinished: { failed: 10 } })).toEqual({
      keepLast: 5,
      ttlSecondsAfterFinished: { succeeded: 60, failed: 10 },
    });
    expect(mergePolicy({}, { ttlSecondsAfterFinished: { stopped: 1 } })).toEqual({
      ttlSecondsAfterFinished: { stopped: 1 },
    });
    expect(hasLimit(mergePolicy({}, {}))).toBe(false);
    expect(hasLimit({ keepLast: 0 })).toBe(true);
  });
});
