// `mesonctl server --mesos-master URL` and `mesonctl operator --mesos-master URL`: the flags (and
// environment variables) that join a Mesos master's offers to the local machine's or the nodes'
// (src/launchers/mesos-wiring.ts), and the server's local capacity flag that lets it run every
// step on Mesos. Flags win over the environment.
import type { WithMesosOptions } from '../launchers/mesos-wiring.ts';
import { MESOS_FRAMEWORK_DEFAULTS } from '../launchers/mesos-wiring.ts';
import { MESOS_LIMITS } from '../mesos-compat/schemas.ts';
import { bytes, cpuMillis, QuantityError } from '../offer-adapter/quantity.ts';
import type { Resources } from '../offer-adapter/types.ts';

/** The Mesos master flags (`mesonctl server` and `mesonctl operator`). */
export const MESOS_MASTER_OPTIONS = {
  'mesos-master': { type: 'string' },
  'mesos-role': { type: 'string' },
  'mesos-framework-name': { type: 'string' },
  'mesos-user': { type: 'string' },
  'mesos-failover-timeout': { type: 'string' },
  'mesos-executor': { type: 'string' },
  'mesos-option': { type: 'string', multiple: true },
} as const;

/** The server's: the Mesos master flags and --local-capacity. */
export const MESOS_OPTIONS = { ...MESOS_MASTER_OPTIONS, 'local-capacity': { type: 'string' } } as const;

/** The numeric options of the offer pool and the Mesos launcher: name -> [min, max, default, what]. */
export const MESOS_NUMERIC_OPTIONS = {
  declineAfterMs: [0, 3_600_000, 1000, 'ms a seen, unused offer is kept before DECLINE'],
  offerHoldMs: [0, 3_600_000, 5000, 'ms an offer no pass saw is kept before DECLINE'],
  refuseSeconds: [0, 31_536_000, 5, 'refuse_seconds of those declines'],
  maxTaskBytes: [1, MESOS_LIMITS.textChars, MESOS_LIMITS.textChars, 'bytes of a step in MESON_TASK'],
  maxResultBytes: [1, 1024 * 1024, 64 * 1024, "bytes of the executor's result in the status data"],
  messageBytes: [1, 65_536, 4096, 'bytes of a failure message taken from a status'],
  reliableGraceMs: [0, 3_600_000, 30_000, "ms a master's word that a task ended waits for the agent's"],
} as const;

type NumericName = keyof typeof MESOS_NUMERIC_OPTIONS;

export const MESOS_MASTER_USAGE = `Mesos (docs/mesos.md): steps also run as tasks on a Mesos master's agents
  --mesos-master URL          http(s)://HOST:PORT of the master (MESON_MESOS_MASTER); no zk:// URLs.
                              Its hosts are named mesos/<agent host>; a step asks for them with
                              constraints.attributes {meson.dev/source: mesos}
  --mesos-role ROLE           framework role (MESON_MESOS_ROLE; default *)
  --mesos-framework-name NAME (MESON_MESOS_FRAMEWORK_NAME; default ${MESOS_FRAMEWORK_DEFAULTS.name})
  --mesos-user USER           user tasks run as on the agents (MESON_MESOS_USER; default ${MESOS_FRAMEWORK_DEFAULTS.user})
  --mesos-failover-timeout S  seconds the master keeps our tasks while meson is down
                              (MESON_MESOS_FAILOVER_TIMEOUT; default ${MESOS_FRAMEWORK_DEFAULTS.failoverTimeoutSeconds}, a week)
  --mesos-executor CMD        the task's command: a program, or a JSON array of arguments
                              (MESON_MESOS_EXECUTOR; default meson-executor)
  --mesos-option NAME=N       (repeatable; MESON_MESOS_OPTIONS=NAME=N,NAME=N)
${Object.entries(MESOS_NUMERIC_OPTIONS)
  .map(([k, [min, max, def, what]]) => `      ${k.padEnd(16)} ${what} (default ${def}, ${min}..${max})`)
  .join('\n')}
`;

export const MESOS_OPTIONS_USAGE = `${MESOS_MASTER_USAGE}  --local-capacity SPEC       what steps may use on this machine: "off" (nothing: every step that needs
                              resources goes to Mesos) or cpus=N,memory=Q[,disk=Q] as Kubernetes
                              quantities (MESON_LOCAL_CAPACITY; default the machine's cores and memory)
`;

export type MesosServerOptions = Omit<
  WithMesosOptions,
  'primary' | 'primaryLauncher' | 'frameworkStore' | 'onUpdate' | 'poke'
>;

type Values = {
  [K in keyof typeof MESOS_OPTIONS]?: (typeof MESOS_OPTIONS)[K] extends { multiple: true }
    ? string[]
    : string;
};

/** The Mesos flags as withMesos() options, or undefined without --mesos-master. Throws naming the flag. */
export function parseMesosOptions(
  v: Values,
  env: Record<string, string | undefined>,
): MesosServerOptions | undefined {
  const raw = (flag: keyof typeof MESOS_OPTIONS, name: string): string | undefined => {
    const x = (v[flag] as string | undefined) ?? env[name];
    return x === undefined || x.trim() === '' ? undefined : x.trim();
  };
  const master = raw('mesos-master', 'MESON_MESOS_MASTER');
  const others = (Object.keys(MESOS_OPTIONS) as (keyof typeof MESOS_OPTIONS)[]).filter(
    (k) => k.startsWith('mesos-') && k !== 'mesos-master' && v[k] !== undefined,
  );
  if (!master) {
    if (others.length > 0) throw new Error(`--${others[0]}: needs --mesos-master`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(master);
  } catch (err) {
    throw new Error(`--mesos-master: expected http://HOST:PORT, got "${master}"`, { cause: err });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search) {
    throw new Error(
      `--mesos-master: expected http://HOST:PORT or https://HOST:PORT (no zk://, credentials or query), got "${master}"`,
    );
  }
  const framework: NonNullable<MesosServerOptions['framework']> = {};
  const role = raw('mesos-role', 'MESON_MESOS_ROLE');
  if (role !== undefined) framework.role = checkName('--mesos-role', role);
  const name = raw('mesos-framework-name', 'MESON_MESOS_FRAMEWORK_NAME');
  if (name !== undefined) framework.name = checkName('--mesos-framework-name', name);
  const user = raw('mesos-user', 'MESON_MESOS_USER');
  if (user !== undefined) framework.user = checkName('--mesos-user', user);
  const failover = raw('mesos-failover-timeout', 'MESON_MESOS_FAILOVER_TIMEOUT');
  if (failover !== undefined) {
    const n = Number(failover);
    // the master honours it up to the longest Node timer (about 24.8 days) on our endpoint; a real
    // master takes more, but a year is beyond any sane failover
    if (!Number.isSafeInteger(n) || n < 0 || n > 31_536_000) {
      throw new Error(`--mesos-failover-timeout: expected whole seconds, 0 to 31536000, got "${failover}"`);
    }
    framework.failoverTimeoutSeconds = n;
  }
  const out: MesosServerOptions = { master: url.origin, framework };
  const exec = raw('mesos-executor', 'MESON_MESOS_EXECUTOR');
  const numeric = parseNumeric([
    ...(env.MESON_MESOS_OPTIONS ?? '').split(','),
    ...((v['mesos-option'] as string[] | undefined) ?? []),
  ]);
  const pool: NonNullable<MesosServerOptions['pool']> = {};
  const launcher: NonNullable<MesosServerOptions['launcher']> = {};
  for (const [k, n] of Object.entries(numeric) as [NumericName, number][]) {
    if (k === 'declineAfterMs' || k === 'offerHoldMs' || k === 'refuseSeconds') pool[k] = n;
    else launcher[k] = n;
  }
  if (exec !== undefined) launcher.executorCommand = parseExecutor(exec);
  if (Object.keys(pool).length > 0) out.pool = pool;
  if (Object.keys(launcher).length > 0) out.launcher = launcher;
  return out;
}

function checkName(flag: string, s: string): string {
  // sent to the master as FrameworkInfo text fields: printable, bounded
  if (s.length > 256 || !/^[\x21-\x7e]+$/.test(s)) {
    throw new Error(
      `${flag}: expected 1 to 256 printable characters without spaces, got "${s.slice(0, 64)}"`,
    );
  }
  return s;
}

function parseExecutor(s: string): string[] {
  if (!s.startsWith('[')) return [s];
  let argv: unknown;
  try {
    argv = JSON.parse(s);
  } catch (err) {
    throw new Error(`--mesos-executor: a value starting with [ must be a JSON array of strings`, {
      cause: err,
    });
  }
  if (
    !Array.isArray(argv) ||
    argv.length === 0 ||
    argv.length > 64 ||
    !argv.every((a) => typeof a === 'string' && a !== '' && a.length <= 4096)
  ) {
    throw new Error('--mesos-executor: expected a JSON array of 1 to 64 non-empty strings');
  }
  return argv as string[];
}

function parseNumeric(items: string[]): Partial<Record<NumericName, number>> {
  const out: Partial<Record<NumericName, number>> = {};
  for (const item of items.map((i) => i.trim()).filter((i) => i !== '')) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!Object.hasOwn(MESOS_NUMERIC_OPTIONS, key)) {
      throw new Error(
        `--mesos-option ${item}: unknown option "${key}" (expected one of ${Object.keys(MESOS_NUMERIC_OPTIONS).join(', ')})`,
      );
    }
    const [min, max] = MESOS_NUMERIC_OPTIONS[key as NumericName];
    const raw = eq < 0 ? '' : item.slice(eq + 1).trim();
    const n = Number(raw);
    if (raw === '' || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`--mesos-option ${key}: expected a whole number from ${min} to ${max}, got "${raw}"`);
    }
    out[key as NumericName] = n;
  }
  return out;
}

/** --local-capacity: "off" or cpus=N,memory=Q[,disk=Q]; undefined: the machine's own. */
export function parseLocalCapacity(
  flag: string | undefined,
  env: Record<string, string | undefined>,
): Partial<Resources> | undefined {
  const raw = (flag ?? env.MESON_LOCAL_CAPACITY)?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'off') return { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  const out: Partial<Resources> = {};
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq < 0 ? undefined : eq).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    try {
      if (key === 'cpus') out.cpuMillis = cpuMillis(value);
      else if (key === 'memory') out.memoryBytes = bytes(value);
      else if (key === 'disk') out.diskBytes = bytes(value);
      else throw new Error(`unknown resource "${key}" (expected cpus, memory or disk)`);
      if ((out.cpuMillis ?? 0) < 0 || (out.memoryBytes ?? 0) < 0 || (out.diskBytes ?? 0) < 0)
        throw new Error('a capacity cannot be negative');
    } catch (err) {
      const why = err instanceof QuantityError || err instanceof Error ? err.message : String(err);
      throw new Error(`--local-capacity ${part.trim()}: ${why}; expected off or cpus=N,memory=Q[,disk=Q]`, {
        cause: err,
      });
    }
  }
  return out;
}
