// `mesonctl server` (= `npm start`): the standalone server. REST API, scheduler and local
// executors over an embedded SQLite store (./.meson by default). Loads examples/*.yaml into an
// empty store. Structured JSON logs (pino) on stdout.
import { readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildApp } from '../../api/app.ts';
import { applyManifests, readManifests } from '../../controller/manifests.ts';
import { createStandalone } from '../../controller/standalone.ts';
import type { Command } from '../cli.ts';
import { parseStepOptions, STEP_OPTIONS, STEP_OPTIONS_USAGE, type StepOptions } from '../step-options.ts';

const USAGE = `usage: mesonctl server [--port N] [--host ADDR] [--data-dir DIR] [--examples DIR | --no-examples]
                       [--step-env-passthrough NAME]... [--copy-root DIR]... [--step-limit NAME=N]...

The standalone server: REST API (/api/v1, OpenAPI at /openapi.json), scheduler and local
executors, with an embedded store in --data-dir (default ./.meson, or MESON_DATA_DIR).
Listens on 127.0.0.1:8080 by default (MESON_HOST, MESON_PORT). Set MESON_API_TOKEN to require
"Authorization: Bearer <token>" on /api/*. Loads examples/*.yaml into an empty store.
Each step runs in its own directory under --data-dir, with a clean environment; copy steps
read and write only under DATA_DIR/files/<namespace> and the --copy-root directories.

${STEP_OPTIONS_USAGE}`;

export const serverCommand: Command = async (args, io) => {
  let opts: ReturnType<typeof parse>;
  try {
    opts = parse(args);
  } catch (err) {
    io.stderr(`mesonctl server: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (opts.values.help) {
    io.stdout(USAGE);
    return 0;
  }
  const v = opts.values;
  const port = Number(v.port ?? io.env.MESON_PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.stderr(`mesonctl server: --port: expected 0..65535, got "${v.port}"\n`);
    return 2;
  }
  const host = v.host ?? io.env.MESON_HOST ?? '127.0.0.1';
  let steps: StepOptions;
  try {
    steps = parseStepOptions(v, io.env, io.cwd);
  } catch (err) {
    io.stderr(`mesonctl server: ${(err as Error).message}\n`);
    return 2;
  }
  const abs = (p: string) => (isAbsolute(p) ? p : join(io.cwd, p));
  const dataDir = abs(v['data-dir'] ?? io.env.MESON_DATA_DIR ?? '.meson');
  const token = io.env.MESON_API_TOKEN || undefined;
  const logger = pino({ level: io.env.MESON_LOG_LEVEL ?? 'info', base: { component: 'meson' } });

  let standalone: ReturnType<typeof createStandalone>;
  try {
    // no cwd: each step gets its own working directory under the data directory
    standalone = createStandalone({ dataDir, logger, ...steps });
  } catch (err) {
    io.stderr(`mesonctl server: ${(err as Error).message}\n`);
    return 1;
  }
  if (!v['no-examples']) {
    const dir = abs(v.examples ?? 'examples');
    if (standalone.store.list('Workflow', undefined, { limit: 1 }).items.length === 0) loadExamples(dir);
  }
  standalone.start();
  const app = await buildApp({ store: standalone.store, ...(token ? { token } : {}), logger });
  let address: string;
  try {
    address = await app.listen({ port, host });
  } catch (err) {
    io.stderr(`mesonctl server: cannot listen on ${host}:${port}: ${(err as Error).message}\n`);
    standalone.stop();
    return 1;
  }
  if (!token && !['127.0.0.1', 'localhost', '::1'].includes(host)) {
    logger.warn(
      { host },
      'listening beyond localhost without MESON_API_TOKEN: anyone who can reach it can run commands',
    );
  }
  logger.info({ url: address, dataDir }, 'meson server started');
  io.stdout(`meson server listening on ${address} (data in ${dataDir})\n`);

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down; running steps keep running and are adopted at the next start');
    await app.close();
    standalone.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  return undefined;

  function loadExamples(dir: string): void {
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort();
    } catch {
      return;
    }
    for (const f of files) {
      const m = readManifests(join(dir, f), f);
      if (m.errors.length > 0) {
        logger.warn({ file: f, errors: m.errors.slice(0, 5) }, 'example not loaded: invalid');
        continue;
      }
      try {
        applyManifests(standalone.store, { ...m, runs: [] }, Date.now());
        logger.info({ file: f, workflows: m.workflows.map((w) => w.metadata.name) }, 'example loaded');
      } catch (err) {
        logger.warn({ file: f, err: (err as Error).message }, 'example not loaded');
      }
    }
  }
};

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      examples: { type: 'string' },
      'no-examples': { type: 'boolean' },
      ...STEP_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}
