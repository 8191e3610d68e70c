import { describe, expect, it } from 'vitest';
import { span, timeline } from './timeline.js';

const T = Date.parse('2026-01-01T00:00:00Z');
const iso = (s: number) => new Date(T + s * 1000).toISOString();

describe('timeline', () => {
  it('draws each attempt from launch to end, rows by start time, on the span of the run', () => {
    const t = timeline(
      [
        { id: 'b', phase: 'Succeeded', attempts: 2, startTime: iso(10), endTime: iso(100) },
        { id: 'a', phase: 'Succeeded', startTime: iso(0), endTime: iso(10) },
        { id: 'never', phase: 'NotStarted' },
      ],
      new Map([
        [
          'b',
          [
            { attempt: 1, phase: 'Failed', milestones: { launched: T + 10_000, finished: T + 20_000 } },
            { attempt: 2, phase: 'Succeeded', milestones: { launched: T + 50_000, finished: T + 100_000 } },
          ],
        ],
      ]),
      T + 1_000_000,
    );
    expect(t.rows.map((r) => r.id)).toEqual(['a', 'b']);
    expect(t.rows[0]!.bars).toMatchObject([{ attempt: 1, left: 0, width: 10 }]);
    expect(t.rows[1]!.bars).toMatchObject([
      { attempt: 1, phase: 'Failed', left: 10, width: 10 },
      { attempt: 2, phase: 'Succeeded', left: 50, width: 50 },
    ]);
  });

  it('runs a running attempt up to now, and keeps bars visible and inside the chart', () => {
    const t = timeline(
      [
        { id: 'run', phase: 'Running', startTime: iso(0) },
        { id: 'blip', phase: 'Succeeded', startTime: iso(100), endTime: iso(100) },
      ],
      new Map(),
      T + 100_000,
    );
    expect(t.rows[0]!.bars[0]).toMatchObject({ left: 0, width: 100 });
    const blip = t.rows[1]!.bars[0]!;
    expect(blip.width).toBeGreaterThan(0);
    expect(blip.left + blip.width).toBeLessThanOrEqual(100);
  });

  it('ignores bad timestamps instead of drawing NaN', () => {
    const t = timeline([{ id: 'x', phase: 'Running', startTime: 'not a time' }], new Map(), T);
    expect(t.rows).toEqual([]);
  });
});

describe('span', () => {
  it('reads as a duration', () => {
    expect(span(5200)).toBe('5.2s');
    expect(span(185_000)).toBe('3m5s');
    expect(span(3_720_000)).toBe('1h2m');
  });
});
