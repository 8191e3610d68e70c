import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dateIntAdd,
  dateIntToTs,
  daysInMonth,
  formatTs,
  isLeapYear,
  offsetAt,
  tsToDateInt,
} from './dates.ts';
import { ExprError } from './errors.ts';

const ZONES = [
  'UTC',
  'America/Los_Angeles',
  'America/Sao_Paulo',
  'Europe/London',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Australia/Lord_Howe', // 30-minute DST shift
  'Pacific/Chatham', // +12:45 / +13:45
  'Pacific/Apia', // skipped 2011-12-30 entirely
  'America/Havana', // DST changes at midnight
];

describe('calendar', () => {
  it('knows leap years and month lengths', () => {
    expect([1900, 2000, 2016, 2017, 2100].map(isLeapYear)).toEqual([false, true, true, false, false]);
    expect([1, 2, 4, 12].map((m) => daysInMonth(2016, m))).toEqual([31, 29, 30, 31]);
    expect(daysInMonth(2017, 2)).toBe(28);
  });
});

describe('timezones', () => {
  it('computes offsets from Intl', () => {
    expect(offsetAt(Date.UTC(2017, 6, 1), 'America/Los_Angeles')).toBe(-7 * 3600_000);
    expect(offsetAt(Date.UTC(2017, 0, 1), 'America/Los_Angeles')).toBe(-8 * 3600_000);
    expect(offsetAt(Date.UTC(2017, 0, 1), 'Asia/Kathmandu')).toBe(5.75 * 3600_000);
  });
  it('rejects a day that a timezone skipped', () => {
    expect(() => dateIntToTs(20111230, 'Pacific/Apia')).toThrow(ExprError);
    expect(dateIntToTs(20111231, 'Pacific/Apia') - dateIntToTs(20111229, 'Pacific/Apia')).toBe(24 * 3600_000);
  });
  it('every instant lies between the start of its day and the start of the next (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2040, 0, 1) }),
        fc.constantFrom(...ZONES),
        (ts, tz) => {
          const d = tsToDateInt(ts, tz);
          const start = dateIntToTs(d, tz);
          expect(start).toBeLessThanOrEqual(ts);
          expect(tsToDateInt(start, tz)).toBe(d);
          let next: number;
          try {
            next = dateIntToTs(dateIntAdd(d, 1), tz);
          } catch {
            next = dateIntToTs(dateIntAdd(d, 2), tz); // the next day was skipped (Apia 2011)
          }
          expect(ts).toBeLessThan(next);
          expect(tsToDateInt(start - 1, tz)).not.toBe(d); // nothing earlier is in the same day
        },
      ),
      { numRuns: 2000 },
    );
  });
  it('formats midnight of the day start as 00:00 unless DST skipped it', () => {
    expect(formatTs(dateIntToTs(20171105, 'America/Los_Angeles'), 'HH:mm', 'America/Los_Angeles')).toBe(
      '00:00',
    );
    expect(formatTs(dateIntToTs(20181104, 'America/Sao_Paulo'), 'HH:mm', 'America/Sao_Paulo')).toBe('01:00');
  });
});
