import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  instantToWall,
  isValidTimezone,
  offsetAt,
  offsetAtUncached,
  utcWall,
  wallToInstant,
} from './zone.ts';

const ZONES = [
  'UTC',
  'America/Los_Angeles',
  'Europe/London',
  'Australia/Lord_Howe',
  'America/Santiago',
  'Asia/Kathmandu',
];

describe('timezone', () => {
  it('validates IANA names', () => {
    expect(isValidTimezone('America/Los_Angeles')).toBe(true);
    expect(isValidTimezone('UTC')).toBe(true);
    expect(isValidTimezone('Nowhere/City')).toBe(false);
    expect(isValidTimezone('')).toBe(false);
  });

  it('the per-day offset cache agrees with Intl at every second (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.integer({ min: 0, max: 4_102_444_800 }), // 1970..2100 in seconds
        (tz, sec) => {
          expect(offsetAt(tz, sec * 1000)).toBe(offsetAtUncached(tz, sec * 1000));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('agrees with Intl on both sides of a transition to the second', () => {
    // Los Angeles springs forward at 2026-03-08T10:00:00Z.
    const t = Date.parse('2026-03-08T10:00:00Z');
    for (const x of [t - 1000, t, t + 1000]) {
      expect(offsetAt('America/Los_Angeles', x)).toBe(offsetAtUncached('America/Los_Angeles', x));
    }
    expect(offsetAt('America/Los_Angeles', t - 1)).toBe(-8 * 3_600_000);
    expect(offsetAt('America/Los_Angeles', t)).toBe(-7 * 3_600_000);
  });

  it('wallToInstant: gap shifts forward, overlap takes the first occurrence, else exact', () => {
    const LA = 'America/Los_Angeles';
    expect(new Date(wallToInstant(LA, utcWall(2026, 3, 8, 2, 30))).toISOString()).toBe(
      '2026-03-08T10:30:00.000Z',
    );
    expect(new Date(wallToInstant(LA, utcWall(2026, 11, 1, 1, 30))).toISOString()).toBe(
      '2026-11-01T08:30:00.000Z',
    );
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: 0, max: 4_102_444_800 }), (tz, sec) => {
        const instant = sec * 1000;
        const wall = instantToWall(tz, instant);
        const back = wallToInstant(tz, wall);
        // the same wall time; the same instant unless it is the second pass of a repeated hour
        expect(instantToWall(tz, back)).toBe(wall);
        expect(back).toBeLessThanOrEqual(instant);
      }),
      { numRuns: 2000 },
    );
  });
});
