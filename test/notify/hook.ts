// A webhook receiver for tests: a real HTTP server on 127.0.0.1 answering `status()` to each
// request and keeping the JSON bodies it received.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestHook {
  url: string;
  bodies: unknown[];
  close(): Promise<void>;
}

export async function hook(status: () => number): Promise<TestHook> {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => {
      data += c;
    });
    req.on('end', () => {
      bodies.push(JSON.parse(data));
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
