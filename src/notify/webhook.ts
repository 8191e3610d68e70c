// Webhook delivery: POST a JSON body, retried with exponential backoff, a timeout per attempt.
// Never throws: a failing hook is logged and reported in the result, and never fails the run.
//
// The target is hostile until checked (./address.ts): its host is resolved here, every address
// checked, and the connection made to the checked address (no second resolution a DNS-rebinding
// server could answer differently). Redirects are followed by hand, each hop checked again;
// the target's own headers (credentials) do not follow a redirect to another origin.

import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { type AllowList, allowedByList, deniedReason, EMPTY_ALLOW_LIST } from './address.ts';
import type { NotificationEvent, RunNotification } from './summary.ts';

/** pino-compatible subset. */
export interface NotifyLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RetryPolicy {
  /** Attempts in total, including the first (default 5). */
  maxAttempts: number;
  /** Delay before the 2nd attempt (default 1 s), multiplied by `factor` (default 2) each time, capped at `maxDelayMs` (default 60 s). */
  initialDelayMs: number;
  factor: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  initialDelayMs: 1_000,
  factor: 2,
  maxDelayMs: 60_000,
};
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Every address a host name resolves to. */
export type LookupFn = (host: string) => Promise<{ address: string; family: number }[]>;

export interface HttpRequest {
  url: URL;
  /** The checked address to connect to (never resolved again: no DNS-rebinding window). */
  address: string;
  family: number;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  location?: string;
  retryAfter?: string;
}

/** One HTTP exchange; the default speaks node:http(s), connecting to `address`. */
export type Transport = (req: HttpRequest) => Promise<HttpResponse>;

export interface WebhookDeps {
  sleep?: (ms: number) => Promise<void>;
  logger: NotifyLogger;
  retry?: Partial<RetryPolicy>;
  /** Per attempt, redirects included (default 10 s). */
  timeoutMs?: number;
  userAgent?: string;
  /** DNS resolution (default: the system resolver, every address). */
  lookup?: LookupFn;
  transport?: Transport;
  /** What may be reached although denied by default (MESON_WEBHOOK_ALLOW). */
  allow?: AllowList;
  /** This machine's addresses (default: its network interfaces'), denied like loopback. */
  localAddresses?: () => string[];
  /** Redirects followed per attempt (default 5). */
  maxRedirects?: number;
}

export interface WebhookTarget {
  url: string;
  headers?: Record<string, string>;
}

export type WebhookErrorCode =
  | 'WEBHOOK_BAD_URL'
  | 'WEBHOOK_DENIED_ADDRESS'
  | 'WEBHOOK_DNS'
  | 'WEBHOOK_TOO_MANY_REDIRECTS';

export class WebhookError extends Error {
  readonly code: WebhookErrorCode;
  /** Whether another attempt may succeed (a DNS failure may be transient; a denial is not). */
  readonly retryable: boolean;
  constructor(code: WebhookErrorCode, message: string, retryable = false, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WebhookError';
    this.code = code;
    this.retryable = retryable;
  }
}

export interface DeliveryResult {
  url: string;
  ok: boolean;
  attempts: number;
  /** HTTP status of the last attempt, if any response came back. */
  status?: number;
  error?: string;
  /** Set when the delivery was refused before any request (denied address, bad URL...). */
  code?: WebhookErrorCode;
}

export const DEFAULT_MAX_REDIRECTS = 5;

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The URL without query string or credentials, for logs (tokens often travel in either). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** Retry-After in seconds (the date form is ignored), as ms. */
function retryAfterMs(v: string | undefined): number | undefined {
  if (v && /^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  return undefined;
}

export function backoffDelay(policy: RetryPolicy, failedAttempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (failedAttempt - 1));
}

const defaultLookup: LookupFn = (host) => dnsLookup(host, { all: true, verbatim: true });

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/**
 * The address to connect to for `url`: its IP literal or what its host name resolves to, every
 * one of them checked (one denied address refuses the target: a resolver answering with a
 * public and a private address must not get to choose). Throws a WebhookError.
 */
export async function resolveTarget(
  url: URL,
  deps: Pick<WebhookDeps, 'lookup' | 'allow' | 'localAddresses'>,
): Promise<{ address: string; family: number }> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WebhookError('WEBHOOK_BAD_URL', `unsupported scheme "${url.protocol}" (http or https)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await (deps.lookup ?? defaultLookup)(host);
    } catch (err) {
      throw new WebhookError('WEBHOOK_DNS', `cannot resolve "${host}": ${(err as Error).message}`, true, {
        cause: err,
      });
    }
    if (addresses.length === 0) throw new WebhookError('WEBHOOK_DNS', `"${host}" has no address`, true);
  }
  const allow = deps.allow ?? EMPTY_ALLOW_LIST;
  const local = (deps.localAddresses ?? interfaceAddresses)();
  for (const a of addresses) {
    if (allowedByList(a.address, host, allow)) continue;
    const why = deniedReason(a.address, local);
    if (why) {
      throw new WebhookError(
        'WEBHOOK_DENIED_ADDRESS',
        `webhook target "${host}" is ${a.address === host ? '' : `resolves to ${a.address}, `}${why}: denied (allow it with MESON_WEBHOOK_ALLOW)`,
      );
    }
  }
  return addresses[0]!;
}

/** node:http(s) with the connection pinned to the checked address. */
export const nodeTransport: Transport = (req) =>
  new Promise((resolve, reject) => {
    const mod = req.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers = {
      ...req.headers,
      ...(req.body !== undefined ? { 'content-length': String(Buffer.byteLength(req.body)) } : {}),
    };
    const r = mod(
      req.url,
      {
        method: req.method,
        headers,
        agent: false,
        lookup: (_host, opts, cb) => {
          if ((opts as { all?: boolean }).all)
            (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [
              { address: req.address, family: req.family },
            ]);
          else cb(null, req.address, req.family);
        },
      },
      (res) => {
        clearTimeout(timer);
        res.destroy(); // the body of a hook's answer is of no interest (and may never end)
        const location = res.headers.location;
        const retryAfter = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 0,
          ...(location ? { location } : {}),
          ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
        });
      },
    );
    const timer = setTimeout(() => {
      const e = new Error(`timed out after ${req.timeoutMs} ms`);
      e.name = 'TimeoutError';
      r.destroy(e);
    }, req.timeoutMs);
    r.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    r.end(req.body);
  });

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers meson itself sets: kept across origins; everything else (credentials, the target's headers) is dropped. */
const OWN_HEADERS = new Set([
  'content-type',
  'user-agent',
  'x-meson-event',
  'x-meson-delivery',
  'idempotency-key',
]);

type AttemptOutcome =
  | { kind: 'ok'; status: number }
  | {
      kind: 'failed';
      retryable: boolean;
      status?: number;
      error: string;
      waitMs?: number;
      code?: WebhookErrorCode;
    };

/**
 * One attempt: POST, following redirects by hand (at most maxRedirects), each hop's address
 * resolved and checked again, and the target's headers (credentials) dropped once a redirect
 * leaves the original origin. Never rejects.
 */
export async function attemptDelivery(
  target: WebhookTarget,
  payload: string,
  deps: WebhookDeps,
  extraHeaders: Record<string, string> = {},
): Promise<AttemptOutcome> {
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxRedirects = deps.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const send = deps.transport ?? nodeTransport;
  let headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': deps.userAgent ?? 'meson-notify/1',
    ...extraHeaders,
    ...target.headers,
  };
  let method: 'POST' | 'GET' = 'POST';
  let body: string | undefined = payload;
  let url: URL;
  try {
    url = new URL(target.url);
  } catch (e) {
    return {
      kind: 'failed',
      retryable: false,
      error: `invalid URL: ${(e as Error).message}`,
      code: 'WEBHOOK_BAD_URL',
    };
  }
  const origin = url.origin;
  // one deadline for the whole attempt: resolutions and every redirect hop
  const deadline = Date.now() + timeoutMs;
  const left = () => {
    const ms = deadline - Date.now();
    if (ms <= 0) throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    return ms;
  };
  try {
    for (let hop = 0; ; hop++) {
      const { address, family } = await withTimeout(resolveTarget(url, deps), left());
      const res = await send({
        url,
        address,
        family,
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        timeoutMs: left(),
      });
      if (REDIRECTS.has(res.status) && res.location) {
        if (hop >= maxRedirects) {
          throw new WebhookError('WEBHOOK_TOO_MANY_REDIRECTS', `more than ${maxRedirects} redirects`);
        }
        let next: URL;
        try {
          next = new URL(res.location, url);
        } catch (e) {
          throw new WebhookError('WEBHOOK_BAD_URL', `invalid redirect location "${res.location}"`, false, {
            cause: e,
          });
        }
        if (next.origin !== origin) {
          headers = Object.fromEntries(
            Object.entries(headers).filter(([k]) => OWN_HEADERS.has(k.toLowerCase())),
          );
        }
        if (res.status <= 303 && method === 'POST') {
          // like fetch: 301/302/303 turn a POST into a GET without body
          method = 'GET';
          body = undefined;
          delete headers['content-type'];
        }
        url = next;
        continue;
      }
      if (res.status >= 200 && res.status < 300) return { kind: 'ok', status: res.status };
      const waitMs = retryAfterMs(res.retryAfter);
      return {
        kind: 'failed',
        retryable: isRetryableStatus(res.status),
        status: res.status,
        error: `HTTP ${res.status}`,
        ...(waitMs !== undefined ? { waitMs } : {}),
      };
    }
  } catch (e) {
    if (e instanceof WebhookError)
      return { kind: 'failed', retryable: e.retryable, error: e.message, code: e.code };
    const err = e as Error;
    const message = err.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : describeError(err);
    // a header the configuration made invalid fails the same way every time
    const code = (err as { code?: string }).code;
    const retryable = code !== 'ERR_INVALID_CHAR' && code !== 'ERR_INVALID_HTTP_TOKEN';
    return { kind: 'failed', retryable, error: message };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { name: 'TimeoutError' })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * POST `body` as JSON to `target.url`. Retries network errors, timeouts, 408/425/429 and 5xx;
 * other statuses and refused targets are final. Resolves with the outcome; never rejects.
 * (Not durable: the server's notifications go through WebhookQueue, which persists them.)
 */
export async function deliverWebhook(
  target: WebhookTarget,
  body: unknown,
  deps: WebhookDeps,
  extraHeaders: Record<string, string> = {},
): Promise<DeliveryResult> {
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...deps.retry };
  const sleep = deps.sleep ?? realSleep;
  const url = redactUrl(target.url);
  let payload: string;
  try {
    payload = JSON.stringify(body);
  } catch (e) {
    deps.logger.error({ url, err: String(e) }, 'webhook body is not serialisable');
    return { url, ok: false, attempts: 0, error: String(e) };
  }
  let last: DeliveryResult = { url, ok: false, attempts: 0 };
  for (let attempt = 1; attempt <= Math.max(1, policy.maxAttempts); attempt++) {
    const out = await attemptDelivery(target, payload, deps, extraHeaders);
    if (out.kind === 'ok') {
      deps.logger.info({ url, status: out.status, attempt }, 'webhook delivered');
      return { url, ok: true, attempts: attempt, status: out.status };
    }
    last = {
      url,
      ok: false,
      attempts: attempt,
      ...(out.status !== undefined ? { status: out.status } : {}),
      error: out.error,
      ...(out.code ? { code: out.code } : {}),
    };
    if (!out.retryable || attempt >= policy.maxAttempts) break;
    const delay = Math.min(policy.maxDelayMs, Math.max(backoffDelay(policy, attempt), out.waitMs ?? 0));
    deps.logger.warn(
      { url, attempt, error: last.error, retryInMs: delay },
      'webhook attempt failed; retrying',
    );
    await sleep(delay);
  }
  deps.logger.error(
    {
      url,
      attempts: last.attempts,
      status: last.status,
      error: last.error,
      ...(last.code ? { code: last.code } : {}),
    },
    'webhook delivery failed; giving up (the run is not affected)',
  );
  return last;
}

function describeError(err: Error): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${err.message}: ${cause.code}`;
  return cause?.message ? `${err.message}: ${cause.message}` : err.message;
}

/** One entry of `spec.notifications`. */
export interface NotificationConfig {
  on: readonly NotificationEvent[];
  webhook: WebhookTarget;
}

/**
 * Send `notification` to every configured webhook subscribed to its event, concurrently.
 * Resolves when all deliveries finished (delivered or given up); never rejects, so callers may
 * fire and forget (`void notifyRun(...)`) without risking the run.
 */
export async function notifyRun(
  notifications: readonly NotificationConfig[] | undefined,
  notification: RunNotification,
  deps: WebhookDeps,
): Promise<DeliveryResult[]> {
  try {
    const targets = (notifications ?? []).filter((n) => n.on.includes(notification.event));
    return await Promise.all(
      targets.map((n) =>
        deliverWebhook(n.webhook, notification, deps, {
          'x-meson-event': notification.event,
          'x-meson-delivery': notification.deliveryId,
          'idempotency-key': notification.deliveryId,
        }),
      ),
    );
  } catch (e) {
    // Defensive: a malformed configuration must not escape either.
    deps.logger.error({ err: String(e) }, 'notification failed');
    return [];
  }
}
