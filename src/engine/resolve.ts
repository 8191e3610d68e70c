// Turns a step definition plus the variables in scope into a ResolvedStep: step parameters
// resolved, `${}` interpolated in every string field of the step type, artifact partitions
// interpolated. Pure; throws ResolveError naming the field path.
import type { Step } from '../crds/index.ts';
import { shellScriptIndex } from '../crds/shell-lint.ts';
import {
  ExprError,
  evaluate,
  interpolate,
  interpolateByReference,
  resolveParameters,
} from '../expr/index.ts';
import type { ArtifactSelector, ResolvedStep, Value } from './types.ts';

export const STEP_TYPE_KEYS = ['shell', 'container', 'spark', 'copy', 'subworkflow', 'noop'] as const;

export class ResolveError extends Error {
  override name = 'ResolveError';
  code: string;
  path: string;
  constructor(path: string, error: unknown) {
    const message = error instanceof Error ? error.message : String(error);
    super(`${path}: ${message}`, { cause: error });
    this.path = path;
    this.code = error instanceof ExprError ? error.code : 'ENGINE_RESOLVE';
  }
}

/** Evaluates `src` at field `path`, wrapping errors with the path. */
export function evaluateAt(path: string, src: string, vars: Record<string, Value>): Value {
  try {
    return evaluate(src, vars);
  } catch (e) {
    throw new ResolveError(path, e);
  }
}

function interpolateAt(path: string, template: string, vars: Record<string, Value>): string {
  if (!template.includes('${')) return template;
  try {
    return interpolate(template, vars);
  } catch (e) {
    throw new ResolveError(path, e);
  }
}

/** The environment variable that carries the value of the `index`-th distinct `${}` of a script. */
export function valueVariable(index: number): string {
  return `MESON_V_${index}`;
}

/**
 * A script for a shell: every `${EXPR}` becomes a reference `${MESON_V_<n>}` to an environment
 * variable holding the value, never the value's text, so nothing a value contains (`$(...)`,
 * quotes, backticks, newlines) is read as shell code. See docs/expressions.md.
 */
export function scriptByReference(
  path: string,
  script: string,
  vars: Record<string, Value>,
): { script: string; env: Record<string, string> } {
  if (!script.includes('${')) return { script, env: {} };
  let out: { text: string; values: string[] };
  try {
    out = interpolateByReference(script, vars, (i) => `\${${valueVariable(i)}}`);
  } catch (e) {
    throw new ResolveError(path, e);
  }
  const env: Record<string, string> = {};
  out.values.forEach((v, i) => {
    env[valueVariable(i)] = v;
  });
  return { script: out.text, env };
}

/**
 * A container block: argv (command, args) and env values are interpolated as data (they reach
 * the program as separate arguments, no shell reads them), except the script of a shell run
 * with `-c`, which is rewritten like a shell step's script; its values join the container env.
 */
function resolveContainer(
  path: string,
  c: NonNullable<Step['container']>,
  vars: Record<string, Value>,
): NonNullable<Step['container']> {
  const out = interpolateDeep(path, c, vars) as NonNullable<Step['container']>;
  const command = c.command ?? [];
  const argv = [...command, ...(c.args ?? [])];
  const at = shellScriptIndex(argv);
  if (at < 0) return out;
  const inCommand = at < command.length;
  const field = inCommand ? `${path}.command[${at}]` : `${path}.args[${at - command.length}]`;
  const { script, env } = scriptByReference(field, argv[at] as string, vars);
  if (inCommand) (out.command as string[])[at] = script;
  else (out.args as string[])[at - command.length] = script;
  const extra = Object.entries(env).map(([name, value]) => ({ name, value }));
  if (extra.length > 0) out.env = [...(out.env ?? []), ...extra];
  return out;
}

/** A NUL cannot be passed to a process (argv, environment): refuse it with the field path. */
function refuseNul(path: string, value: unknown): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000'))
      throw new ResolveError(
        path,
        new ExprError('EXPR_TYPE', 'the value contains a NUL character, which cannot be passed to a process'),
      );
  } else if (Array.isArray(value)) for (const [i, v] of value.entries()) refuseNul(`${path}[${i}]`, v);
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) refuseNul(`${path}.${k}`, v);
}

/** Deep copy of a JSON-like value with every string interpolated. */
function interpolateDeep(path: string, value: unknown, vars: Record<string, Value>): unknown {
  if (typeof value === 'string') return interpolateAt(path, value, vars);
  if (Array.isArray(value)) return value.map((v, i) => interpolateDeep(`${path}[${i}]`, v, vars));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateDeep(`${path}.${k}`, v, vars);
    return out;
  }
  return value;
}

function selectors(
  path: string,
  list:
    | { name: string; partition?: Record<string, string | number | boolean>; location?: string }[]
    | undefined,
  vars: Record<string, Value>,
  interpolateValues: boolean,
): ArtifactSelector[] {
  if (!list) return [];
  return list.map((a, i) => {
    const partition: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.partition ?? {}))
      partition[k] =
        typeof v === 'string' && interpolateValues
          ? interpolateAt(`${path}[${i}].partition.${k}`, v, vars)
          : String(v);
    const sel: ArtifactSelector = { name: a.name, partition };
    if (a.location !== undefined)
      sel.location = interpolateValues
        ? interpolateAt(`${path}[${i}].location`, a.location, vars)
        : a.location;
    return sel;
  });
}

export function stepTypeOf(step: Step): ResolvedStep['type'] {
  for (const k of STEP_TYPE_KEYS) if (step[k] !== undefined) return k;
  throw new ResolveError(step.name, 'expected one of shell, container, spark, copy, subworkflow, noop');
}

/**
 * Resolves `step` (at field path `path`) against `scope` (every variable visible: builtins,
 * workflow parameters, loop/foreach variables, `steps`). `hasTemplates` false skips the
 * interpolation walk (the step has no `${`). `iterationVars` are the loop/foreach variables
 * of this instance (they and the step's own parameters make `locals`).
 */
export function resolveStep(
  step: Step,
  path: string,
  scope: Record<string, Value>,
  hasTemplates: boolean,
  iterationVars: Record<string, Value> = {},
): ResolvedStep {
  let vars = scope;
  let own: Record<string, Value> = {};
  if (step.parameters && step.parameters.length > 0) {
    try {
      own = resolveParameters(step.parameters, { builtins: scope });
      vars = { ...scope, ...own };
    } catch (e) {
      throw new ResolveError(`${path}.parameters`, e);
    }
  }
  const type = stepTypeOf(step);
  const { parameters: _p, inputs, outputs, ...fields } = step;
  // `steps` (upstream outputs) is for expressions only; it is not a parameter of the step.
  let parameters = vars;
  if (Object.hasOwn(vars, 'steps')) {
    const { steps: _steps, ...rest } = vars;
    parameters = rest;
  }
  const resolved = { ...fields, type, parameters, locals: { ...iterationVars, ...own } } as ResolvedStep;
  if (hasTemplates && type === 'shell' && step.shell) {
    const { script, env } = scriptByReference(`${path}.shell.script`, step.shell.script, vars);
    resolved.shell = Object.keys(env).length > 0 ? { ...step.shell, script, env } : { ...step.shell, script };
  } else if (hasTemplates && type === 'container' && step.container)
    resolved.container = resolveContainer(`${path}.container`, step.container, vars);
  else if (hasTemplates && type !== 'subworkflow' && type !== 'noop')
    (resolved as Record<string, unknown>)[type] = interpolateDeep(`${path}.${type}`, step[type], vars);
  if (type !== 'subworkflow' && type !== 'noop') refuseNul(`${path}.${type}`, resolved[type]);
  if (type === 'subworkflow' && step.subworkflow) {
    const sw = step.subworkflow;
    resolved.subworkflow = {
      ...sw,
      workflow: interpolateAt(`${path}.subworkflow.workflow`, sw.workflow, vars),
      parameters: (sw.parameters ?? []).map((p, i) => ({
        name: p.name,
        value:
          p.expression !== undefined
            ? evaluateAt(`${path}.subworkflow.parameters[${i}].expression`, p.expression, vars)
            : (interpolateDeep(`${path}.subworkflow.parameters[${i}].value`, p.value ?? null, vars) as Value),
      })),
    };
  }
  resolved.inputs = selectors(`${path}.inputs`, inputs, vars, hasTemplates);
  resolved.outputs = selectors(`${path}.outputs`, outputs, vars, hasTemplates);
  return resolved;
}

/** The child run's parameters of a resolved subworkflow step. */
export function childParameters(step: ResolvedStep): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const p of step.subworkflow?.parameters ?? []) out[p.name] = (p.value ?? null) as Value;
  return out;
}
