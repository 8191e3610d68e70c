// The run limits as command-line options and environment variables (`mesonctl server`,
// `mesonctl run`): one flag and one variable per limit, named in src/engine/limits.ts, so the
// message of a run stopped by a limit names exactly what raises it.
import { DEFAULT_RUN_LIMITS, RUN_LIMIT_SETTINGS, type RunLimits } from '../engine/index.ts';

const KEYS = Object.keys(RUN_LIMIT_SETTINGS) as (keyof RunLimits)[];

/** parseArgs options for the limits (`--max-step-instances N`, ...). */
export const RUN_LIMIT_OPTIONS: Record<string, { type: 'string' }> = Object.fromEntries(
  KEYS.map((k) => [RUN_LIMIT_SETTINGS[k].flag.slice(2), { type: 'string' as const }]),
);

/** The usage lines of the limit options, with their variables and defaults. */
export function runLimitUsage(): string {
  return KEYS.map((k) => {
    const s = RUN_LIMIT_SETTINGS[k];
    return `  ${`${s.flag} N`.padEnd(26)} ${s.env}, default ${DEFAULT_RUN_LIMITS[k]}`;
  }).join('\n');
}

/**
 * The limits given by flags (first) or environment variables. Throws an Error naming the flag
 * or variable for a value that is not a positive integer.
 */
export function runLimitsFrom(
  values: Record<string, unknown>,
  env: Record<string, string | undefined>,
): Partial<RunLimits> {
  const out: Partial<RunLimits> = {};
  for (const k of KEYS) {
    const { flag, env: name } = RUN_LIMIT_SETTINGS[k];
    const fromFlag = values[flag.slice(2)];
    const raw = typeof fromFlag === 'string' ? fromFlag : env[name];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw.replaceAll('_', ''));
    if (!/^\s*[\d_]+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < 1)
      throw new Error(
        `${typeof fromFlag === 'string' ? flag : name}: expected a positive integer, got ${JSON.stringify(raw)}`,
      );
    out[k] = n;
  }
  return out;
}
