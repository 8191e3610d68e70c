// `mesonctl operator --mesos-endpoint HOST:PORT`: the flags (and environment variables) of the
// Mesos scheduler endpoint the operator serves (src/operator/mesos-endpoint.ts). Flags win over
// the environment. Pure apart from reading `env`.
import { MESOS_MASTER_DEFAULTS } from '../mesos-compat/master.ts';
import type { PortRange } from '../offer-adapter/types.ts';
import type { MesosEndpointConfig, MesosEndpointLimits } from '../operator/mesos-endpoint.ts';
import { isLoopbackHost } from './commands/server.ts';

export const MESOS_ENDPOINT_OPTIONS = {
  'mesos-endpoint': { type: 'string' },
  'mesos-task-namespace': { type: 'string' },
  'mesos-task-image': { type: 'string' },
  'mesos-task-ports': { type: 'string' },
  'mesos-endpoint-option': { type: 'string', multiple: true },
} as const;

/** The numeric limits: name -> [min, max, default, what]. */
export const MESOS_ENDPOINT_NUMERIC_OPTIONS = {
  maxFrameworks: [1, 10_000, MESOS_MASTER_DEFAULTS.maxFrameworks, 'frameworks known at once (503 over it)'],
  maxCallBytes: [
    1024,
    64 * 1024 * 1024,
    MESOS_MASTER_DEFAULTS.maxCallBytes,
    'bytes of one call (413 over it)',
  ],
  maxCompletedTasks: [
    0,
    100_000,
    MESOS_MASTER_DEFAULTS.maxCompletedTasks,
    'finished tasks remembered per framework',
  ],
  maxStreamBufferBytes: [
    64 * 1024,
    1024 * 1024 * 1024,
    MESOS_MASTER_DEFAULTS.maxStreamBufferBytes,
    "unread bytes on a framework's stream before it is dropped",
  ],
  heartbeatIntervalSeconds: [1, 3600, MESOS_MASTER_DEFAULTS.heartbeatIntervalSeconds, 'HEARTBEAT period'],
  statusRetryMs: [
    100,
    3_600_000,
    MESOS_MASTER_DEFAULTS.statusRetryMs,
    'resend period of an unacknowledged update',
  ],
  allocationIntervalMs: [10, 60_000, MESOS_MASTER_DEFAULTS.allocationIntervalMs, 'ms between offer rounds'],
  offerTimeoutMs: [0, 86_400_000, 0, 'rescind unanswered offers after this long (0: never)'],
} as const;

type NumericName = keyof typeof MESOS_ENDPOINT_NUMERIC_OPTIONS;

export const MESOS_ENDPOINT_USAGE = `Mesos frameworks (docs/mesos.md): serve a Mesos-master-compatible scheduler API, leader only
  --mesos-endpoint ADDR       serve /api/v1/scheduler here (MESON_MESOS_ENDPOINT; default off). Each
                              task is a Pod bound to the offered node. Beyond loopback, frameworks
                              must send HTTP Basic MESON_MESOS_ENDPOINT_CREDENTIALS (PRINCIPAL:SECRET)
                              unless --insecure-no-auth
  --mesos-task-namespace NS   namespace of task Pods (MESON_MESOS_TASK_NAMESPACE; default the state namespace)
  --mesos-task-image IMAGE    image of tasks that name none (MESON_MESOS_TASK_IMAGE; default busybox:1.36)
  --mesos-task-ports RANGES   host ports offered per node, e.g. 31000-32000,40000-40100
                              (MESON_MESOS_TASK_PORTS; default 31000-32000)
  --mesos-endpoint-option NAME=N (repeatable; MESON_MESOS_ENDPOINT_OPTIONS=NAME=N,NAME=N)
${Object.entries(MESOS_ENDPOINT_NUMERIC_OPTIONS)
  .map(([k, [min, max, def, what]]) => `      ${k.padEnd(24)} ${what} (default ${def}, ${min}..${max})`)
  .join('\n')}
`;

export type MesosEndpointValues = {
  [K in keyof typeof MESOS_ENDPOINT_OPTIONS]?: (typeof MESOS_ENDPOINT_OPTIONS)[K] extends { multiple: true }
    ? string[]
    : string;
} & { 'insecure-no-auth'?: boolean };

const NS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export class MesosEndpointOptionError extends Error {
  override name = 'MesosEndpointOptionError';
  code = 'CLI_USAGE';
}

function fail(message: string): never {
  throw new MesosEndpointOptionError(message);
}

/** `31000-32000,40000` as merged ranges within 1..65535. */
export function parsePortRanges(text: string, flag: string): PortRange[] {
  const out: PortRange[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d{1,5})(?:-(\d{1,5}))?\s*$/.exec(part);
    const begin = Number(m?.[1]);
    const end = Number(m?.[2] ?? m?.[1]);
    if (!m || begin < 1 || end > 65535 || begin > end)
      fail(`${flag}: expected port ranges like 31000-32000,40000 within 1..65535, got "${text}"`);
    out.push({ begin, end });
  }
  if (out.length > 64) fail(`${flag}: at most 64 ranges`);
  return out;
}

function limits(values: string[], from: string): MesosEndpointLimits {
  const out: Record<string, number> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    const name = i < 0 ? v : v.slice(0, i);
    if (!Object.hasOwn(MESOS_ENDPOINT_NUMERIC_OPTIONS, name))
      fail(
        `${from}: unknown option "${name}" (known: ${Object.keys(MESOS_ENDPOINT_NUMERIC_OPTIONS).join(', ')})`,
      );
    const [min, max] = MESOS_ENDPOINT_NUMERIC_OPTIONS[name as NumericName];
    const text = i < 0 ? '' : v.slice(i + 1);
    const n = Number(text);
    if (!/^\d{1,12}$/.test(text) || n < min || n > max)
      fail(`${from}: ${name}: expected a whole number from ${min} to ${max}, got "${text}"`);
    out[name] = n;
  }
  if (out.offerTimeoutMs === 0) delete out.offerTimeoutMs;
  return out as MesosEndpointLimits;
}

/**
 * The endpoint's configuration from the flags and the environment, or undefined when
 * --mesos-endpoint is not given. `listen` parses HOST:PORT as the other listen flags do.
 * @throws MesosEndpointOptionError naming the flag.
 */
export function parseMesosEndpointOptions(
  v: MesosEndpointValues,
  env: Record<string, string | undefined>,
  defaults: { namespace: string },
  listen: (value: string, flag: string) => { host: string; port: number },
): MesosEndpointConfig | undefined {
  const addr = v['mesos-endpoint'] ?? (env.MESON_MESOS_ENDPOINT || undefined);
  const others = (
    ['mesos-task-namespace', 'mesos-task-image', 'mesos-task-ports', 'mesos-endpoint-option'] as const
  ).filter((k) => v[k] !== undefined);
  if (addr === undefined) {
    if (others.length > 0) fail(`--${others[0]} needs --mesos-endpoint`);
    return undefined;
  }
  const at = listen(addr, '--mesos-endpoint');
  const namespace = v['mesos-task-namespace'] ?? (env.MESON_MESOS_TASK_NAMESPACE || defaults.namespace);
  if (!NS.test(namespace) || namespace.length > 63)
    fail(`--mesos-task-namespace: expected a namespace name, got "${namespace}"`);
  const image = v['mesos-task-image'] ?? (env.MESON_MESOS_TASK_IMAGE || undefined);
  if (image !== undefined && !/^[^\s]{1,512}$/.test(image))
    fail(`--mesos-task-image: expected an image reference, got "${image}"`);
  const portsText = v['mesos-task-ports'] ?? (env.MESON_MESOS_TASK_PORTS || undefined);
  const ports = portsText === undefined ? undefined : parsePortRanges(portsText, '--mesos-task-ports');
  const optionValues =
    v['mesos-endpoint-option'] ??
    (env.MESON_MESOS_ENDPOINT_OPTIONS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const from = v['mesos-endpoint-option'] ? '--mesos-endpoint-option' : 'MESON_MESOS_ENDPOINT_OPTIONS';
  const lim = limits(optionValues, from);
  const credText = env.MESON_MESOS_ENDPOINT_CREDENTIALS || undefined;
  let credentials: MesosEndpointConfig['credentials'];
  if (credText !== undefined) {
    const i = credText.indexOf(':');
    if (i <= 0 || i === credText.length - 1)
      fail('MESON_MESOS_ENDPOINT_CREDENTIALS: expected PRINCIPAL:SECRET');
    credentials = { principal: credText.slice(0, i), secret: credText.slice(i + 1) };
  }
  const insecure = v['insecure-no-auth'] === true || env.MESON_ALLOW_NO_AUTH === '1';
  if (!credentials && !insecure && !isLoopbackHost(at.host))
    fail(
      `--mesos-endpoint ${addr}: refusing to serve the Mesos endpoint beyond loopback without MESON_MESOS_ENDPOINT_CREDENTIALS (anyone reaching it could run Pods); --insecure-no-auth if the network is trusted`,
    );
  return {
    ...at,
    namespace,
    ...(image ? { image } : {}),
    ...(ports ? { ports } : {}),
    ...(credentials ? { credentials } : {}),
    ...(Object.keys(lim).length > 0 ? { limits: lim } : {}),
  };
}
