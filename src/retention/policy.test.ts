import { describe, expect, it } from 'vitest';
import { hasLimit, mergePolicy, ttlCutoffs } from './policy.ts';

describe('retention policy', () => {
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

  it('turns TTLs into per-phase cut-offs: a run that ended exactly ttl ago is due', () => {
    const now = Date.UTC(2026, 0, 2);
    const cuts = ttlCutoffs({ ttlSecondsAfterFinished: { succeeded: 86_400, stopped: 0 } }, now);
    expect(cuts.map((c) => [c.phase, c.endedBefore])).toEqual([
      ['Succeeded', '2026-01-01T00:00:00.001Z'],
      ['Stopped', '2026-01-02T00:00:00.001Z'],
    ]);
    expect(ttlCutoffs({ keepLast: 3 }, now)).toEqual([]);
  });
});
