// Webhook delivery: POST a JSON body, retried with exponential backoff, a timeout per attempt.
// Never throws: a failing hook is logged and reported in the result, and never fails the run.

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

export interface WebhookDeps {
  fetch?: typeof globalThis.fetch;
  sleep?: (ms: number) => Promise<void>;
  logger: NotifyLogger;
  retry?: Partial<RetryPolicy>;
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  userAgent?: string;
}

export interface WebhookTarget {
  url: string;
  headers?: Record<string, string>;
}

export interface DeliveryResult {
  url: string;
  ok: boolean;
  attempts: number;
  /** HTTP status of the last attempt, if any response came back. */
  status?: number;
  error?: string;
}

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
function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  if (v && /^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  return undefined;
}

export function backoffDelay(policy: RetryPolicy, failedAttempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (failedAttempt - 1));
}

/**
 * POST `body` as JSON to `target.url`. Retries network errors, timeouts, 408/425/429 and 5xx;
 * other statuses are final. Resolves with the outcome; never rejects.
 */
export async function deliverWebhook(
  target: WebhookTarget,
  body: unknown,
  deps: WebhookDeps,
  extraHeaders: Record<string, string> = {},
): Promise<DeliveryResult> {
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...deps.retry };
  const doFetch = deps.fetch ?? globalThis.fetch;
  const sleep = deps.sleep ?? realSleep;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const url = redactUrl(target.url);
  let payload: string;
  try {
    payload = JSON.stringify(body);
  } catch (e) {
    deps.logger.error({ url, err: String(e) }, 'webhook body is not serialisable');
    return { url, ok: false, attempts: 0, error: String(e) };
  }
  const headers = {
    'content-type': 'application/json',
    'user-agent': deps.userAgent ?? 'meson-notify/1',
    ...extraHeaders,
    ...target.headers,
  };
  let last: DeliveryResult = { url, ok: false, attempts: 0 };
  for (let attempt = 1; attempt <= Math.max(1, policy.maxAttempts); attempt++) {
    let retryable = true;
    let wait: number | undefined;
    try {
      const res = await doFetch(target.url, {
        method: 'POST',
        headers,
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'follow',
      });
      // Release the connection; the body of a hook's answer is of no interest.
      await res.body?.cancel().catch(() => {});
      if (res.ok) {
        deps.logger.info({ url, status: res.status, attempt }, 'webhook delivered');
        return { url, ok: true, attempts: attempt, status: res.status };
      }
      retryable = isRetryableStatus(res.status);
      wait = retryAfterMs(res);
      last = { url, ok: false, attempts: attempt, status: res.status, error: `HTTP ${res.status}` };
    } catch (e) {
      const err = e as Error;
      const message = err.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : describeError(err);
      last = { url, ok: false, attempts: attempt, error: message };
    }
    if (!retryable || attempt >= policy.maxAttempts) break;
    const delay = Math.min(policy.maxDelayMs, Math.max(backoffDelay(policy, attempt), wait ?? 0));
    deps.logger.warn(
      { url, attempt, error: last.error, retryInMs: delay },
      'webhook attempt failed; retrying',
    );
    await sleep(delay);
  }
  deps.logger.error(
    { url, attempts: last.attempts, status: last.status, error: last.error },
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
