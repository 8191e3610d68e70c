// `Workflow({...})`, its triggers and notifications: the top of a DSL program.

import { DataArtifact } from './artifacts.ts';
import { isPlainObject, plainData } from './data.ts';
import { DslError, invalidArgument, unknownOption } from './errors.ts';
import { childNodes, type Flow, nodeOf } from './flow.ts';
import type {
  ArtifactRef,
  Concurrency,
  CronTrigger,
  DefinitionNode,
  NotificationEvent,
  Notification as NotificationManifest,
  Parameter,
  WorkflowManifest,
  WorkflowSpec,
} from './manifest.ts';

/**
 * Brands a `Workflow(...)` value. A registry symbol, so that a workflow built by one copy of
 * the DSL module is still recognised by another (a program importing the DSL from a package
 * while `mesonctl` runs from a checkout).
 */
export const WORKFLOW_BRAND: unique symbol = Symbol.for('meson.dev/dsl.Workflow') as never;

/** What `Workflow(...)` returns: the workflow's manifest, ready for `synth`. */
export interface WorkflowDefinition {
  readonly [WORKFLOW_BRAND]: true;
  readonly manifest: WorkflowManifest;
}

const TRIGGER = Symbol('meson.dsl.trigger');
export type TriggerDefinition =
  | { readonly [TRIGGER]: true; readonly cron: CronTrigger }
  | { readonly [TRIGGER]: true; readonly artifact: ArtifactRef };

export const Trigger = {
  /** A schedule: Quartz 7-field (`0 0 0 1/1 * ? *`), 6-field or classic 5-field. */
  cron(schedule: string, options: { timezone?: string } = {}): TriggerDefinition {
    if (typeof schedule !== 'string' || schedule.trim() === '') {
      throw invalidArgument('Trigger.cron()', 'a cron schedule string', schedule);
    }
    return { [TRIGGER]: true, cron: { schedule, timezone: options.timezone } };
  },
  /**
   * Run when a data artifact is announced: `Trigger.artifact("views", { country: "US" })` or
   * `Trigger.artifact(DataArtifact(...))`. With several, the run starts when all are announced.
   */
  artifact(nameOrRef: string | ArtifactRef, partition?: Record<string, unknown>): TriggerDefinition {
    const ref = typeof nameOrRef === 'string' ? DataArtifact(nameOrRef, partition) : DataArtifact(nameOrRef);
    return { [TRIGGER]: true, artifact: ref };
  },
};

const ALL_EVENTS: readonly NotificationEvent[] = ['start', 'success', 'failure', 'stopped'];

export const Notification = {
  /**
   * A webhook called on the given run events (default: failure and stopped, the ones that
   * need a human). `Notification.webhook("http://hooks.example/meson", { on: ["start", "success", "failure"] })`.
   */
  webhook(url: string, options: { on?: NotificationEvent[] } = {}): NotificationManifest {
    if (typeof url !== 'string' || url === '') throw invalidArgument('Notification.webhook()', 'a URL', url);
    const on = options.on ?? ['failure', 'stopped'];
    if (!Array.isArray(on) || on.length === 0) {
      throw invalidArgument('Notification.webhook(): on', `a non-empty list of ${ALL_EVENTS.join(', ')}`, on);
    }
    for (const event of on) {
      if (!ALL_EVENTS.includes(event)) {
        throw invalidArgument('Notification.webhook(): on', `one of ${ALL_EVENTS.join(', ')}`, event);
      }
    }
    return { on: [...on], webhook: { url } };
  },
};

export interface WorkflowOptions {
  /** the Workflow's name (`metadata.name`) */
  id: string;
  namespace?: string;
  description?: string;
  labels?: Record<string, string>;
  /** free metadata copied onto each version, e.g. `meson.dev/scm-commit` */
  annotations?: Record<string, string>;
  parameters?: Parameter[];
  triggers?: TriggerDefinition[];
  notification?: NotificationManifest;
  notifications?: NotificationManifest[];
  concurrency?: Concurrency;
  /** pin a version (rollback); default the latest */
  activeVersion?: number;
  /** true: the cron and artifact triggers do not fire (runs started by hand still run) */
  suspend?: boolean;
  definition: Flow;
}

/** A workflow: `Workflow({ id, triggers, notification, parameters, definition })`. */
export function Workflow(options: WorkflowOptions): WorkflowDefinition {
  if (!isPlainObject(options)) throw invalidArgument('Workflow()', 'an options object', options);
  const { id } = options;
  if (typeof id !== 'string' || id === '') throw invalidArgument('Workflow(): id', 'a non-empty string', id);
  const where = `Workflow("${id}")`;
  const known = new Set([
    'id',
    'namespace',
    'description',
    'labels',
    'annotations',
    'parameters',
    'triggers',
    'notification',
    'notifications',
    'concurrency',
    'activeVersion',
    'suspend',
    'definition',
  ]);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw unknownOption(where, key, [...known]);
  }
  if (options.notification !== undefined && options.notifications !== undefined) {
    throw invalidArgument(where, 'either notification or notifications', 'both');
  }
  const definition = nodeOf(options.definition, `${where}: definition`);
  checkUniqueStepNames(where, definition);

  const spec: WorkflowSpec = {
    description: options.description,
    parameters: options.parameters,
    triggers: triggersOf(where, options.triggers),
    notifications: options.notification !== undefined ? [options.notification] : options.notifications,
    concurrency: options.concurrency,
    activeVersion: options.activeVersion,
    suspend: options.suspend,
    definition,
  };
  const manifest: WorkflowManifest = {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name: id,
      namespace: options.namespace,
      labels: options.labels,
      annotations: options.annotations,
    },
    spec,
  };
  return Object.freeze({ [WORKFLOW_BRAND]: true as const, manifest: plainData(manifest, where) });
}

export function isWorkflow(value: unknown): value is WorkflowDefinition {
  return (
    value !== null &&
    typeof value === 'object' &&
    (value as Record<symbol, unknown>)[WORKFLOW_BRAND] === true &&
    isPlainObject((value as { manifest?: unknown }).manifest)
  );
}

function triggersOf(where: string, triggers: TriggerDefinition[] | undefined): WorkflowSpec['triggers'] {
  if (triggers === undefined) return undefined;
  if (!Array.isArray(triggers))
    throw invalidArgument(`${where}: triggers`, 'a list of Trigger.*(...)', triggers);
  const cron: CronTrigger[] = [];
  const artifacts: ArtifactRef[] = [];
  triggers.forEach((trigger, i) => {
    if (trigger === null || typeof trigger !== 'object' || !(TRIGGER in trigger)) {
      throw invalidArgument(
        `${where}: triggers[${i}]`,
        'Trigger.cron(...) or Trigger.artifact(...)',
        trigger,
      );
    }
    if ('cron' in trigger) cron.push(trigger.cron);
    else artifacts.push(trigger.artifact);
  });
  return {
    cron: cron.length > 0 ? cron : undefined,
    artifacts: artifacts.length > 0 ? artifacts : undefined,
  };
}

/**
 * Step names must be unique within a workflow. In the DSL the usual cause is one step
 * value used twice, so the message says so.
 */
function checkUniqueStepNames(where: string, definition: DefinitionNode): void {
  const seen = new Set<string>();
  const visit = (node: DefinitionNode): void => {
    if (!('step' in node)) {
      for (const child of childNodes(node)) visit(child);
      return;
    }
    const name = node.step.name;
    if (seen.has(name)) {
      throw new DslError(
        'DSL_DUPLICATE_STEP',
        `${where}: step name "${name}" is used more than once (a step value used in two places, ` +
          'or two steps with the same name); step names must be unique within a workflow',
      );
    }
    seen.add(name);
  };
  visit(definition);
}
