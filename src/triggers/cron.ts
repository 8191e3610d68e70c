// Cron schedules: Quartz 7-field (sec min hour dom month dow year), Quartz 6-field (no year) and
// classic 5-field (min hour dom month dow), evaluated in an IANA time zone, correct across DST.
// Pure: no clock; callers pass instants in epoch milliseconds.
//
// DST (see docs/triggers.md "Time zones and daylight saving time"): a wall time skipped by
// spring-forward fires once, shifted forward by the gap (02:30 -> 03:30, JavaScript Temporal's
// "compatible" disambiguation); a wall time repeated by fall-back fires once, at its first
// occurrence. Quartz 2.5.2 differs on both: it skips a wall time inside the gap (a daily 02:30
// does not run that day) and fires a repeated wall time at its second occurrence. We keep ours
// on purpose: a daily job must run every day (skipping a day loses that day's data), and the
// first occurrence is the one an observer of the clock sees first, keeping fires in wall order.
//
// Day fields in Quartz forms: Quartz itself requires '?' in exactly one of day-of-month and
// day-of-week; we also accept '*' in both (every day, as classic cron reads it) and reject only
// both restricted (CRON_UNSUPPORTED) or both '?' (CRON_INVALID).

import {
  abbreviationProblem,
  instantToWall,
  isValidTimezone,
  offsetAt,
  utcWall,
  wallToInstant,
} from '../time/zone.ts';
import {
  CronError,
  type CronErrorCode,
  type DayOfMonthRule,
  type DayOfWeekRule,
  HOUR,
  MAX_YEAR,
  MINUTE,
  MONTH,
  parseDayOfMonth,
  parseDayOfWeek,
  parseValues,
  SECOND,
  YEAR,
} from './cron-fields.ts';

export { CronError, type CronErrorCode } from './cron-fields.ts';

export type CronFormat = 'quartz7' | 'quartz6' | 'classic5';

export interface Schedule {
  readonly expression: string;
  readonly timezone: string;
  readonly format: CronFormat;
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  /** months[m] for m 1..12 */
  readonly months: readonly boolean[];
  /** Sorted allowed years, or null for every year. */
  readonly years: readonly number[] | null;
  readonly dayOfMonth: DayOfMonthRule;
  readonly dayOfWeek: DayOfWeekRule;
  /** How day-of-month and day-of-week combine: 'and' (one side unrestricted) or 'or' (classic cron, both restricted). */
  readonly dayCombine: 'and' | 'or';
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/**
 * Parse a cron expression. `timezone` is an IANA zone name (default UTC).
 * Throws CronError: CRON_INVALID (syntax/range, message names the field and what was expected),
 * CRON_UNSUPPORTED (a feature we deliberately reject, named), CRON_TIMEZONE (unknown zone).
 */
export function parseSchedule(expr: string, timezone = 'UTC'): Schedule {
  const source = typeof expr === 'string' ? expr : String(expr);
  const fail = (code: CronErrorCode, message: string): never => {
    throw new CronError(code, `invalid cron expression "${source}": ${message}`, source);
  };
  if (typeof expr !== 'string') fail('CRON_INVALID', 'expected a string');
  // Intl accepts some abbreviations but reads them surprisingly (BST is Asia/Dhaka, EST has no
  // daylight saving): a schedule would fire at the wrong hour, so refuse them by name.
  const abbreviation = typeof timezone === 'string' ? abbreviationProblem(timezone) : undefined;
  if (abbreviation) throw new CronError('CRON_TIMEZONE', abbreviation, source);
  if (!isValidTimezone(timezone)) {
    throw new CronError(
      'CRON_TIMEZONE',
      `unknown time zone "${timezone}": expected an IANA zone name such as "America/Los_Angeles" or "UTC"`,
      source,
    );
  }
  let text = source.trim();
  if (text.startsWith('@')) {
    const macro = MACROS[text.toLowerCase()];
    if (!macro) {
      fail(
        'CRON_UNSUPPORTED',
        `macro ${text} is not supported; use one of ${Object.keys(MACROS).join(', ')}`,
      );
    }
    text = macro!;
  }
  const fields = text.split(/\s+/).filter((f) => f !== '');
  let format: CronFormat;
  let sec: string;
  let min: string;
  let hour: string;
  let dom: string;
  let mon: string;
  let dow: string;
  let year = '*';
  if (fields.length === 5) {
    format = 'classic5';
    sec = '0';
    [min, hour, dom, mon, dow] = fields as [string, string, string, string, string];
  } else if (fields.length === 6 || fields.length === 7) {
    format = fields.length === 7 ? 'quartz7' : 'quartz6';
    [sec, min, hour, dom, mon, dow] = fields as [string, string, string, string, string, string];
    if (fields.length === 7) year = fields[6]!;
  } else {
    return fail(
      'CRON_INVALID',
      `expected 5 fields (minute hour day-of-month month day-of-week), 6 (Quartz: second first) or 7 (Quartz, with year); got ${fields.length}`,
    );
  }
  const quartz = format !== 'classic5';
  const dayOfMonth = parseDayOfMonth(dom, fail);
  const dayOfWeek = parseDayOfWeek(dow, quartz ? 'quartz' : 'unix', fail);
  let dayCombine: 'and' | 'or' = 'and';
  if (quartz) {
    if (dom === '?' && dow === '?') fail('CRON_INVALID', "day-of-month and day-of-week cannot both be '?'");
    if (!dayOfMonth.unrestricted && !dayOfWeek.unrestricted) {
      fail(
        'CRON_UNSUPPORTED',
        "specifying both day-of-month and day-of-week is not supported in Quartz expressions; write '?' in one of them",
      );
    }
  } else if (!dom.startsWith('*') && !dom.startsWith('?') && !dow.startsWith('*') && !dow.startsWith('?')) {
    // Classic cron: when both day fields are restricted, a day matching either fires.
    dayCombine = 'or';
  }
  const months = new Array<boolean>(13).fill(false);
  for (const m of parseValues(mon, MONTH, fail)) months[m] = true;
  const years = year === '*' ? null : parseValues(year, YEAR, fail);
  return {
    expression: source,
    timezone,
    format,
    seconds: parseValues(sec, SECOND, fail),
    minutes: parseValues(min, MINUTE, fail),
    hours: parseValues(hour, HOUR, fail),
    months,
    years,
    dayOfMonth,
    dayOfWeek,
    dayCombine,
  };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** Years searched after the starting point when the year field does not bound the search. */
const SEARCH_YEARS = 100;

function daysInMonth(year: number, month: number): number {
  return new Date(utcWall(year, month + 1, 0)).getUTCDate();
}

function weekday(year: number, month: number, day: number): number {
  return new Date(utcWall(year, month, day)).getUTCDay();
}

function nearestWeekday(year: number, month: number, n: number, dim: number): number | null {
  if (n > dim) return null;
  const wd = weekday(year, month, n);
  if (wd === 6) return n === 1 ? 3 : n - 1; // Saturday: Friday, or Monday the 3rd when on the 1st
  if (wd === 0) return n === dim ? n - 2 : n + 1; // Sunday: Monday, or Friday when on the last day
  return n;
}

function lastWeekdayOfMonth(year: number, month: number, dim: number): number {
  const wd = weekday(year, month, dim);
  if (wd === 6) return dim - 1;
  if (wd === 0) return dim - 2;
  return dim;
}

function dayOfMonthMatches(
  rule: DayOfMonthRule,
  year: number,
  month: number,
  day: number,
  dim: number,
): boolean {
  if (rule.days[day]) return true;
  if (rule.last && day === dim) return true;
  for (const n of rule.lastOffsets) if (day === dim - n) return true;
  if (rule.lastWeekday && day === lastWeekdayOfMonth(year, month, dim)) return true;
  for (const n of rule.nearestWeekday) if (day === nearestWeekday(year, month, n, dim)) return true;
  return false;
}

function dayOfWeekMatches(rule: DayOfWeekRule, wd: number, day: number, dim: number): boolean {
  if (rule.days[wd]) return true;
  for (const d of rule.lastOf) if (d === wd && day + 7 > dim) return true;
  for (const { day: d, k } of rule.nth) if (d === wd && Math.ceil(day / 7) === k) return true;
  return false;
}

function dayMatches(s: Schedule, year: number, month: number, day: number, dim: number): boolean {
  const domOk = dayOfMonthMatches(s.dayOfMonth, year, month, day, dim);
  if (domOk && s.dayCombine === 'or') return true;
  if (!domOk && s.dayCombine === 'and') return false;
  return dayOfWeekMatches(s.dayOfWeek, weekday(year, month, day), day, dim);
}

/**
 * Matching wall times (local time encoded as UTC ms, whole seconds) in ascending order,
 * starting at `fromWall` (inclusive) and stopping after `toWall`.
 */
function* wallSlots(s: Schedule, fromWall: number, toWall: number): Generator<number> {
  const start = new Date(Math.ceil(fromWall / 1000) * 1000);
  const y0 = start.getUTCFullYear();
  const m0 = start.getUTCMonth() + 1;
  const d0 = start.getUTCDate();
  const h0 = start.getUTCHours();
  const mi0 = start.getUTCMinutes();
  const s0 = start.getUTCSeconds();
  const lastYear = Math.min(s.years ? s.years[s.years.length - 1]! : MAX_YEAR, y0 + SEARCH_YEARS);
  for (let year = y0; year <= lastYear; year++) {
    if (s.years && !s.years.includes(year)) continue;
    if (utcWall(year, 1, 1) > toWall) return;
    for (let month = year === y0 ? m0 : 1; month <= 12; month++) {
      if (!s.months[month]) continue;
      const firstMonth = year === y0 && month === m0;
      const dim = daysInMonth(year, month);
      for (let day = firstMonth ? d0 : 1; day <= dim; day++) {
        if (!dayMatches(s, year, month, day, dim)) continue;
        const firstDay = firstMonth && day === d0;
        for (const hour of s.hours) {
          if (firstDay && hour < h0) continue;
          const firstHour = firstDay && hour === h0;
          for (const minute of s.minutes) {
            if (firstHour && minute < mi0) continue;
            const firstMinute = firstHour && minute === mi0;
            for (const second of s.seconds) {
              if (firstMinute && second < s0) continue;
              const wall = utcWall(year, month, day, hour, minute, second);
              if (wall > toWall) return;
              yield wall;
            }
          }
        }
      }
    }
  }
}

const LOOKBACK_MS = 6 * 3_600_000;
const MAX_INSTANT = 8.64e15 - 400 * 86_400_000;

/**
 * The first fire instant strictly after `afterMs`, or null when the schedule never fires again
 * (year field exhausted, impossible dates such as 30 February, or none within 100 years).
 *
 * Each matching wall time fires once; see the DST rules at the top of this file.
 */
export function nextFireAfter(s: Schedule, afterMs: number): number | null {
  // Outside what Date can represent (with a margin for offsets) nothing can be computed.
  if (!Number.isFinite(afterMs) || Math.abs(afterMs) > MAX_INSTANT) return null;
  const tz = s.timezone;
  const afterWall = instantToWall(tz, afterMs);
  // A wall time inside a spring-forward gap that ended shortly before `afterMs` is shifted to an
  // instant after it; start the scan early enough to see such slots.
  const springForward = Math.max(0, offsetAt(tz, afterMs) - offsetAt(tz, afterMs - LOOKBACK_MS));
  let best: number | null = null;
  let bestWall = Number.POSITIVE_INFINITY;
  for (const wall of wallSlots(s, afterWall - springForward, Number.POSITIVE_INFINITY)) {
    // Slots past the wall-clock reading of the best instant cannot fire earlier than it.
    if (wall > bestWall) break;
    const instant = wallToInstant(tz, wall);
    if (instant > afterMs && (best === null || instant < best)) {
      best = instant;
      bestWall = instantToWall(tz, instant);
    }
  }
  return best;
}

/** Up to `count` fire instants after `afterMs`, ascending (for previews and tests). */
export function nextFires(s: Schedule, afterMs: number, count: number): number[] {
  const out: number[] = [];
  let t: number | null = afterMs;
  while (out.length < count) {
    t = nextFireAfter(s, t);
    if (t === null) break;
    out.push(t);
  }
  return out;
}
