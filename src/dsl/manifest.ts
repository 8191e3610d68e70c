// The manifest shapes the DSL produces: the crds module's types (the one source of truth for
// the API), named the way the DSL's signatures need them.
import type { z } from 'zod';
import type {
  ArtifactOutputSchema,
  ArtifactRefSchema,
  ConcurrencySchema,
  ConstraintsSchema,
  ContainerStepSchema,
  CopyStepSchema,
  CronTriggerSchema,
  NOTIFICATION_EVENTS,
  NotificationSchema,
  RetrySchema,
  SparkStepSchema,
  SubworkflowStepSchema,
  Workflow,
} from '../crds/index.ts';

export type {
  Branch,
  DefinitionNode,
  JsonValue as Value,
  Parameter,
  ParameterType,
  Resources,
  Step,
  WorkflowSpec,
} from '../crds/index.ts';

export type ArtifactRef = z.infer<typeof ArtifactRefSchema>;
/** An output artifact may also say where the data lives. */
export type ArtifactOutput = z.infer<typeof ArtifactOutputSchema>;
export type Constraints = z.infer<typeof ConstraintsSchema>;
export type Retry = z.infer<typeof RetrySchema>;
export type ContainerSpec = z.infer<typeof ContainerStepSchema>;
export type SparkSpec = z.infer<typeof SparkStepSchema>;
export type CopySpec = z.infer<typeof CopyStepSchema>;
export type SubworkflowSpec = z.infer<typeof SubworkflowStepSchema>;
export type CronTrigger = z.infer<typeof CronTriggerSchema>;
export type Notification = z.infer<typeof NotificationSchema>;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];
export type Concurrency = z.infer<typeof ConcurrencySchema>;

/** A Workflow as the DSL writes it: never a status. */
export type WorkflowManifest = Omit<Workflow, 'status'>;
