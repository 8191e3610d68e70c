import { invalidArgument } from './errors.ts';

/**
 * A deep copy of plain data (what YAML can hold): `undefined` object members are dropped,
 * keys are put in canonical order when `sortKeys` is set (for byte-stable output, see
 * `compareKeys`). Anything else (functions,
 * class instances, symbols, non-finite numbers, `undefined` inside arrays, cycles) is
 * rejected with an error naming `where` and the path inside the value.
 */
export function plainData<T>(value: T, where: string, sortKeys = false): T {
  return copy(value, where, sortKeys, new Set()) as T;
}

function copy(value: unknown, path: string, sortKeys: boolean, seen: Set<object>): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalidArgument(path, 'a finite number', value);
    return value;
  }
  if (typeof value !== 'object')
    throw invalidArgument(path, 'plain data (string, number, boolean, list, map)', value);
  if (seen.has(value)) throw invalidArgument(path, 'data without cycles', value);
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((item, i) => {
        if (item === undefined) throw invalidArgument(`${path}[${i}]`, 'a value', item);
        return copy(item, `${path}[${i}]`, sortKeys, seen);
      });
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw invalidArgument(path, 'a plain object', value);
    }
    const keys = Object.keys(value);
    if (sortKeys) keys.sort(compareKeys);
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const member = (value as Record<string, unknown>)[key];
      if (member === undefined) continue;
      out[key] = copy(member, `${path}.${key}`, sortKeys, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** Keys that lead their map, so that a reader sees what a thing is before its details. */
const LEADING = ['name', 'description', 'when'];
/** Keys that close their map: the nested graph comes after the settings that frame it. */
const TRAILING = ['definition', 'do', 'then'];

/**
 * Canonical key order: `name`, `description` and `when` first, the nested graph (`definition`, `do`, `then`)
 * last, every other key in code-unit order (independent of the locale, so the output is the
 * same on every machine).
 */
export function compareKeys(a: string, b: string): number {
  const rank = (k: string): number => (LEADING.includes(k) ? 0 : TRAILING.includes(k) ? 2 : 1);
  const byRank = rank(a) - rank(b);
  if (byRank !== 0) return byRank;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
