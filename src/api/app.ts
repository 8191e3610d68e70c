// The REST API as a Fastify app factory (no listen here: tests use inject(), the server listens).
// One plugin per resource under /api/v1/namespaces/:ns/...; errors are problem+json; optional
// bearer-token auth; the OpenAPI 3 document is served at /openapi.json.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { LineCounter, parseAllDocuments, parseDocument } from 'yaml';
import type { Store } from '../store/types.ts';
import { StoreError } from '../store/types.ts';
import { buildOpenApi } from './openapi.ts';
import { ApiError, sendProblem } from './problems.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { backfillRoutes } from './routes/backfill.ts';
import { runRoutes } from './routes/runs.ts';
import { workflowRoutes } from './routes/workflows.ts';

export interface ApiDeps {
  store: Store;
  /** Bearer token required on /api/* when set (MESON_API_TOKEN). */
  token?: string;
  /** Fastify logger option: a pino instance, true, or false (default). */
  logger?: FastifyServerOptions['loggerInstance'] | boolean;
  now?: () => number;
}

export interface RouteDeps {
  store: Store;
  now: () => number;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** One YAML document; a syntax error is a 400 naming the line and column. */
export function parseYamlBody(text: string): unknown {
  const lineCounter = new LineCounter();
  const all = parseAllDocuments(text);
  const count = Array.isArray(all) ? all.length : 0;
  if (count > 1) {
    // e.g. a file holding a Workflow and its subworkflow: one object per request
    const message = `expected one YAML document, got ${count}: send each manifest in its own request`;
    throw new ApiError('API_BAD_REQUEST', `invalid YAML body: ${message}`, {
      issues: [{ path: '(body)', message, code: 'YAML_MULTIPLE_DOCUMENTS' }],
    });
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const first = doc.errors[0];
  if (first) {
    const pos = lineCounter.linePos(first.pos[0]);
    const where = `line ${pos.line}, column ${pos.col}: `;
    throw new ApiError('API_BAD_REQUEST', `invalid YAML body: ${where}${first.message.split('\n')[0]}`, {
      issues: [{ path: '(body)', message: `${where}${first.message.split('\n')[0]}`, code: 'YAML_SYNTAX' }],
    });
  }
  return doc.toJS({ maxAliasCount: 100 });
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
    default:
      return new ApiError('API_INTERNAL', err.message, { cause: err });
  }
}

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const logger = deps.logger;
  // one log line per request (Fastify's default is two: "incoming request" and "request completed")
  const app =
    typeof logger === 'object' && logger !== null
      ? Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) })
      : Fastify({
          logger: logger === true,
          logController: new LogController({ disableRequestLogging: true }),
        });
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
  const routeDeps: RouteDeps = { store: deps.store, now: deps.now ?? Date.now };

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ApiError) return sendProblem(reply, err);
    if (err instanceof StoreError) return sendProblem(reply, storeToApi(err));
    const e = err as { statusCode?: number; message?: string; code?: string };
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
  if (deps.token) {
    const token = deps.token;
    app.addHook('onRequest', async (req) => {
      if (!req.url.startsWith('/api/')) return;
      if (!tokenMatches(req.headers.authorization, token)) {
        throw new ApiError('API_UNAUTHORIZED', 'a valid "Authorization: Bearer <token>" header is required');
      }
    });
  }

  // bodies are JSON or YAML; Fastify's default text/plain parser would let anything through
  app.removeContentTypeParser('text/plain');
  // manifests as YAML, as kubectl users write them
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => {
      try {
        done(null, parseYamlBody(body as string));
      } catch (err) {
        done(err as Error, undefined);
      }
    },
  );

  app.get('/healthz', async () => ({ ok: true }));
  const openapi = buildOpenApi();
  app.get('/openapi.json', async () => openapi);
  await app.register(workflowRoutes(routeDeps), { prefix: '/api/v1' });
  await app.register(runRoutes(routeDeps), { prefix: '/api/v1' });
  await app.register(artifactRoutes(routeDeps), { prefix: '/api/v1' });
  await app.register(backfillRoutes(routeDeps), { prefix: '/api/v1' });
  return app;
}
