// The built-in functions: signature (for the static checker) and implementation (for the
// evaluator) side by side. Implementations are pure, check their arguments, charge the meter
// for the work they do, and check limits before allocating.
import * as dates from './dates.ts';
import { ExprError } from './errors.ts';
import type { Value, ValueType } from './types.ts';
import {
  checkListLength,
  checkStringLength,
  deepEqual,
  displayString,
  isPlainObject,
  type Meter,
  ownData,
  typeOf,
} from './values.ts';

export type StaticType = ValueType | 'any';

const NUM: StaticType[] = ['long', 'double'];
const STR: StaticType[] = ['string'];
const LIST: StaticType[] = ['list'];
const DATEINT: StaticType[] = ['long', 'double', 'string'];
const ANY: StaticType[] = ['any'];

/** Typed access to a call's arguments; errors point at the offending argument. */
export class Args {
  readonly values: Value[];
  readonly meter: Meter;
  private readonly positions: number[];
  private readonly fn: string;

  constructor(fn: string, values: Value[], positions: number[], meter: Meter) {
    this.fn = fn;
    this.values = values;
    this.positions = positions;
    this.meter = meter;
  }

  get length(): number {
    return this.values.length;
  }

  error(i: number, code: 'EXPR_TYPE' | 'EXPR_ARGUMENT', detail: string, cause?: unknown): ExprError {
    return new ExprError(code, `${this.fn}(): argument ${i + 1} ${detail}`, {
      position: this.positions[i],
      cause,
    });
  }

  private expect(i: number, what: string): never {
    throw this.error(i, 'EXPR_TYPE', `must be ${what}, got ${typeOf(this.values[i])}`);
  }

  number(i: number): number {
    const v = this.values[i];
    return typeof v === 'number' ? v : this.expect(i, 'a number');
  }
  integer(i: number): number {
    const v = this.number(i);
    if (!Number.isSafeInteger(v)) throw this.error(i, 'EXPR_ARGUMENT', `must be an integer, got ${v}`);
    return v;
  }
  string(i: number): string {
    const v = this.values[i];
    return typeof v === 'string' ? v : this.expect(i, 'a string');
  }
  list(i: number): Value[] {
    const v = this.values[i];
    return Array.isArray(v) ? v : this.expect(i, 'a list');
  }
  dateInt(i: number): number | string {
    const v = this.values[i];
    return typeof v === 'number' || typeof v === 'string' ? v : this.expect(i, 'a dateInt (yyyymmdd)');
  }
  /** Optional timezone argument, UTC when absent. */
  timeZone(i: number): string {
    if (i >= this.values.length) return 'UTC';
    return this.string(i);
  }
  /** Runs a date computation, pointing its argument errors at argument `i`. */
  at<T>(i: number, f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (err instanceof ExprError && err.position === undefined)
        throw new ExprError(err.code, `${this.fn}(): ${err.detail}`, {
          position: this.positions[i],
          cause: err,
        });
      throw err;
    }
  }
}

export interface Builtin {
  min: number;
  max: number;
  /** Accepted static types per argument; the last entry repeats for variadic functions. */
  params: StaticType[][];
  returns: StaticType | ((args: StaticType[]) => StaticType);
  impl: (a: Args) => Value;
  doc: string;
  /**
   * Static check of argument `i` when its value is known (a literal) but the call is not
   * constant: lets the checker reject `tsToDateInt(RUN_TS, "Mars/Phobos")` before any run.
   */
  checkConstantArg?: (i: number, v: Value) => void;
}

function timeZoneArg(v: Value): void {
  if (typeof v === 'string') dates.assertTimeZone(v);
}
function dateIntArg(v: Value): void {
  if (typeof v === 'number' || typeof v === 'string') dates.parseDateInt(v);
}
/** Checks date and timezone literals at the given argument indices. */
function dateArgs(dateIdx: number[], tzIdx: number[]): (i: number, v: Value) => void {
  return (i, v) => {
    if (dateIdx.includes(i)) dateIntArg(v);
    if (tzIdx.includes(i)) timeZoneArg(v);
  };
}

function numericResult(types: StaticType[]): StaticType {
  if (types.length > 0 && types.every((t) => t === 'long')) return 'long';
  if (types.length > 0 && types.every((t) => t === 'long' || t === 'double')) return 'double';
  if (types.length > 0 && types.every((t) => t === 'string')) return 'string';
  return 'any';
}

function extreme(a: Args, pick: (x: number) => boolean): Value {
  const items = a.length === 1 && Array.isArray(a.values[0]) ? a.values[0] : a.values;
  a.meter.charge(items.length);
  if (items.length === 0) throw a.error(0, 'EXPR_ARGUMENT', 'must not be an empty list');
  let best: Value = items[0]!;
  const kind = typeof best;
  if (kind !== 'number' && kind !== 'string')
    throw a.error(0, 'EXPR_TYPE', `can only compare numbers or strings, got ${typeOf(best)}`);
  for (const x of items) {
    if (typeof x !== kind)
      throw a.error(0, 'EXPR_TYPE', `mixes ${kind} and ${typeOf(x)}; all must be numbers or all strings`);
    if (pick((x as number) < (best as number) ? -1 : (x as number) > (best as number) ? 1 : 0)) best = x;
  }
  return best;
}

function rangeList(a: Args, start: number, end: number): number[] {
  const n = Math.max(0, end - start);
  checkListLength(n, a.meter);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = start + i;
  return out;
}

function occurrences(s: string, sep: string): number {
  let n = 0;
  for (let i = s.indexOf(sep); i >= 0; i = s.indexOf(sep, i + sep.length)) n++;
  return n;
}

/** Characters (Unicode code points, not UTF-16 units: "😀" is one) of a string. */
export function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff || i + 1 >= s.length) n++;
    else {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      n++;
    }
  }
  return n;
}

function stringResult(s: string, a: Args): string {
  checkStringLength(s.length, a.meter);
  return s;
}

function toLong(a: Args): number {
  const v = a.values[0];
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\s*[-+]?\d+(\.\d*)?\s*$/.test(v)) n = Number(v);
  else if (typeof v === 'boolean') n = v ? 1 : 0;
  else throw a.error(0, 'EXPR_ARGUMENT', `cannot be read as a number: ${JSON.stringify(v)?.slice(0, 40)}`);
  const t = Math.trunc(n);
  if (!Number.isSafeInteger(t)) throw a.error(0, 'EXPR_ARGUMENT', `${v} is outside the exact integer range`);
  return t === 0 ? 0 : t;
}

function toDouble(a: Args): number {
  const v = a.values[0];
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    if (Number.isFinite(n)) return n;
  }
  throw a.error(0, 'EXPR_ARGUMENT', `cannot be read as a number: ${JSON.stringify(v)?.slice(0, 40)}`);
}

function round(a: Args, f: (x: number) => number): number {
  const r = f(a.number(0));
  return r === 0 ? 0 : r;
}

const table: Record<string, Builtin> = {
  tsToDateInt: {
    checkConstantArg: dateArgs([], [1]),
    min: 1,
    max: 2,
    params: [NUM, STR],
    returns: 'long',
    doc: 'tsToDateInt(ts, tz?): the yyyymmdd date of epoch-ms `ts` in timezone `tz` (default UTC)',
    impl: (a) => {
      const ts = a.number(0);
      const tz = a.timeZone(1);
      a.at(1, () => dates.assertTimeZone(tz));
      return a.at(0, () => dates.tsToDateInt(ts, tz));
    },
  },
  dateIntToTs: {
    checkConstantArg: dateArgs([0], [1]),
    min: 1,
    max: 2,
    params: [DATEINT, STR],
    returns: 'long',
    doc: 'dateIntToTs(d, tz?): epoch ms of the start (midnight) of day `d` in `tz` (default UTC)',
    impl: (a) => {
      const d = a.dateInt(0);
      const tz = a.timeZone(1);
      a.at(1, () => dates.assertTimeZone(tz));
      return a.at(0, () => dates.dateIntToTs(d, tz));
    },
  },
  dateIntAdd: {
    checkConstantArg: dateArgs([0], []),
    min: 2,
    max: 2,
    params: [DATEINT, NUM],
    returns: 'long',
    doc: 'dateIntAdd(d, days): the dateInt `days` days after `d` (negative: before)',
    impl: (a) => {
      const d = a.dateInt(0);
      const days = a.integer(1);
      return a.at(0, () => dates.dateIntAdd(d, days));
    },
  },
  dayFromDateInt: {
    checkConstantArg: dateArgs([0], []),
    min: 1,
    max: 1,
    params: [DATEINT],
    returns: 'long',
    doc: 'dayFromDateInt(d): the day of the month of `d`',
    impl: (a) => {
      const d = a.dateInt(0);
      return a.at(0, () => dates.parseDateInt(d).day);
    },
  },
  dateIntRange: {
    checkConstantArg: dateArgs([0, 1], []),
    min: 2,
    max: 2,
    params: [DATEINT, DATEINT],
    returns: 'list',
    doc: 'dateIntRange(from, to): every dateInt from `from` to `to`, both included ([] when from > to)',
    impl: (a) => {
      const from = a.at(0, () => dates.epochDay(dates.parseDateInt(a.dateInt(0))));
      const to = a.at(1, () => dates.epochDay(dates.parseDateInt(a.dateInt(1))));
      const n = Math.max(0, to - from + 1);
      checkListLength(n, a.meter);
      const out = new Array<number>(n);
      for (let i = 0; i < n; i++) out[i] = dates.toDateInt(dates.fromEpochDay(from + i));
      return out;
    },
  },
  formatTs: {
    checkConstantArg: (i, v) => {
      if (i === 1 && typeof v === 'string') dates.formatTs(0, v, 'UTC');
      if (i === 2) timeZoneArg(v);
    },
    min: 2,
    max: 3,
    params: [NUM, STR, STR],
    returns: 'string',
    doc: "formatTs(ts, pattern, tz?): `ts` formatted with a pattern such as 'yyyy-MM-dd HH:mm' in `tz`",
    impl: (a) => {
      const ts = a.number(0);
      const pattern = a.string(1);
      const tz = a.timeZone(2);
      a.at(2, () => dates.assertTimeZone(tz));
      a.at(0, () => dates.assertTimestamp(ts));
      a.meter.charge(pattern.length);
      return stringResult(
        a.at(1, () => dates.formatTs(ts, pattern, tz)),
        a,
      );
    },
  },
  min: {
    min: 1,
    max: Number.POSITIVE_INFINITY,
    params: [['long', 'double', 'string', 'list']],
    returns: (t) => (t.length === 1 && t[0] === 'list' ? 'any' : numericResult(t)),
    doc: 'min(a, b, ...) or min(list): the smallest of numbers, or the first of strings',
    impl: (a) => extreme(a, (c) => c < 0),
  },
  max: {
    min: 1,
    max: Number.POSITIVE_INFINITY,
    params: [['long', 'double', 'string', 'list']],
    returns: (t) => (t.length === 1 && t[0] === 'list' ? 'any' : numericResult(t)),
    doc: 'max(a, b, ...) or max(list): the largest of numbers, or the last of strings',
    impl: (a) => extreme(a, (c) => c > 0),
  },
  len: {
    min: 1,
    max: 1,
    params: [['string', 'list', 'map']],
    returns: 'long',
    doc: 'len(x): characters of a string, elements of a list, keys of a map',
    impl: (a) => {
      const v = a.values[0];
      if (typeof v === 'string') {
        a.meter.charge(Math.ceil(v.length / 16));
        return codePoints(v);
      }
      if (Array.isArray(v)) return v.length;
      if (isPlainObject(v)) return Object.keys(v).length;
      throw a.error(0, 'EXPR_TYPE', `must be a string, list or map, got ${typeOf(v)}`);
    },
  },
  range: {
    min: 1,
    max: 2,
    params: [NUM, NUM],
    returns: 'list',
    doc: 'range(n): [0, 1, ..., n-1]; range(from, to): [from, ..., to-1]',
    impl: (a) => (a.length === 1 ? rangeList(a, 0, a.integer(0)) : rangeList(a, a.integer(0), a.integer(1))),
  },
  split: {
    min: 2,
    max: 2,
    params: [STR, STR],
    returns: 'list',
    doc: 'split(s, sep): the parts of `s` between occurrences of `sep` ("" splits into characters)',
    impl: (a) => {
      const s = a.string(0);
      const sep = a.string(1);
      a.meter.charge(Math.ceil(s.length / 16));
      // Count before allocating: the parts list must fit the list length limit.
      checkListLength(sep === '' ? codePoints(s) : occurrences(s, sep) + 1, a.meter);
      return sep === '' ? Array.from(s) : s.split(sep);
    },
  },
  join: {
    min: 1,
    max: 2,
    params: [LIST, STR],
    returns: 'string',
    doc: 'join(list, sep?): the elements as strings joined by `sep` (default ",")',
    impl: (a) => {
      const items = a.list(0);
      const sep = a.length > 1 ? a.string(1) : ',';
      a.meter.charge(items.length);
      let total = 0;
      const parts = items.map((v) => {
        if (v !== null && typeof v === 'object')
          throw a.error(0, 'EXPR_TYPE', 'must contain only strings, numbers, booleans or null');
        const s = displayString(v, a.meter);
        total += s.length + sep.length;
        checkStringLength(total, a.meter);
        return s;
      });
      return stringResult(parts.join(sep), a);
    },
  },
  lower: {
    min: 1,
    max: 1,
    params: [STR],
    returns: 'string',
    doc: 'lower(s): `s` in lower case',
    impl: (a) => stringResult(a.string(0).toLowerCase(), a),
  },
  upper: {
    min: 1,
    max: 1,
    params: [STR],
    returns: 'string',
    doc: 'upper(s): `s` in upper case',
    impl: (a) => stringResult(a.string(0).toUpperCase(), a),
  },
  contains: {
    min: 2,
    max: 2,
    params: [['string', 'list', 'map'], ANY],
    returns: 'boolean',
    doc: 'contains(x, y): string `x` has substring `y`; list `x` has an element equal to `y`; map `x` has key `y`',
    impl: (a) => {
      const h = a.values[0];
      const n = a.values[1]!;
      if (typeof h === 'string') {
        a.meter.charge(Math.ceil(h.length / 16));
        return h.includes(a.string(1));
      }
      if (Array.isArray(h)) return h.some((x) => deepEqual(x, n, a.meter));
      if (isPlainObject(h)) return Object.hasOwn(h, a.string(1)) && ownData(h, a.string(1)) !== undefined;
      throw a.error(0, 'EXPR_TYPE', `must be a string, list or map, got ${typeOf(h)}`);
    },
  },
  keys: {
    min: 1,
    max: 1,
    params: [['map']],
    returns: 'list',
    doc: 'keys(m): the keys of map `m`, sorted',
    impl: (a) => {
      const m = a.values[0];
      if (!isPlainObject(m)) throw a.error(0, 'EXPR_TYPE', `must be a map, got ${typeOf(m)}`);
      const k = Object.keys(m);
      checkListLength(k.length, a.meter);
      return k.sort();
    },
  },
  str: {
    min: 1,
    max: 1,
    params: [ANY],
    returns: 'string',
    doc: 'str(x): `x` as it reads inside a string (lists and maps as JSON)',
    impl: (a) => displayString(a.values[0]!, a.meter),
  },
  long: {
    min: 1,
    max: 1,
    params: [['long', 'double', 'string', 'boolean']],
    returns: 'long',
    doc: 'long(x): `x` as an integer (numbers truncated toward zero, numeric strings parsed)',
    impl: toLong,
  },
  double: {
    min: 1,
    max: 1,
    params: [['long', 'double', 'string', 'boolean']],
    returns: 'double',
    doc: 'double(x): `x` as a number (numeric strings parsed)',
    impl: toDouble,
  },
  trim: {
    min: 1,
    max: 1,
    params: [STR],
    returns: 'string',
    doc: 'trim(s): `s` without leading and trailing white space',
    impl: (a) => a.string(0).trim(),
  },
  replace: {
    min: 3,
    max: 3,
    params: [STR, STR, STR],
    returns: 'string',
    doc: 'replace(s, from, to): `s` with every occurrence of `from` replaced by `to` (plain text)',
    impl: (a) => {
      const s = a.string(0);
      const from = a.string(1);
      const to = a.string(2);
      if (from === '') throw a.error(1, 'EXPR_ARGUMENT', 'must not be empty');
      a.meter.charge(Math.ceil(s.length / 16));
      const count = s.split(from).length - 1;
      checkStringLength(s.length + count * (to.length - from.length), a.meter);
      return s.split(from).join(to);
    },
  },
  startsWith: {
    min: 2,
    max: 2,
    params: [STR, STR],
    returns: 'boolean',
    doc: 'startsWith(s, prefix)',
    impl: (a) => a.string(0).startsWith(a.string(1)),
  },
  endsWith: {
    min: 2,
    max: 2,
    params: [STR, STR],
    returns: 'boolean',
    doc: 'endsWith(s, suffix)',
    impl: (a) => a.string(0).endsWith(a.string(1)),
  },
  substring: {
    min: 2,
    max: 3,
    params: [STR, NUM, NUM],
    returns: 'string',
    doc: 'substring(s, start, end?): characters start..end-1 (clamped to the string)',
    impl: (a) => {
      const s = a.string(0);
      a.meter.charge(Math.ceil(s.length / 16));
      // By characters, as len() counts them, so that a surrogate pair is never cut in half.
      const chars = Array.from(s);
      const clamp = (n: number) => Math.min(Math.max(n, 0), chars.length);
      const start = clamp(a.integer(1));
      const end = clamp(a.length > 2 ? a.integer(2) : chars.length);
      return chars.slice(Math.min(start, end), Math.max(start, end)).join('');
    },
  },
  abs: {
    min: 1,
    max: 1,
    params: [NUM],
    returns: (t) => (t[0] === 'long' ? 'long' : 'double'),
    doc: 'abs(x)',
    impl: (a) => round(a, Math.abs),
  },
  floor: {
    min: 1,
    max: 1,
    params: [NUM],
    returns: 'long',
    doc: 'floor(x): the largest integer <= x',
    impl: (a) => round(a, Math.floor),
  },
  ceil: {
    min: 1,
    max: 1,
    params: [NUM],
    returns: 'long',
    doc: 'ceil(x): the smallest integer >= x',
    impl: (a) => round(a, Math.ceil),
  },
  round: {
    min: 1,
    max: 1,
    params: [NUM],
    returns: 'long',
    doc: 'round(x): x rounded to the nearest integer (halves away from zero)',
    impl: (a) => round(a, (x) => Math.sign(x) * Math.round(Math.abs(x))),
  },
};

/** The built-in functions by name (a Map: no inherited keys). */
export const BUILTINS: ReadonlyMap<string, Builtin> = new Map(Object.entries(table));

export function builtinParamTypes(b: Builtin, i: number): StaticType[] {
  return b.params[Math.min(i, b.params.length - 1)] ?? ANY;
}
