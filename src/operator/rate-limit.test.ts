import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CoreV1Api,
  type HttpLibrary,
  KubeConfig,
  type RequestContext,
  ResponseContext,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { sendJson } from '../kube/send-json.ts';
import {
  type ClientObserver,
  type Clock,
  RateLimitedKubeConfig,
  rateLimitedHttpLibrary,
  requestResource,
  retryAfterMs,
  TokenBucket,
  USER_AGENT,
} from './rate-limit.ts';

/** A clock that only moves when slept on (or advanced). */
function fakeClock(): Clock & { t: number; slept: number[] } {
  const c = {
    t: 0,
    slept: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.slept.push(ms);
      c.t += ms;
    },
  };
  return c;
}

describe('TokenBucket', () => {
  it('lets a burst go at once, then spaces requests at 1/qps, in the order asked', () => {
    const clock = fakeClock();
    const b = new TokenBucket(10, 3, clock);
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 0, 0]);
    // the bucket is empty: each next caller waits one more token's time
    expect(b.reserve()).toBeCloseTo(100);
    expect(b.reserve()).toBeCloseTo(200);
    clock.t += 200; // both debts paid; nothing saved up
    expect(b.reserve()).toBeCloseTo(100);
  });

  it('refills to the burst and no further', () => {
    const clock = fakeClock();
    const b = new TokenBucket(100, 5, clock);
    for (let i = 0; i < 5; i++) b.reserve();
    clock.t += 60_000;
    const waits = Array.from({ length: 6 }, () => b.reserve());
    expect(waits.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(waits[5]).toBeCloseTo(10);
  });

  it('holds the rate however many callers wait', async () => {
    const clock = fakeClock();
    const b = new TokenBucket(50, 10, clock);
    const waits = Array.from({ length: 1_000 }, () => b.reserve());
    // 1,000 requests: 10 at once, then 990 at 50/s
    expect(Math.max(...waits)).toBeCloseTo((990 * 1000) / 50);
    expect(waits).toEqual([...waits].sort((x, y) => x - y));
  });

  it('qps 0 means no limit, but a pause still holds', () => {
    const clock = fakeClock();
    const b = new TokenBucket(0, 1, clock);
    expect(Array.from({ length: 100 }, () => b.reserve()).every((w) => w === 0)).toBe(true);
    b.pause(1_500);
    expect(b.reserve()).toBe(1_500);
    clock.t += 1_000;
    expect(b.reserve()).toBe(500);
  });

  it('a pause never shortens an earlier one', () => {
    const clock = fakeClock();
    const b = new TokenBucket(0, 1, clock);
    b.pause(5_000);
    b.pause(1_000);
    expect(b.reserve()).toBe(5_000);
  });

  it('refuses settings that mean nothing', () => {
    expect(() => new TokenBucket(-1, 1)).toThrow(/qps/);
    expect(() => new TokenBucket(Number.NaN, 1)).toThrow(/qps/);
    expect(() => new TokenBucket(10, 0)).toThrow(/burst/);
    expect(() => new TokenBucket(10, 1.5)).toThrow(/burst/);
  });
});

describe('requestResource', () => {
  it.each([
    ['https://k/api/v1/namespaces/ns/pods', 'pods'],
    ['https://k/api/v1/namespaces/ns/pods/p-1', 'pods'],
    ['https://k/api/v1/namespaces/ns/pods/p-1/status', 'pods/status'],
    ['https://k/api/v1/pods?fieldSelector=x', 'pods'],
    ['https://k/api/v1/nodes/n1', 'nodes'],
    ['https://k/api/v1/namespaces/ns', 'namespaces'],
    ['https://k/api/v1/namespaces', 'namespaces'],
    [
      'https://k/apis/meson.dev/v1alpha1/namespaces/ns/workflowruns/r/status',
      'workflowruns.meson.dev/status',
    ],
    ['https://k/apis/coordination.k8s.io/v1/namespaces/ns/leases/l', 'leases.coordination.k8s.io'],
    ['https://k/version', 'other'],
    ['https://k/apis/meson.dev', 'other'],
    ['not a url', 'other'],
  ])('%s → %s', (url, resource) => {
    expect(requestResource(url)).toBe(resource);
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds and HTTP dates, and nothing else', () => {
    expect(retryAfterMs('1')).toBe(1_000);
    expect(retryAfterMs(' 0 ')).toBe(0);
    const now = Date.parse('2026-12-03T10:00:00Z');
    expect(retryAfterMs('Thu, 03 Dec 2026 10:00:07 GMT', now)).toBe(7_000);
    expect(retryAfterMs('Thu, 03 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('-1')).toBeUndefined();
    expect(retryAfterMs('1.5')).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs('9'.repeat(40))).toBeUndefined();
  });
});

function scripted(
  answers: { code: number; headers?: Record<string, string> }[],
): HttpLibrary & { sent: RequestContext[] } {
  const sent: RequestContext[] = [];
  const lib = wrapHttpLibrary({
    async send(req) {
      sent.push(req);
      const a = answers[Math.min(sent.length - 1, answers.length - 1)]!;
      return new ResponseContext(a.code, a.headers ?? {}, {
        text: async () => '{}',
        binary: async () => Buffer.from('{}'),
        stream: () => null,
      });
    },
  });
  return Object.assign(lib, { sent });
}

function recordingObserver(): ClientObserver & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    request: (r) => log.push(`${r.method} ${r.resource} ${r.code}`),
    waited: () => {},
    throttled: (r) => log.push(`throttled ${r.code} ${r.retryAfterSeconds}s retried=${r.retried}`),
  };
}

async function sendVia(lib: HttpLibrary, url = 'https://k/api/v1/namespaces/ns/pods'): Promise<number> {
  const { RequestContext: Ctx, HttpMethod } = await import('@kubernetes/client-node');
  const res = await lib.send(new Ctx(url, HttpMethod.POST)).toPromise();
  return res.httpStatusCode;
}

describe('rateLimitedHttpLibrary', () => {
  it('waits out a 429 with Retry-After, holds every request back meanwhile, and sends again', async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(0, 1, clock);
    const inner = scripted([{ code: 429, headers: { 'retry-after': '2' } }, { code: 201 }]);
    const obs = recordingObserver();
    const lib = rateLimitedHttpLibrary(inner, bucket, {}, obs, clock);
    expect(await sendVia(lib)).toBe(201);
    expect(inner.sent).toHaveLength(2);
    expect(clock.slept).toEqual([2_000]);
    expect(obs.log).toEqual(['POST pods 429', 'throttled 429 2s retried=true', 'POST pods 201']);
  });

  it('retries a 503 that says when, and returns a 500 that does not', async () => {
    const clock = fakeClock();
    const a = scripted([{ code: 503, headers: { 'retry-after': '1' } }, { code: 200 }]);
    expect(await sendVia(rateLimitedHttpLibrary(a, new TokenBucket(0, 1, clock), {}, undefined, clock))).toBe(
      200,
    );
    const b = scripted([{ code: 500 }, { code: 200 }]);
    expect(await sendVia(rateLimitedHttpLibrary(b, new TokenBucket(0, 1, clock), {}, undefined, clock))).toBe(
      500,
    );
    expect(b.sent).toHaveLength(1);
    // a 429 without Retry-After is the caller's to handle (client-go does the same)
    const c = scripted([{ code: 429 }, { code: 200 }]);
    expect(await sendVia(rateLimitedHttpLibrary(c, new TokenBucket(0, 1, clock), {}, undefined, clock))).toBe(
      429,
    );
  });

  it('gives up after maxRetries and caps a huge Retry-After', async () => {
    const clock = fakeClock();
    const inner = scripted([{ code: 429, headers: { 'retry-after': '86400' } }]);
    const obs = recordingObserver();
    const lib = rateLimitedHttpLibrary(
      inner,
      new TokenBucket(0, 1, clock),
      { maxRetries: 2, maxRetryAfterMs: 3_000 },
      obs,
      clock,
    );
    expect(await sendVia(lib)).toBe(429);
    expect(inner.sent).toHaveLength(3);
    expect(clock.slept).toEqual([3_000, 3_000]);
    expect(obs.log.at(-1)).toBe('throttled 429 3s retried=false');
  });

  it('reports a request that failed on the network as code "error" and rethrows', async () => {
    const clock = fakeClock();
    const obs = recordingObserver();
    const inner = wrapHttpLibrary({
      send: async () => {
        throw new Error('ECONNREFUSED');
      },
    });
    await expect(
      sendVia(rateLimitedHttpLibrary(inner, new TokenBucket(1, 1, clock), {}, obs, clock)),
    ).rejects.toThrow('ECONNREFUSED');
    expect(obs.log).toEqual(['POST pods error']);
  });
});

describe('RateLimitedKubeConfig against an HTTP server', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  async function serve(
    handler: (req: IncomingMessage, n: number) => { code: number; headers?: Record<string, string> },
  ) {
    const seen: { at: number; method?: string; ua?: string; auth?: string }[] = [];
    server = createServer((req, res) => {
      seen.push({
        at: performance.now(),
        method: req.method,
        ua: req.headers['user-agent'],
        auth: req.headers.authorization,
      });
      const a = handler(req, seen.length);
      req.resume();
      res.writeHead(a.code, { 'content-type': 'application/json', ...a.headers });
      res.end(
        a.code < 300
          ? JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } })
          : JSON.stringify({ kind: 'Status', code: a.code, message: 'too many requests' }),
      );
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: 'u', token: 'secret-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return { kc, seen };
  }

  it('a create that meets API Priority and Fairness succeeds after Retry-After, with auth and user agent kept', async () => {
    const { kc, seen } = await serve((_req, n) =>
      n === 1 ? { code: 429, headers: { 'retry-after': '1' } } : { code: 201 },
    );
    const core = new RateLimitedKubeConfig(kc, { qps: 100, burst: 10 }).makeApiClient(CoreV1Api);
    const pod = await core.createNamespacedPod({ namespace: 'ns', body: { metadata: { name: 'p' } } });
    expect(pod.metadata?.name).toBe('p');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(950);
    expect(
      seen.every((s) => s.auth === 'Bearer secret-token' && s.method === 'POST' && s.ua === USER_AGENT),
    ).toBe(true);
  });

  it('sendJson (the launcher’s raw Pod create) goes through the same bucket, Retry-After, auth and user agent', async () => {
    const { kc, seen } = await serve((_req, n) =>
      n === 1 ? { code: 429, headers: { 'retry-after': '1' } } : { code: 201 },
    );
    const limited = new RateLimitedKubeConfig(kc, { qps: 100, burst: 10 });
    const out = await sendJson(limited, 'POST', '/api/v1/namespaces/ns/pods', { metadata: { name: 'p' } });
    expect(out.code).toBe(201);
    expect(JSON.parse(out.text)).toMatchObject({ kind: 'Pod', metadata: { name: 'p' } });
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(950);
    expect(
      seen.every((s) => s.auth === 'Bearer secret-token' && s.method === 'POST' && s.ua === USER_AGENT),
    ).toBe(true);
    // one bucket with the generated clients: 2 at once, then 8 more at 20/s
    const slow = new RateLimitedKubeConfig(kc, { qps: 20, burst: 2 });
    const core = slow.makeApiClient(CoreV1Api);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2
          ? core.readNamespacedPod({ namespace: 'ns', name: 'p' })
          : sendJson(slow, 'POST', '/api/v1/namespaces/ns/pods', {}),
      ),
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(350);
  });

  it('every API client made from it shares one bucket', async () => {
    const { kc, seen } = await serve(() => ({ code: 200 }));
    const limited = new RateLimitedKubeConfig(kc, { qps: 20, burst: 2 });
    const a = limited.makeApiClient(CoreV1Api);
    const b = limited.makeApiClient(CoreV1Api);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).readNamespacedPod({ namespace: 'ns', name: 'p' })),
    );
    // 2 at once, then 10 more at 20/s: at least 500 ms, whatever the machine's speed
    expect(performance.now() - t0).toBeGreaterThanOrEqual(450);
    expect(seen).toHaveLength(12);
  });
});
