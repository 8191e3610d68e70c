import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkflowRun } from '../crds/index.ts';
import { parseAllowList } from './address.ts';
import { buildRunNotification, eventForPhaseChange } from './summary.ts';
import {
  deliverWebhook,
  type HttpRequest,
  type NotifyLogger,
  nodeTransport,
  notifyRun,
  redactUrl,
  type Transport,
} from './webhook.ts';

/** The tests' hooks listen on 127.0.0.1, which is denied unless allowed. */
const allow = parseAllowList('127.0.0.1/32');

interface Received {
  method?: string;
  url?: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((r) => s.close(r));
    }),
  );
});

/** A real HTTP server on 127.0.0.1:0 answering with `respond(n)` for the n-th request (1-based). */
async function hookServer(respond: (n: number, res: ServerResponse) => void, path = '/hook?token=secret') {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => {
      data += c;
    });
    req.on('end', () => {
      received.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: data ? JSON.parse(data) : undefined,
      });
      respond(received.length, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}${path}`, port, received };
}

function recordingLogger() {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const logger: NotifyLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { logger, lines };
}

function recordingSleep() {
  const delays: number[] = [];
  return { sleep: async (ms: number) => void delays.push(ms), delays };
}

const failedRun: WorkflowRun = {
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'WorkflowRun',
  metadata: { name: 'daily-x7k2', namespace: 'personalization' },
  spec: { workflow: 'daily', initiator: { type: 'cron' } },
  status: {
    phase: 'Failed',
    version: 3,
    startTime: '2026-01-01T00:00:00Z',
    endTime: '2026-01-01T00:05:00Z',
    steps: [
      { id: 'a', step: 'a', phase: 'Succeeded', attempts: 1 },
      {
        id: 'b[2]',
        step: 'b',
        phase: 'Failed',
        attempts: 3,
        message: 'exit 1',
        exitCode: 1,
        links: [{ name: 'logs', url: 'http://ui/logs/b2' }],
      },
    ],
  },
};

describe('buildRunNotification', () => {
  it('summarises the run: workflow, version, run, phase, times, failed steps, links', () => {
    const n = buildRunNotification(failedRun, 'failure', { baseUrl: 'http://meson.local/' });
    expect(n).toMatchObject({
      event: 'failure',
      deliveryId: 'personalization/daily-x7k2/failure',
      workflow: 'daily',
      version: 3,
      run: 'daily-x7k2',
      phase: 'Failed',
      initiator: 'cron',
      startTime: '2026-01-01T00:00:00Z',
      endTime: '2026-01-01T00:05:00Z',
      failedSteps: [{ id: 'b[2]', step: 'b', attempts: 3, message: 'exit 1', exitCode: 1 }],
      failedStepsTotal: 1,
    });
    expect(n.links).toEqual([
      { name: 'run', url: 'http://meson.local/api/v1/namespaces/personalization/runs/daily-x7k2' },
      { name: 'b[2]: logs', url: 'http://ui/logs/b2' },
    ]);
  });

  it('maps phase changes to events', () => {
    expect(eventForPhaseChange(undefined, 'Running')).toBe('start');
    expect(eventForPhaseChange('Pending', 'Running')).toBe('start');
    expect(eventForPhaseChange('Running', 'Succeeded')).toBe('success');
    expect(eventForPhaseChange('Running', 'Failed')).toBe('failure');
    expect(eventForPhaseChange('Pending', 'Stopped')).toBe('stopped');
    expect(eventForPhaseChange('Running', 'Running')).toBeNull();
    expect(eventForPhaseChange(undefined, 'Pending')).toBeNull();
  });
});

describe('deliverWebhook over real HTTP', () => {
  it('delivers the JSON summary with event and delivery headers', async () => {
    const hook = await hookServer((_, res) => res.writeHead(204).end());
    const { logger, lines } = recordingLogger();
    const n = buildRunNotification(failedRun, 'failure');
    const results = await notifyRun(
      [
        { on: ['failure'], webhook: { url: hook.url, headers: { authorization: 'Bearer t' } } },
        { on: ['success'], webhook: { url: hook.url } },
      ],
      n,
      { logger, allow },
    );
    expect(results).toEqual([{ url: redactUrl(hook.url), ok: true, attempts: 1, status: 204 }]);
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]!.body).toEqual(JSON.parse(JSON.stringify(n)));
    expect(hook.received[0]!.headers).toMatchObject({
      'content-type': 'application/json',
      'x-meson-event': 'failure',
      'x-meson-delivery': 'personalization/daily-x7k2/failure',
      authorization: 'Bearer t',
    });
    // the token in the query string never reaches the logs
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('retries a 500 with backoff and succeeds on the next attempt', async () => {
    const hook = await hookServer((n, res) => res.writeHead(n === 1 ? 500 : 200).end('ok'));
    const { logger, lines } = recordingLogger();
    const { sleep, delays } = recordingSleep();
    const r = await deliverWebhook({ url: hook.url }, { hello: 1 }, { logger, sleep, allow });
    expect(r).toMatchObject({ ok: true, attempts: 2, status: 200 });
    expect(hook.received).toHaveLength(2);
    expect(delays).toEqual([1000]);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info']);
  });

  it('gives up on a dead URL after maxAttempts with exponential delays, logging, never throwing', async () => {
    const dead = await hookServer(() => {});
    const url = dead.url;
    await new Promise((r) => servers.pop()!.close(r)); // nothing listens on that port any more
    const { logger, lines } = recordingLogger();
    const { sleep, delays } = recordingSleep();
    const r = await deliverWebhook({ url }, {}, { logger, sleep, allow, retry: { maxAttempts: 4 } });
    expect(r.ok).toBe(false);
    expect(r.attempts).toBe(4);
    expect(r.error).toMatch(/ECONNREFUSED/);
    expect(delays).toEqual([1000, 2000, 4000]);
    expect(lines.at(-1)).toMatchObject({ level: 'error' });
  });

  it('does not retry a 400, and honours Retry-After within the cap', async () => {
    const bad = await hookServer((_, res) => res.writeHead(400).end());
    const { logger } = recordingLogger();
    const first = recordingSleep();
    expect(await deliverWebhook({ url: bad.url }, {}, { logger, allow, sleep: first.sleep })).toMatchObject({
      ok: false,
      attempts: 1,
      status: 400,
    });
    expect(first.delays).toEqual([]);

    const busy = await hookServer((n, res) =>
      res.writeHead(n === 1 ? 429 : 200, { 'retry-after': '7' }).end(),
    );
    const second = recordingSleep();
    const r = await deliverWebhook({ url: busy.url }, {}, { logger, allow, sleep: second.sleep });
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect(second.delays).toEqual([7000]);
  });

  it('times out a hanging hook per attempt', async () => {
    const hang = await hookServer((n, res) => {
      if (n > 1) res.writeHead(200).end();
      else setTimeout(() => res.writeHead(200).end(), 2000).unref();
    });
    const { logger } = recordingLogger();
    const { sleep } = recordingSleep();
    const r = await deliverWebhook({ url: hang.url }, {}, { logger, sleep, allow, timeoutMs: 150 });
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    const { logger: l2, lines } = recordingLogger();
    const gaveUp = await deliverWebhook(
      { url: hang.url },
      {},
      {
        logger: l2,
        sleep,
        allow,
        timeoutMs: 150,
        retry: { maxAttempts: 1 },
        transport: () =>
          new Promise((_, reject) =>
            setTimeout(() => reject(Object.assign(new Error('t'), { name: 'TimeoutError' })), 10),
          ),
      },
    );
    expect(gaveUp).toMatchObject({ ok: false, attempts: 1, error: 'timed out after 150 ms' });
    expect(lines.at(-1)!.level).toBe('error');
  });

  it('notifyRun never rejects, even with a throwing transport or malformed config', async () => {
    const { logger } = recordingLogger();
    const n = buildRunNotification(failedRun, 'failure');
    const transport = () => {
      throw new Error('boom');
    };
    const r = await notifyRun([{ on: ['failure'], webhook: { url: 'http://x' } }], n, {
      logger,
      lookup: async () => [{ address: '93.184.216.34', family: 4 }],
      transport: transport as unknown as Transport,
      sleep: async () => {},
    });
    expect(r[0]).toMatchObject({ ok: false, attempts: 5, error: 'boom' });
    await expect(notifyRun([{ on: null } as never], n, { logger })).resolves.toEqual([]);
    expect(await notifyRun(undefined, n, { logger })).toEqual([]);
  });
});

/** A transport that records what it was asked and answers 204 (it never connects). */
function recordingTransport() {
  const calls: HttpRequest[] = [];
  const transport: Transport = async (req) => {
    calls.push(req);
    return { status: 204 };
  };
  return { calls, transport };
}

const quiet = recordingLogger().logger;

describe('webhook targets: loopback, link-local, private and own addresses are denied by default', () => {
  it('refuses a real hook on 127.0.0.1 (and localhost) unless the allow-list opens it', async () => {
    const hook = await hookServer((_, res) => res.writeHead(204).end());
    const { logger, lines } = recordingLogger();
    const denied = await deliverWebhook({ url: hook.url }, {}, { logger, sleep: async () => {} });
    expect(denied).toMatchObject({ ok: false, attempts: 1, code: 'WEBHOOK_DENIED_ADDRESS' });
    expect(denied.error).toMatch(/loopback/);
    const viaName = await deliverWebhook(
      { url: `http://localhost:${hook.port}/` },
      {},
      { logger, sleep: async () => {} },
    );
    expect(viaName).toMatchObject({ ok: false, code: 'WEBHOOK_DENIED_ADDRESS' });
    expect(hook.received).toHaveLength(0);
    expect(lines.at(-1)).toMatchObject({ level: 'error' });
    expect(await deliverWebhook({ url: hook.url }, {}, { logger, allow })).toMatchObject({ ok: true });
    expect(hook.received).toHaveLength(1);
  });

  it.each([
    'http://127.0.0.1/',
    'http://127.1/',
    'http://0x7f.1/',
    'http://0x7f000001/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[0:0:0:0:0:ffff:169.254.169.254]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[64:ff9b::a9fe:a9fe]/', // NAT64 of 169.254.169.254
    'http://[2002:7f00:1::]/', // 6to4 of 127.0.0.1
    'http://[fe80::1]/',
    'http://[fc00::1]/',
    'http://[fd12:3456::1]/',
    'http://[ff02::1]/',
    'http://0.0.0.0/',
    'http://0/',
    'http://[::]/',
    'http://10.0.0.1/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
  ])('refuses %s without connecting', async (url) => {
    const { calls, transport } = recordingTransport();
    const r = await deliverWebhook({ url }, {}, { logger: quiet, transport, sleep: async () => {} });
    expect(r).toMatchObject({ ok: false, attempts: 1, code: 'WEBHOOK_DENIED_ADDRESS' });
    expect(calls).toHaveLength(0);
  });

  it.each([
    [['127.0.0.1']],
    [['::1']],
    [['::ffff:127.0.0.1']],
    [['169.254.169.254']],
    [['fe80::1']],
    [['fd00::1']],
    [['100.64.1.1']],
    [['0.0.0.0']],
    [['93.184.216.34', '10.0.0.1']], // one private answer among public ones is enough
    [['not-an-ip']],
  ])('refuses a host name that resolves to %j (injected lookup)', async (addresses) => {
    const { calls, transport } = recordingTransport();
    const lookup = async () => addresses.map((a) => ({ address: a, family: a.includes(':') ? 6 : 4 }));
    const r = await deliverWebhook(
      { url: 'https://hooks.example/x' },
      {},
      { logger: quiet, transport, lookup },
    );
    expect(r).toMatchObject({ ok: false, attempts: 1, code: 'WEBHOOK_DENIED_ADDRESS' });
    expect(calls).toHaveLength(0);
  });

  it("refuses this server's own addresses (its API listens there)", async () => {
    const { calls, transport } = recordingTransport();
    const lookup = async () => [{ address: '198.51.200.7', family: 4 }];
    const r = await deliverWebhook(
      { url: 'http://me.example/' },
      {},
      { logger: quiet, transport, lookup, localAddresses: () => ['198.51.200.7'] },
    );
    expect(r).toMatchObject({ ok: false, code: 'WEBHOOK_DENIED_ADDRESS' });
    expect(r.error).toMatch(/this server/);
    expect(calls).toHaveLength(0);
  });

  it('connects to the address it checked, resolving once per hop (no DNS-rebinding window)', async () => {
    const { calls, transport } = recordingTransport();
    let lookups = 0;
    // a rebinding resolver: public for the check, loopback afterwards
    const lookup = async () => [{ address: lookups++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    const r = await deliverWebhook(
      { url: 'http://rebind.example/x' },
      {},
      { logger: quiet, transport, lookup },
    );
    expect(r.ok).toBe(true);
    expect(lookups).toBe(1);
    expect(calls[0]).toMatchObject({ address: '93.184.216.34', family: 4 });
    expect(calls[0]!.url.hostname).toBe('rebind.example');
  });

  it('the node transport connects to the given address, not to what the host name resolves to', async () => {
    const hook = await hookServer((_, res) => res.writeHead(204).end());
    const res = await nodeTransport({
      url: new URL(`http://pinned.invalid:${hook.port}/p`),
      address: '127.0.0.1',
      family: 4,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      timeoutMs: 2000,
    });
    expect(res.status).toBe(204);
    expect(hook.received[0]!.headers.host).toBe(`pinned.invalid:${hook.port}`);
  });

  it('opens CIDRs and host names listed in the allow-list, in any address form', async () => {
    const { calls, transport } = recordingTransport();
    const to = (address: string) => async () => [{ address, family: address.includes(':') ? 6 : 4 }];
    const deps = { logger: quiet, transport };
    const net = parseAllowList('10.0.0.0/8, fd00::/8');
    expect(
      (
        await deliverWebhook(
          { url: 'http://a.example/' },
          {},
          { ...deps, allow: net, lookup: to('10.1.2.3') },
        )
      ).ok,
    ).toBe(true);
    expect(
      (
        await deliverWebhook(
          { url: 'http://a.example/' },
          {},
          { ...deps, allow: net, lookup: to('::ffff:10.1.2.3') },
        )
      ).ok,
    ).toBe(true);
    expect(
      (await deliverWebhook({ url: 'http://a.example/' }, {}, { ...deps, allow: net, lookup: to('fd00::5') }))
        .ok,
    ).toBe(true);
    expect(
      (
        await deliverWebhook(
          { url: 'http://a.example/' },
          {},
          { ...deps, allow: net, lookup: to('127.0.0.1') },
        )
      ).ok,
    ).toBe(false);
    const host = parseAllowList('hooks.internal');
    expect(
      (
        await deliverWebhook(
          { url: 'http://HOOKS.internal/' },
          {},
          { ...deps, allow: host, lookup: to('10.9.9.9') },
        )
      ).ok,
    ).toBe(true);
    expect(
      (
        await deliverWebhook(
          { url: 'http://other.internal/' },
          {},
          { ...deps, allow: host, lookup: to('10.9.9.9') },
        )
      ).ok,
    ).toBe(false);
    expect(calls).toHaveLength(4);
    expect(() => parseAllowList('10.0.0.0/33')).toThrow(/10.0.0.0\/33/);
    expect(() => parseAllowList('http://x')).toThrow(/neither a CIDR/);
  });
});

describe('webhook redirects', () => {
  const redirect = (status: number, location: string) => (_: number, res: ServerResponse) =>
    res.writeHead(status, { location }).end();

  it('follows a same-origin redirect keeping the headers, and a cross-origin one without credentials', async () => {
    const final = await hookServer((_, res) => res.writeHead(204).end(), '/final');
    const first = await hookServer((n, res) =>
      n === 1
        ? res.writeHead(307, { location: '/moved' }).end()
        : res.writeHead(308, { location: final.url }).end(),
    );
    const r = await deliverWebhook(
      { url: first.url, headers: { authorization: 'Bearer t', 'x-api-key': 'k' } },
      { hello: 1 },
      { logger: quiet, allow },
      { 'x-meson-event': 'failure' },
    );
    expect(r).toMatchObject({ ok: true, attempts: 1 });
    expect(first.received.map((x) => x.url)).toEqual(['/hook?token=secret', '/moved']);
    expect(first.received[1]!.headers).toMatchObject({ authorization: 'Bearer t', 'x-api-key': 'k' });
    // another port is another origin: the target's headers stay behind, meson's own go on
    const h = final.received[0]!;
    expect(h.method).toBe('POST'); // 307/308 keep the method and body
    expect(h.body).toEqual({ hello: 1 });
    expect(h.headers.authorization).toBeUndefined();
    expect(h.headers['x-api-key']).toBeUndefined();
    expect(h.headers['x-meson-event']).toBe('failure');
  });

  it('checks every hop: a redirect to a denied address is refused without connecting to it', async () => {
    const { logger } = recordingLogger();
    const hop = await hookServer(redirect(302, 'http://169.254.169.254/latest/meta-data/'));
    const r = await deliverWebhook({ url: hop.url }, {}, { logger, allow, sleep: async () => {} });
    expect(r).toMatchObject({ ok: false, attempts: 1, code: 'WEBHOOK_DENIED_ADDRESS' });
    const toLoopbackName = await hookServer(redirect(307, 'http://[::1]:9/'));
    expect(await deliverWebhook({ url: toLoopbackName.url }, {}, { logger, allow })).toMatchObject({
      ok: false,
      code: 'WEBHOOK_DENIED_ADDRESS',
    });
  });

  it('follows at most maxRedirects redirects', async () => {
    const loop = await hookServer(redirect(307, '/hook?token=secret'));
    const r = await deliverWebhook({ url: loop.url }, {}, { logger: quiet, allow, maxRedirects: 3 });
    expect(r).toMatchObject({ ok: false, attempts: 1, code: 'WEBHOOK_TOO_MANY_REDIRECTS' });
    expect(loop.received).toHaveLength(4);
  });
});

describe('webhook attempts stay bounded', () => {
  it('does not read an answer body that never ends', async () => {
    const endless = await hookServer((_, res) => {
      res.writeHead(200);
      const t = setInterval(() => res.write('x'.repeat(1024)), 5);
      res.on('close', () => clearInterval(t));
    });
    const started = Date.now();
    const r = await deliverWebhook({ url: endless.url }, {}, { logger: quiet, allow, timeoutMs: 2000 });
    expect(r).toMatchObject({ ok: true, attempts: 1 });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('one timeout covers the whole attempt, redirects included', async () => {
    const slow = await hookServer((_, res) => {
      setTimeout(() => res.writeHead(307, { location: '/again' }).end(), 80).unref();
    });
    const r = await deliverWebhook(
      { url: slow.url },
      {},
      { logger: quiet, allow, timeoutMs: 250, maxRedirects: 50, retry: { maxAttempts: 1 } },
    );
    expect(r).toMatchObject({ ok: false, attempts: 1, error: 'timed out after 250 ms' });
    expect(slow.received.length).toBeLessThanOrEqual(4);
  });

  it('a header value that cannot be sent fails once, without retries', async () => {
    const hook = await hookServer((_, res) => res.writeHead(204).end());
    const { sleep, delays } = recordingSleep();
    const r = await deliverWebhook(
      { url: hook.url, headers: { 'x-injected': 'a\r\nx-evil: 1' } },
      {},
      { logger: quiet, allow, sleep },
    );
    expect(r).toMatchObject({ ok: false, attempts: 1 });
    expect(delays).toEqual([]);
    expect(hook.received).toHaveLength(0);
  });
});
