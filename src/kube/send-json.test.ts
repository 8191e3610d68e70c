import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { errorText, statusCode } from '../launchers/kubernetes.ts';
import { sendJson } from './send-json.ts';

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
  body: string;
}

/** An API server answering every request with `code` and `answer`; records what it got. */
async function serve(code: number, answer: object): Promise<{ kc: KubeConfig; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req: IncomingMessage, res) => {
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
        body,
      });
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u', token: 'tok' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { kc, seen };
}

describe('sendJson', () => {
  it('sends the body as JSON with the config’s credentials and returns the answer unparsed', async () => {
    const { kc, seen } = await serve(201, { kind: 'Pod', metadata: { name: 'p' } });
    const pod = {
      metadata: { name: 'p', labels: { 'meson.dev/run': 'r' }, annotations: { a: 'ü "quoted" \n' } },
      spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '100m' } } }] },
    };
    const out = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', pod);
    expect(out).toEqual({ code: 201, text: JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } }) });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/api/v1/namespaces/ns/pods',
      type: 'application/json',
      auth: 'Bearer tok',
    });
    expect(JSON.parse(seen[0]!.body)).toEqual(pod);
  });

  it('rejects a refusal as client-node does: ApiException with the code and the server’s message', async () => {
    const { kc } = await serve(409, {
      kind: 'Status',
      code: 409,
      reason: 'AlreadyExists',
      message: 'pods "p" already exists',
    });
    const err = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect(statusCode(err)).toBe(409);
    expect(errorText(err)).toBe('pods "p" already exists');
  });

  it('rejects when nothing answers (no code: the launcher retries it as transient)', async () => {
    const { kc } = await serve(200, {});
    server!.close();
    server!.closeAllConnections();
    await once(server!, 'close');
    const err = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(statusCode(err)).toBeUndefined();
  });
});
