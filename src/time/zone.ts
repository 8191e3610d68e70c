// Wall-clock <-> instant conversion for IANA time zones using only Intl (no tz database of our own),
// shared by the expression built-ins (src/expr/dates.ts) and cron triggers (src/triggers/cron.ts).
//
// A "wall" value is a local date-time encoded as if it were UTC epoch milliseconds
// (Date.UTC(y, m-1, d, h, mi, s)); this keeps calendar arithmetic in plain integers.

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    formatters.set(timezone, f);
  }
  return f;
}

/**
 * Why `timeZone` is a bare abbreviation (PST, EST, BST, IST) that ICU maps to one zone it picks,
 * or undefined. "BST" is Asia/Dhaka there, not British Summer Time, and "EST" a fixed UTC-5
 * without daylight saving: a schedule would silently fire at the wrong hour, so such names are
 * refused with the zone they would have meant. UTC, GMT and UCT are unambiguous.
 */
export function abbreviationProblem(timeZone: string): string | undefined {
  if (!/^[A-Z]{2,5}$/.test(timeZone) || ['UTC', 'GMT', 'UCT'].includes(timeZone)) return undefined;
  let resolved: string | undefined;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    return undefined; // not a zone at all: the caller's "unknown timezone" says so
  }
  return `"${timeZone}" is an abbreviation, not a time zone name (it would be read as ${resolved}); write a region name such as America/Los_Angeles or Europe/London (daylight saving included), or Etc/GMT+8 for a fixed offset`;
}

/** True when `timezone` is an IANA zone name (or UTC) that this runtime's Intl knows. */
export function isValidTimezone(timezone: string): boolean {
  if (typeof timezone !== 'string' || timezone.length === 0) return false;
  try {
    formatterFor(timezone);
    return true;
  } catch {
    return false;
  }
}

/** Offset from UTC of a zone over one UTC day; `transition` is the first second with `end`, when they differ. */
interface DayOffsets {
  start: number;
  end: number;
  transition: number;
}

const dayCache = new Map<string, Map<number, DayOffsets>>();
const MAX_CACHED_DAYS = 20_000;

/**
 * Offset of `timezone` from UTC at `instantMs`, in milliseconds (east positive), whole seconds.
 * Intl is slow (microseconds per call), so offsets are cached per zone and UTC day: each day costs
 * two lookups, plus a binary search on the two days a year that have a transition. Assumes at
 * most one offset change per UTC day, true for every zone in the tz database.
 */
export function offsetAt(timezone: string, instantMs: number): number {
  const t = Math.floor(instantMs / 1000) * 1000;
  const day = Math.floor(t / DAY_MS);
  let days = dayCache.get(timezone);
  if (!days) {
    days = new Map();
    dayCache.set(timezone, days);
  }
  let info = days.get(day);
  if (!info) {
    if (days.size >= MAX_CACHED_DAYS) days.clear();
    info = dayOffsets(timezone, day);
    days.set(day, info);
  }
  return info.start === info.end || t < info.transition ? info.start : info.end;
}

function dayOffsets(timezone: string, day: number): DayOffsets {
  let lo = day * DAY_MS;
  let hi = lo + DAY_MS;
  const start = offsetAtUncached(timezone, lo);
  const end = offsetAtUncached(timezone, hi);
  if (start === end) return { start, end, transition: hi };
  // Invariant: offset(lo) === start, offset(hi) === end; narrow to one second.
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (offsetAtUncached(timezone, mid) === start) lo = mid;
    else hi = mid;
  }
  return { start, end, transition: hi };
}

/** The offset straight from Intl (no cache); exported for tests. */
export function offsetAtUncached(timezone: string, wholeSecond: number): number {
  const parts = formatterFor(timezone).formatToParts(wholeSecond);
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const p of parts) {
    switch (p.type) {
      case 'year':
        year = Number(p.value);
        break;
      case 'month':
        month = Number(p.value);
        break;
      case 'day':
        day = Number(p.value);
        break;
      case 'hour':
        hour = Number(p.value);
        break;
      case 'minute':
        minute = Number(p.value);
        break;
      case 'second':
        second = Number(p.value);
        break;
      case 'era':
        bc = p.value === 'BC' || p.value === 'B';
        break;
    }
  }
  if (bc) year = 1 - year;
  const wall = utcWall(year, month, day, hour, minute, second);
  return wall - wholeSecond;
}

/** Date.UTC that also handles years 0..99 literally (Date.UTC maps them to 1900+). */
export function utcWall(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}

/** The wall value (local time as UTC ms) of an instant in a zone. */
export function instantToWall(timezone: string, instantMs: number): number {
  return instantMs + offsetAt(timezone, instantMs);
}

/**
 * The instant at which local wall time `wall` happens in `timezone`.
 *
 * DST rules (documented in docs/triggers.md):
 * - wall time repeated by a fall-back transition: the FIRST (earlier) occurrence;
 * - wall time skipped by a spring-forward gap: shifted forward by the length of the gap
 *   (interpreted with the offset in force before the gap), so 02:30 in a 1-hour gap is
 *   03:30 after it — what Quartz and JavaScript Temporal's "compatible" disambiguation do.
 * Assumes at most one offset transition within a day either side of `wall`, true for every
 * real zone.
 */
export function wallToInstant(timezone: string, wall: number): number {
  const offBefore = offsetAt(timezone, wall - DAY_MS);
  const offAfter = offsetAt(timezone, wall + DAY_MS);
  const early = wall - offBefore;
  if (offBefore === offAfter) {
    if (offsetAt(timezone, early) === offBefore) return early;
    // Two transitions within two days (practically never): fall back to a local search.
    return wallToInstantSlow(timezone, wall);
  }
  const late = wall - offAfter;
  const earlyValid = offsetAt(timezone, early) === offBefore;
  const lateValid = offsetAt(timezone, late) === offAfter;
  if (earlyValid && lateValid) return Math.min(early, late);
  if (earlyValid) return early;
  if (lateValid) return late;
  // In the gap: use the offset before the transition, which lands after it.
  return early;
}

function wallToInstantSlow(timezone: string, wall: number): number {
  // Try every offset seen within +-1 day, earliest valid instant wins; else shift forward.
  const offsets = new Set<number>();
  for (let t = wall - DAY_MS; t <= wall + DAY_MS; t += HOUR_MS) offsets.add(offsetAt(timezone, t));
  const valid = [...offsets].map((o) => wall - o).filter((i) => offsetAt(timezone, i) === wall - i);
  if (valid.length > 0) return Math.min(...valid);
  return wall - offsetAt(timezone, wall - DAY_MS);
}
