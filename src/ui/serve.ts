// The web UI's static files, served by the API's own Fastify app (standalone and operator mode).
// A fixed table of files read once at start: no part of a request URL ever names a path on disk,
// so there is nothing to traverse. The files are public (they hold no data); every data call the
// page makes goes through /api with the same token as any client (docs/ui.md).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const modules = (p: string) => fileURLToPath(new URL(`../../node_modules/${p}`, import.meta.url));

/** URL path -> file, for every file the page loads. Libraries are served as ES modules, unbundled. */
const FILES: Record<string, string> = {
  '/ui/app.js': here('./app.js'),
  '/ui/api.js': here('./api.js'),
  '/ui/graph.js': here('./graph.js'),
  '/ui/views.js': here('./views.js'),
  '/ui/run.js': here('./run.js'),
  '/ui/sse.js': here('./sse.js'),
  '/ui/diff.js': here('./diff.js'),
  '/ui/timeline.js': here('./timeline.js'),
  '/ui/style.css': here('./style.css'),
  '/ui/vendor/preact.js': modules('preact/dist/preact.mjs'),
  '/ui/vendor/preact-hooks.js': modules('preact/hooks/dist/hooks.mjs'),
  '/ui/vendor/htm.js': modules('htm/dist/htm.mjs'),
  '/ui/vendor/htm-preact.js': modules('htm/preact/index.mjs'),
  '/ui/vendor/dagre.js': modules('@dagrejs/dagre/dist/dagre.esm.js'),
};

/** Bare module names the page imports, resolved by the browser through an import map. */
const IMPORT_MAP = {
  imports: {
    preact: '/ui/vendor/preact.js',
    'preact/hooks': '/ui/vendor/preact-hooks.js',
    htm: '/ui/vendor/htm.js',
    'htm/preact': '/ui/vendor/htm-preact.js',
    '@dagrejs/dagre': '/ui/vendor/dagre.js',
  },
};

/** The public routes of the UI: the page and its files (added to the API's public list). */
export const UI_ROUTES: readonly string[] = ['/', ...Object.keys(FILES)];

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

export interface UiPage {
  html: string;
  /** Content-Security-Policy of the page: own scripts only, the import map by its hash. */
  csp: string;
}

/** The HTML page: the import map inline (allowed by hash), the app as a module. */
export function uiPage(): UiPage {
  const map = JSON.stringify(IMPORT_MAP);
  const hash = createHash('sha256').update(map).digest('base64');
  const html = readFileSync(here('./index.html'), 'utf8').replace(
    '<script type="importmap"></script>',
    `<script type="importmap">${map}</script>`,
  );
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

/** Fastify plugin: GET / and GET /ui/... from memory, public, with security headers. */
export function uiRoutes(): FastifyPluginAsync {
  const page = uiPage();
  const files = Object.entries(FILES).map(([url, file]) => ({
    url,
    body: readFileSync(file),
    type: TYPES[url.split('.').pop()!]!,
  }));
  return async (app) => {
    app.addHook('onSend', async (_req, reply) => {
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('content-security-policy', page.csp);
    });
    const pub = { config: { public: true } };
    app.get('/', pub, async (_req, reply) =>
      reply.type(TYPES.html!).header('cache-control', 'no-cache').send(page.html),
    );
    for (const f of files) {
      app.get(f.url, pub, async (_req, reply) =>
        reply.type(f.type).header('cache-control', 'no-cache').send(f.body),
      );
    }
  };
}
