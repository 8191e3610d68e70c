// Helpers on runtime values: type names, the data-only guard, bounded equality and display.
import { ExprError } from './errors.ts';
import type { Value, ValueType } from './types.ts';

/** Charges evaluation work; throws EXPR_LIMIT when the budget is spent. */
export interface Meter {
  charge(units: number): void;
  readonly maxValueDepth: number;
  readonly maxStringLength: number;
  readonly maxListLength: number;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The type name of a value (numbers: `long` when integral). Throws for non-data. */
export function typeOf(v: unknown): ValueType {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    case 'number':
      if (!Number.isFinite(v)) throw new ExprError('EXPR_ARITHMETIC', `${v} is not a JSON number`);
      return Number.isInteger(v) ? 'long' : 'double';
    case 'object':
      if (Array.isArray(v)) return 'list';
      if (isPlainObject(v)) return 'map';
  }
  throw new ExprError('EXPR_TYPE', `a ${describeForeign(v)} is not a data value`);
}

function describeForeign(v: unknown): string {
  if (v === undefined) return 'missing value (undefined)';
  if (typeof v === 'object') {
    const name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    return typeof name === 'string' ? `${name} object` : 'non-plain object';
  }
  return typeof v;
}

/**
 * Reads own data property `key` of a plain object or array, never a getter or an inherited
 * property. Returns `undefined` when absent.
 */
export function ownData(obj: object, key: string): unknown {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  if (!d) return undefined;
  if (!('value' in d)) throw new ExprError('EXPR_FORBIDDEN', `"${key}" is an accessor, not data`);
  return d.value;
}

/** Checks deeply that `v` is a JSON value (bounded by depth and the meter); returns it. */
export function assertValue(v: unknown, meter: Meter, depth = 0): Value {
  if (depth > meter.maxValueDepth)
    throw new ExprError('EXPR_LIMIT', `value nested deeper than ${meter.maxValueDepth} levels (or cyclic)`);
  meter.charge(1);
  const t = typeOf(v);
  if (t === 'list') {
    const a = v as unknown[];
    for (let i = 0; i < a.length; i++) {
      if (!Object.hasOwn(a, i)) throw new ExprError('EXPR_TYPE', 'a list with holes is not a data value');
      assertValue(a[i], meter, depth + 1);
    }
  } else if (t === 'map') {
    for (const k of Object.keys(v as object)) assertValue(ownData(v as object, k), meter, depth + 1);
  }
  return v as Value;
}

/** Structural equality of JSON values (no coercion), bounded by depth and the meter. */
export function deepEqual(a: Value, b: Value, meter: Meter, depth = 0): boolean {
  meter.charge(1);
  if (depth > meter.maxValueDepth)
    throw new ExprError('EXPR_LIMIT', `value nested deeper than ${meter.maxValueDepth} levels (or cyclic)`);
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i]!, b[i]!, meter, depth + 1)) return false;
    return true;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    if (!deepEqual(ownData(a, k) as Value, ownData(b, k) as Value, meter, depth + 1)) return false;
  }
  return true;
}

/**
 * How a value reads inside a string (interpolation, `+` with a string, str()): strings as
 * they are, numbers/booleans/null as in JSON, lists and maps as compact JSON.
 */
export function displayString(v: Value, meter: Meter): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  assertValue(v, meter);
  const s = JSON.stringify(v);
  checkStringLength(s.length, meter);
  return s;
}

export function checkStringLength(length: number, meter: Meter): void {
  if (length > meter.maxStringLength)
    throw new ExprError('EXPR_LIMIT', `string longer than ${meter.maxStringLength} characters`);
  meter.charge(Math.ceil(length / 64));
}

export function checkListLength(length: number, meter: Meter): void {
  if (length > meter.maxListLength)
    throw new ExprError('EXPR_LIMIT', `list longer than ${meter.maxListLength} elements`);
  meter.charge(length);
}
