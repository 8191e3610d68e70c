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
import { type AllowList, DEFAULT_MAX_PENDING, parseAllowList } from '../../notify/index.ts';
import { DEFAULT_RETENTION, DEFAULT_SWEEP_INTERVAL_MS, type RetentionPolicy } from '../../retention/index.ts';
import type { Command } from '../cli.ts';
import { RUN_LIMIT_OPTIONS, runLimitsFrom, runLimitUsage } from '../limits.ts';

const USAGE = `usage: mesonctl server [--port N] [--host ADDR] [--data-dir DIR] [--examples DIR | --no-examples]
                      [--retention-keep-last N|off] [--retention-ttl SECONDS] [--retention-interval SECONDS]
                      [--webhook-allow LIST] [run limits]

The standalone server: REST API (/api/v1, OpenAPI at /openapi.json), scheduler and local
executors, with an embedded store in --data-dir (default ./.meson, or MESON_DATA_DIR).
Listens on 127.0.0.1:8080 by default (MESON_HOST, MESON_PORT). Set MESON_API_TOKEN to require
"Authorization: Bearer <token>" on /api/*. Loads examples/*.yaml into an empty store.

Retention of finished runs (a Workflow's spec.retention overrides these per field):
  --retention-keep-last  finished runs kept per workflow (MESON_RETENTION_KEEP_LAST, default 1000; off: no limit)
  --retention-ttl        seconds after it ended that a finished run is deleted (MESON_RETENTION_TTL_SECONDS; default none)
  --retention-interval   seconds between sweeps (MESON_RETENTION_INTERVAL_SECONDS, default 60; 0: no sweep)

Webhooks may not reach loopback, link-local, private, multicast or this machine's addresses:
  --webhook-allow        CIDRs or host names they may reach anyway, comma-separated (MESON_WEBHOOK_ALLOW)
  MESON_WEBHOOK_MAX_PENDING  deliveries waiting at most (default 1000)

Run limits (a run that reaches one fails naming it; see docs/engine.md, "Limits"):
${runLimitUsage()}
`;

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
  const abs = (p: string) => (isAbsolute(p) ? p : join(io.cwd, p));
  const dataDir = abs(v['data-dir'] ?? io.env.MESON_DATA_DIR ?? '.meson');
  const token = io.env.MESON_API_TOKEN || undefined;
  let retention: ReturnType<typeof retentionOptions>;
  let webhook: ReturnType<typeof webhookOptions>;
  let runLimits: ReturnType<typeof runLimitsFrom>;
  try {
    retention = retentionOptions(v, io.env);
    webhook = webhookOptions(v, io.env);
    runLimits = runLimitsFrom(v, io.env);
  } catch (err) {
    io.stderr(`mesonctl server: ${(err as Error).message}\n`);
    return 2;
  }
  const logger = pino({ level: io.env.MESON_LOG_LEVEL ?? 'info', base: { component: 'meson' } });

  let standalone: ReturnType<typeof createStandalone>;
  try {
    standalone = createStandalone({ dataDir, cwd: io.cwd, logger, retention, webhook, runLimits });
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

function seconds(flag: string, raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${flag}: expected a whole number of seconds (0 or more), got "${raw}"`);
  }
  return n;
}

/** The retention flags (or their environment variables) as standalone options. */
export function retentionOptions(
  v: ReturnType<typeof parse>['values'],
  env: Record<string, string | undefined>,
): { defaults: RetentionPolicy; intervalMs: number } {
  const defaults: RetentionPolicy = { ...DEFAULT_RETENTION };
  const keep = v['retention-keep-last'] ?? env.MESON_RETENTION_KEEP_LAST;
  if (keep === 'off') delete defaults.keepLast;
  else if (keep !== undefined) {
    const n = Number(keep);
    if (keep.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
      throw new Error(`--retention-keep-last: expected a whole number (0 or more) or "off", got "${keep}"`);
    }
    defaults.keepLast = n;
  }
  const ttl = v['retention-ttl'] ?? env.MESON_RETENTION_TTL_SECONDS;
  if (ttl !== undefined) {
    const s = seconds('--retention-ttl', ttl);
    defaults.ttlSecondsAfterFinished = { succeeded: s, failed: s, stopped: s };
  }
  const every = v['retention-interval'] ?? env.MESON_RETENTION_INTERVAL_SECONDS;
  const intervalMs =
    every === undefined ? DEFAULT_SWEEP_INTERVAL_MS : seconds('--retention-interval', every) * 1000;
  return { defaults, intervalMs };
}

/** The webhook flags (or their environment variables): allow-list and queue bound. */
export function webhookOptions(
  v: ReturnType<typeof parse>['values'],
  env: Record<string, string | undefined>,
): { allow: AllowList; maxPending: number } {
  const allow = parseAllowList(v['webhook-allow'] ?? env.MESON_WEBHOOK_ALLOW);
  const raw = env.MESON_WEBHOOK_MAX_PENDING;
  const maxPending = raw === undefined ? DEFAULT_MAX_PENDING : Number(raw);
  if (!Number.isSafeInteger(maxPending) || maxPending < 1) {
    throw new Error(`MESON_WEBHOOK_MAX_PENDING: expected a whole number (1 or more), got "${raw}"`);
  }
  return { allow, maxPending };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      examples: { type: 'string' },
      'no-examples': { type: 'boolean' },
      'retention-keep-last': { type: 'string' },
      'retention-ttl': { type: 'string' },
      'retention-interval': { type: 'string' },
      'webhook-allow': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...RUN_LIMIT_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
}
