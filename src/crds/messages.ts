// Turns zod issues into one actionable message per problem: the field path in the notation users
// see in their YAML (`spec.definition.sequence[1].step.shell`) and what was expected there.
import type { z } from 'zod';
import { EXPECTED, ONE_OF_CODE } from './common.ts';

export type PathSegment = string | number;

/** A problem in a document: `path` is dotted with [i] indices; `code` is stable (SCHEMA_*, EXPR_*, ...). */
export interface ValidationIssue {
  path: string;
  message: string;
  code: string;
  /** The same path as segments, to locate the YAML node (line numbers). */
  segments?: PathSegment[];
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENT.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out === '' ? '(document)' : out;
}

export function issue(segments: PathSegment[], code: string, message: string): ValidationIssue {
  return { path: formatPath(segments), message, code, segments: [...segments] };
}

// --- walking a zod schema alongside a path (to name the allowed fields of an object) ---------

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  getter?: () => z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
}

function defOf(schema: z.ZodType): ZodDef {
  return (schema as unknown as { _zod: { def: ZodDef } })._zod.def;
}

/** Removes optional/nullable/default/lazy/pipe wrappers. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 50; i++) {
    const d = defOf(s);
    if (d.innerType && ['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch'].includes(d.type))
      s = d.innerType;
    else if (d.type === 'lazy') s = (s as unknown as { _zod: { innerType: z.ZodType } })._zod.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
  return s;
}

/** The schema that applies at `segments` below `root` (wrappers kept), if the path follows it. */
export function schemaAt(root: z.ZodType, segments: readonly PathSegment[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = root;
  for (const seg of segments) {
    if (!s) return undefined;
    const u = unwrap(s);
    const d = defOf(u);
    if (d.type === 'object' && typeof seg === 'string') s = d.shape?.[seg];
    else if (d.type === 'array' && typeof seg === 'number') s = d.element;
    else if (d.type === 'record') s = d.valueType;
    else return undefined;
  }
  return s;
}

export function objectKeys(schema: z.ZodType | undefined): string[] | undefined {
  if (!schema) return undefined;
  const d = defOf(unwrap(schema));
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : undefined;
}

/** Edit distance, for "did you mean" suggestions on misspelt field names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

// --- messages ---------------------------------------------------------------------------------

export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string')
    return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `the integer ${v}` : `the number ${v}`;
  return `${typeof v} ${String(v)}`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean (true or false)',
  object: 'an object',
  array: 'a list',
  record: 'a map of keys to values',
};

/** What a schema accepts, in words ("a string", "one of queue, skip, replace", ...). */
export function expectedOf(schema: z.ZodType | undefined): string | undefined {
  if (!schema) return undefined;
  for (let c: z.ZodType | undefined = schema; c; c = defOf(c).innerType) {
    const words = (c as unknown as { meta: () => Record<string, unknown> | undefined }).meta()?.[EXPECTED];
    if (typeof words === 'string') return words;
  }
  const s = unwrap(schema);
  const d = defOf(s) as ZodDef & { entries?: Record<string, unknown>; values?: unknown[]; format?: string };
  if (d.type === 'enum' && d.entries) return `one of ${Object.values(d.entries).join(', ')}`;
  if (d.type === 'literal' && d.values) return d.values.map((v) => JSON.stringify(v)).join(' or ');
  if (d.type === 'union' && d.options) {
    const parts = d.options.map((o) => expectedOf(o)).filter((x): x is string => x !== undefined);
    return [...new Set(parts)].join(' or ');
  }
  if (d.type === 'number') {
    const checks =
      (
        d as {
          checks?: {
            _zod: { def: { check: string; format?: string; value?: unknown; inclusive?: boolean } };
          }[];
        }
      ).checks ?? [];
    const isInt = checks.some((c) => c._zod.def.format === 'safeint');
    const lower = checks.find((c) => c._zod.def.check === 'greater_than')?._zod.def;
    const noun = isInt ? 'integer' : 'number';
    if (lower?.value === 0) return lower.inclusive ? `a non-negative ${noun}` : `a positive ${noun}`;
    if (typeof lower?.value === 'number')
      return `${isInt ? 'an' : 'a'} ${noun} ${lower.inclusive ? '>=' : '>'} ${lower.value}`;
    return isInt ? TYPE_NAMES.int : TYPE_NAMES.number;
  }
  return TYPE_NAMES[d.type] ?? d.type;
}

type ZodIssue = z.core.$ZodIssue;

function rangeMessage(
  i: ZodIssue & { origin?: string },
  small: boolean,
  field: PathSegment | undefined,
  expected: string | undefined,
): string {
  const bound = (small ? (i as { minimum?: unknown }).minimum : (i as { maximum?: unknown }).maximum) as
    | number
    | bigint;
  const inclusive = (i as { inclusive?: boolean }).inclusive !== false;
  const cmp = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
  switch (i.origin) {
    case 'array':
    case 'set': {
      if (!small) return `expected at most ${bound} items`;
      const found = Array.isArray(i.input)
        ? `${i.input.length} item${i.input.length === 1 ? '' : 's'}`
        : 'none';
      const what =
        field === 'or' || field === 'xor'
          ? 'at least one branch ({when, then} or {otherwise})'
          : field === 'sequence' || field === 'parallel'
            ? 'at least one node'
            : `at least ${bound} item${bound === 1 ? '' : 's'}`;
      return `expected ${what}, found ${found}`;
    }
    case 'string':
      return small && bound === 1
        ? 'expected a non-empty string'
        : `expected a string of length ${cmp} ${bound}`;
    default:
      return `expected ${expected ?? `a number ${cmp} ${bound}`}, found ${describeValue(i.input)}`;
  }
}

/** A value of the wrong type, or none where one is required. */
function wrongType(
  segments: PathSegment[],
  expected: string,
  input: unknown,
  here?: z.ZodType,
): ValidationIssue {
  if (input === undefined)
    return issue(
      segments,
      'SCHEMA_REQUIRED',
      `missing required field "${segments.at(-1)}": expected ${expected}`,
    );
  return issue(
    segments,
    'SCHEMA_TYPE',
    `expected ${expected}, found ${describeValue(input)}${indentationHint(expected, input, here)}`,
  );
}

/**
 * The usual YAML slips behind a wrong type: list items written without "- " (a map), or a key
 * left empty (`noop:` is null, not an empty object).
 */
function indentationHint(expected: string, input: unknown, here?: z.ZodType): string {
  if (expected === TYPE_NAMES.array && typeof input === 'object' && input !== null && !Array.isArray(input)) {
    const keys = Object.keys(input);
    const shown = keys.length > 4 ? `${keys.slice(0, 4).join(', ')}, ...` : keys.join(', ');
    const element = here ? defOf(unwrap(here)).element : undefined;
    const fields = objectKeys(element);
    // env, parameters: a Kubernetes-style list of named entries, not a map of names to values.
    if (fields?.includes('name') && fields.includes('value'))
      return ` with keys ${shown || '(none)'}; write a list of {name, value} entries, e.g. "- { name: ${keys[0] ?? 'x'}, value: ... }"`;
    return ` with keys ${shown || '(none)'}; write each list item on its own line starting with "- "`;
  }
  if (expected === TYPE_NAMES.object && input === null)
    return '; write {} for an empty object, or indent its fields under it';
  return '';
}

/**
 * One ValidationIssue per zod issue (unrecognized keys: one per key). `root` is the schema that
 * was parsed, used to name allowed fields and expected types.
 */
export function fromZodIssue(zi: ZodIssue, root: z.ZodType, prefix: PathSegment[] = []): ValidationIssue[] {
  const segments = [...prefix, ...(zi.path as PathSegment[])];
  const here = schemaAt(root, zi.path as PathSegment[]);
  switch (zi.code) {
    case 'unrecognized_keys': {
      const allowed = objectKeys(here) ?? [];
      return zi.keys.map((k) => {
        // A field of a child object one level too far out: "shell" next to "step" instead of
        // under it. Say where it belongs rather than suggesting a look-alike ("noop" -> "loop").
        const parent = here ? allowed.find((a) => objectKeys(schemaAt(here, [a]))?.includes(k)) : undefined;
        const hint = parent ? undefined : suggest(k, allowed);
        const where = parent ? ` ("${k}" is a field of ${parent}: write it under ${parent}:, indented)` : '';
        return issue(
          [...segments, k],
          'SCHEMA_UNKNOWN_FIELD',
          `unknown field "${k}"${hint ? ` (did you mean "${hint}"?)` : ''}${where}; expected one of ${allowed.join(', ')}`,
        );
      });
    }
    case 'invalid_type':
      return [
        wrongType(segments, expectedOf(here) ?? TYPE_NAMES[zi.expected] ?? zi.expected, zi.input, here),
      ];
    case 'invalid_value':
      return [
        issue(
          segments,
          'SCHEMA_ENUM',
          `expected ${zi.values.length === 1 ? JSON.stringify(zi.values[0]) : `one of ${zi.values.join(', ')}`}, found ${describeValue(zi.input)}`,
        ),
      ];
    case 'invalid_union':
      return [wrongType(segments, expectedOf(here) ?? 'a different value', zi.input)];
    case 'too_small':
      return [issue(segments, 'SCHEMA_RANGE', rangeMessage(zi, true, segments.at(-1), expectedOf(here)))];
    case 'too_big':
      return [issue(segments, 'SCHEMA_RANGE', rangeMessage(zi, false, segments.at(-1), undefined))];
    case 'invalid_format': {
      const what =
        zi.format === 'datetime'
          ? 'an RFC 3339 timestamp such as 2026-01-02T03:04:05Z'
          : zi.format === 'url'
            ? 'a URL such as https://hooks.example/meson'
            : zi.format === 'regex'
              ? `a value matching ${(zi as { pattern?: string }).pattern}`
              : `a ${zi.format}`;
      const message = zi.message && !zi.message.startsWith('Invalid') ? zi.message : `expected ${what}`;
      return [issue(segments, 'SCHEMA_FORMAT', `${message}, found ${describeValue(zi.input)}`)];
    }
    case 'custom': {
      const code = (zi.params as { code?: string } | undefined)?.code ?? ONE_OF_CODE;
      return [issue(segments, code, zi.message)];
    }
    default:
      return [issue(segments, 'SCHEMA_INVALID', zi.message)];
  }
}
