// The manifest shapes the DSL produces. They are the crds module's types (one source of
// truth for the API); this file only narrows them to what synthesis writes.
// TODO(dsl): switch to `import type { ... } from '../crds/index.ts'` when src/crds lands.

export type ScalarValue = string | number | boolean | null;
export type Value = ScalarValue | Value[] | { [k: string]: Value };

export type ParameterType = 'string' | 'long' | 'double' | 'boolean' | 'list' | 'map';

export interface Parameter {
  name: string;
  type?: ParameterType;
  value?: Value;
  expression?: string;
}

export interface ArtifactRef {
  name: string;
  partition?: Record<string, string>;
}

export interface Resources {
  cpus?: number | string;
  memory?: number | string;
  gpus?: number;
  disk?: number | string;
}

export interface Constraints {
  nodeSelector?: Record<string, string>;
  attributes?: Record<string, string>;
  uniqueHost?: boolean;
}

export interface Retry {
  limit: number;
  backoff?: { initialSeconds?: number; factor?: number; maxSeconds?: number };
}

export interface ShellSpec {
  script: string;
}
export interface ContainerSpec {
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value: string }[];
}
export interface SparkSpec {
  jobClass?: string;
  mainApplication?: string;
  args?: string[];
  conf?: Record<string, string>;
  driverMemory?: string;
  executorMemory?: string;
  executors?: number;
}
export interface CopySpec {
  from: string;
  to: string;
}
export interface SubworkflowSpec {
  workflow: string;
  version?: number;
  parameters?: Parameter[];
}

export interface Step {
  name: string;
  shell?: ShellSpec;
  container?: ContainerSpec;
  spark?: SparkSpec;
  copy?: CopySpec;
  subworkflow?: SubworkflowSpec;
  noop?: Record<string, never>;
  parameters?: Parameter[];
  inputs?: ArtifactRef[];
  outputs?: ArtifactRef[];
  resources?: Resources;
  constraints?: Constraints;
  retry?: Retry;
  timeoutSeconds?: number;
  priority?: number;
}

export type Branch = { when: string; then: DefinitionNode } | { otherwise: DefinitionNode };

export type DefinitionNode =
  | { step: Step }
  | { sequence: DefinitionNode[] }
  | { parallel: DefinitionNode[] }
  | { or: Branch[] }
  | { xor: Branch[] }
  | { loop: { do: DefinitionNode; while: string; maxIterations: number } }
  | { foreach: { items: string; as: string; parallelism?: number; do: DefinitionNode } };

export interface CronTrigger {
  schedule: string;
  timezone?: string;
}

export type NotificationEvent = 'start' | 'success' | 'failure' | 'stopped';

export interface Notification {
  on: NotificationEvent[];
  webhook: { url: string };
}

export interface Concurrency {
  maxActiveRuns?: number;
  policy?: 'queue' | 'skip' | 'replace';
}

export interface WorkflowSpec {
  description?: string;
  parameters?: Parameter[];
  triggers?: { cron?: CronTrigger[]; artifacts?: ArtifactRef[] };
  notifications?: Notification[];
  concurrency?: Concurrency;
  activeVersion?: number;
  definition: DefinitionNode;
}

export interface WorkflowManifest {
  apiVersion: 'meson.dev/v1alpha1';
  kind: 'Workflow';
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: WorkflowSpec;
}
