import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { dispatcherKey, reuseConnections } from './reuse-connections.ts';

/** A kubeconfig for `server` with TLS settings (skip-verify), so client-node builds a dispatcher per request. */
function kubeConfig(server: string, caData = 'Y2E='): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true, caData }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** A plain HTTP API server answering every GET with a Namespace; counts TCP connections. */
async function countingServer(): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n' } }));
  });
  server.on('connection', () => {
    connections++;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
  };
}

async function dispatcherOf(kc: KubeConfig): Promise<unknown> {
  const ctx = new RequestContext('https://example.invalid/api', 'GET' as never);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getDispatcher();
}

describe('reuseConnections', () => {
  it('sends sequential API calls over one or two kept-alive connections (client-node alone opens one per call)', async () => {
    const plain = await countingServer();
    const core = kubeConfig(plain.url).makeApiClient(CoreV1Api);
    for (let i = 0; i < 10; i++) await core.readNamespace({ name: 'n' });
    // the library's behaviour this works around; if this fails, client-node reuses by itself
    expect(plain.connections()).toBe(10);

    const reused = await countingServer();
    const kc = reuseConnections(kubeConfig(reused.url));
    const api = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < 10; i++) expect((await api.readNamespace({ name: 'n' })).metadata?.name).toBe('n');
    // one pool: a call may find the previous one's socket not yet released and open a second
    expect(reused.connections()).toBeLessThanOrEqual(2);
  });

  it('gives every request the same dispatcher while the TLS settings stay, a new one when they change', async () => {
    const kc = reuseConnections(kubeConfig('https://127.0.0.1:6443'));
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc)).toBe(first);
    // a rotated CA (or client certificate) must not keep the old connections' settings
    const rotated = kubeConfig('https://127.0.0.1:6443', 'bmV3LWNh');
    (kc as unknown as { clusters: unknown }).clusters = rotated.clusters;
    const second = await dispatcherOf(kc);
    expect(second).not.toBe(first);
    expect(await dispatcherOf(kc)).toBe(second);
  });

  it('is idempotent', async () => {
    const kc = reuseConnections(reuseConnections(kubeConfig('https://127.0.0.1:6443')));
    expect(await dispatcherOf(kc)).toBe(await dispatcherOf(kc));
  });

  it('keys on every TLS setting and the server', () => {
    const c = { name: 'c', server: 'https://a', skipTLSVerify: false };
    const base = dispatcherKey(c, { ca: Buffer.from('x') });
    expect(dispatcherKey(c, { ca: Buffer.from('x') })).toBe(base);
    expect(dispatcherKey(c, { ca: Buffer.from('y') })).not.toBe(base);
    expect(dispatcherKey(c, { ca: Buffer.from('x'), cert: Buffer.from('c') })).not.toBe(base);
    expect(dispatcherKey(c, { ca: Buffer.from('x'), servername: 'b' })).not.toBe(base);
    expect(dispatcherKey(c, { ca: Buffer.from('x'), rejectUnauthorized: false })).not.toBe(base);
    expect(dispatcherKey({ ...c, server: 'https://b' }, { ca: Buffer.from('x') })).not.toBe(base);
    expect(dispatcherKey({ ...c, proxyUrl: 'http://p' }, { ca: Buffer.from('x') })).not.toBe(base);
  });
});
