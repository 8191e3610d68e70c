// Parsing of the individual fields of a cron expression into value sets and day rules.
// Field syntax is Quartz's (a superset of classic cron's): `*`, `?`, lists, ranges (wrapping
// ranges such as FRI-MON or 22-2 included; a year range never wraps), steps (`*/5`, `1/1`, `10-40/10`), month and
// day names, and the day rules `L`, `L-n`, `LW`, `nW` (day of month) and `nL`, `n#k` (day of week).

export type CronErrorCode = 'CRON_INVALID' | 'CRON_UNSUPPORTED' | 'CRON_TIMEZONE';

export class CronError extends Error {
  readonly code: CronErrorCode;
  readonly expression: string;
  readonly field?: string;
  constructor(
    code: CronErrorCode,
    message: string,
    expression: string,
    field?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CronError';
    this.code = code;
    this.expression = expression;
    this.field = field;
  }
}

export type FieldName = 'second' | 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week' | 'year';

interface FieldSpec {
  name: FieldName;
  min: number;
  max: number;
  names?: readonly string[]; // names[i] is the value min + i
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

export const MIN_YEAR = 1970;
export const MAX_YEAR = 2099;

export const SECOND: FieldSpec = { name: 'second', min: 0, max: 59 };
export const MINUTE: FieldSpec = { name: 'minute', min: 0, max: 59 };
export const HOUR: FieldSpec = { name: 'hour', min: 0, max: 23 };
export const DAY_OF_MONTH: FieldSpec = { name: 'day-of-month', min: 1, max: 31 };
export const MONTH: FieldSpec = { name: 'month', min: 1, max: 12, names: MONTH_NAMES };
export const YEAR: FieldSpec = { name: 'year', min: MIN_YEAR, max: MAX_YEAR };
/** Quartz numbering: 1-7 = SUN-SAT. */
const QUARTZ_DOW: FieldSpec = { name: 'day-of-week', min: 1, max: 7, names: DAY_NAMES };
/** Classic numbering: 0-7 = SUN-SAT, 7 is SUN again. Names map to 0-6. */
const UNIX_DOW: FieldSpec = { name: 'day-of-week', min: 0, max: 7 };

export type DowNumbering = 'quartz' | 'unix';

/** Day-of-month rule. `days[d]` for 1..31. */
export interface DayOfMonthRule {
  /** The field was `*` or `?` (does not restrict). */
  unrestricted: boolean;
  days: boolean[];
  /** `L`: last day of month. */
  last: boolean;
  /** `L-n`: n days before the last day. */
  lastOffsets: number[];
  /** `LW`: last weekday (Mon-Fri) of the month. */
  lastWeekday: boolean;
  /** `nW`: weekday nearest to day n, not leaving the month. */
  nearestWeekday: number[];
}

/** Day-of-week rule, always in 0-6 = SUN-SAT internally. */
export interface DayOfWeekRule {
  unrestricted: boolean;
  days: boolean[];
  /** `nL`: last such weekday of the month. */
  lastOf: number[];
  /** `n#k`: k-th such weekday of the month. */
  nth: { day: number; k: number }[];
}

type Fail = (code: CronErrorCode, message: string) => never;

/** Parse a plain numeric/named field (second, minute, hour, month, year) into a sorted value list. */
export function parseValues(text: string, spec: FieldSpec, fail: Fail): number[] {
  const set = new Set<number>();
  for (const item of splitList(text, spec, fail)) {
    if (item === '*') {
      addRange(set, spec.min, spec.max, 1, spec);
      continue;
    }
    if (item === '?')
      fail('CRON_INVALID', `${spec.name}: '?' is only allowed in day-of-month or day-of-week`);
    if (/[LW#]/i.test(withoutNames(item, spec))) {
      fail('CRON_INVALID', `${spec.name}: '${item}' — L, W and # are only allowed in the day fields`);
    }
    addItem(set, item, spec, fail);
  }
  return [...set].sort((a, b) => a - b);
}

/** The item with the field's names (JAN, JUL, ...) removed, to look for stray L/W/# letters. */
function withoutNames(item: string, spec: FieldSpec): string {
  if (!spec.names) return item;
  return item.replace(/[A-Za-z]{3}/g, (n) => (spec.names!.includes(n.toUpperCase()) ? '' : n));
}

function splitList(text: string, spec: FieldSpec, fail: Fail): string[] {
  const items = text.split(',');
  for (const item of items) {
    if (item === '') fail('CRON_INVALID', `${spec.name}: empty item in list '${text}'`);
  }
  return items;
}

function checkHash(item: string, spec: FieldSpec, fail: Fail): void {
  if (/^H/i.test(item) && !(spec.names && /^[A-Z]{3}$/i.test(item))) {
    fail(
      'CRON_UNSUPPORTED',
      `${spec.name}: hashed values ('H') are not supported: a schedule must be deterministic; write an explicit value`,
    );
  }
}

/** `a`, `a-b`, `*\/s`, `a/s`, `a-b/s` into `set`. */
function addItem(set: Set<number>, item: string, spec: FieldSpec, fail: Fail): void {
  checkHash(item, spec, fail);
  const slash = item.split('/');
  if (slash.length > 2) fail('CRON_INVALID', `${spec.name}: '${item}' has more than one '/'`);
  const [rangeText, stepText] = slash as [string, string | undefined];
  let step = 1;
  if (stepText !== undefined) {
    if (!/^\d+$/.test(stepText))
      fail('CRON_INVALID', `${spec.name}: step in '${item}' must be a positive integer`);
    step = Number(stepText);
    if (step < 1) fail('CRON_INVALID', `${spec.name}: step in '${item}' must be at least 1`);
  }
  if (rangeText === '*' || rangeText === '?') {
    if (rangeText === '?' && stepText !== undefined)
      fail('CRON_INVALID', `${spec.name}: '?' cannot take a step`);
    addRange(set, spec.min, spec.max, step, spec);
    return;
  }
  const dash = rangeText.split('-');
  if (dash.length > 2) fail('CRON_INVALID', `${spec.name}: '${item}' is not a value or a range a-b`);
  const from = parseValue(dash[0]!, spec, fail, item);
  if (dash.length === 2) {
    const to = parseValue(dash[1]!, spec, fail, item);
    // the other fields are cycles (FRI-MON, 22-2 wrap); years are a line: 2030-2025 is a typo
    if (spec === YEAR && from > to)
      fail('CRON_INVALID', `year: range '${item}' runs backwards (years do not wrap); write ${to}-${from}`);
    addRange(set, from, to, step, spec);
  } else if (stepText !== undefined) {
    // Quartz: `a/s` starts at a and continues to the end of the field's range.
    addRange(set, from, Math.max(from, fieldTop(spec)), step, spec);
  } else {
    set.add(from);
  }
}

function fieldTop(spec: FieldSpec): number {
  // For classic day-of-week 7 is an alias of 0; ranges run to 6.
  return spec === UNIX_DOW ? 6 : spec.max;
}

/** Adds from..to stepping by `step`; a range with from > to wraps around the field (FRI-MON, 22-2). */
function addRange(set: Set<number>, from: number, to: number, step: number, spec: FieldSpec): void {
  if (from <= to) {
    for (let v = from; v <= to; v += step) set.add(v);
    return;
  }
  const top = fieldTop(spec);
  const size = top - spec.min + 1;
  const span = top - from + 1 + (to - spec.min);
  for (let i = 0; i <= span; i += step) set.add(spec.min + ((from - spec.min + i) % size));
}

function parseValue(text: string, spec: FieldSpec, fail: Fail, item: string): number {
  if (/^\d+$/.test(text)) {
    const v = Number(text);
    if (v < spec.min || v > spec.max) {
      fail(
        'CRON_INVALID',
        `${spec.name}: ${v} in '${item}' is out of range; expected ${describeRange(spec)}`,
      );
    }
    return v;
  }
  if (spec.names) {
    const i = spec.names.indexOf(text.toUpperCase());
    if (i >= 0) return spec.min + i;
  }
  return fail(
    'CRON_INVALID',
    `${spec.name}: '${text}' in '${item}' is not valid; expected ${describeRange(spec)}`,
  );
}

function describeRange(spec: FieldSpec): string {
  if (spec.name === 'day-of-week') {
    return spec.min === 1
      ? '1-7 (1 = SUN, Quartz numbering) or SUN-SAT'
      : '0-7 (0 and 7 = SUN, classic numbering) or SUN-SAT';
  }
  const names = spec.names ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : '';
  return `${spec.min}-${spec.max}${names}`;
}

export function parseDayOfMonth(text: string, fail: Fail): DayOfMonthRule {
  const rule: DayOfMonthRule = {
    unrestricted: text === '*' || text === '?',
    days: new Array(32).fill(false),
    last: false,
    lastOffsets: [],
    lastWeekday: false,
    nearestWeekday: [],
  };
  const set = new Set<number>();
  for (const raw of splitList(text, DAY_OF_MONTH, fail)) {
    const item = raw.toUpperCase();
    if (item === '?' || item === '*') {
      addRange(set, 1, 31, 1, DAY_OF_MONTH);
    } else if (item === 'L') {
      rule.last = true;
    } else if (item === 'LW' || item === 'WL') {
      rule.lastWeekday = true;
    } else if (/^L-\d+$/.test(item)) {
      const n = Number(item.slice(2));
      if (n > 30) fail('CRON_INVALID', `day-of-month: offset in '${raw}' must be 0-30`);
      rule.lastOffsets.push(n);
    } else if (/^\d+W$/.test(item)) {
      const n = Number(item.slice(0, -1));
      if (n < 1 || n > 31) fail('CRON_INVALID', `day-of-month: '${raw}' needs a day 1-31 before W`);
      rule.nearestWeekday.push(n);
    } else if (/[LW#]/.test(item)) {
      fail(
        'CRON_INVALID',
        `day-of-month: '${raw}' is not valid; expected 1-31, a range, a step, L, L-n, LW or nW (e.g. 15W)`,
      );
    } else {
      addItem(set, raw, DAY_OF_MONTH, fail);
    }
  }
  for (const d of set) rule.days[d] = true;
  return rule;
}

export function parseDayOfWeek(text: string, numbering: DowNumbering, fail: Fail): DayOfWeekRule {
  const spec = numbering === 'quartz' ? QUARTZ_DOW : UNIX_DOW;
  // Internal numbering 0-6 = SUN-SAT.
  const toInternal = (v: number): number => (numbering === 'quartz' ? v - 1 : v % 7);
  const rule: DayOfWeekRule = {
    unrestricted: text === '*' || text === '?',
    days: new Array(7).fill(false),
    lastOf: [],
    nth: [],
  };
  for (const raw of splitList(text, spec, fail)) {
    const item = raw.toUpperCase();
    if (item === 'L') {
      // A lone L is the last day of the week: Saturday.
      rule.days[6] = true;
    } else if (/L$/.test(item)) {
      const day = parseDayValue(item.slice(0, -1), spec, fail, raw);
      rule.lastOf.push(toInternal(day));
    } else if (item.includes('#')) {
      const [dayText, kText] = item.split('#') as [string, string];
      const day = parseDayValue(dayText, spec, fail, raw);
      if (!/^[1-5]$/.test(kText ?? '')) {
        fail(
          'CRON_INVALID',
          `day-of-week: in '${raw}' the number after # must be 1-5 (which week of the month)`,
        );
      }
      rule.nth.push({ day: toInternal(day), k: Number(kText) });
    } else if (/W/.test(item) && !DAY_NAMES.some((n) => item.includes(n))) {
      fail('CRON_INVALID', `day-of-week: W is only allowed in day-of-month ('${raw}')`);
    } else {
      const set = new Set<number>();
      if (item === '?' || item === '*') addRange(set, spec.min, fieldTop(spec), 1, spec);
      else addDayOfWeekItem(set, raw, spec, numbering, fail);
      for (const v of set) rule.days[toInternal(v)] = true;
    }
  }
  return rule;
}

function parseDayValue(text: string, spec: FieldSpec, fail: Fail, item: string): number {
  const i = DAY_NAMES.indexOf(text);
  if (i >= 0) return spec.min === 1 ? i + 1 : i;
  return parseValue(text, spec, fail, item);
}

/** Day-of-week items with names resolved per numbering (names are not positional for classic 0-7). */
function addDayOfWeekItem(
  set: Set<number>,
  item: string,
  spec: FieldSpec,
  numbering: DowNumbering,
  fail: Fail,
) {
  checkHash(item, spec, fail);
  const resolved = item.replace(/[A-Za-z]{3}/g, (name) => {
    const i = DAY_NAMES.indexOf(name.toUpperCase());
    if (i < 0) fail('CRON_INVALID', `day-of-week: '${name}' in '${item}' is not a day name (SUN-SAT)`);
    return String(numbering === 'quartz' ? i + 1 : i);
  });
  addItem(set, resolved, spec, fail);
}
