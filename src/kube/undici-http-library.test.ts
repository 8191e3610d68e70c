// The operator's API clients on undici's request (RateLimitedKubeConfig's HTTP library) against
// a local HTTP server: what the generated clients and sendJson send and read back is what they
// did through client-node's fetch.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiException, CoreV1Api, HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { errorText, statusCode } from '../launchers/kubernetes.ts';
import { RateLimitedKubeConfig, USER_AGENT } from '../operator/rate-limit.ts';
import { sendJson } from './send-json.ts';
import { sendWithUndici } from './undici-http-library.ts';

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

interface Seen {
  method?: string;
  url?: string;
  type?: string;
  auth?: string;
  agent?: string;
  body: string;
}

type Answer = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** A server answering the n-th request with `answer`; records what it got. */
async function serve(answer: Answer): Promise<{ kc: RateLimitedKubeConfig; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      seen.push({
        method: req.method,
        url: req.url,
        type: req.headers['content-type'],
        auth: req.headers.authorization,
        agent: req.headers['user-agent'],
        body,
      });
      answer(req, res, seen.length);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const plain = new KubeConfig();
  plain.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'tok' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { kc: new RateLimitedKubeConfig(plain, { qps: 0, burst: 1 }), url, seen };
}

function json(res: ServerResponse, code: number, body: object, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

describe('the operator’s API clients on undici’s request', () => {
  it('a generated client sends its body with the credentials and User-Agent, and reads the typed answer', async () => {
    const { kc, seen } = await serve((_req, res) =>
      json(res, 201, { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'p', namespace: 'ns', uid: 'u-1' } }),
    );
    const core = kc.makeApiClient(CoreV1Api);
    const pod = await core.createNamespacedPod({
      namespace: 'ns',
      body: { metadata: { name: 'p', annotations: { a: 'ü "quoted" \n' } }, spec: { containers: [] } },
    });
    expect(pod.metadata).toMatchObject({ name: 'p', namespace: 'ns', uid: 'u-1' });
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/api/v1/namespaces/ns/pods',
      type: 'application/json',
      auth: 'Bearer tok',
      agent: USER_AGENT,
    });
    expect(JSON.parse(seen[0]!.body).metadata.annotations).toEqual({ a: 'ü "quoted" \n' });
  });

  it('a refusal is client-node’s ApiException with the code and the server’s message', async () => {
    const { kc } = await serve((_req, res) =>
      json(res, 409, {
        kind: 'Status',
        code: 409,
        reason: 'AlreadyExists',
        message: 'pods "p" already exists',
      }),
    );
    for (const attempt of [
      () =>
        kc
          .makeApiClient(CoreV1Api)
          .createNamespacedPod({ namespace: 'ns', body: { metadata: { name: 'p' } } }),
      () => sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiException);
      expect(statusCode(err)).toBe(409);
      expect(errorText(err)).toBe('pods "p" already exists');
    }
  });

  it('a 429 with Retry-After is retried on the same connection pool, its body read and dropped', async () => {
    const { kc, seen } = await serve((_req, res, n) =>
      n <= 2
        ? json(res, 429, { kind: 'Status', code: 429, message: 'too many requests' }, { 'retry-after': '0' })
        : json(res, 200, { kind: 'Pod', metadata: { name: 'p' } }),
    );
    const out = await sendJson(kc, 'PUT', '/api/v1/namespaces/ns/pods/p', { metadata: { name: 'p' } });
    expect(out).toEqual({ code: 200, text: JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } }) });
    expect(seen.map((s) => s.method)).toEqual(['PUT', 'PUT', 'PUT']);
    expect(seen.every((s) => s.body === JSON.stringify({ metadata: { name: 'p' } }))).toBe(true);
  });

  it('an answer’s headers reach the client (names in lower case, repeated ones joined)', async () => {
    const { url } = await serve((_req, res) => {
      res.setHeader('Warning', ['299 - "one"', '299 - "two"']);
      res.setHeader('Retry-After', '3');
      res.writeHead(204);
      res.end();
    });
    const res = await sendWithUndici(new RequestContext(`${url}/x`, HttpMethod.GET));
    expect(res.httpStatusCode).toBe(204);
    expect(res.headers['retry-after']).toBe('3');
    expect(res.headers.warning).toBe('299 - "one", 299 - "two"');
    expect(await res.body.text()).toBe('');
  });

  it('rejects without a code when nothing answers (the launcher retries it as transient)', async () => {
    const { kc } = await serve((_req, res) => json(res, 200, {}));
    server!.close();
    server!.closeAllConnections();
    await once(server!, 'close');
    const err = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(statusCode(err)).toBeUndefined();
  });
});
