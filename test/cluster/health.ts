import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Component, logTail } from './process.ts';

/** TLS material for probing an HTTPS endpoint. Omit to skip verification (self-signed). */
export interface ProbeTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** One GET; resolves with the status code and body, never rejects. */
export function probe(
  url: string,
  tls?: ProbeTls,
  timeoutMs = 2_000,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const isHttps = url.startsWith('https:');
    const options = isHttps
      ? { ...tls, rejectUnauthorized: tls?.ca !== undefined, timeout: timeoutMs }
      : { timeout: timeoutMs };
    const req = (isHttps ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ error: error.message }));
    req.end();
  });
}

/**
 * Polls `url` until it answers 200, the component exits, or `timeoutMs` passes; on failure
 * the error carries the component's log tail so a broken flag is visible at once.
 */
export async function waitHealthy(
  component: Component,
  url: string,
  options: { tls?: ProbeTls; timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const exit = component.exited();
    if (exit) {
      throw new Error(
        `${component.name} exited (code ${exit.code}, signal ${exit.signal}) before ${url} became healthy.\n` +
          `--- ${component.logPath} (tail) ---\n${logTail(component.logPath)}`,
      );
    }
    const result = await probe(url, options.tls);
    if ('status' in result && result.status === 200) return;
    last = 'status' in result ? `HTTP ${result.status}: ${result.body.slice(0, 300)}` : result.error;
    await sleep(100);
  }
  throw new Error(
    `${component.name} not healthy at ${url} after ${timeoutMs} ms (last: ${last}).\n` +
      `--- ${component.logPath} (tail) ---\n${logTail(component.logPath)}`,
  );
}

/** A loopback TCP port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Distinct free ports (asked for together so the OS does not hand out one twice). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
