// The admission webhook's HTTPS server: POST /validate takes an AdmissionReview
// (admission.k8s.io/v1) and answers one with the decision of admission.ts. Bodies are bounded
// (bodyLimit), requests time out, and anything that is not an AdmissionReview is a 400: the API
// server never sends such a body, so whoever does gets no decision.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { type AdmissionLookup, type AdmissionPolicy, type AdmissionRequest, admit } from './admission.ts';

export const WEBHOOK_PATH = '/validate';
/** Default body limit. An AdmissionReview holds the object and, on update, its old copy: two objects of at most ~1.5 MiB (etcd) each, JSON-encoded. */
export const DEFAULT_WEBHOOK_BODY_LIMIT = 8 * 1024 * 1024;
/** Default time for a whole request (the API server gives up after the webhook's timeoutSeconds, at most 30 s). */
export const DEFAULT_WEBHOOK_REQUEST_TIMEOUT_MS = 15_000;

export interface WebhookOptions {
  lookup: AdmissionLookup;
  /** Serving certificate and key (PEM). Without them the app speaks plain HTTP (tests via inject()). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  bodyLimit?: number;
  requestTimeoutMs?: number;
  logger?: FastifyBaseLogger;
  now?: () => number;
  /** Only these namespaces are the operator's; objects elsewhere are allowed unchecked. Default all. */
  namespaces?: string[];
  /** Who may write system-owned run fields (the operator's own username); see AdmissionPolicy. */
  policy?: AdmissionPolicy;
}

const REVIEW_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { const: 'admission.k8s.io/v1' },
    kind: { const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid', 'kind', 'operation'],
      properties: {
        uid: { type: 'string', minLength: 1, maxLength: 128 },
        kind: {
          type: 'object',
          required: ['group', 'version', 'kind'],
          properties: {
            group: { type: 'string', maxLength: 253 },
            version: { type: 'string', maxLength: 63 },
            kind: { type: 'string', maxLength: 63 },
          },
        },
        operation: { enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] },
        namespace: { type: 'string', maxLength: 253 },
        name: { type: 'string', maxLength: 253 },
        subResource: { type: 'string', maxLength: 63 },
      },
    },
  },
} as const;

const RESPONSE_SCHEMA = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    response: {
      type: 'object',
      properties: {
        uid: { type: 'string' },
        allowed: { type: 'boolean' },
        status: {
          type: 'object',
          properties: {
            code: { type: 'integer' },
            reason: { type: 'string' },
            message: { type: 'string' },
            details: {
              type: 'object',
              properties: {
                causes: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      field: { type: 'string' },
                      message: { type: 'string' },
                      reason: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

export async function buildWebhookApp(options: WebhookOptions): Promise<FastifyInstance> {
  const timeout = options.requestTimeoutMs ?? DEFAULT_WEBHOOK_REQUEST_TIMEOUT_MS;
  // Given to the server's constructor: Node derives its header timeout there (Fastify sets
  // requestTimeout only afterwards, and a slow body then went unnoticed), and checks timeouts
  // every connectionsCheckingInterval (30 s by default).
  const server = {
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, timeout / 2)),
    requestTimeout: timeout,
    headersTimeout: timeout,
  };
  const common = {
    bodyLimit: options.bodyLimit ?? DEFAULT_WEBHOOK_BODY_LIMIT,
    requestTimeout: timeout,
    connectionTimeout: timeout,
    // An AdmissionReview is checked as sent: no "7" for a uid that was the number 7.
    ajv: { customOptions: { coerceTypes: false } },
    logController: new LogController({ disableRequestLogging: true }),
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
  };
  // One instance type for both: the routes do not care whether TLS is on.
  const app = (options.tls
    ? Fastify({ ...common, https: { ...server, cert: options.tls.cert, key: options.tls.key } })
    : Fastify({ ...common, http: server })) as unknown as FastifyInstance;
  const now = options.now ?? Date.now;
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err, req, reply) => {
    const e = err as { statusCode?: number; message?: string; code?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'admission request failed');
    else req.log.warn({ status, code: e.code, err: e.message }, 'admission request refused');
    return reply.code(status).send({
      code: e.code ?? 'WEBHOOK_ERROR',
      message: status === 500 ? 'internal error' : (e.message ?? 'bad request'),
    });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ code: 'WEBHOOK_NOT_FOUND', message: `no route for ${req.method} ${req.url.split('?')[0]}` }),
  );
  app.get('/healthz', { schema: { response: { 200: { type: 'string' } } } }, async () => 'ok');
  app.post<{ Body: { request: AdmissionRequest } }>(
    WEBHOOK_PATH,
    { schema: { body: REVIEW_SCHEMA, response: { 200: RESPONSE_SCHEMA } } },
    async (req) => {
      const request = req.body.request;
      const ours = !options.namespaces?.length || options.namespaces.includes(request.namespace ?? '');
      const response = ours
        ? await admit(request, options.lookup, now(), options.policy)
        : { uid: request.uid, allowed: true };
      req.log.info(
        {
          uid: request.uid,
          kind: request.kind.kind,
          operation: request.operation,
          namespace: request.namespace,
          name: request.name,
          allowed: response.allowed,
          ...(response.status ? { reason: response.status.message.slice(0, 300) } : {}),
        },
        'admission',
      );
      return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
    },
  );
  return app;
}
