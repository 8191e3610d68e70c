// A local HTTP server standing in for the API server in unit tests of the Kubernetes client
// plumbing (sendJson, the operator's HTTP library): it records each request and answers it as
// the test says. Closed after each test of a file that calls useApiServer().
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach } from 'vitest';

export interface SeenRequest {
  method?: string;
  url?: string;
  type?: string;
  auth?: string;
  agent?: string;
  body: string;
}

/** Answers the n-th request (from 1). */
export type Answer = (req: IncomingMessage, res: ServerResponse, n: number) => void;

export interface ApiServer {
  url: string;
  /** A KubeConfig for it with the bearer token `tok`. */
  kc: KubeConfig;
  seen: SeenRequest[];
  /** Stops answering: the next request finds nothing listening. */
  close(): Promise<void>;
}

export function answerJson(
  res: ServerResponse,
  code: number,
  body: object,
  headers: Record<string, string> = {},
): void {
  res.writeHead(code, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Registers the after-each close; returns the function that starts a server for one test. */
export function useApiServer(): (answer: Answer) => Promise<ApiServer> {
  let server: Server | undefined;
  afterEach(() => {
    server?.closeAllConnections();
    server?.close();
    server = undefined;
  });
  return async (answer) => {
    const seen: SeenRequest[] = [];
    const s = createServer((req, res) => {
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
    server = s;
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'tok' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return {
      url,
      kc,
      seen,
      close: async () => {
        s.close();
        s.closeAllConnections();
        await once(s, 'close');
      },
    };
  };
}
