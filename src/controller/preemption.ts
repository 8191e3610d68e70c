// Preemption by tier as the cluster admin configures it (`mesonctl server --preemption`,
// `mesonctl operator --preemption`, Helm `scheduler.preemption`): which namespaces may evict
// lower-tier running work, the share of each namespace that preemption never takes, and the
// tiers each namespace's steps may run at. This is TRUSTED configuration: a workflow's `tier`
// is only a wish, clamped here, so a workflow author or run starter can never make their work
// more important than the admin allowed. Pure: parsing and clamping only.
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { MAX_TIER } from '../crds/index.ts';
import { bytes, cpuMillis, QuantityError } from '../offer-adapter/quantity.ts';
import type { NamespacePreemption, PreemptionConfig } from '../scheduler/index.ts';

/**
 * Default of killRetrySeconds: a victim still running this long after its kill is killed again.
 * Longer than the 30 s a Pod is given to stop by default, so a graceful stop is not re-asked.
 */
export const DEFAULT_KILL_RETRY_SECONDS = 60;
/** Most namespaces one configuration may list. */
export const MAX_PREEMPTION_NAMESPACES = 10_000;
/** Largest configuration file or flag value read (bytes). */
export const MAX_PREEMPTION_CONFIG_BYTES = 1024 * 1024;

/** The quantities of `guaranteed`: how each is read, and the scheduler's field it becomes. */
const GUARANTEED = [
  ['cpus', cpuMillis, 'cpuMillis'],
  ['memory', bytes, 'memoryBytes'],
  ['disk', bytes, 'diskBytes'],
  ['gpus', bytes, 'gpus'],
] as const;

export class PreemptionConfigError extends Error {
  readonly code = 'PREEMPTION_CONFIG_INVALID';
  override name = 'PreemptionConfigError';
}

const Tier = z.number().int().min(0).max(MAX_TIER);
const Quantity = z.union([z.string().min(1).max(64), z.number().nonnegative()]);
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const NamespaceSchema = z
  .strictObject({
    preempt: z
      .boolean()
      .optional()
      .describe('Its queued steps may evict running steps of lower tiers (default false).'),
    tier: Tier.optional().describe('Tier of its steps that ask for none (default: defaultTier).'),
    minTier: Tier.optional().describe(
      'The most important tier (smallest number) its steps may ask for (default: tier).',
    ),
    guaranteed: z
      .strictObject({
        cpus: Quantity.optional(),
        memory: Quantity.optional(),
        disk: Quantity.optional(),
        gpus: Quantity.optional(),
      })
      .optional()
      .describe('What of its running work preemption by other namespaces never takes.'),
  })
  .refine((n) => n.minTier === undefined || n.tier === undefined || n.minTier <= n.tier, {
    message: 'expected minTier <= tier (0 is the most important tier)',
    path: ['minTier'],
  });

export const PreemptionSettingsSchema = z.strictObject({
  defaultTier: Tier.optional().describe('Tier (and bound) of the namespaces not listed (default 0).'),
  namespaces: z
    .record(z.string(), NamespaceSchema)
    .superRefine((r, ctx) => {
      const keys = Object.keys(r);
      if (keys.length > MAX_PREEMPTION_NAMESPACES)
        ctx.addIssue({ code: 'custom', message: `expected at most ${MAX_PREEMPTION_NAMESPACES} namespaces` });
      for (const k of keys)
        if (k.length > 63 || !NAMESPACE.test(k))
          ctx.addIssue({ code: 'custom', path: [k], message: `expected a namespace name, got "${k}"` });
    })
    .optional(),
  maxPreemptorsPerPass: z.number().int().min(1).max(10_000).optional(),
  maxSearchSteps: z.number().int().min(1).max(100_000_000).optional(),
  killRetrySeconds: z.number().positive().max(3600).optional(),
});

/** The admin's preemption settings, as written. */
export type PreemptionSettings = z.infer<typeof PreemptionSettingsSchema>;

/**
 * The settings checked, with quantities validated. @throws PreemptionConfigError naming every
 * bad field (path: what was expected).
 */
export function parsePreemption(input: unknown, where = 'preemption'): PreemptionSettings {
  const res = PreemptionSettingsSchema.safeParse(input ?? {});
  if (!res.success) {
    const issues = res.error.issues.map((i) => `${[where, ...i.path].join('.')}: ${i.message}`);
    throw new PreemptionConfigError(issues.join('; '));
  }
  for (const [ns, n] of Object.entries(res.data.namespaces ?? {})) {
    for (const [k, parse] of GUARANTEED) {
      const v = n.guaranteed?.[k];
      if (v === undefined) continue;
      const path = `${where}.namespaces.${ns}.guaranteed.${k}`;
      let amount: number;
      try {
        amount = parse(v);
      } catch (err) {
        const why = err instanceof QuantityError ? err.message : String(err);
        throw new PreemptionConfigError(`${path}: ${why}`, { cause: err });
      }
      if (!Number.isSafeInteger(amount) || amount < 0)
        throw new PreemptionConfigError(`${path}: expected a non-negative quantity, got "${v}"`);
    }
  }
  return res.data;
}

/**
 * Reads a flag value: inline JSON (`{...}`) or the path of a YAML or JSON file.
 * @throws PreemptionConfigError
 */
export function loadPreemption(value: string, cwd: string, flag = '--preemption'): PreemptionSettings {
  let text = value;
  if (!value.trimStart().startsWith('{')) {
    const path = isAbsolute(value) ? value : join(cwd, value);
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new PreemptionConfigError(`${flag}: cannot read ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  if (Buffer.byteLength(text) > MAX_PREEMPTION_CONFIG_BYTES)
    throw new PreemptionConfigError(`${flag}: over ${MAX_PREEMPTION_CONFIG_BYTES} bytes`);
  let data: unknown;
  try {
    data = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new PreemptionConfigError(`${flag}: not YAML or JSON: ${(err as Error).message}`, { cause: err });
  }
  return parsePreemption(data, flag);
}

/**
 * The tier a step of `namespace` runs at: the tier it asks for, but never more important (a
 * smaller number) than the namespace's minTier; the namespace's default when it asks for none.
 */
export function stepTier(
  settings: PreemptionSettings | undefined,
  namespace: string,
  asked?: number,
): number {
  const all = settings?.namespaces;
  // own keys only: a namespace named like an Object method ("constructor") is not listed
  const ns = all && Object.hasOwn(all, namespace) ? all[namespace] : undefined;
  const dflt = ns?.tier ?? settings?.defaultTier ?? 0;
  const min = ns?.minTier ?? dflt;
  if (asked === undefined || !Number.isInteger(asked)) return dflt;
  return Math.min(MAX_TIER, Math.max(min, asked));
}

/** The scheduler's view of the settings; undefined when no namespace may preempt (off). */
export function schedulerPreemption(settings: PreemptionSettings | undefined): PreemptionConfig | undefined {
  const listed = Object.entries(settings?.namespaces ?? {});
  if (!listed.some(([, n]) => n.preempt === true)) return undefined;
  const namespaces: Record<string, NamespacePreemption> = Object.create(null);
  for (const [name, n] of listed) {
    const out: NamespacePreemption = {};
    if (n.preempt) out.enabled = true;
    const g = n.guaranteed;
    if (g) {
      const amounts: NonNullable<NamespacePreemption['guaranteed']> = {};
      for (const [k, parse, field] of GUARANTEED) if (g[k] !== undefined) amounts[field] = parse(g[k]);
      if (Object.keys(amounts).length > 0) out.guaranteed = amounts;
    }
    namespaces[name] = out;
  }
  const config: PreemptionConfig = { namespaces };
  if (settings?.maxPreemptorsPerPass !== undefined)
    config.maxPreemptorsPerPass = settings.maxPreemptorsPerPass;
  if (settings?.maxSearchSteps !== undefined) config.maxSearchSteps = settings.maxSearchSteps;
  return config;
}
