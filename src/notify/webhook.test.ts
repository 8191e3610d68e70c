import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkflowRun } from '../crds/index.ts';
import { buildRunNotification, eventForPhaseChange } from './summary.ts';
import { deliverWebhook, type NotifyLogger, notifyRun, redactUrl } from './webhook.ts';

interface Received {
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
async function hookServer(respond: (n: number, res: ServerResponse) => void) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => {
      data += c;
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(data) });
      respond(received.length, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook?token=secret`, received };
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
      { logger },
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
    const r = await deliverWebhook({ url: hook.url }, { hello: 1 }, { logger, sleep });
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
    const r = await deliverWebhook({ url }, {}, { logger, sleep, retry: { maxAttempts: 4 } });
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
    expect(await deliverWebhook({ url: bad.url }, {}, { logger, sleep: first.sleep })).toMatchObject({
      ok: false,
      attempts: 1,
      status: 400,
    });
    expect(first.delays).toEqual([]);

    const busy = await hookServer((n, res) =>
      res.writeHead(n === 1 ? 429 : 200, { 'retry-after': '7' }).end(),
    );
    const second = recordingSleep();
    const r = await deliverWebhook({ url: busy.url }, {}, { logger, sleep: second.sleep });
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
    const r = await deliverWebhook({ url: hang.url }, {}, { logger, sleep, timeoutMs: 150 });
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    const { logger: l2, lines } = recordingLogger();
    const gaveUp = await deliverWebhook(
      { url: hang.url },
      {},
      {
        logger: l2,
        sleep,
        timeoutMs: 150,
        retry: { maxAttempts: 1 },
        fetch: () =>
          new Promise((_, reject) => setTimeout(() => reject(new DOMException('t', 'TimeoutError')), 10)),
      },
    );
    expect(gaveUp).toMatchObject({ ok: false, attempts: 1, error: 'timed out after 150 ms' });
    expect(lines.at(-1)!.level).toBe('error');
  });

  it('notifyRun never rejects, even with a throwing fetch or malformed config', async () => {
    const { logger } = recordingLogger();
    const n = buildRunNotification(failedRun, 'failure');
    const fetch = () => {
      throw new Error('boom');
    };
    const r = await notifyRun([{ on: ['failure'], webhook: { url: 'http://x' } }], n, {
      logger,
      fetch: fetch as unknown as typeof globalThis.fetch,
      sleep: async () => {},
    });
    expect(r[0]).toMatchObject({ ok: false, attempts: 5, error: 'boom' });
    await expect(notifyRun([{ on: null } as never], n, { logger })).resolves.toEqual([]);
    expect(await notifyRun(undefined, n, { logger })).toEqual([]);
  });
});
