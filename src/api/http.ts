// Request helpers shared by the route plugins: zod parsing into problem details, path-parameter
// schemas (names as Kubernetes checks them, see src/crds/names.ts), body inspection, paging.
import type { z } from 'zod';
import {
  DNS1123_LABEL_MAX,
  DNS1123_LABEL_PATTERN,
  DNS1123_SUBDOMAIN_MAX,
  DNS1123_SUBDOMAIN_PATTERN,
  type NameKind,
  nameProblem,
  STEP_INSTANCE_ID_MAX,
  STEP_INSTANCE_ID_PATTERN,
} from '../crds/names.ts';
import { ApiError, type ProblemIssue } from './problems.ts';

/** Parses `value` with `schema`; a failure is a 400 problem listing every issue with its path. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issues = res.error.issues.map((i) => ({
    path: [where, ...i.path.map(String)].join('.'),
    message: i.message,
    code: i.code,
  }));
  throw new ApiError(
    'API_BAD_REQUEST',
    `invalid ${where}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    {
      issues,
    },
  );
}

/** 422 naming every field of `issues` (names, system-owned fields...). */
export function assertNoIssues(issues: ProblemIssue[], what: string): void {
  if (issues.length === 0) return;
  throw new ApiError('API_INVALID', `${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
    issues: issues.map((i) => ({ path: i.path, message: i.message, ...(i.code ? { code: i.code } : {}) })),
  });
}

// --- path parameters ------------------------------------------------------------------------

/** What each path parameter of the API names; every route's params are validated from this. */
export const PATH_PARAM_KINDS: Record<string, NameKind | 'version'> = {
  ns: 'namespace',
  name: 'name',
  run: 'name',
  step: 'stepInstance',
  version: 'version',
};

const PARAM_SCHEMAS: Record<NameKind | 'version', Record<string, unknown>> = {
  namespace: { type: 'string', maxLength: DNS1123_LABEL_MAX, pattern: DNS1123_LABEL_PATTERN },
  name: { type: 'string', maxLength: DNS1123_SUBDOMAIN_MAX, pattern: DNS1123_SUBDOMAIN_PATTERN },
  generateName: { type: 'string' },
  stepInstance: { type: 'string', maxLength: STEP_INSTANCE_ID_MAX, pattern: STEP_INSTANCE_ID_PATTERN },
  version: { type: 'string', pattern: '^[1-9][0-9]{0,8}$' },
};

/** The JSON schema of path parameter `name` (for routes and the OpenAPI document). */
export function pathParamSchema(name: string): Record<string, unknown> {
  const kind = PATH_PARAM_KINDS[name];
  if (!kind) throw new Error(`path parameter :${name} has no name rule in PATH_PARAM_KINDS`);
  return PARAM_SCHEMAS[kind];
}

/** The JSON schema of a route's path parameters (e.g. `:ns/runs/:run`); unknown names throw. */
export function pathParamsSchema(url: string): Record<string, unknown> | undefined {
  const names = [...url.matchAll(/:([A-Za-z_]+)/g)].map((m) => m[1]!);
  if (names.length === 0) return undefined;
  const properties: Record<string, unknown> = {};
  for (const n of names) properties[n] = pathParamSchema(n);
  return { type: 'object', required: names, properties, additionalProperties: false };
}

/** The problem with path parameter `name` = `value` (for the 400 answer), if any. */
export function pathParamProblem(name: string, value: unknown): string | undefined {
  const kind = PATH_PARAM_KINDS[name];
  if (kind === undefined) return undefined;
  if (kind === 'version')
    return typeof value === 'string' && /^[1-9][0-9]{0,8}$/.test(value)
      ? undefined
      : `expected a positive integer, found ${JSON.stringify(String(value).slice(0, 100))}`;
  return nameProblem(kind, value);
}

// --- bodies ---------------------------------------------------------------------------------

/**
 * Default bound of the nesting of a request body (objects and arrays): above the validator's
 * MAX_NESTING (256), so that a deep manifest gets its precise 422 first.
 */
export const DEFAULT_MAX_BODY_DEPTH = 512;

/**
 * Refuses a parsed body (JSON or YAML alike) holding a `__proto__` key anywhere, or nested
 * deeper than `maxDepth`: one behaviour for every content type and field, checked without
 * recursion so that no body can exhaust the stack.
 */
export function inspectBody(value: unknown, maxDepth = DEFAULT_MAX_BODY_DEPTH): void {
  const stack: { v: unknown; path: string[]; depth: number }[] = [{ v: value, path: [], depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxDepth) throw tooDeep(maxDepth, ['body', ...path.slice(0, 10)].join('.'));
    for (const k of Object.keys(v)) {
      if (k === '__proto__') throw forbiddenKey([...path, k].join('.'));
      stack.push({ v: (v as Record<string, unknown>)[k], path: [...path, k], depth: depth + 1 });
    }
  }
}

export function tooDeep(maxDepth: number, path = 'body'): ApiError {
  const message = `nested deeper than ${maxDepth} levels`;
  return new ApiError('API_BAD_REQUEST', `body: ${message}`, {
    issues: [{ path, message, code: 'BODY_TOO_DEEP' }],
  });
}

/** Names that would become object keys (parameters given as a list) obey the same rule. */
export function inspectNames(list: readonly { name: string }[] | undefined, path: string): void {
  list?.forEach((p, i) => {
    if (p.name === '__proto__') throw forbiddenKey(`${path}[${i}].name`);
  });
}

function forbiddenKey(path: string): ApiError {
  const message = 'the key "__proto__" is not allowed';
  return new ApiError('API_BAD_REQUEST', `body.${path}: ${message}`, {
    issues: [{ path: `body.${path}`, message, code: 'BODY_FORBIDDEN_KEY' }],
  });
}

export function pageLimit(raw: unknown, max = 1000, name = 'limit'): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ApiError('API_BAD_REQUEST', `${name}: expected an integer from 1 to ${max}, got "${raw}"`);
  }
  return n;
}

export type Query = Record<string, string | undefined>;
