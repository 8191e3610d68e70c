// Step constructors: `Spark(name, options)`, `Shell(name, script | options)`, `Container`,
// `Copy`, `Subworkflow`, `Noop`. Options mix the step type's own fields with the fields every
// step has (resources, retry, inputs, outputs, ...), as the Scala DSL's named arguments did.
import { isPlainObject, plainData } from './data.ts';
import { invalidArgument, unknownOption } from './errors.ts';
import { type Flow, stepFlow } from './flow.ts';
import type {
  ArtifactOutput,
  ArtifactRef,
  Constraints,
  ContainerSpec,
  CopySpec,
  Parameter,
  Resources,
  Retry,
  SparkSpec,
  Step as StepManifest,
  SubworkflowSpec,
} from './manifest.ts';
import { WORKFLOW_BRAND, type WorkflowDefinition } from './workflow.ts';

/** The fields every step type accepts. */
export interface CommonStepOptions {
  /** step-scope parameters; may use the workflow's */
  parameters?: Parameter[];
  /** data artifacts the step waits for (see `DataArtifact(...)`) */
  inputs?: ArtifactRef[];
  /** seconds the step waits for its `inputs` before it fails (like a sensor timeout); default: no limit */
  inputsTimeoutSeconds?: number;
  /** data artifacts announced when the step succeeds (optionally with a `location`) */
  outputs?: ArtifactOutput[];
  resources?: Resources;
  constraints?: Constraints;
  /** a retry policy, or just the number of retries */
  retry?: Retry | number;
  timeoutSeconds?: number;
  priority?: number;
  /** scheduling tier asked for (0 most important); clamped to what the cluster admin allows the namespace */
  tier?: number;
}

export type ShellOptions = CommonStepOptions & {
  /** the script run by /bin/sh; a list is taken as its lines */
  script: string | string[];
};
export type ContainerOptions = CommonStepOptions &
  Omit<ContainerSpec, 'env'> & {
    /** a map (written as `[{name, value}]` in the order of its keys) or that list itself */
    env?: Record<string, string> | { name: string; value: string }[];
  };
export type SparkOptions = CommonStepOptions & SparkSpec;
export type CopyOptions = CommonStepOptions & CopySpec;
export type NoopOptions = CommonStepOptions;
export type SubworkflowOptions = Omit<CommonStepOptions, 'parameters'> & {
  /** the child workflow: its id, or the `Workflow(...)` value itself */
  workflow: string | WorkflowDefinition;
  version?: number;
  /** parameters passed to the child run (a list, or a map of values) */
  parameters?: Parameter[] | Record<string, unknown>;
  /** step-scope parameters (the `parameters` of the step itself) */
  stepParameters?: Parameter[];
};

const COMMON_KEYS = [
  'parameters',
  'inputs',
  'inputsTimeoutSeconds',
  'outputs',
  'resources',
  'constraints',
  'retry',
  'timeoutSeconds',
  'priority',
  'tier',
] as const;

type ChildParameter = NonNullable<SubworkflowSpec['parameters']>[number];

type StepType = 'shell' | 'container' | 'spark' | 'copy' | 'subworkflow' | 'noop';

/** The options each step constructor takes besides the common ones (for messages). */
const TYPE_KEYS: Record<StepType, readonly string[]> = {
  shell: ['script'],
  container: ['image', 'command', 'args', 'env'],
  spark: ['jobClass', 'mainApplication', 'args', 'conf', 'driverMemory', 'executorMemory', 'executors'],
  copy: ['from', 'to'],
  subworkflow: ['workflow', 'version', 'parameters', 'stepParameters'],
  noop: [],
};

/**
 * `Shell("extract", "echo ${country}")`, `Shell("extract", ["set -eu", "echo ${country}"])` (one
 * string per line) or `Shell("extract", { script, resources, ... })`. Note that `${...}` is
 * Meson's interpolation: in plain (not template) strings it stays as written; refer to shell
 * variables as `$name`.
 */
export function Shell(name: string, scriptOrOptions: string | string[] | ShellOptions): Flow {
  const options =
    typeof scriptOrOptions === 'string' || Array.isArray(scriptOrOptions)
      ? { script: scriptOrOptions }
      : scriptOrOptions;
  const where = stepWhere('Shell', name);
  const { script, ...common } = objectOptions(where, options);
  const text = Array.isArray(script) ? linesOf(`${where}: script`, script) : script;
  requireString(`${where}: script`, text);
  return makeStep(where, name, 'shell', { script: text }, common);
}

function linesOf(where: string, lines: unknown[]): string {
  lines.forEach((line, i) => {
    if (typeof line !== 'string' || line.includes('\n')) {
      throw invalidArgument(`${where}[${i}]`, 'one line of text (a string without newlines)', line);
    }
  });
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

export function Container(name: string, options: ContainerOptions): Flow {
  const where = stepWhere('Container', name);
  const { image, command, args, env, ...common } = objectOptions(where, options);
  requireString(`${where}: image`, image);
  const spec: ContainerSpec = { image, command, args, env: envList(`${where}: env`, env) };
  return makeStep(where, name, 'container', spec, common);
}

export function Spark(name: string, options: SparkOptions): Flow {
  const where = stepWhere('Spark', name);
  const { jobClass, mainApplication, args, conf, driverMemory, executorMemory, executors, ...common } =
    objectOptions(where, options);
  if ((jobClass === undefined) === (mainApplication === undefined)) {
    throw invalidArgument(where, 'exactly one of jobClass or mainApplication', options);
  }
  const spec: SparkSpec = { jobClass, mainApplication, args, conf, driverMemory, executorMemory, executors };
  return makeStep(where, name, 'spark', spec, common);
}

export function Copy(name: string, options: CopyOptions): Flow {
  const where = stepWhere('Copy', name);
  const { from, to, ...common } = objectOptions(where, options);
  requireString(`${where}: from`, from);
  requireString(`${where}: to`, to);
  return makeStep(where, name, 'copy', { from, to }, common);
}

/** Runs another workflow as a child run and waits for it. */
export function Subworkflow(name: string, options: SubworkflowOptions): Flow {
  const where = stepWhere('Subworkflow', name);
  const { workflow, version, parameters, stepParameters, ...rest } = objectOptions(where, options);
  const spec: SubworkflowSpec = {
    workflow: workflowId(`${where}: workflow`, workflow),
    version,
    parameters: childParameters(`${where}: parameters`, parameters),
  };
  return makeStep(where, name, 'subworkflow', spec, { ...rest, parameters: stepParameters });
}

/**
 * A step written as the manifest writes it, for fields the typed constructors do not cover
 * (the escape hatch): `Step("a", { shell: { script: "true" }, retry: { limit: 2 } })`. It is
 * copied as is; the validator checks it when `mesonctl synth` runs.
 */
export function Step(name: string, fields: Omit<StepManifest, 'name'>): Flow {
  const where = stepWhere('Step', name);
  if (!isPlainObject(fields)) throw invalidArgument(`${where}: fields`, 'an object', fields);
  return stepFlow(plainData({ name, ...fields }, where) as StepManifest);
}

/** A step that does nothing: a join point, a placeholder, an explicit "skip". */
export function Noop(name: string, options: NoopOptions = {}): Flow {
  const where = stepWhere('Noop', name);
  return makeStep(where, name, 'noop', {}, objectOptions(where, options));
}

function makeStep(
  where: string,
  name: string,
  type: StepType,
  spec: object,
  common: Partial<Record<(typeof COMMON_KEYS)[number], unknown>>,
): Flow {
  const unknown = Object.keys(common).find((k) => !(COMMON_KEYS as readonly string[]).includes(k));
  if (unknown !== undefined)
    throw unknownOption(where, unknown, [...new Set([...TYPE_KEYS[type], ...COMMON_KEYS])]);
  const retry = typeof common.retry === 'number' ? { limit: common.retry } : common.retry;
  const step = plainData({ name, [type]: spec, ...common, retry }, where) as StepManifest;
  return stepFlow(step);
}

function stepWhere(kind: string, name: unknown): string {
  if (typeof name !== 'string' || name === '')
    throw invalidArgument(`${kind}(): name`, 'a non-empty string', name);
  return `${kind}("${name}")`;
}

function objectOptions<T extends object>(where: string, options: T): T {
  if (!isPlainObject(options)) throw invalidArgument(`${where}: options`, 'an object', options);
  return options;
}

function requireString(where: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw invalidArgument(where, 'a non-empty string', value);
}

function envList(where: string, env: ContainerOptions['env']): ContainerSpec['env'] {
  if (env === undefined || Array.isArray(env)) return env;
  if (!isPlainObject(env)) throw invalidArgument(where, 'a map or a list of { name, value }', env);
  return Object.entries(env).map(([name, value]) => ({ name, value }));
}

function workflowId(where: string, workflow: SubworkflowOptions['workflow']): string {
  if (typeof workflow === 'string' && workflow !== '') return workflow;
  if (workflow !== null && typeof workflow === 'object' && WORKFLOW_BRAND in workflow) {
    return workflow.manifest.metadata.name!;
  }
  throw invalidArgument(where, 'a workflow id or a Workflow(...) value', workflow);
}

/**
 * The parameters passed to a child run: `{ name, value | expression }` (the child declares the
 * types, so a typed `Parameter.string(...)` is accepted and its type left out).
 */
function childParameters(
  where: string,
  parameters: SubworkflowOptions['parameters'],
): ChildParameter[] | undefined {
  if (parameters === undefined) return undefined;
  if (Array.isArray(parameters)) {
    return parameters.map((p, i) => {
      if (!isPlainObject(p)) throw invalidArgument(`${where}[${i}]`, 'a parameter', p);
      const { type: _declaredByTheChild, ...rest } = p;
      return rest;
    });
  }
  if (!isPlainObject(parameters)) throw invalidArgument(where, 'a list of parameters or a map', parameters);
  return Object.entries(parameters).map(([name, value]) => ({
    name,
    value: value as ChildParameter['value'],
  }));
}
