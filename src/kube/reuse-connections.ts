// Connection reuse for client-node's API clients. @kubernetes/client-node 2.x builds a new undici
// Agent for every request it authenticates (KubeConfig.applySecurityAuthentication calls its
// private createDispatcher each time), so every API call that has TLS settings opens its own
// connection: a TCP and TLS handshake per pod create, on the operator's CPU and on the API
// server's, and a kept-alive socket left behind per request until the Agent's idle timeout. In
// a 2,000-step run the handshakes were about a fifth of the operator's CPU time.
//
// `reuseConnections` makes one KubeConfig hand the same Agent to every request while the TLS
// settings stay the same. The settings are read per request as before (a rotated client
// certificate or CA file is picked up): when they change, the next request gets a new Agent
// and the old one is closed once its requests in flight have finished.
import type { Cluster, KubeConfig } from '@kubernetes/client-node';

/** What client-node's createDispatcher returns (an undici Dispatcher), as far as this needs it. */
interface Closable {
  close(): Promise<void>;
}

type CreateDispatcher = (
  cluster: Cluster | null,
  agentOptions: Record<string, unknown>,
) => Closable | undefined;

const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/** Everything createDispatcher's result depends on, as one string. */
export function dispatcherKey(cluster: Cluster | null, agentOptions: Record<string, unknown>): string {
  const parts: string[] = [
    cluster?.server ?? '',
    cluster?.proxyUrl ?? '',
    String(cluster?.skipTLSVerify ?? ''),
  ];
  for (const f of TLS_FIELDS) {
    const v = agentOptions[f];
    parts.push(Buffer.isBuffer(v) ? v.toString('base64') : v === undefined ? '' : JSON.stringify(v));
  }
  return parts.join('\n');
}

const PATCHED = Symbol('reuseConnections');

/**
 * Makes `kc` reuse one dispatcher (connection pool) across requests while its cluster and TLS
 * settings are unchanged. Returns `kc`. Idempotent.
 */
export function reuseConnections<T extends KubeConfig>(kc: T): T {
  const target = kc as unknown as { createDispatcher?: CreateDispatcher; [PATCHED]?: true };
  const original = target.createDispatcher;
  if (target[PATCHED] || typeof original !== 'function') return kc;
  let cached: { key: string; dispatcher: Closable | undefined } | undefined;
  target.createDispatcher = (cluster, agentOptions) => {
    const key = dispatcherKey(cluster, agentOptions);
    if (cached?.key === key) return cached.dispatcher;
    const old = cached?.dispatcher;
    cached = { key, dispatcher: original.call(kc, cluster, agentOptions) };
    // graceful: requests already sent on it finish first
    old?.close().catch(() => {});
    return cached.dispatcher;
  };
  target[PATCHED] = true;
  return kc;
}
