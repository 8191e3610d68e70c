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
import type { LabelRequirement } from '../store/types.ts';
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
  const n = /^\d{1,7}$/.test(String(raw)) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ApiError('API_BAD_REQUEST', `${name}: expected an integer from 1 to ${max}, got "${raw}"`);
  }
  return n;
}

export type Query = Record<string, string | undefined>;

// --- query parameters -----------------------------------------------------------------------

/**
 * The query parameters each route accepts, with their description (the OpenAPI document is
 * generated from this table). A route missing here accepts none; any other parameter, or one
 * given twice, is a 400 naming it. A name ending in `.*` accepts every parameter with that prefix.
 */
export const ROUTE_QUERY: Record<string, Record<string, string>> = {
  'GET /api/v1/namespaces/:ns/workflows': {
    limit: 'Page size (1 to 1000)',
    continue: 'Token of the next page',
  },
  'GET /api/v1/namespaces/:ns/runs': {
    workflow: 'Only runs of this workflow',
    phase: 'Only runs in this phase (Pending for runs not started)',
    initiator:
      'Only runs started by this initiator type (api, manual, schedule, artifact, backfill, restart...)',
    version: 'Only runs of this workflow version',
    labelSelector: 'Kubernetes label selector: k=v, k==v, k!=v, k, !k, comma-separated (all must hold)',
    createdAfter: 'Only runs created at or after this RFC 3339 time',
    createdBefore: 'Only runs created before this RFC 3339 time',
    limit: 'Page size (1 to 1000, default 100)',
    continue: 'Token of the next page (stays correct while runs are added)',
    watch:
      'true: a server-sent event stream of ADDED/MODIFIED/DELETED runs (same filters but phase/initiator/version/createdAfter/createdBefore)',
    resourceVersion: 'With watch: replay the runs written after this resourceVersion first',
  },
  'GET /api/v1/namespaces/:ns/runs/:run': {
    steps: 'false: omit step instances',
    stepsLimit: 'Most step instances to include (1 to 10000, default 1000)',
  },
  'GET /api/v1/namespaces/:ns/runs/:run/events': {
    resourceVersion: 'Replay the run as written after this resourceVersion first',
  },
  'GET /api/v1/namespaces/:ns/runs/:run/steps': {
    phase: 'Only instances in this phase',
    limit: 'Page size (1 to 10000, default 1000)',
    continue: 'Token of the next page',
  },
  'GET /api/v1/namespaces/:ns/runs/:run/steps/:step/logs': {
    attempt: 'Attempt number (default the latest)',
    stream: 'stdout (default), stderr, or all (both, in the order they were read)',
    follow: 'true: keep the response open and send new output until the attempt ends',
  },
  'GET /api/v1/namespaces/:ns/artifacts': {
    name: 'Artifact name',
    partition: 'k=v[,k=v...]: partition must contain these',
    'partition.*': 'partition.k=v: partition must contain k=v',
    limit: 'Page size (1 to 1000)',
    continue: 'Token of the next page',
  },
  'GET /api/v1/namespaces/:ns/artifacts/:name/consumers': {
    limit:
      'Artifact-triggered runs read per page (1 to 1000, default 100); the matches among them are returned',
    continue: 'Token of the next page of runs (workflows come with the first page only)',
  },
};

/** The 400 for a query parameter `route` does not accept (or one repeated); undefined if all are fine. */
export function queryProblem(route: string, query: unknown): ApiError | undefined {
  const allowed = ROUTE_QUERY[route] ?? {};
  const names = Object.keys(allowed);
  for (const [k, v] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const known = names.some((n) =>
      n.endsWith('.*') ? k.startsWith(n.slice(0, -1)) && k.length > n.length - 1 : n === k,
    );
    const shown = JSON.stringify(k.slice(0, 100));
    if (!known) {
      const message =
        names.length === 0
          ? `unknown query parameter ${shown}: this route takes none`
          : `unknown query parameter ${shown}: expected one of ${names.join(', ')}`;
      return new ApiError('API_BAD_REQUEST', message, {
        issues: [{ path: `query.${k.slice(0, 100)}`, message, code: 'QUERY_UNKNOWN' }],
      });
    }
    if (Array.isArray(v)) {
      const message = `query parameter ${shown} given ${v.length} times: give it once`;
      return new ApiError('API_BAD_REQUEST', message, {
        issues: [{ path: `query.${k.slice(0, 100)}`, message, code: 'QUERY_REPEATED' }],
      });
    }
  }
  return undefined;
}

/** A boolean query parameter: true, false (or absent: `dflt`); anything else is a 400. */
export function queryBool(raw: string | undefined, name: string, dflt = false): boolean {
  if (raw === undefined || raw === '') return dflt;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ApiError(
    'API_BAD_REQUEST',
    `${name}: expected true or false, got ${JSON.stringify(raw.slice(0, 100))}`,
  );
}

/** An RFC 3339 time as the store writes times (ISO 8601 UTC, milliseconds); a 400 otherwise. */
export function queryTime(raw: string | undefined, name: string): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(raw);
  const ms = ok ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new ApiError(
      'API_BAD_REQUEST',
      `${name}: expected an RFC 3339 time such as 2026-01-31T00:00:00Z, got ${JSON.stringify(raw.slice(0, 100))}`,
    );
  }
  return new Date(ms).toISOString();
}

/** Label keys as Kubernetes writes them: an optional DNS subdomain prefix and a name. */
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Parses a label selector (equality and existence: `a=b,c!=d,e,!f`); a 400 naming the term otherwise. */
export function parseLabelSelector(raw: string | undefined): LabelRequirement[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const out: LabelRequirement[] = [];
  const terms = raw.split(',');
  if (terms.length > 20) throw new ApiError('API_BAD_REQUEST', 'labelSelector: at most 20 requirements');
  for (const term of terms.map((t) => t.trim())) {
    const m = /^(!?)([^=!]+?)\s*(?:(==|=|!=)\s*(.*))?$/.exec(term);
    const bad = () =>
      new ApiError(
        'API_BAD_REQUEST',
        `labelSelector: invalid requirement ${JSON.stringify(term.slice(0, 100))} (expected k=v, k!=v, k or !k)`,
        { issues: [{ path: 'query.labelSelector', message: `invalid requirement`, code: 'LABEL_SELECTOR' }] },
      );
    if (!m) throw bad();
    const [, not, key, op, value] = m;
    if (!LABEL_KEY.test(key!)) throw bad();
    if (op === undefined) out.push({ key: key!, op: not ? 'absent' : 'exists' });
    else {
      if (not || !LABEL_VALUE.test(value!)) throw bad();
      out.push({ key: key!, op: op === '!=' ? 'neq' : 'eq', value: value! });
    }
  }
  return out;
}
