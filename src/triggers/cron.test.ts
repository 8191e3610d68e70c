import { CronExpressionParser } from 'cron-parser';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CronError, nextFireAfter, nextFires, parseSchedule } from './cron.ts';

const iso = (t: number) => new Date(t).toISOString();
const at = (s: string) => Date.parse(s);
const local = (t: number, tz: string) => new Date(t).toLocaleString('sv-SE', { timeZone: tz });

function fires(expr: string, tz: string, from: string, n: number): string[] {
  return nextFires(parseSchedule(expr, tz), at(from), n).map(iso);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CronError);
    return (e as CronError).code;
  }
  return undefined;
}

describe('parseSchedule formats', () => {
  it('runs the spec example "0 0 0 1/1 * ? *" daily at midnight', () => {
    expect(fires('0 0 0 1/1 * ? *', 'UTC', '2026-01-30T12:00:00Z', 3)).toEqual([
      '2026-01-31T00:00:00.000Z',
      '2026-02-01T00:00:00.000Z',
      '2026-02-02T00:00:00.000Z',
    ]);
  });

  it('spec example in America/Los_Angeles fires at local midnight', () => {
    const s = parseSchedule('0 0 0 1/1 * ? *', 'America/Los_Angeles');
    const t = nextFireAfter(s, at('2026-07-01T12:00:00Z'))!;
    expect(iso(t)).toBe('2026-07-02T07:00:00.000Z');
  });

  it('accepts Quartz 6-field and classic 5-field', () => {
    expect(parseSchedule('0 15 10 ? * *').format).toBe('quartz6');
    expect(parseSchedule('15 10 * * *').format).toBe('classic5');
    expect(fires('15 10 * * *', 'UTC', '2026-01-01T10:15:00Z', 1)).toEqual(['2026-01-02T10:15:00.000Z']);
    expect(fires('30 0/20 * * * ?', 'UTC', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2026-01-01T00:00:30.000Z',
      '2026-01-01T00:20:30.000Z',
      '2026-01-01T00:40:30.000Z',
    ]);
  });

  it('uses Quartz day-of-week numbering 1-7 = SUN-SAT and classic 0-7 = SUN-SAT', () => {
    // 2026-01-04 is a Sunday, 2026-01-05 a Monday.
    expect(fires('0 0 12 ? * 2', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-05T12:00:00.000Z']);
    expect(fires('0 12 * * 1', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-05T12:00:00.000Z']);
    expect(fires('0 12 * * 7', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-04T12:00:00.000Z']);
    expect(fires('0 0 12 ? * MON-FRI', 'UTC', '2026-01-03T00:00:00Z', 1)).toEqual([
      '2026-01-05T12:00:00.000Z',
    ]);
    expect(fires('0 12 * * SUN', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-04T12:00:00.000Z']);
  });

  it('accepts month names containing L or W, mixed with numbers', () => {
    expect(fires('0 0 1 6-JUL *', 'UTC', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2026-06-01T00:00:00.000Z',
      '2026-07-01T00:00:00.000Z',
    ]);
    expect(() => parseSchedule('0 0 1 5L *')).toThrow(
      /month: '5L' — L, W and # are only allowed in the day fields/,
    );
  });

  it('supports wrapping ranges (FRI-MON, 22-2)', () => {
    const days = nextFires(parseSchedule('0 0 12 ? * FRI-MON'), at('2026-01-01T00:00:00Z'), 5).map((t) =>
      new Date(t).getUTCDay(),
    );
    expect(days).toEqual([5, 6, 0, 1, 5]);
    const hours = nextFires(parseSchedule('0 0 22-2 * * ?'), at('2026-01-01T12:00:00Z'), 5).map((t) =>
      new Date(t).getUTCHours(),
    );
    expect(hours).toEqual([22, 23, 0, 1, 2]);
  });

  it('supports L, L-n, LW, nW, nL and n#k', () => {
    expect(fires('0 0 12 L * ?', 'UTC', '2026-01-31T13:00:00Z', 2)).toEqual([
      '2026-02-28T12:00:00.000Z',
      '2026-03-31T12:00:00.000Z',
    ]);
    expect(fires('0 0 12 L-2 * ?', 'UTC', '2026-02-01T00:00:00Z', 1)).toEqual(['2026-02-26T12:00:00.000Z']);
    // Last weekday of Feb 2026 (28th is a Saturday) is Friday 27th.
    expect(fires('0 0 12 LW * ?', 'UTC', '2026-02-01T00:00:00Z', 1)).toEqual(['2026-02-27T12:00:00.000Z']);
    // Nov 1 2026 is a Sunday: 1W is Monday the 2nd; Aug 1 2026 is a Saturday: 1W is Monday the 3rd.
    expect(fires('0 0 12 1W * ?', 'UTC', '2026-10-15T00:00:00Z', 1)).toEqual(['2026-11-02T12:00:00.000Z']);
    expect(fires('0 0 12 1W * ?', 'UTC', '2026-07-15T00:00:00Z', 1)).toEqual(['2026-08-03T12:00:00.000Z']);
    // 15 Feb 2026 is a Sunday -> Monday 16th.
    expect(fires('0 0 12 15W * ?', 'UTC', '2026-02-01T00:00:00Z', 1)).toEqual(['2026-02-16T12:00:00.000Z']);
    // Last Friday (Quartz 6L) of January 2026 is the 30th.
    expect(fires('0 0 12 ? * 6L', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-30T12:00:00.000Z']);
    expect(fires('0 12 * * 5L', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-01-30T12:00:00.000Z']);
    // Second Monday of March 2026 is the 9th.
    expect(fires('0 0 12 ? 3 MON#2', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-03-09T12:00:00.000Z']);
    expect(fires('0 12 * 3 1#2', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-03-09T12:00:00.000Z']);
  });

  it('honours the year field and returns null when exhausted', () => {
    expect(fires('0 0 0 1 1 ? 2027,2029', 'UTC', '2026-06-01T00:00:00Z', 3)).toEqual([
      '2027-01-01T00:00:00.000Z',
      '2029-01-01T00:00:00.000Z',
    ]);
    expect(nextFireAfter(parseSchedule('0 0 0 1 1 ? 2020'), at('2026-01-01T00:00:00Z'))).toBeNull();
    expect(fires('0 0 0 1 1 ? 2030/2', 'UTC', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2030-01-01T00:00:00.000Z',
      '2032-01-01T00:00:00.000Z',
    ]);
  });

  it('returns null for impossible dates and finds leap days', () => {
    expect(nextFireAfter(parseSchedule('0 0 0 30 2 ?'), at('2026-01-01T00:00:00Z'))).toBeNull();
    expect(fires('0 0 29 2 *', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2028-02-29T00:00:00.000Z']);
  });

  it('classic cron ORs day-of-month and day-of-week when both are restricted', () => {
    // the 13th or any Friday
    const got = fires('0 0 13 * 5', 'UTC', '2026-02-01T00:00:00Z', 4);
    expect(got).toEqual([
      '2026-02-06T00:00:00.000Z',
      '2026-02-13T00:00:00.000Z',
      '2026-02-20T00:00:00.000Z',
      '2026-02-27T00:00:00.000Z',
    ]);
    expect(fires('0 0 1 * 1', 'UTC', '2026-02-24T00:00:00Z', 2)).toEqual([
      '2026-03-01T00:00:00.000Z',
      '2026-03-02T00:00:00.000Z',
    ]);
  });

  it('supports macros', () => {
    expect(fires('@daily', 'UTC', '2026-01-01T05:00:00Z', 1)).toEqual(['2026-01-02T00:00:00.000Z']);
    expect(fires('@hourly', 'UTC', '2026-01-01T05:10:00Z', 1)).toEqual(['2026-01-01T06:00:00.000Z']);
  });
});

describe('parseSchedule errors', () => {
  it('rejects bad input with codes and messages naming the field', () => {
    expect(codeOf(() => parseSchedule('0 0 * *'))).toBe('CRON_INVALID');
    expect(() => parseSchedule('0 0 * *')).toThrow(/expected 5 fields/);
    expect(() => parseSchedule('0 61 * * * ?')).toThrow(/minute: 61 .* expected 0-59/);
    expect(() => parseSchedule('0 0 25 * * ?')).toThrow(/hour: 25/);
    expect(() => parseSchedule('0 0 0 ? * 0')).toThrow(/day-of-week: 0 .*1-7 \(1 = SUN/);
    expect(() => parseSchedule('0 0 0 ? 13 *')).toThrow(/month: 13/);
    expect(() => parseSchedule('0 0 0 ? FOO *')).toThrow(/month: 'FOO'/);
    expect(() => parseSchedule('0 0 0 ? * ?')).toThrow(/both be '\?'/);
    expect(() => parseSchedule('0 0 0 1 * ? 1969')).toThrow(/year: 1969/);
    expect(() => parseSchedule('? 0 0 1 * ?')).toThrow(/second: '\?' is only allowed/);
    expect(() => parseSchedule('0 0 0 1 * ? L')).toThrow(/year/);
    expect(() => parseSchedule('0 0 0 1 * 2#6')).toThrow(/day-of-week: .* 1-5/);
    expect(() => parseSchedule('0 0 0 5X * ?')).toThrow(/day-of-month/);
    expect(() => parseSchedule('0 */0 * * * ?')).toThrow(/step .* at least 1/);
    expect(() => parseSchedule('0 1,,2 * * * ?')).toThrow(/empty item/);
    expect(codeOf(() => parseSchedule(42 as unknown as string))).toBe('CRON_INVALID');
  });

  it('refuses a year range written backwards instead of wrapping it (other fields do wrap)', () => {
    for (const year of ['2030-2025', '2099-1970', '2030-2025/2', '2020,2030-2025']) {
      expect(codeOf(() => parseSchedule(`0 0 0 1 1 ? ${year}`))).toBe('CRON_INVALID');
      expect(() => parseSchedule(`0 0 0 1 1 ? ${year}`)).toThrow(
        /year: range '2\d{3}-\d{4}(\/2)?' runs backwards/,
      );
    }
    expect(parseSchedule('0 0 0 1 1 ? 2025-2030').years).toEqual([2025, 2026, 2027, 2028, 2029, 2030]);
    expect(parseSchedule('0 0 22-2 * * ?').hours).toEqual([0, 1, 2, 22, 23]);
  });

  it("accepts '*' in both day fields of a Quartz expression (Quartz itself wants one '?')", () => {
    const every = parseSchedule('0 0 12 * * *');
    const quartz = parseSchedule('0 0 12 * * ?');
    const from = Date.parse('2026-02-27T00:00:00Z');
    expect(nextFires(every, from, 4)).toEqual(nextFires(quartz, from, 4));
  });

  it('rejects unsupported features naming them', () => {
    expect(codeOf(() => parseSchedule('H * * * *'))).toBe('CRON_UNSUPPORTED');
    expect(() => parseSchedule('H * * * *')).toThrow(/hashed values \('H'\)/);
    expect(codeOf(() => parseSchedule('0 0 12 15 * MON'))).toBe('CRON_UNSUPPORTED');
    expect(() => parseSchedule('0 0 12 15 * MON')).toThrow(/both day-of-month and day-of-week/);
    expect(codeOf(() => parseSchedule('@reboot'))).toBe('CRON_UNSUPPORTED');
  });

  it('validates the time zone', () => {
    expect(codeOf(() => parseSchedule('0 0 * * *', 'Mars/Olympus'))).toBe('CRON_TIMEZONE');
    expect(() => parseSchedule('0 0 * * *', 'Mars/Olympus')).toThrow(/IANA/);
    // Intl would take these, as Asia/Dhaka and a fixed UTC-5: a daily job would fire at the wrong hour.
    for (const abbreviation of ['BST', 'EST', 'PST']) {
      expect(codeOf(() => parseSchedule('0 0 * * *', abbreviation))).toBe('CRON_TIMEZONE');
      expect(() => parseSchedule('0 0 * * *', abbreviation)).toThrow(/abbreviation/);
    }
    expect(codeOf(() => parseSchedule('0 0 * * *', 'UTC'))).toBeUndefined();
    expect(parseSchedule('0 0 * * *', 'Asia/Kolkata').timezone).toBe('Asia/Kolkata');
  });
});

describe('DST', () => {
  const LA = 'America/Los_Angeles';

  it('spring forward: a 02:30 daily fires exactly once that day, at 03:30 PDT', () => {
    const s = parseSchedule('0 30 2 * * ?', LA);
    const got = nextFires(s, at('2026-03-07T00:00:00Z'), 3);
    expect(got.map((t) => local(t, LA))).toEqual([
      '2026-03-07 02:30:00',
      '2026-03-08 03:30:00',
      '2026-03-09 02:30:00',
    ]);
    expect(iso(got[1]!)).toBe('2026-03-08T10:30:00.000Z');
  });

  it('fall back: a 01:30 daily fires exactly once that day, at the first occurrence (PDT)', () => {
    const s = parseSchedule('0 30 1 * * ?', LA);
    const got = nextFires(s, at('2026-10-31T12:00:00Z'), 2);
    expect(got.map(iso)).toEqual(['2026-11-01T08:30:00.000Z', '2026-11-02T09:30:00.000Z']);
    // Asking from inside the repeated hour (01:40 PST, after the first 01:30) does not fire again.
    expect(iso(nextFireAfter(s, at('2026-11-01T09:40:00Z'))!)).toBe('2026-11-02T09:30:00.000Z');
  });

  it('an hourly schedule does not repeat the fall-back hour and skips nothing but the gap', () => {
    const s = parseSchedule('0 30 * * * ?', LA);
    const back = nextFires(s, at('2026-11-01T07:00:00Z'), 3).map(iso);
    expect(back).toEqual([
      '2026-11-01T07:30:00.000Z',
      '2026-11-01T08:30:00.000Z',
      '2026-11-01T10:30:00.000Z',
    ]);
    const forward = nextFires(s, at('2026-03-08T08:00:00Z'), 3).map((t) => local(t, LA));
    expect(forward).toEqual(['2026-03-08 00:30:00', '2026-03-08 01:30:00', '2026-03-08 03:30:00']);
  });

  it('the shifted gap instant is still found when asked just after the gap', () => {
    // 02:45 does not exist on 2026-03-08; it fires at 03:45 PDT even when asked at 03:15 PDT.
    const s = parseSchedule('0 45 2 * * ?', LA);
    expect(iso(nextFireAfter(s, at('2026-03-08T10:15:00Z'))!)).toBe('2026-03-08T10:45:00.000Z');
    // and once it has fired, the next is the following day's 02:45 PDT
    expect(nextFireAfter(s, at('2026-03-08T10:45:00Z'))).toBe(at('2026-03-09T09:45:00Z'));
  });

  it('an earlier non-shifted slot wins over a shifted gap slot', () => {
    // minutes 15 and 45, hours 2 and 3: 02:15/02:45 shift to 03:15/03:45, which coincide with real slots.
    const s = parseSchedule('0 15,45 2,3 * * ?', LA);
    expect(nextFires(s, at('2026-03-08T09:00:00Z'), 3).map((t) => local(t, LA))).toEqual([
      '2026-03-08 03:15:00',
      '2026-03-08 03:45:00',
      '2026-03-09 02:15:00',
    ]);
    // 02:50 shifts to 03:50, but 03:10 comes first.
    const t = parseSchedule('0 10,50 2,3 * * ?', LA);
    expect(nextFires(t, at('2026-03-08T09:00:00Z'), 3).map((x) => local(x, LA))).toEqual([
      '2026-03-08 03:10:00',
      '2026-03-08 03:50:00',
      '2026-03-09 02:10:00',
    ]);
  });

  it('works in the southern hemisphere and with half-hour shifts', () => {
    // Sydney springs forward 2026-10-04 02:00 -> 03:00, falls back 2026-04-05 03:00 -> 02:00.
    const s = parseSchedule('0 30 2 * * ?', 'Australia/Sydney');
    expect(nextFires(s, at('2026-10-02T10:00:00Z'), 3).map((t) => local(t, 'Australia/Sydney'))).toEqual([
      '2026-10-03 02:30:00',
      '2026-10-04 03:30:00',
      '2026-10-05 02:30:00',
    ]);
    const fallBack = nextFires(s, at('2026-04-03T20:00:00Z'), 3).map(iso);
    // 2026-04-05 02:30 happens at +11 first (15:30Z on the 4th), then again at +10, which does not fire.
    expect(fallBack).toEqual([
      '2026-04-04T15:30:00.000Z',
      '2026-04-05T16:30:00.000Z',
      '2026-04-06T16:30:00.000Z',
    ]);
    // Lord Howe shifts by 30 minutes: 02:15 does not exist on 2026-10-04 and fires at 02:45.
    const lh = parseSchedule('0 15 2 * * ?', 'Australia/Lord_Howe');
    expect(nextFires(lh, at('2026-10-03T12:00:00Z'), 2).map((t) => local(t, 'Australia/Lord_Howe'))).toEqual([
      '2026-10-04 02:45:00',
      '2026-10-05 02:15:00',
    ]);
  });

  it('fires each wall-clock slot at most once, strictly increasing, around every transition', () => {
    const transitions: [string, string][] = [
      [LA, '2026-03-07T00:00:00Z'],
      [LA, '2026-10-31T00:00:00Z'],
      ['Europe/Berlin', '2026-03-28T00:00:00Z'],
      ['Europe/Berlin', '2026-10-24T00:00:00Z'],
      ['Australia/Sydney', '2026-04-03T00:00:00Z'],
      ['Australia/Sydney', '2026-10-02T00:00:00Z'],
      ['America/Santiago', '2026-04-03T00:00:00Z'],
      ['America/Santiago', '2026-09-04T00:00:00Z'],
    ];
    for (const [tz, from] of transitions) {
      for (const expr of ['0 */15 * * * ?', '0 0 * * * ?', '0 30 1,2 * * ?', '0 0 0 * * ?']) {
        const s = parseSchedule(expr, tz);
        const got = nextFires(s, at(from), 400);
        const walls = got.map((t) => local(t, tz));
        for (let i = 1; i < got.length; i++) expect(got[i]!).toBeGreaterThan(got[i - 1]!);
        expect(new Set(walls).size).toBe(walls.length);
      }
    }
  });
});

describe('agreement with cron-parser where both are unambiguous (UTC)', () => {
  // Fields without DST or Quartz-specific differences: both implementations must agree.
  const field = (max: number, min = 0) =>
    fc.oneof(
      fc.constant('*'),
      fc.integer({ min, max }).map(String),
      fc
        .tuple(fc.integer({ min, max }), fc.integer({ min, max }))
        .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
      fc.integer({ min: 1, max: 7 }).map((s) => `*/${s}`),
    );
  it('classic 5-field expressions produce the same next fires', () => {
    fc.assert(
      fc.property(
        field(59),
        field(23),
        field(28, 1),
        field(12, 1),
        fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
        (mi, h, dom, mon, from) => {
          const expr = `${mi} ${h} ${dom} ${mon} *`;
          const ours = nextFires(parseSchedule(expr), from, 3);
          const it = CronExpressionParser.parse(expr, { currentDate: new Date(from), tz: 'UTC' });
          const theirs = [it.next(), it.next(), it.next()].map((d) => d.getTime());
          expect(ours).toEqual(theirs);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("cron-parser's own DST behaviour (recorded; our layer decides)", () => {
  const LA = 'America/Los_Angeles';
  const theirs = (expr: string, from: string, n: number) => {
    const it = CronExpressionParser.parse(expr, { currentDate: new Date(from), tz: LA });
    return Array.from({ length: n }, () => it.next().getTime());
  };

  it('agrees on daily schedules across both transitions', () => {
    for (const [expr, from] of [
      ['0 30 2 * * ?', '2026-03-07T12:00:00Z'],
      ['0 30 1 * * ?', '2026-10-31T12:00:00Z'],
    ] as const) {
      expect(nextFires(parseSchedule(expr, LA), at(from), 3)).toEqual(theirs(expr, from, 3));
    }
  });

  it('differs by design in the repeated fall-back hour: cron-parser fires 01:30 twice, we once', () => {
    const from = '2026-11-01T07:00:00Z';
    expect(theirs('0 30 * * * *', from, 4).map(iso)).toEqual([
      '2026-11-01T07:30:00.000Z',
      '2026-11-01T08:30:00.000Z',
      '2026-11-01T09:30:00.000Z', // 01:30 PST, the second 01:30
      '2026-11-01T10:30:00.000Z',
    ]);
    expect(nextFires(parseSchedule('0 30 * * * ?', LA), at(from), 3).map(iso)).toEqual([
      '2026-11-01T07:30:00.000Z',
      '2026-11-01T08:30:00.000Z',
      '2026-11-01T10:30:00.000Z',
    ]);
  });

  it('does not accept what Quartz users write, which is why we parse fields ourselves', () => {
    expect(() => CronExpressionParser.parse('0 0 0 1/1 * ? *')).toThrow();
    expect(() => CronExpressionParser.parse('0 0 12 15W * ?')).toThrow();
    // and reads a 6-field day-of-week 2 as Tuesday where Quartz means Monday
    const tuesday = CronExpressionParser.parse('0 0 12 ? * 2', {
      currentDate: new Date('2026-01-01T00:00:00Z'),
      tz: 'UTC',
    });
    expect(new Date(tuesday.next().getTime()).getUTCDay()).toBe(2);
    expect(
      new Date(nextFireAfter(parseSchedule('0 0 12 ? * 2'), at('2026-01-01T00:00:00Z'))!).getUTCDay(),
    ).toBe(1);
  });
});
