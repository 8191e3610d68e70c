// The operator's API client etiquette, as client-go's rest.Config gives every controller:
// a token bucket (QPS and burst) in front of every request the generated API clients make,
// and API Priority and Fairness respected: a 429 (or a 5xx) that carries Retry-After is waited
// out and the request sent again (the server did not act on it), and the whole client holds back
// for that long, since the server said it is overloaded, not just busy with this one request.
//
// Watches (client-node's Watch: long-running, one per informer) and log streams go around it,
// as they do around client-go's limiter once established; their lists are generated calls and
// are limited. Leader election keeps its own unlimited client (src/operator/process.ts): a lease
// renewal must never queue behind a burst of pod creates.
import {
  type ApiConstructor,
  type ApiType,
  createConfiguration,
  type HttpLibrary,
  KubeConfig,
  type RequestContext,
  type ResponseContext,
  ServerConfiguration,
  setHeaderMiddleware,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { reuseConnections } from '../kube/reuse-connections.ts';
import { undiciHttpLibrary } from '../kube/undici-http-library.ts';

export interface ClientRateLimits {
  /** Requests per second on average; 0: no client-side limit. */
  qps: number;
  /** Requests that may go at once after a quiet spell (the bucket's size). */
  burst: number;
  /** Times one request is sent again after a Retry-After (client-go: 10). */
  maxRetries?: number;
  /** Longest Retry-After honoured; a longer one is cut to this (default 60 s). */
  maxRetryAfterMs?: number;
}

/**
 * Defaults of `mesonctl operator --kube-qps/--kube-burst`. Far above client-go's 5/10 or
 * controller-runtime's 20/30 by design, as batch schedulers' are (Volcano's scheduler: 2000/2000):
 * the operator's job is to create pods as fast as the API server admits them, and a client-side
 * limit below the server's own write rate only makes a wide foreach slower than the cluster. On
 * a 2-core test control plane a plain client creates about 340 Pods a second; at 200 QPS the
 * operator was held to about 120 (docs/performance.md). API Priority and Fairness is what
 * protects the server, seeing every client: its 429s slow this client down.
 */
export const CLIENT_RATE_DEFAULTS = {
  qps: 1000,
  burst: 2000,
  maxRetries: 10,
  maxRetryAfterMs: 60_000,
} as const;

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/**
 * A token bucket that reserves: each `acquire` takes a token at once, going into debt when the
 * bucket is empty, and waits until that token would have been there. Callers are served in the
 * order they asked, and the rate holds exactly however many wait (golang.org/x/time/rate's
 * Reserve, which client-go's limiter uses).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private pausedUntil = 0;
  private readonly clock: Clock;
  readonly qps: number;
  readonly burst: number;

  constructor(qps: number, burst: number, clock: Clock = realClock) {
    if (!(qps >= 0) || !Number.isFinite(qps)) throw new RangeError(`qps must be a number >= 0, got ${qps}`);
    if (!Number.isInteger(burst) || burst < 1)
      throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
    this.qps = qps;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Milliseconds the caller must wait for its token (0: go now); the token is taken. */
  reserve(): number {
    const now = this.clock.now();
    const pause = Math.max(0, this.pausedUntil - now);
    if (this.qps === 0) return pause;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    const debt = this.tokens < 0 ? (-this.tokens * 1000) / this.qps : 0;
    return Math.max(pause, debt);
  }

  /** Waits for a token; resolves with the milliseconds waited. */
  async acquire(): Promise<number> {
    const ms = this.reserve();
    if (ms > 0) await this.clock.sleep(ms);
    return ms;
  }

  /** No token is granted before `ms` from now (a Retry-After). Never shortens an earlier pause. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + ms);
  }
}

/** What the client reports, for metrics (src/metrics/kube-client.ts). */
export interface ClientObserver {
  /** One answered (or failed: code 'error') request. */
  request(r: { method: string; resource: string; code: string; seconds: number }): void;
  /** Time a request waited for its token (0 included, as client-go's histogram does). */
  waited(seconds: number): void;
  /** The server pushed back (429) or asked to retry a 5xx; `retried` false: the answer was given up on. */
  throttled(r: { code: number; retryAfterSeconds: number; retried: boolean }): void;
}

/**
 * The resource a request is about, for a metric label: `pods`, `pods/status`,
 * `workflowruns.meson.dev`; `other` for paths outside /api and /apis. Bounded by the kinds the
 * operator touches: never a name or a namespace.
 */
export function requestResource(url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return 'other';
  }
  const parts = path.split('/').filter(Boolean);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!;
    rest = parts.slice(3);
  } else return 'other';
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const resource = `${rest[0]}${group ? `.${group}` : ''}`;
  return rest[2] ? `${resource}/${rest[2]}` : resource;
}

/**
 * Retry-After in milliseconds: delta-seconds (what API Priority and Fairness sends) or an
 * IMF-fixdate; undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | undefined, nowEpochMs = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  // the IMF-fixdate form only (RFC 9110), e.g. "Sun, 06 Nov 1994 08:49:37 GMT"
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v)) return undefined;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowEpochMs);
}

/** An HTTP library that waits for a token before each send and honours Retry-After. */
export function rateLimitedHttpLibrary(
  inner: HttpLibrary,
  limiter: TokenBucket,
  limits: Pick<ClientRateLimits, 'maxRetries' | 'maxRetryAfterMs'>,
  observer?: ClientObserver,
  clock: Clock = realClock,
): HttpLibrary {
  const maxRetries = limits.maxRetries ?? CLIENT_RATE_DEFAULTS.maxRetries;
  const maxRetryAfterMs = limits.maxRetryAfterMs ?? CLIENT_RATE_DEFAULTS.maxRetryAfterMs;
  const send = async (request: RequestContext): Promise<ResponseContext> => {
    const method = request.getHttpMethod().toString();
    const resource = requestResource(request.getUrl());
    for (let attempt = 0; ; attempt++) {
      const waitedMs = await limiter.acquire();
      observer?.waited(waitedMs / 1000);
      const start = clock.now();
      let response: ResponseContext;
      try {
        response = await inner.send(request).toPromise();
      } catch (err) {
        observer?.request({ method, resource, code: 'error', seconds: (clock.now() - start) / 1000 });
        throw err;
      }
      const code = response.httpStatusCode;
      observer?.request({ method, resource, code: String(code), seconds: (clock.now() - start) / 1000 });
      // As client-go: only an answer with Retry-After is retried (the server says it did not act
      // on the request and when to come back); any verb, since nothing was done.
      const after = code === 429 || code >= 500 ? retryAfterMs(response.headers['retry-after']) : undefined;
      if (after === undefined) return response;
      const ms = Math.min(after, maxRetryAfterMs);
      const retried = attempt < maxRetries;
      observer?.throttled({ code, retryAfterSeconds: ms / 1000, retried });
      if (!retried) return response;
      limiter.pause(ms);
    }
  };
  return wrapHttpLibrary({ send });
}

export const USER_AGENT = 'meson-operator';

/**
 * A KubeConfig whose API clients (makeApiClient) share one token bucket and honour Retry-After.
 * Everything else (auth, Watch, Log) is the given config's.
 */
export class RateLimitedKubeConfig extends KubeConfig {
  readonly limiter: TokenBucket;
  private readonly limits: ClientRateLimits;
  private readonly observer: ClientObserver | undefined;

  constructor(from: KubeConfig, limits: ClientRateLimits, observer?: ClientObserver, clock?: Clock) {
    super();
    this.loadFromOptions({
      clusters: from.clusters,
      users: from.users,
      contexts: from.contexts,
      currentContext: from.currentContext,
    });
    this.limits = limits;
    this.observer = observer;
    this.limiter = new TokenBucket(limits.qps, limits.burst, clock);
    // one connection pool for all its clients, not a TLS handshake per request
    reuseConnections(this);
  }

  override makeApiClient<T extends ApiType>(apiClientType: ApiConstructor<T>): T {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    const baseServer = new ServerConfiguration(cluster.server, {});
    return new apiClientType(
      createConfiguration({
        baseServer,
        authMethods: { default: this },
        // the API server's metrics and audit log tell this client's requests apart by it
        middleware: [setHeaderMiddleware('User-Agent', USER_AGENT)],
        httpApi: this.httpLibrary().library,
      }),
    );
  }

  private rateLimited: HttpLibrary | undefined;

  /** The rate-limited HTTP library and User-Agent of this config's clients (for sendJson). */
  httpLibrary(): { library: HttpLibrary; userAgent: string } {
    // undici's request, not client-node's fetch: the same connection pool, without a WHATWG
    // Request, Response and stream per call (src/kube/undici-http-library.ts)
    this.rateLimited ??= rateLimitedHttpLibrary(
      undiciHttpLibrary(),
      this.limiter,
      this.limits,
      this.observer,
    );
    return { library: this.rateLimited, userAgent: USER_AGENT };
  }
}
