// Errors of the REST API as RFC 9457 problem details (application/problem+json) with stable
// codes that clients can switch on.
import type { FastifyReply } from 'fastify';

export type ApiErrorCode =
  | 'API_BAD_REQUEST'
  | 'API_INVALID'
  | 'API_UNAUTHORIZED'
  | 'API_FORBIDDEN'
  | 'API_NOT_FOUND'
  | 'API_ALREADY_EXISTS'
  | 'API_CONFLICT'
  | 'API_PAYLOAD_TOO_LARGE'
  | 'API_UNSUPPORTED_MEDIA_TYPE'
  | 'API_TOO_MANY_REQUESTS'
  | 'API_INTERNAL'
  /** The store's backend failed or could not be reached (operator mode: the API server). */
  | 'API_UNAVAILABLE';

const TITLES: Record<ApiErrorCode, string> = {
  API_BAD_REQUEST: 'Bad request',
  API_INVALID: 'Invalid object',
  API_UNAUTHORIZED: 'Unauthorized',
  API_FORBIDDEN: 'Forbidden',
  API_NOT_FOUND: 'Not found',
  API_ALREADY_EXISTS: 'Already exists',
  API_CONFLICT: 'Conflict',
  API_PAYLOAD_TOO_LARGE: 'Payload too large',
  API_UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  API_TOO_MANY_REQUESTS: 'Too many requests',
  API_INTERNAL: 'Internal error',
  API_UNAVAILABLE: 'Service unavailable',
};

const STATUS: Record<ApiErrorCode, number> = {
  API_BAD_REQUEST: 400,
  API_INVALID: 422,
  API_UNAUTHORIZED: 401,
  API_FORBIDDEN: 403,
  API_NOT_FOUND: 404,
  API_ALREADY_EXISTS: 409,
  API_CONFLICT: 409,
  API_PAYLOAD_TOO_LARGE: 413,
  API_UNSUPPORTED_MEDIA_TYPE: 415,
  API_TOO_MANY_REQUESTS: 429,
  API_INTERNAL: 500,
  API_UNAVAILABLE: 503,
};

export interface ProblemIssue {
  path: string;
  message: string;
  code?: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ApiErrorCode;
  issues?: ProblemIssue[];
}

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly issues: ProblemIssue[] | undefined;
  constructor(code: ApiErrorCode, detail: string, options?: { issues?: ProblemIssue[]; cause?: unknown }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.code = code;
    this.status = STATUS[code];
    this.issues = options?.issues;
  }
}

export function problemOf(err: ApiError): Problem {
  return {
    type: `https://meson.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title: TITLES[err.code],
    status: err.status,
    detail: err.message,
    code: err.code,
    ...(err.issues ? { issues: err.issues } : {}),
  };
}

export function sendProblem(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.code(err.status).type('application/problem+json').send(problemOf(err));
}
