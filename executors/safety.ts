// How values reach a step's process without ever being read as code or as options, shared by
// every launcher (the local executor, a Pod launcher): see docs/executor-protocol.md, "Values".
//
// - A shell script never contains a value: the engine replaced each `${EXPR}` by `${MESON_V_<n>}`
//   and the values travel in `shell.env` (container: the `env` list). stepEnvironment gives the
//   variables a shell step's process must get.
// - Every parameter of the step is also exported as MESON_PARAM_<name> (parameterEnvironment).
// - A value that lands in a program's argv must not become one of its options: an image or a
//   Spark application starting with `-`, an env name carrying `=`. argumentProblem refuses them.
import type { ExecutorStep, JsonValue } from './protocol.ts';

/** Default bound of one MESON_PARAM_<name> value, in UTF-8 bytes (larger values are not exported). */
export const DEFAULT_PARAM_ENV_MAX_BYTES = 32 * 1024;
/** The environment variable (read by the executor from its own environment) that overrides it. */
export const PARAM_ENV_MAX_BYTES_VAR = 'MESON_PARAM_ENV_MAX_BYTES';

/** Parameter names exported as MESON_PARAM_<name>: the identifiers a shell accepts. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A value as text, as `${}` renders it: strings as they are, scalars as JSON, lists and maps as compact JSON. */
export function valueText(v: JsonValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

/** The bound of one MESON_PARAM_ value from `env` (PARAM_ENV_MAX_BYTES_VAR), else the default. */
export function paramEnvMaxBytes(env: NodeJS.ProcessEnv): number {
  const raw = env[PARAM_ENV_MAX_BYTES_VAR];
  if (raw === undefined || raw === '') return DEFAULT_PARAM_ENV_MAX_BYTES;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_PARAM_ENV_MAX_BYTES;
}

/**
 * MESON_PARAM_<name> for every parameter whose name is a shell identifier (a `$` in a name
 * skips it), as text. Skipped: values longer than `maxBytes` UTF-8 bytes (a 10,000-item list
 * would overflow the kernel's limit on a process's environment and fail every step) and values
 * containing NUL (an environment cannot hold one).
 */
export function parameterEnvironment(
  parameters: Record<string, JsonValue> | undefined,
  maxBytes: number = DEFAULT_PARAM_ENV_MAX_BYTES,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parameters ?? {})) {
    if (!SHELL_NAME.test(name)) continue;
    const text = valueText(value);
    if (text.includes('\u0000') || Buffer.byteLength(text) > maxBytes) continue;
    out[`MESON_PARAM_${name}`] = text;
  }
  return out;
}

/**
 * The variables the step's process gets on top of the launcher's own (MESON_OUTPUTS, ...):
 * MESON_PARAM_<name> for the parameters, then the values of a shell script's `${}`.
 */
export function stepEnvironment(step: ExecutorStep, maxBytes?: number): Record<string, string> {
  return { ...parameterEnvironment(step.parameters, maxBytes), ...(step.shell?.env ?? {}) };
}

// A Docker/OCI image reference (distribution/reference grammar): [host[:port]/]path[:tag][@digest].
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]+)?`;
const PATH_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const IMAGE_REFERENCE = new RegExp(
  `^(?:${DOMAIN}/)?${PATH_PART}(?:/${PATH_PART})*(?::${TAG})?(?:@${DIGEST})?$`,
);

/** Why `image` is not an image reference (e.g. `--privileged` would be an option of `docker run`), or undefined. */
export function imageProblem(image: string): string | undefined {
  if (image.length <= 512 && IMAGE_REFERENCE.test(image)) return undefined;
  return `expected an image reference such as registry.example.com/team/app:1.2 (lowercase path, optional :tag and @digest), found ${JSON.stringify(image.length > 80 ? `${image.slice(0, 80)}…` : image)}`;
}

/** A JVM class name: `com.example.Job`, `Job$Inner`. */
export const JAVA_CLASS = /^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;

/**
 * Why the step's resolved values cannot be handed to its program as they are, or undefined:
 * a value that would be read as an option (image, Spark application or class starting with `-`)
 * or an environment name that is not one (`A=B` would set another variable).
 */
export function argumentProblem(step: ExecutorStep): { field: string; message: string } | undefined {
  const c = step.container;
  if (step.type === 'container' && c) {
    const bad = imageProblem(c.image);
    if (bad) return { field: 'container.image', message: bad };
    for (const [i, e] of (c.env ?? []).entries())
      if (e.name === '' || e.name.includes('='))
        return {
          field: `container.env[${i}].name`,
          message: `expected an environment variable name without "=", found ${JSON.stringify(e.name)}`,
        };
  }
  const s = step.spark;
  if (step.type === 'spark' && s) {
    if (s.jobClass !== undefined && !JAVA_CLASS.test(s.jobClass))
      return {
        field: 'spark.jobClass',
        message: `expected a class name such as com.example.Job, found ${JSON.stringify(s.jobClass)}`,
      };
    if (s.mainApplication?.startsWith('-'))
      return {
        field: 'spark.mainApplication',
        message: `expected a jar or .py path or URI, found ${JSON.stringify(s.mainApplication)} (it would be read as an option)`,
      };
  }
  return undefined;
}
