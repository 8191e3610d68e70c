// The server operator's settings for steps, shared by `mesonctl server` and `mesonctl run`:
// which variables of the server's environment steps may see, where copy steps may read and
// write, and the limits on what a step reports. Flags add to the environment variables.
import { statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { checkPassthroughName } from '../../executors/env.ts';
import { parseStepLimits, type StepLimits } from '../../executors/limits.ts';

export const STEP_OPTIONS = {
  'step-env-passthrough': { type: 'string', multiple: true },
  'copy-root': { type: 'string', multiple: true },
  'step-limit': { type: 'string', multiple: true },
} as const;

export const STEP_OPTIONS_USAGE = `Steps (docs/executor-protocol.md):
  --step-env-passthrough NAME   a variable of this environment that steps may see (repeatable;
                                also MESON_STEP_ENV_PASSTHROUGH=A,B); the rest is withheld
  --copy-root DIR               a directory copy steps may read and write (repeatable; also
                                MESON_COPY_ROOTS=DIR${delimiter}DIR)
  --step-limit NAME=N           a limit on outputs, links or messages (repeatable; also
                                MESON_STEP_LIMITS=NAME=N,NAME=N), e.g. outputsBytes=2097152
`;

export interface StepOptions {
  envPassthrough: string[];
  copyRoots: string[];
  stepLimits: Partial<StepLimits>;
}

/** Reads the step options; throws an Error naming the flag and the bad value. */
export function parseStepOptions(
  values: { 'step-env-passthrough'?: string[]; 'copy-root'?: string[]; 'step-limit'?: string[] },
  env: NodeJS.ProcessEnv,
  cwd: string,
): StepOptions {
  const list = (s: string | undefined, sep: string) =>
    (s ?? '')
      .split(sep)
      .map((x) => x.trim())
      .filter((x) => x !== '');
  const envPassthrough = [
    ...list(env.MESON_STEP_ENV_PASSTHROUGH, ','),
    ...(values['step-env-passthrough'] ?? []),
  ];
  for (const name of envPassthrough) {
    const problem = checkPassthroughName(name);
    if (problem) throw new Error(`--step-env-passthrough: ${problem}`);
  }
  const copyRoots = [...list(env.MESON_COPY_ROOTS, delimiter), ...(values['copy-root'] ?? [])].map((d) => {
    const abs = isAbsolute(d) ? d : join(cwd, d);
    let dir = false;
    try {
      dir = statSync(abs).isDirectory();
    } catch {
      // reported below
    }
    if (!dir) throw new Error(`--copy-root ${d}: expected an existing directory`);
    return abs;
  });
  let stepLimits: Partial<StepLimits>;
  try {
    stepLimits = parseStepLimits([...list(env.MESON_STEP_LIMITS, ','), ...(values['step-limit'] ?? [])]);
  } catch (err) {
    throw new Error(`--step-limit: ${(err as Error).message}`, { cause: err });
  }
  return { envPassthrough: [...new Set(envPassthrough)], copyRoots, stepLimits };
}
