// Calendar and timezone arithmetic for the date built-ins. Timezones come from Intl (the
// IANA database that ships with Node), so there is no date library; dateInts are yyyymmdd
// integers of the proleptic Gregorian calendar, years 1000..9999 so that they have 8 digits.
import {
  abbreviationProblem,
  instantToWall,
  isValidTimezone,
  offsetAt as zoneOffsetAt,
} from '../time/zone.ts';
import { ExprError } from './errors.ts';
import { Lru } from './lru.ts';

const DAY_MS = 86_400_000;
/** 1000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the range where a dateInt has 8 digits. */
const MIN_TS = Date.UTC(1000, 0, 1) + 2 * DAY_MS; // a margin so that every timezone stays in range
const MAX_TS = Date.UTC(9999, 11, 31) - 2 * DAY_MS;

export interface LocalParts {
  year: number;
  month: number; // 1..12
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** Throws EXPR_ARGUMENT unless `timeZone` is an IANA name (or offset) that Intl knows. */
export function assertTimeZone(timeZone: string): void {
  const abbreviation = abbreviationProblem(timeZone);
  if (abbreviation) throw new ExprError('EXPR_ARGUMENT', abbreviation);
  if (!isValidTimezone(timeZone)) throw new ExprError('EXPR_ARGUMENT', `unknown timezone "${timeZone}"`);
}

export function assertTimestamp(ts: number): void {
  if (!Number.isFinite(ts) || ts < MIN_TS || ts > MAX_TS)
    throw new ExprError('EXPR_ARGUMENT', `timestamp ${ts} is outside years 1000..9999 (epoch milliseconds)`);
}

/** Wall-clock fields of the instant `ts` (epoch ms) in `timeZone`. */
export function localParts(ts: number, timeZone: string): LocalParts {
  assertTimestamp(ts);
  if (timeZone !== 'UTC') assertTimeZone(timeZone);
  const wall = new Date(timeZone === 'UTC' ? ts : instantToWall(timeZone, ts));
  return {
    year: wall.getUTCFullYear(),
    month: wall.getUTCMonth() + 1,
    day: wall.getUTCDate(),
    hour: wall.getUTCHours(),
    minute: wall.getUTCMinutes(),
    second: wall.getUTCSeconds(),
  };
}

/** Offset of `timeZone` from UTC at instant `ts`, in ms (local = utc + offset). */
export function offsetAt(ts: number, timeZone: string): number {
  assertTimestamp(ts);
  if (timeZone === 'UTC') return 0;
  assertTimeZone(timeZone);
  return zoneOffsetAt(timeZone, ts);
}

export interface CalendarDate {
  year: number;
  month: number;
  day: number;
}

export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

export function daysInMonth(y: number, m: number): number {
  return [31, isLeapYear(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
}

/** Splits a yyyymmdd dateInt (a number, or a string of 8 digits) and checks it is a real date. */
export function parseDateInt(d: number | string): CalendarDate {
  let n: number;
  if (typeof d === 'string') {
    if (!/^\d{8}$/.test(d)) throw new ExprError('EXPR_ARGUMENT', `"${clip(d)}" is not a dateInt (yyyymmdd)`);
    n = Number(d);
  } else n = d;
  if (!Number.isInteger(n) || n < 10000101 || n > 99991231)
    throw new ExprError('EXPR_ARGUMENT', `${n} is not a dateInt (yyyymmdd, years 1000..9999)`);
  const year = Math.floor(n / 10000);
  const month = Math.floor(n / 100) % 100;
  const day = n % 100;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month))
    throw new ExprError('EXPR_ARGUMENT', `${n} is not a valid date (yyyymmdd)`);
  return { year, month, day };
}

export function toDateInt(c: CalendarDate): number {
  return c.year * 10000 + c.month * 100 + c.day;
}

/** Days since 1970-01-01 of a calendar date (UTC arithmetic: no timezone involved). */
export function epochDay(c: CalendarDate): number {
  return Date.UTC(c.year, c.month - 1, c.day) / DAY_MS;
}

export function fromEpochDay(days: number): CalendarDate {
  const dt = new Date(days * DAY_MS);
  const c = { year: dt.getUTCFullYear(), month: dt.getUTCMonth() + 1, day: dt.getUTCDate() };
  // `!(a <= y)` rather than `y < a`: a day count beyond Date's range gives NaN fields.
  if (!Number.isFinite(days) || !(c.year >= 1000 && c.year <= 9999))
    throw new ExprError('EXPR_ARGUMENT', 'the resulting date is outside years 1000..9999');
  return c;
}

export function tsToDateInt(ts: number, timeZone: string): number {
  const p = localParts(ts, timeZone);
  return toDateInt(p);
}

/**
 * The first instant of day `d` in `timeZone`: local midnight, or, where midnight does not
 * exist (a DST gap at 00:00), the first existing instant of that day; where midnight happens
 * twice (a fall-back at 00:00) the earlier one.
 */
export function dateIntToTs(d: number | string, timeZone: string): number {
  const c = parseDateInt(d);
  const key = `${toDateInt(c)} ${timeZone}`;
  const hit = dayStarts.get(key);
  if (hit !== undefined) return hit;
  const ts = computeDayStart(c, timeZone);
  dayStarts.set(key, ts);
  return ts;
}

/** Start-of-day instants by "dateInt timezone": pure, and each costs several Intl calls. */
const dayStarts = new Lru<string, number>(10_000);

function computeDayStart(c: CalendarDate, timeZone: string): number {
  const wallMidnight = Date.UTC(c.year, c.month - 1, c.day);
  const offsets = new Set([
    offsetAt(wallMidnight - DAY_MS, timeZone),
    offsetAt(wallMidnight, timeZone),
    offsetAt(wallMidnight + DAY_MS, timeZone),
  ]);
  const target = toDateInt(c);
  let exact: number | undefined;
  let sameDay: number | undefined;
  for (const off of offsets) {
    const ts = wallMidnight - off;
    const p = localParts(ts, timeZone);
    if (toDateInt(p) !== target) continue;
    if (p.hour === 0 && p.minute === 0 && p.second === 0)
      exact = exact === undefined ? ts : Math.min(exact, ts);
    else sameDay = sameDay === undefined ? ts : Math.min(sameDay, ts);
  }
  const ts = exact ?? sameDay;
  if (ts === undefined)
    throw new ExprError(
      'EXPR_ARGUMENT',
      `day ${target} does not exist in ${timeZone} (the zone skipped it when it changed its offset)`,
    );
  return ts;
}

export function dateIntAdd(d: number | string, days: number): number {
  return toDateInt(fromEpochDay(epochDay(parseDateInt(d)) + days));
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

function pad(n: number, width: number): string {
  return String(Math.abs(n)).padStart(width, '0');
}

function formatOffset(offMs: number, withColon: boolean, zForZero: boolean): string {
  if (offMs === 0 && zForZero) return 'Z';
  const sign = offMs < 0 ? '-' : '+';
  const minutes = Math.round(Math.abs(offMs) / 60_000);
  return sign + pad(Math.floor(minutes / 60), 2) + (withColon ? ':' : '') + pad(minutes % 60, 2);
}

/**
 * Formats instant `ts` with a java.time-style pattern: yyyy yy MMMM MMM MM M dd d EEEE EEE
 * HH H hh h a mm m ss s SSS XXX (offset, Z for UTC) Z (+hhmm); text in single quotes is literal,
 * '' is a quote; other non-letters are copied; other letters are rejected.
 */
export function formatTs(ts: number, pattern: string, timeZone: string): string {
  const p = localParts(ts, timeZone);
  const off = offsetAt(ts, timeZone);
  const millis = ((ts % 1000) + 1000) % 1000;
  const weekday = new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay();
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === "'") {
      if (pattern[i + 1] === "'") {
        out += "'";
        i += 2;
        continue;
      }
      // Quoted text up to the closing quote; '' inside it is a quote.
      let j = i + 1;
      for (;;) {
        if (j >= pattern.length) throw new ExprError('EXPR_ARGUMENT', 'unclosed quote in the format pattern');
        if (pattern[j] === "'") {
          if (pattern[j + 1] !== "'") break;
          out += "'";
          j += 2;
        } else out += pattern[j++];
      }
      i = j + 1;
      continue;
    }
    if (!/[A-Za-z]/.test(ch)) {
      out += ch;
      i++;
      continue;
    }
    let j = i;
    while (pattern[j] === ch) j++;
    const token = pattern.slice(i, j);
    i = j;
    const h12 = p.hour % 12 === 0 ? 12 : p.hour % 12;
    const fields: Record<string, () => string> = {
      yyyy: () => pad(p.year, 4),
      yy: () => pad(p.year % 100, 2),
      MMMM: () => MONTHS[p.month - 1]!,
      MMM: () => MONTHS[p.month - 1]!.slice(0, 3),
      MM: () => pad(p.month, 2),
      M: () => String(p.month),
      dd: () => pad(p.day, 2),
      d: () => String(p.day),
      EEEE: () => WEEKDAYS[weekday]!,
      EEE: () => WEEKDAYS[weekday]!.slice(0, 3),
      HH: () => pad(p.hour, 2),
      H: () => String(p.hour),
      hh: () => pad(h12, 2),
      h: () => String(h12),
      a: () => (p.hour < 12 ? 'AM' : 'PM'),
      mm: () => pad(p.minute, 2),
      m: () => String(p.minute),
      ss: () => pad(p.second, 2),
      s: () => String(p.second),
      SSS: () => pad(millis, 3),
      XXX: () => formatOffset(off, true, true),
      Z: () => formatOffset(off, false, false),
    };
    const f = Object.hasOwn(fields, token) ? fields[token] : undefined;
    if (!f) throw new ExprError('EXPR_ARGUMENT', `unsupported format pattern "${clip(token)}"`);
    out += f();
  }
  return out;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
