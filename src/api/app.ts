// The REST API as a Fastify app factory (no listen here: tests use inject(), the server listens).
// One plugin per resource under /api/v1/namespaces/:ns/...; errors are problem+json; the OpenAPI 3
// document is served at /openapi.json.
//
// Security at the edge, before any route runs (see docs/rest-api.md, "Security"):
// - Host: only the allowed host names (loopback by default) are served, so a DNS-rebinding page
//   cannot reach a server bound to 127.0.0.1;
// - writes (POST/PUT/PATCH/DELETE) from another origin, or with a content type a cross-site form
//   can send, are refused;
// - with a token, every route but the explicit public ones (PUBLIC_ROUTES) needs it: the decision
//   is taken on the route the router matched, never on the raw URL (which the router decodes);
// - bodies: a size limit (413), a nesting limit, no `__proto__` keys, bounded YAML aliases.
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, {
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import { Composer, CST, type Document, isScalar, Lexer, LineCounter, Parser, visit } from 'yaml';
import { STEP_INSTANCE_ID_MAX } from '../crds/names.ts';
import type { Metrics } from '../metrics/index.ts';
import { metricsRoutes } from '../metrics/routes.ts';
import { cacheHistory } from '../store/history.ts';
import type { AsyncStore, RunHistory, StoreReads } from '../store/port.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import type { Store } from '../store/types.ts';
import { StoreError } from '../store/types.ts';
import { UI_ROUTES, uiRoutes } from '../ui/serve.ts';
import {
  DEFAULT_MAX_BODY_DEPTH,
  inspectBody,
  pathParamProblem,
  pathParamsSchema,
  queryProblem,
  tooDeep,
} from './http.ts';
import { FileLogSource, type LogSource } from './logs.ts';
import { buildOpenApi } from './openapi.ts';
import { ApiError, type ProblemIssue, sendProblem } from './problems.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { backfillRoutes } from './routes/backfill.ts';
import { runRoutes } from './routes/runs.ts';
import { workflowRoutes } from './routes/workflows.ts';
import { DEFAULT_STREAM_LIMITS, StreamGate, type StreamLimits } from './streams.ts';

/** Default request body limit: 1 MiB (MESON_BODY_LIMIT, --body-limit). */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** Default bound of YAML alias expansions in a body (billion laughs). */
export const YAML_MAX_ALIAS_COUNT = 100;
/** Host names always allowed in the Host header when the host check is on. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'] as const;

export interface ApiDeps {
  /**
   * The store port (src/store/port.ts): reads from its cache, writes committed with
   * `transaction`. Standalone: a SqliteAsyncStore; operator mode: the KubernetesStore.
   */
  store: AsyncStore;
  /**
   * Where step logs are read. Default for a SqliteAsyncStore: the attempt directories' files;
   * operator mode passes a PodLogSource (pods/log).
   */
  logs?: LogSource;
  /** Bearer token required on every route but the public ones when set (MESON_API_TOKEN). */
  token?: string;
  /**
   * Host names (without port) the server answers to, besides LOOPBACK_HOSTS; 'any' turns the
   * check off (a server reachable beyond loopback, protected by its token). Default: loopback only.
   */
  allowedHosts?: readonly string[] | 'any';
  /** Largest request body in bytes (default DEFAULT_BODY_LIMIT). */
  bodyLimit?: number;
  /** Deepest nesting of objects and arrays in a body (default DEFAULT_MAX_BODY_DEPTH). */
  maxBodyDepth?: number;
  /** Bounds of the long-lived responses (log follow, watches): see src/api/streams.ts. */
  streams?: Partial<StreamLimits>;
  /** Fastify logger option: a pino instance, true, or false (default). */
  logger?: FastifyServerOptions['loggerInstance'] | boolean;
  now?: () => number;
  /** Serves GET /metrics (Prometheus) when set; behind the token like the API. */
  metrics?: Metrics;
}

export interface RouteDeps {
  store: AsyncStore;
  /** The store's run history (its own, or paged over its cache). */
  history: RunHistory;
  logs: LogSource;
  now: () => number;
  /** Admits and bounds the streaming responses (log follow, watches). */
  streams: StreamGate;
}

/**
 * The controller's run-start checks and versioning (src/controller/run-check.ts, step-logs.ts,
 * workflows.ts ensureVersion) are still typed on the first port, but read only `get`, `list`
 * and `getStepInstance`, which every AsyncStore has from its cache. This is the one place the
 * API hands its store to them, until the controller's migration retypes them on StoreReads.
 */
export function readsAsStore(store: StoreReads): Store {
  return store as unknown as Store;
}

/** Compares in constant time whatever the lengths (both sides hashed first). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer +(.+?) *$/i.exec(header ?? '');
  const given = createHash('sha256')
    .update(m?.[1] ?? '')
    .digest();
  const want = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, want) && m !== null;
}

/** The host name of a Host header, lower-cased, without port or trailing dot; undefined if malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(:\d{1,5})?$/.exec(h);
  if (!m) return undefined;
  return m[1]!.replace(/\.$/, '');
}

/** Whether an Origin header names the server of this Host header (default ports filled in). */
export function sameOrigin(origin: string, host: string | undefined): boolean {
  if (origin === 'null' || !host) return false;
  let o: URL;
  let h: URL;
  try {
    o = new URL(origin);
    h = new URL(`${o.protocol}//${host}`);
  } catch {
    return false;
  }
  if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
  return o.origin === h.origin && h.pathname === '/' && h.username === '' && h.password === '';
}

/** Content types a cross-site HTML form or a "simple" fetch can send without a preflight. */
const SIMPLE_CONTENT_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Refuses foreign Host headers and cross-origin writes (DNS rebinding, CSRF). */
function checkOrigin(req: FastifyRequest, allowed: Set<string> | 'any'): void {
  const host = req.headers.host;
  if (allowed !== 'any') {
    const name = hostName(host);
    if (!name || !allowed.has(name)) {
      throw new ApiError(
        'API_FORBIDDEN',
        `host "${String(host ?? '').slice(0, 100)}" is not allowed: this server answers to ${[...allowed].join(', ')} (add names with --allowed-host or MESON_ALLOWED_HOSTS)`,
      );
    }
  }
  if (SAFE_METHODS.has(req.method)) return;
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, host)) {
    throw new ApiError(
      'API_FORBIDDEN',
      `cross-origin ${req.method} refused: Origin "${origin.slice(0, 100)}" is not this server (${String(host ?? '').slice(0, 100)})`,
    );
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ApiError('API_FORBIDDEN', `cross-site ${req.method} refused (Sec-Fetch-Site: ${site})`);
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (SIMPLE_CONTENT_TYPES.includes(type)) {
    throw new ApiError(
      'API_UNSUPPORTED_MEDIA_TYPE',
      `unsupported content-type "${type}": send application/json or application/yaml`,
    );
  }
}

/** 400 for a body that does not parse: the first line of the parser's message, with a stable code. */
function badBody(format: 'JSON' | 'YAML', message: string, code: string, cause?: unknown): ApiError {
  const line = message.split('\n')[0]!;
  return new ApiError('API_BAD_REQUEST', `invalid ${format} body: ${line}`, {
    issues: [{ path: '(body)', message: line, code }],
    ...(cause === undefined ? {} : { cause }),
  });
}

/** One YAML document; a syntax error or an alias bomb is a 400 naming the line and column. */
export function parseYamlBody(text: string, maxDepth = DEFAULT_MAX_BODY_DEPTH): unknown {
  let value: unknown;
  try {
    value = parseYaml(text, maxDepth);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // e.g. "Excessive alias count indicates a resource exhaustion attack", or a stack overflow
    throw badBody('YAML', (err as Error).message ?? String(err), 'YAML_LIMIT', err);
  }
  inspectBody(value, maxDepth);
  return value;
}

/**
 * The lexemes of `text` for the parser, stopping at a flow collection (`[`, `{`) nested deeper
 * than `maxDepth`: the parser takes seconds on a megabyte of `[[[[`, the lexer knows quotes and
 * block scalars.
 */
function* boundedTokens(text: string, parser: Parser, maxDepth: number) {
  let depth = 0;
  for (const lexeme of new Lexer().lex(text)) {
    const type = CST.tokenType(lexeme);
    if (type === 'flow-seq-start' || type === 'flow-map-start') {
      if (++depth > maxDepth) throw tooDeep(maxDepth);
    } else if ((type === 'flow-seq-end' || type === 'flow-map-end') && depth > 0) depth--;
    yield* parser.next(lexeme);
  }
  yield* parser.end();
}

function parseYaml(text: string, maxDepth: number): unknown {
  const lineCounter = new LineCounter();
  const where = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return `line ${pos.line}, column ${pos.col}`;
  };
  // uniqueKeys: the library's check is quadratic (minutes for a 1 MiB map): see duplicateKey
  const parser = new Parser(lineCounter.addNewLine);
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false });
  const docs = Array.from(composer.compose(boundedTokens(text, parser, maxDepth)));
  if (docs.length === 0) return null;
  if (docs.length > 1) {
    // e.g. a file holding a Workflow and its subworkflow: one object per request
    const message = `expected one YAML document, got ${docs.length}: send each manifest in its own request`;
    throw badBody('YAML', message, 'YAML_MULTIPLE_DOCUMENTS');
  }
  const doc = docs[0]!;
  const first = doc.errors[0];
  if (first) throw badBody('YAML', `${where(first.pos[0])}: ${first.message}`, 'YAML_SYNTAX');
  const dup = duplicateKey(doc);
  if (dup) throw badBody('YAML', `${where(dup.offset)}: duplicate key "${dup.key}"`, 'YAML_SYNTAX');
  return doc.toJS({ maxAliasCount: YAML_MAX_ALIAS_COUNT });
}

/** The first key repeated in a map of `doc`, in linear time. */
function duplicateKey(doc: Document): { key: string; offset: number } | undefined {
  let found: { key: string; offset: number } | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key) || key.value === '<<') continue;
        const k = String(key.value);
        if (seen.has(k)) {
          found = { key: k.slice(0, 100), offset: key.range?.[0] ?? 0 };
          return visit.BREAK;
        }
        seen.add(k);
      }
      return undefined;
    },
  });
  return found;
}

/** A JSON body, under the same rules as YAML ones (no `__proto__`, bounded nesting). */
export function parseJsonBody(text: string, maxDepth = DEFAULT_MAX_BODY_DEPTH): unknown {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badBody('JSON', (err as Error).message, 'JSON_SYNTAX', err);
  }
  inspectBody(value, maxDepth);
  return value;
}

function storeToApi(err: StoreError): ApiError {
  switch (err.code) {
    case 'STORE_NOT_FOUND':
      return new ApiError('API_NOT_FOUND', err.message, { cause: err });
    case 'STORE_ALREADY_EXISTS':
      return new ApiError('API_ALREADY_EXISTS', err.message, { cause: err });
    case 'STORE_CONFLICT':
      return new ApiError('API_CONFLICT', err.message, { cause: err });
    case 'STORE_INVALID':
    case 'STORE_UNSAFE_PATH':
      return new ApiError('API_BAD_REQUEST', err.message, { cause: err });
    case 'STORE_TOO_LARGE':
      return new ApiError('API_PAYLOAD_TOO_LARGE', err.message, { cause: err });
    case 'STORE_UNAVAILABLE':
      return new ApiError('API_UNAVAILABLE', err.message, { cause: err });
    default:
      return new ApiError('API_INTERNAL', err.message, { cause: err });
  }
}

/**
 * Routes anyone may call without a token (liveness and the API description); every other route,
 * and any URL that matches no route, needs the token when one is set.
 */
export const PUBLIC_ROUTES = ['/healthz', '/readyz', '/openapi.json'] as const;

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const logger = deps.logger;
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const maxDepth = deps.maxBodyDepth ?? DEFAULT_MAX_BODY_DEPTH;
  const options = {
    bodyLimit,
    // path parameters up to the longest name (a step instance id, STEP_INSTANCE_ID_MAX): longer
    // ones are refused by the name rules with a 400 naming the parameter
    routerOptions: { maxParamLength: STEP_INSTANCE_ID_MAX + 1 },
    // one log line per request (Fastify's default is two: "incoming request" and "request completed")
    logController: new LogController({ disableRequestLogging: true }),
  };
  const app =
    typeof logger === 'object' && logger !== null
      ? Fastify({ ...options, loggerInstance: logger })
      : Fastify({ ...options, logger: logger === true });
  app.addHook('onResponse', async (req, reply) => {
    const fields = {
      method: req.method,
      url: req.url,
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (reply.statusCode >= 500) req.log.error(fields, 'request failed');
    else req.log.info(fields, 'request');
  });
  const streams = new StreamGate({ ...DEFAULT_STREAM_LIMITS, ...(deps.streams ?? {}) });
  const store = deps.store;
  let logs = deps.logs;
  if (!logs && store instanceof SqliteAsyncStore) {
    const files = store.sync;
    logs = new FileLogSource(store, (...a) => files.attemptDir(...a), streams.limits.pollMs);
  }
  if (!logs) throw new Error('buildApp: `logs` is required with a store other than SqliteAsyncStore');
  const routeDeps: RouteDeps = {
    store,
    history: store.history ?? cacheHistory(store),
    logs,
    now: deps.now ?? Date.now,
    streams,
  };
  // open streams end (and free their watchers) when the server closes
  app.addHook('preClose', async () => streams.closeAll());

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ApiError) return sendProblem(reply, err);
    if (err instanceof StoreError) return sendProblem(reply, storeToApi(err));
    const e = err as {
      statusCode?: number;
      message?: string;
      code?: string;
      validation?: { instancePath?: string; params?: Record<string, unknown> }[];
      validationContext?: string;
    };
    if (e.validation && e.validationContext === 'params') {
      const params = (req.params ?? {}) as Record<string, unknown>;
      const issues: ProblemIssue[] = Object.entries(params).flatMap(([k, v]) => {
        const problem = pathParamProblem(k, v);
        return problem ? [{ path: `params.${k}`, message: problem, code: 'NAME_INVALID' }] : [];
      });
      if (issues.length === 0)
        issues.push({ path: 'params', message: e.message ?? 'invalid', code: 'NAME_INVALID' });
      return sendProblem(
        reply,
        new ApiError('API_BAD_REQUEST', issues.map((i) => `${i.path}: ${i.message}`).join('; '), { issues }),
      );
    }
    if (e.statusCode === 413) {
      return sendProblem(
        reply,
        new ApiError(
          'API_PAYLOAD_TOO_LARGE',
          `request body larger than ${bodyLimit} bytes (the server's --body-limit / MESON_BODY_LIMIT)`,
        ),
      );
    }
    if (e.statusCode === 415) {
      return sendProblem(
        reply,
        new ApiError(
          'API_UNSUPPORTED_MEDIA_TYPE',
          `unsupported content-type "${req.headers['content-type'] ?? ''}": send application/json or application/yaml`,
        ),
      );
    }
    if (e.statusCode && e.statusCode < 500) {
      return sendProblem(reply, new ApiError('API_BAD_REQUEST', e.message ?? 'bad request'));
    }
    req.log.error({ err }, 'request failed');
    return sendProblem(reply, new ApiError('API_INTERNAL', 'internal error'));
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, new ApiError('API_NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`)),
  );

  // the web UI's page and files are public too (they hold no data: its data calls are /api calls)
  const publicRoutes = new Set<string>([...PUBLIC_ROUTES, ...UI_ROUTES]);
  // every route's path parameters are names, checked as Kubernetes checks them (400 naming the
  // parameter): a route with a parameter that has no rule does not even start
  app.addHook('onRoute', (route) => {
    const pub = (route.config as { public?: boolean } | undefined)?.public === true;
    if (pub && !publicRoutes.has(route.url ?? route.path)) {
      throw new Error(`route ${route.url}: only ${[...publicRoutes].join(', ')} may be public`);
    }
    const params = pathParamsSchema(route.url ?? route.path);
    if (params) route.schema = { ...(route.schema ?? {}), params };
  });

  const allowed =
    deps.allowedHosts === 'any'
      ? ('any' as const)
      : new Set<string>([...LOOPBACK_HOSTS, ...(deps.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  const token = deps.token;
  app.addHook('onRequest', async (req) => {
    checkOrigin(req, allowed);
    if (!token) return;
    // decided on the route the router matched (after decoding), never on the raw URL;
    // an unknown URL needs the token too, so that a 404 tells a stranger nothing
    if ((req.routeOptions.config as { public?: boolean } | undefined)?.public === true) return;
    if (!tokenMatches(req.headers.authorization, token)) {
      throw new ApiError('API_UNAUTHORIZED', 'a valid "Authorization: Bearer <token>" header is required');
    }
  });
  // query parameters from the shared table (src/api/http.ts ROUTE_QUERY), on the matched route:
  // an unknown or repeated one is a 400 naming it, on every route
  app.addHook('onRequest', async (req) => {
    const url = req.routeOptions.url;
    if (url === undefined) return;
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const problem = queryProblem(`${method} ${url}`, req.query);
    if (problem) throw problem;
  });

  // bodies are JSON or YAML, parsed by the same rules; Fastify's default text/plain parser would
  // let anything through
  app.removeContentTypeParser(['text/plain', 'application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string, maxDepth));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // manifests as YAML, as kubectl users write them
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => {
      try {
        done(null, parseYamlBody(body as string, maxDepth));
      } catch (err) {
        done(err as Error, undefined);
      }
    },
  );

  const pub = { config: { public: true } };
  app.get('/healthz', pub, async () => ({ ok: true }));
  app.get('/readyz', pub, async () => ({ ok: true }));
  const openapi = buildOpenApi();
  app.get('/openapi.json', pub, async () => openapi);
  await app.register(workflowRoutes(routeDeps), { prefix: '/api/v1' });
  await app.register(runRoutes(routeDeps), { prefix: '/api/v1' });
  await app.register(artifactRoutes(routeDeps), { prefix: '/api/v1' });
  await app.register(backfillRoutes(routeDeps), { prefix: '/api/v1' });
  await app.register(uiRoutes());
  if (deps.metrics) await app.register(metricsRoutes(deps.metrics));
  return app;
}
