// The TypeScript DSL for Meson workflows. A program builds `Workflow(...)` values from steps
// and combinators and exports them; `mesonctl synth program.ts` prints their manifests.
// See docs/dsl.md.
export { DataArtifact } from './artifacts.ts';
export { DslError, type DslErrorCode } from './errors.ts';
export {
  type Branch,
  Chain,
  Condition,
  type Flow,
  type ForeachOptions,
  foreach,
  type LoopOptions,
  loop,
  Otherwise,
  or,
  parallel,
  sequence,
  xor,
} from './flow.ts';
export type {
  ArtifactRef,
  Branch as BranchManifest,
  Concurrency,
  Constraints,
  DefinitionNode,
  Notification as NotificationManifest,
  NotificationEvent,
  Parameter as ParameterManifest,
  Resources,
  Retry,
  Step as StepManifest,
  WorkflowManifest,
} from './manifest.ts';
export { Parameter } from './parameters.ts';
export {
  type CommonStepOptions,
  Container,
  type ContainerOptions,
  Copy,
  type CopyOptions,
  Noop,
  type NoopOptions,
  Shell,
  type ShellOptions,
  Spark,
  type SparkOptions,
  Step,
  Subworkflow,
  type SubworkflowOptions,
} from './steps.ts';
export { collectWorkflows, synth, synthAll, toYaml } from './synth.ts';
export {
  isWorkflow,
  Notification,
  Trigger,
  type TriggerDefinition,
  Workflow,
  type WorkflowDefinition,
  type WorkflowOptions,
} from './workflow.ts';
