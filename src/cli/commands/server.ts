// `mesonctl server` (= `npm start`): the standalone server. REST API, scheduler and local
// executors over an embedded SQLite store (./.meson by default). Loads examples/*.yaml into an
// empty store. Structured JSON logs (pino) on stdout.
import { readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildApp, DEFAULT_BODY_LIMIT } from '../../api/app.ts';
import { DEFAULT_MAX_BODY_DEPTH } from '../../api/http.ts';
import { DEFAULT_STREAM_LIMITS } from '../../api/streams.ts';
import { applyManifests, readManifests } from '../../controller/manifests.ts';
import { loadPreemption, type PreemptionSettings } from '../../controller/preemption.ts';
import { createStandalone, type StandaloneOptions } from '../../controller/standalone.ts';
import { FileFrameworkIdStore, withMesos } from '../../launchers/mesos-wiring.ts';
import { createMetrics, DEFAULT_METRICS_MAX_WORKFLOWS } from '../../metrics/index.ts';
import { type AllowList, DEFAULT_MAX_PENDING, parseAllowList } from '../../notify/index.ts';
import { DEFAULT_RETENTION, DEFAULT_SWEEP_INTERVAL_MS, type RetentionPolicy } from '../../retention/index.ts';
import { SqliteAsyncStore } from '../../store/sqlite-async.ts';
import type { Command } from '../cli.ts';
import { RUN_LIMIT_OPTIONS, runLimitsFrom, runLimitUsage } from '../limits.ts';
import {
  MESOS_OPTIONS,
  MESOS_OPTIONS_USAGE,
  type MesosServerOptions,
  parseLocalCapacity,
  parseMesosOptions,
} from '../mesos-options.ts';
import { parseStepOptions, STEP_OPTIONS, STEP_OPTIONS_USAGE, type StepOptions } from '../step-options.ts';

const USAGE = `usage: mesonctl server [--port N] [--host ADDR] [--data-dir DIR] [--examples DIR | --no-examples]
                      [--retention-keep-last N|off] [--retention-ttl SECONDS] [--retention-interval SECONDS]
                      [--webhook-allow LIST] [--allowed-host NAME]... [--body-limit BYTES] [--max-body-depth N]
                      [--max-streams N] [--stream-max-seconds N]
                      [--insecure-no-auth] [--step-env-passthrough NAME]... [--copy-root DIR]...
                      [--step-limit NAME=N]... [run limits] [--preemption JSON|FILE]
                      [--mesos-master URL [Mesos options]] [--local-capacity off|cpus=N,memory=Q]

The standalone server: REST API (/api/v1, OpenAPI at /openapi.json), scheduler and local
executors, with an embedded store in --data-dir (default ./.meson, or MESON_DATA_DIR).
Listens on 127.0.0.1:8080 by default (MESON_HOST, MESON_PORT). Loads examples/*.yaml into an
empty store. Each step runs in its own directory under --data-dir, with a clean environment; copy
steps read and write only under DATA_DIR/files/<namespace>, the --copy-root directories and
the --copy-root s3:// prefixes.

Security:
  MESON_API_TOKEN       require "Authorization: Bearer <token>" on every route but /healthz,
                        /readyz and /openapi.json.
  --host ADDR           beyond loopback (0.0.0.0, a LAN address...) the server refuses to start
                        without MESON_API_TOKEN, unless --insecure-no-auth (MESON_ALLOW_NO_AUTH=1).
  --allowed-host NAME   a host name the server answers to besides localhost, 127.0.0.1 and [::1]
                        (repeatable; MESON_ALLOWED_HOSTS=a,b). Other Host headers get 403 (DNS
                        rebinding); beyond loopback without this flag any Host is served.
  --body-limit BYTES    largest request body (default ${DEFAULT_BODY_LIMIT}, MESON_BODY_LIMIT); larger is 413.
  --max-body-depth N    deepest nesting of a body (default ${DEFAULT_MAX_BODY_DEPTH}, MESON_MAX_BODY_DEPTH).
  --max-streams N       open log follows and watches at once (default ${DEFAULT_STREAM_LIMITS.maxStreams}, MESON_MAX_STREAMS); more is 429.
  --stream-max-seconds N  longest life of one of them (default ${DEFAULT_STREAM_LIMITS.maxMs / 1000}, MESON_STREAM_MAX_SECONDS).

Metrics: GET /metrics (Prometheus text format), behind MESON_API_TOKEN like the API.
  MESON_METRICS_MAX_WORKFLOWS  distinct (namespace, workflow) label pairs (default ${DEFAULT_METRICS_MAX_WORKFLOWS});
                        later ones are counted under "_other".

Retention of finished runs (a Workflow's spec.retention overrides these per field):
  --retention-keep-last  finished runs kept per workflow (MESON_RETENTION_KEEP_LAST, default 1000; off: no limit)
  --retention-ttl        seconds after it ended that a finished run is deleted (MESON_RETENTION_TTL_SECONDS; default none)
  --retention-interval   seconds between sweeps (MESON_RETENTION_INTERVAL_SECONDS, default 60; 0: no sweep)

Webhooks may not reach loopback, link-local, private, multicast or this machine's addresses:
  --webhook-allow        CIDRs or host names they may reach anyway, comma-separated (MESON_WEBHOOK_ALLOW)
  MESON_WEBHOOK_MAX_PENDING  deliveries waiting at most (default 1000)

Preemption by tier (default off; docs/scheduler.md, "Preemption"):
  --preemption JSON|FILE  which namespaces may evict lower-tier running steps, the tier bounds of
                        each namespace and their guaranteed shares: inline JSON or a YAML/JSON
                        file (MESON_PREEMPTION)

Run limits (a run that reaches one fails naming it; see docs/engine.md, "Limits"):
${runLimitUsage()}

${STEP_OPTIONS_USAGE}
${MESOS_OPTIONS_USAGE}`;

/**
 * Who can reach an API served on `host`, for `mesonctl server` and `mesonctl operator
 * --rest-listen` alike. `refused`: beyond loopback without a token, unless --insecure-no-auth
 * (MESON_ALLOW_NO_AUTH=1). `allowedHosts`: on loopback only loopback names (and the
 * --allowed-host / MESON_ALLOWED_HOSTS ones); beyond it the token protects, and clients use
 * whatever name reaches the machine unless the operator lists them.
 */
export function apiExposure(
  host: string,
  token: string | undefined,
  flags: { 'insecure-no-auth'?: boolean | undefined; 'allowed-host'?: string[] | undefined },
  env: Record<string, string | undefined>,
): { refused: boolean; allowedHosts: string[] | 'any' } {
  const loopback = isLoopbackHost(host);
  const insecure = flags['insecure-no-auth'] === true || env.MESON_ALLOW_NO_AUTH === '1';
  const extraHosts = [
    ...(flags['allowed-host'] ?? []),
    ...(env.MESON_ALLOWED_HOSTS ?? '').split(',').map((h) => h.trim()),
  ].filter((h) => h !== '');
  return {
    refused: !loopback && !token && !insecure,
    allowedHosts: loopback || extraHosts.length > 0 ? extraHosts : 'any',
  };
}

/** Whether `host` (a --host value) binds to loopback only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^(0:){7}1$/.test(h) || /^::ffff:127\./.test(h);
  return false;
}

/** The URL of what the server is bound to (0.0.0.0 stays 0.0.0.0: every interface). */
export function listenUrl(address: { address: string; port: number; family: string }): string {
  const host =
    address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function positiveInt(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer, got "${raw}"`);
  return n;
}

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
  let retention: ReturnType<typeof retentionOptions>;
  let webhook: ReturnType<typeof webhookOptions>;
  let runLimits: ReturnType<typeof runLimitsFrom>;
  let bodyLimit: number | undefined;
  let maxBodyDepth: number | undefined;
  let maxWorkflows: number | undefined;
  let maxStreams: number | undefined;
  let streamMaxSeconds: number | undefined;
  let mesos: MesosServerOptions | undefined;
  let capacity: StandaloneOptions['capacity'];
  let preemption: PreemptionSettings | undefined;
  try {
    const preemptionText = v.preemption ?? (io.env.MESON_PREEMPTION || undefined);
    if (preemptionText !== undefined) preemption = loadPreemption(preemptionText, io.cwd);
    mesos = parseMesosOptions(v, io.env);
    capacity = parseLocalCapacity(v['local-capacity'], io.env);
    retention = retentionOptions(v, io.env);
    webhook = webhookOptions(v, io.env);
    runLimits = runLimitsFrom(v, io.env);
    bodyLimit = positiveInt(v['body-limit'] ?? io.env.MESON_BODY_LIMIT, '--body-limit');
    maxBodyDepth = positiveInt(v['max-body-depth'] ?? io.env.MESON_MAX_BODY_DEPTH, '--max-body-depth');
    maxWorkflows = positiveInt(io.env.MESON_METRICS_MAX_WORKFLOWS, 'MESON_METRICS_MAX_WORKFLOWS');
    maxStreams = positiveInt(v['max-streams'] ?? io.env.MESON_MAX_STREAMS, '--max-streams');
    streamMaxSeconds = positiveInt(
      v['stream-max-seconds'] ?? io.env.MESON_STREAM_MAX_SECONDS,
      '--stream-max-seconds',
    );
  } catch (err) {
    io.stderr(`mesonctl server: ${(err as Error).message}\n`);
    return 2;
  }
  const { refused, allowedHosts } = apiExposure(host, token, v, io.env);
  if (refused) {
    io.stderr(
      `mesonctl server: refusing to listen on ${host} without MESON_API_TOKEN: anyone who can reach it could run commands on this machine.\n` +
        'Set MESON_API_TOKEN (clients send "Authorization: Bearer <token>"), or bind to 127.0.0.1, ' +
        'or pass --insecure-no-auth (MESON_ALLOW_NO_AUTH=1) if the network is trusted.\n',
    );
    return 2;
  }
  const logger = pino({ level: io.env.MESON_LOG_LEVEL ?? 'info', base: { component: 'meson' } });

  const metrics = createMetrics(maxWorkflows ? { maxWorkflows } : {});
  let standalone: ReturnType<typeof createStandalone>;
  try {
    // no cwd: each step gets its own working directory under the data directory
    standalone = createStandalone({
      dataDir,
      logger,
      retention,
      webhook: { ...webhook, observer: metrics.webhooks },
      runLimits,
      ...(preemption ? { preemption } : {}),
      ...steps,
      ...(capacity ? { capacity } : {}),
      ...(mesos ? { wrapSources: mesosSources(mesos, dataDir, logger) } : {}),
      observer: metrics.controller,
    });
  } catch (err) {
    io.stderr(`mesonctl server: ${(err as Error).message}\n`);
    return 1;
  }
  if (!v['no-examples']) {
    const dir = abs(v.examples ?? 'examples');
    if (standalone.store.list('Workflow', undefined, { limit: 1 }).items.length === 0) loadExamples(dir);
  }
  const unobserve = metrics.observe(standalone.store);
  standalone.start();
  const app = await buildApp({
    metrics,
    // the API on the store port over the controller's own SqliteStore (one database, one
    // connection: both see each other's writes and watch events at once)
    store: new SqliteAsyncStore(standalone.store),
    ...(token ? { token } : {}),
    allowedHosts,
    ...(bodyLimit ? { bodyLimit } : {}),
    ...(maxBodyDepth ? { maxBodyDepth } : {}),
    streams: {
      ...(maxStreams ? { maxStreams } : {}),
      ...(streamMaxSeconds ? { maxMs: streamMaxSeconds * 1000 } : {}),
    },
    logger,
  });
  let address: string;
  try {
    await app.listen({ port, host });
    // Fastify answers the first of all interfaces (127.0.0.1 for 0.0.0.0): say what is bound
    address = listenUrl(app.server.address() as { address: string; port: number; family: string });
  } catch (err) {
    io.stderr(`mesonctl server: cannot listen on ${host}:${port}: ${(err as Error).message}\n`);
    unobserve();
    standalone.stop();
    return 1;
  }
  if (!token && !isLoopbackHost(host)) {
    logger.warn(
      { host },
      'listening beyond localhost without MESON_API_TOKEN (--insecure-no-auth): anyone who can reach it can run commands',
    );
  }
  logger.info({ url: address, dataDir }, 'meson server started');
  io.stdout(`meson server listening on ${address} (data in ${dataDir})\n`);

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down; running steps keep running and are adopted at the next start');
    await app.close();
    unobserve();
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

/** The local machine's offers and launcher joined to a Mesos master's (docs/mesos.md). */
function mesosSources(
  mesos: MesosServerOptions,
  dataDir: string,
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void },
): NonNullable<StandaloneOptions['wrapSources']> {
  return (local, ctl) => {
    const m = withMesos({
      ...mesos,
      primary: local.offers,
      primaryLauncher: local.launcher,
      // the same framework after a restart: the master keeps its tasks for the failover timeout
      frameworkStore: new FileFrameworkIdStore(join(dataDir, 'mesos-framework-id')),
      onUpdate: ctl.onUpdate,
      poke: ctl.offersChanged,
      log: (msg, fields) => logger.warn({ ...fields, master: mesos.master }, msg),
    });
    logger.info({ master: mesos.master, framework: mesos.framework ?? {} }, 'steps may also run on Mesos');
    return {
      offers: m.offers,
      launcher: m.launcher,
      onQueued: (n) => m.demand(n),
      start: () => m.start(),
      stop: () => m.stop(),
    };
  };
}

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
      'allowed-host': { type: 'string', multiple: true },
      'body-limit': { type: 'string' },
      'max-body-depth': { type: 'string' },
      'max-streams': { type: 'string' },
      'stream-max-seconds': { type: 'string' },
      'insecure-no-auth': { type: 'boolean' },
      preemption: { type: 'string' },
      ...STEP_OPTIONS,
      ...MESOS_OPTIONS,
      help: { type: 'boolean', short: 'h' },
      ...RUN_LIMIT_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
}
