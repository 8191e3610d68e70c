import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../api/app.ts';
import { createStandalone } from '../controller/standalone.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import { UI_ROUTES } from './serve.ts';

const TOKEN = 'ui-s3cret-token';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function app(token?: string): Promise<FastifyInstance> {
  const root = mkdtempSync(join(tmpdir(), 'meson-ui-serve-'));
  const s = createStandalone({ dataDir: join(root, 'data'), cwd: root, pollMs: 50 });
  const a = await buildApp({ store: new SqliteAsyncStore(s.store), ...(token ? { token } : {}) });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  cleanups.push(() => a.close());
  return a;
}

describe('the UI files', () => {
  it('serves the page and its files without the token, with a strict CSP', async () => {
    const a = await app(TOKEN);
    const page = await a.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const map = /<script type="importmap">(.*?)<\/script>/.exec(page.body)![1]!;
    expect(JSON.parse(map).imports.preact).toBe('/ui/vendor/preact.js');
    // the only inline script is allowed by its hash; nothing else inline, no eval, no framing
    const hash = createHash('sha256').update(map).digest('base64');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    for (const url of UI_ROUTES.filter((u) => u !== '/')) {
      const res = await a.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toMatch(
        url.endsWith('.css') ? /^text\/css/ : /^text\/javascript/,
      );
      expect(res.body.length, url).toBeGreaterThan(100);
    }
  });

  it('keeps every data call behind the token', async () => {
    const a = await app(TOKEN);
    expect((await a.inject({ url: '/api/v1/namespaces/default/workflows' })).statusCode).toBe(401);
    const ok = await a.inject({
      url: '/api/v1/namespaces/default/workflows',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.statusCode).toBe(200);
    // the API's answers do not get the page's headers (the UI plugin's hook is its own)
    expect(ok.headers['content-security-policy']).toBeUndefined();
  });

  it('names no file outside its table, whatever the encoding', async () => {
    for (const token of [TOKEN, undefined]) {
      const a = await app(token);
      for (const url of [
        '/ui/../package.json',
        '/ui/%2e%2e/package.json',
        '/ui/%2E%2E%2Fpackage.json',
        '/ui/vendor/..%2f..%2fpackage.json',
        '/ui/..%5c..%5cpackage.json',
        '/ui/app.js%00.css',
        '/ui/app.ts',
        '/ui/serve.ts',
        '/ui/',
        '/ui/vendor/',
        '/UI/app.js',
        '/node_modules/preact/package.json',
        '/src/ui/app.js',
        '/index.html',
      ]) {
        const res = await a.inject({ url });
        expect(res.statusCode, `${url} with${token ? '' : 'out'} a token`).toBe(token ? 401 : 404);
        expect(res.body).not.toMatch(/"name": "meson-k8s"|import |FastifyPluginAsync/);
      }
    }
  });
});
