// The server operator's settings for steps, shared by `mesonctl server` and `mesonctl run`:
// which variables of the server's environment steps may see, where copy steps may read and
// write, and the limits on what a step reports. Flags add to the environment variables.
import { statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { checkPassthroughName } from '../../executors/env.ts';
import {
  type CopyLimits,
  DEFAULT_COPY_LIMITS,
  parseStepLimits,
  type StepLimits,
} from '../../executors/limits.ts';
import { formatS3, isS3Uri, parseS3Root } from '../../executors/s3-uri.ts';

export const STEP_OPTIONS = {
  'step-env-passthrough': { type: 'string', multiple: true },
  'copy-root': { type: 'string', multiple: true },
  'copy-max-bytes': { type: 'string' },
  'copy-max-objects': { type: 'string' },
  'step-limit': { type: 'string', multiple: true },
} as const;

/** The copy options of `mesonctl operator`: its step Pods have no shared local directory. */
export const OPERATOR_COPY_OPTIONS = {
  'copy-root': { type: 'string', multiple: true },
  'copy-s3-secret': { type: 'string' },
  'copy-max-bytes': { type: 'string' },
  'copy-max-objects': { type: 'string' },
} as const;

/** The copy options both `mesonctl server`/`run` and `mesonctl operator` take. */
export const COPY_OPTIONS_USAGE = `  --copy-max-bytes N            bytes one copy to or from an object store may move (default
                                ${DEFAULT_COPY_LIMITS.maxBytes}; MESON_COPY_MAX_BYTES)
  --copy-max-objects N          objects of one prefix copy (default ${DEFAULT_COPY_LIMITS.maxObjects}; MESON_COPY_MAX_OBJECTS)
`;

export const STEP_OPTIONS_USAGE = `Steps (docs/executor-protocol.md):
  --step-env-passthrough NAME   a variable of this environment that steps may see (repeatable;
                                also MESON_STEP_ENV_PASSTHROUGH=A,B); the rest is withheld
  --copy-root DIR|s3://B/P/     a directory, or an object store prefix, copy steps may read and
                                write (repeatable; also MESON_COPY_ROOTS=DIR${delimiter}s3://B/P/);
                                the store's endpoint and credentials: the AWS_* variables
${COPY_OPTIONS_USAGE}  --step-limit NAME=N           a limit on outputs, links or messages (repeatable; also
                                MESON_STEP_LIMITS=NAME=N,NAME=N), e.g. outputsBytes=2097152
`;

export interface StepOptions {
  envPassthrough: string[];
  /** Absolute directories and canonical `s3://bucket/prefix/` roots. */
  copyRoots: string[];
  copyLimits: Partial<CopyLimits>;
  stepLimits: Partial<StepLimits>;
}

/**
 * The items of MESON_COPY_ROOTS: split at `sep` (":" on POSIX), an "s3" item followed by one
 * starting with "//" joined back into the URI it was (so an s3 root's prefix holds no ":" there;
 * --copy-root takes any).
 */
export function copyRootItems(text: string | undefined, sep: string = delimiter): string[] {
  const parts = (text ?? '').split(sep).map((x) => x.trim());
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as string;
    if (sep === ':' && /^s3$/i.test(p) && parts[i + 1]?.startsWith('//')) out.push(`${p}:${parts[++i]}`);
    else if (p !== '') out.push(p);
  }
  return out;
}

/** An object store root of --copy-root in its canonical form; throws naming the flag. */
export function s3CopyRoot(uri: string): string {
  return formatS3(parseS3Root(uri, `--copy-root ${uri.slice(0, 200)}`));
}

/** --copy-max-bytes and --copy-max-objects (flags win over MESON_COPY_MAX_*); throws naming the flag. */
export function parseCopyLimits(
  values: { 'copy-max-bytes'?: string; 'copy-max-objects'?: string },
  env: NodeJS.ProcessEnv,
): Partial<CopyLimits> {
  const out: Partial<CopyLimits> = {};
  const one = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined || text.trim() === '') return undefined;
    const n = Number(text.trim());
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1)
      throw new Error(`--${flag}: expected a positive integer, got "${text.slice(0, 40)}"`);
    return n;
  };
  const bytes = one('copy-max-bytes', values['copy-max-bytes'] ?? env.MESON_COPY_MAX_BYTES);
  const objects = one('copy-max-objects', values['copy-max-objects'] ?? env.MESON_COPY_MAX_OBJECTS);
  if (bytes !== undefined) out.maxBytes = bytes;
  if (objects !== undefined) out.maxObjects = objects;
  return out;
}

/** Reads the step options; throws an Error naming the flag and the bad value. */
export function parseStepOptions(
  values: {
    'step-env-passthrough'?: string[];
    'copy-root'?: string[];
    'copy-max-bytes'?: string;
    'copy-max-objects'?: string;
    'step-limit'?: string[];
  },
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
  const copyRoots = [...copyRootItems(env.MESON_COPY_ROOTS), ...(values['copy-root'] ?? [])].map((d) => {
    if (isS3Uri(d)) return s3CopyRoot(d);
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
  const copyLimits = parseCopyLimits(values, env);
  return { envPassthrough: [...new Set(envPassthrough)], copyRoots, copyLimits, stepLimits };
}

/** What `mesonctl operator` gives copy step Pods. */
export interface OperatorCopyOptions {
  /** Canonical `s3://bucket/prefix/` roots. */
  roots: string[];
  /** The Secret whose keys become the copy step Pods' environment (AWS_*). */
  secretName?: string;
  limits: Partial<CopyLimits>;
}

export const OPERATOR_COPY_USAGE = `Copy steps (docs/executor-protocol.md "Object stores"):
  --copy-root s3://B/P/         an object store prefix copy steps may read and write (repeatable;
                                also MESON_COPY_ROOTS=s3://B/P/:s3://C/); default none
  --copy-s3-secret NAME         a Secret of the step Pods' namespace holding the store's AWS_*
                                variables, given to copy step Pods only (MESON_COPY_S3_SECRET)
${COPY_OPTIONS_USAGE}`;

const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The operator's copy options; throws an Error naming the flag. */
export function parseOperatorCopyOptions(
  values: {
    'copy-root'?: string[];
    'copy-s3-secret'?: string;
    'copy-max-bytes'?: string;
    'copy-max-objects'?: string;
  },
  env: NodeJS.ProcessEnv,
): OperatorCopyOptions {
  const roots = [...copyRootItems(env.MESON_COPY_ROOTS, ':'), ...(values['copy-root'] ?? [])].map((r) => {
    if (!isS3Uri(r))
      throw new Error(
        `--copy-root ${r.slice(0, 200)}: expected s3://bucket/prefix/ (a step Pod has no local directory to share)`,
      );
    return s3CopyRoot(r);
  });
  const secretName = values['copy-s3-secret'] ?? (env.MESON_COPY_S3_SECRET || undefined);
  if (secretName !== undefined && !SECRET_NAME.test(secretName))
    throw new Error(
      `--copy-s3-secret: expected a Secret name (DNS subdomain), got "${secretName.slice(0, 80)}"`,
    );
  return {
    roots: [...new Set(roots)],
    ...(secretName ? { secretName } : {}),
    limits: parseCopyLimits(values, env),
  };
}
