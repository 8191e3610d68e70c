import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dueFires } from './catch-up.ts';
import { nextFires, parseSchedule } from './cron.ts';

const at = (s: string) => Date.parse(s);
const iso = (t: number) => new Date(t).toISOString();
const HOUR = 3_600_000;
const daily = parseSchedule('0 0 0 1/1 * ? *', 'UTC');

describe('dueFires', () => {
  it('a new trigger (no cursor) fires nothing and starts its cursor now', () => {
    const now = at('2026-01-05T12:00:00Z');
    const r = dueFires(daily, null, now);
    expect(r.fires).toEqual([]);
    expect(r.cursor).toBe(now);
    expect(iso(r.nextFireMs!)).toBe('2026-01-06T00:00:00.000Z');
  });

  it('fires the slot that just came due and moves the cursor onto it', () => {
    const r = dueFires(daily, at('2026-01-05T00:00:00Z'), at('2026-01-06T00:00:00.200Z'));
    expect(r.fires.map(iso)).toEqual(['2026-01-06T00:00:00.000Z']);
    expect(iso(r.cursor)).toBe('2026-01-06T00:00:00.000Z');
    expect(r.skipped).toBe(0);
    // evaluating again with the persisted cursor does not fire twice
    const again = dueFires(daily, r.cursor, at('2026-01-06T00:00:05Z'));
    expect(again.fires).toEqual([]);
    expect(again.cursor).toBe(r.cursor);
  });

  it('nothing due before the next slot', () => {
    const r = dueFires(daily, at('2026-01-05T00:00:00Z'), at('2026-01-05T23:59:59Z'));
    expect(r.fires).toEqual([]);
    expect(iso(r.cursor)).toBe('2026-01-05T00:00:00.000Z');
    expect(iso(r.nextFireMs!)).toBe('2026-01-06T00:00:00.000Z');
  });

  it('latest (default): after a 3-day outage runs once, for the most recent slot', () => {
    const r = dueFires(daily, at('2026-01-05T00:00:00Z'), at('2026-01-08T10:00:00Z'));
    expect(r.fires.map(iso)).toEqual(['2026-01-08T00:00:00.000Z']);
    expect(r.skipped).toBe(2);
    expect(iso(r.cursor)).toBe('2026-01-08T00:00:00.000Z');
  });

  it('all: runs every missed slot oldest first, capped to the most recent maxCatchUp', () => {
    const r = dueFires(daily, at('2026-01-05T00:00:00Z'), at('2026-01-08T10:00:00Z'), { mode: 'all' });
    expect(r.fires.map(iso)).toEqual([
      '2026-01-06T00:00:00.000Z',
      '2026-01-07T00:00:00.000Z',
      '2026-01-08T00:00:00.000Z',
    ]);
    const capped = dueFires(daily, at('2026-01-01T00:00:00Z'), at('2026-01-31T10:00:00Z'), {
      mode: 'all',
      maxCatchUp: 2,
    });
    expect(capped.fires.map(iso)).toEqual(['2026-01-30T00:00:00.000Z', '2026-01-31T00:00:00.000Z']);
    expect(capped.skipped).toBe(28);
  });

  it('none: skips slots missed while down but still runs an on-time slot', () => {
    const down = dueFires(daily, at('2026-01-05T00:00:00Z'), at('2026-01-08T10:00:00Z'), { mode: 'none' });
    expect(down.fires).toEqual([]);
    expect(down.skipped).toBe(3);
    expect(iso(down.cursor)).toBe('2026-01-08T00:00:00.000Z');
    const onTime = dueFires(daily, at('2026-01-07T00:00:00Z'), at('2026-01-08T00:00:30Z'), { mode: 'none' });
    expect(onTime.fires.map(iso)).toEqual(['2026-01-08T00:00:00.000Z']);
  });

  it('a long outage of a per-second schedule stays cheap and caps the skipped count', () => {
    const s = parseSchedule('* * * ? * *');
    const r = dueFires(s, at('2026-01-01T00:00:00Z'), at('2026-01-08T00:00:00Z'), {
      mode: 'all',
      maxCatchUp: 3,
    });
    expect(r.fires.map(iso)).toEqual([
      '2026-01-07T23:59:58.000Z',
      '2026-01-07T23:59:59.000Z',
      '2026-01-08T00:00:00.000Z',
    ]);
    expect(r.skippedCapped).toBe(true);
  });

  it('across a DST change the catch-up sees the shifted slot once', () => {
    const s = parseSchedule('0 30 2 * * ?', 'America/Los_Angeles');
    const r = dueFires(s, at('2026-03-07T10:30:00Z'), at('2026-03-08T12:00:00Z'));
    expect(r.fires.map(iso)).toEqual(['2026-03-08T10:30:00.000Z']);
  });

  it('property: polling at arbitrary times with restarts neither duplicates nor misses a slot', () => {
    const hourly = parseSchedule('0 17 * * * ?', 'Europe/Berlin');
    const start = at('2026-03-28T00:00:00Z');
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 * HOUR }), { minLength: 1, maxLength: 40 }),
        (gaps) => {
          let cursor: number | null = start;
          let now = start;
          const fired: number[] = [];
          for (const gap of gaps) {
            now += gap;
            const r = dueFires(hourly, cursor, now, { mode: 'all', maxCatchUp: 1000 });
            fired.push(...r.fires);
            cursor = r.cursor; // persisted; a restart resumes from it
          }
          expect(fired).toEqual(nextFires(hourly, start, fired.length + 50).filter((t) => t <= now));
        },
      ),
      { numRuns: 50 },
    );
  });
});
