// Workflow: parameters, steps, the block-structured definition tree, triggers, notifications,
// concurrency. Field names follow docs/../shared/spec/workflow-api.md exactly.
import { z } from 'zod';
import {
  ConditionsSchema,
  exactlyOne,
  freeForm,
  JsonValueSchema,
  keyedList,
  PartitionSchema,
  QuantitySchema,
  resourceSchema,
  StringMapSchema,
  TimestampSchema,
} from './common.ts';

const NameSchema = z.string().min(1);
/** Identifiers usable in expressions (parameters, foreach variables). */
export const IDENTIFIER_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const IdentifierSchema = z
  .string()
  .regex(IDENTIFIER_PATTERN, 'expected an identifier (letters, digits, _ or $; not starting with a digit)');
/** Step names appear in instance ids (`outer[2].inner[0]`) and in `steps.<name>.outputs`. */
export const STEP_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
export const StepNameSchema = z
  .string()
  .regex(STEP_NAME_PATTERN, 'expected a step name: a letter or _ then up to 62 letters, digits, _ or -');
const ExpressionSchema = z.string().min(1).describe('An expression (jsep syntax, built-in functions only).');

export const PARAMETER_TYPES = ['string', 'long', 'double', 'boolean', 'list', 'map'] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];

/**
 * A named parameter. `value` is a literal, `expression` is evaluated when a run starts; at most
 * one of the two. A workflow parameter with neither must be supplied by the run.
 */
export const ParameterSchema = z.strictObject({
  name: IdentifierSchema.describe('Parameter name, an identifier usable in expressions.'),
  type: z.enum(PARAMETER_TYPES).optional().describe('Declared type; the value is coerced/checked.'),
  value: JsonValueSchema.optional().describe('Literal value (any JSON).'),
  expression: ExpressionSchema.optional().describe('Expression evaluated at run start.'),
});
export type Parameter = z.infer<typeof ParameterSchema>;

export const EnvVarSchema = z.strictObject({ name: NameSchema, value: z.string() });
export type EnvVar = z.infer<typeof EnvVarSchema>;

/**
 * "Exactly one of these keys" in JSON Schema terms (oneOf of `required` lists: a structural
 * schema allows that), so that the API server enforces it too at the levels the CRD types.
 */
function oneKeyOf(keys: readonly string[]) {
  return { oneOf: keys.map((k) => ({ required: [k] })) };
}

export const ShellStepSchema = z.strictObject({
  script: z
    .string()
    .min(1)
    .describe(
      'Shell script run with /bin/sh -c; each ${EXPR} becomes a reference to a variable holding the value.',
    ),
});
export const ContainerStepSchema = z.strictObject({
  image: z.string().min(1).describe('Container image reference ([registry/]path[:tag][@digest]).'),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(EnvVarSchema).optional(),
});
export const SPARK_JOB_KEYS = ['jobClass', 'mainApplication'] as const;
export const SparkStepSchema = z
  .strictObject({
    jobClass: z.string().min(1).optional().describe('Main class of a JVM Spark job.'),
    mainApplication: z.string().min(1).optional().describe('Main application file (jar or .py URI).'),
    args: z.array(z.string()).optional(),
    conf: freeForm(
      z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
      'Spark configuration (free-form map).',
    ).optional(),
    driverMemory: z.string().min(1).optional().describe('Spark memory string, e.g. 4g.'),
    executorMemory: z.string().min(1).optional().describe('Spark memory string, e.g. 8g.'),
    executors: z.number().int().positive().optional(),
  })
  .check(exactlyOne(SPARK_JOB_KEYS, 'Spark job entry point'))
  .meta(oneKeyOf(SPARK_JOB_KEYS));
export const CopyStepSchema = z.strictObject({
  from: z
    .string()
    .min(1)
    .describe(
      'Source: a local path or file:// URI inside the copy roots, or s3://bucket/key (a prefix ending in / copies every object under it) inside an object store root.',
    ),
  to: z
    .string()
    .min(1)
    .describe(
      'Destination: a local path or file:// URI, or s3://bucket/key, inside the roots as for `from`.',
    ),
});
export const SubworkflowParameterSchema = z
  .strictObject({
    name: IdentifierSchema,
    value: JsonValueSchema.optional(),
    expression: ExpressionSchema.optional(),
  })
  .meta(oneKeyOf(['value', 'expression']));
export const SubworkflowStepSchema = z.strictObject({
  workflow: NameSchema.describe('Name of the Workflow to run (same namespace).'),
  version: z.number().int().positive().optional().describe('Version to run; default the active one.'),
  parameters: z.array(SubworkflowParameterSchema).optional(),
});
export const NoopStepSchema = z.strictObject({});

export const STEP_TYPES = ['shell', 'container', 'spark', 'copy', 'subworkflow', 'noop'] as const;
export type StepType = (typeof STEP_TYPES)[number];

export const ArtifactRefSchema = z.strictObject({
  name: NameSchema.describe('Data artifact name.'),
  partition: PartitionSchema.optional(),
});
export const ArtifactOutputSchema = z.strictObject({
  name: NameSchema.describe('Data artifact name.'),
  partition: PartitionSchema.optional(),
  location: z.string().optional().describe('Where the data lives, e.g. an s3:// URI.'),
});

export const ResourcesSchema = z.strictObject({
  cpus: QuantitySchema.optional(),
  memory: QuantitySchema.optional(),
  gpus: QuantitySchema.optional(),
  disk: QuantitySchema.optional(),
});
export type Resources = z.infer<typeof ResourcesSchema>;

const TolerationSchema = z
  .strictObject({
    key: z.string().max(317).optional(),
    operator: z.enum(['Equal', 'Exists']).optional(),
    value: z.string().max(63).optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  })
  .describe('A Kubernetes toleration: a taint the step accepts (also set on its Pod).');

const NodeSelectorRequirementSchema = z.strictObject({
  key: z.string().min(1).max(317),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']),
  values: z.array(z.string().max(63)).max(64).optional(),
});

const NodeAffinitySchema = z
  .strictObject({
    requiredDuringSchedulingIgnoredDuringExecution: z.strictObject({
      nodeSelectorTerms: z
        .array(z.strictObject({ matchExpressions: z.array(NodeSelectorRequirementSchema).max(32) }))
        .max(16),
    }),
  })
  .describe('Kubernetes required node affinity: a host must satisfy every expression of one term.');

/** Largest scheduling tier a step may ask for (the least important). */
export const MAX_TIER = 1000;

export const ConstraintsSchema = z.strictObject({
  nodeSelector: StringMapSchema.optional().describe('Node labels that must match.'),
  attributes: StringMapSchema.optional().describe('Offer attributes that must match (Mesos style).'),
  nodeAffinity: NodeAffinitySchema.optional(),
  tolerations: z.array(TolerationSchema).max(32).optional().describe('Taints the step tolerates.'),
  uniqueHost: z.boolean().optional().describe('At most one instance of this step per host.'),
});

export const BackoffSchema = z.strictObject({
  initialSeconds: z.number().nonnegative().optional().describe('Delay before the first retry.'),
  factor: z.number().min(1).optional().describe('Each further delay is the previous one times this.'),
  maxSeconds: z.number().nonnegative().optional().describe('Upper bound of a delay.'),
});

export const RetrySchema = z.strictObject({
  limit: z.number().int().nonnegative().optional().describe('Retries after the first attempt.'),
  backoff: BackoffSchema.optional(),
});

export const StepSchema = z
  .strictObject({
    name: StepNameSchema.describe('Step name, unique within the workflow.'),
    shell: ShellStepSchema.optional(),
    container: ContainerStepSchema.optional(),
    spark: SparkStepSchema.optional(),
    copy: CopyStepSchema.optional(),
    subworkflow: SubworkflowStepSchema.optional(),
    noop: NoopStepSchema.optional(),
    parameters: keyedList(ParameterSchema, 'name').optional().describe('Step-scoped parameters.'),
    inputs: z.array(ArtifactRefSchema).optional().describe('Data artifacts to wait for.'),
    inputsTimeoutSeconds: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        'Seconds the step waits for its inputs; then it fails, naming the inputs still missing (no retry). Default: no limit.',
      ),
    outputs: z.array(ArtifactOutputSchema).optional().describe('Data artifacts announced on success.'),
    resources: ResourcesSchema.optional(),
    constraints: ConstraintsSchema.optional(),
    retry: RetrySchema.optional(),
    timeoutSeconds: z.number().int().positive().optional(),
    priority: z.number().int().optional().describe('Higher runs first among queued tasks.'),
    tier: z
      .number()
      .int()
      .min(0)
      .max(MAX_TIER)
      .optional()
      .describe(
        'Scheduling tier asked for: 0 is the most important; lower tiers (larger numbers) are served after higher ones and, where the cluster admin enabled preemption, may be evicted for them. Clamped to the bounds the admin set for the namespace; default: the namespace default tier.',
      ),
  })
  .check(exactlyOne(STEP_TYPES, 'step type'))
  .meta(oneKeyOf(STEP_TYPES));
export type Step = z.infer<typeof StepSchema>;

// --- the definition tree -------------------------------------------------------------------

export const NODE_KINDS = ['step', 'sequence', 'parallel', 'or', 'xor', 'loop', 'foreach'] as const;
export type NodeKind = (typeof NODE_KINDS)[number];

export type Branch = { when: string; then: DefinitionNode } | { otherwise: DefinitionNode };
export interface LoopBlock {
  do: DefinitionNode;
  while: string;
  maxIterations: number;
}
export interface ForeachBlock {
  items: string;
  as: string;
  parallelism?: number;
  do: DefinitionNode;
}
export type DefinitionNode =
  | { step: Step }
  | { sequence: DefinitionNode[] }
  | { parallel: DefinitionNode[] }
  | { or: Branch[] }
  | { xor: Branch[] }
  | { loop: LoopBlock }
  | { foreach: ForeachBlock };

/** Values as parsed (before the node union is narrowed). */
interface DefinitionNodeShape {
  step?: Step;
  sequence?: DefinitionNodeShape[];
  parallel?: DefinitionNodeShape[];
  or?: BranchShape[];
  xor?: BranchShape[];
  loop?: { do: DefinitionNodeShape; while: string; maxIterations: number };
  foreach?: { items: string; as: string; parallelism?: number; do: DefinitionNodeShape };
}
interface BranchShape {
  when?: string;
  then?: DefinitionNodeShape;
  otherwise?: DefinitionNodeShape;
}

/**
 * One object with every block key optional plus an "exactly one key" rule, rather than a zod
 * union: errors then point into the one block the user meant instead of listing alternatives,
 * and the CRD schema stays a plain object.
 */
const NodeShapeSchema: z.ZodType<DefinitionNodeShape> = z.lazy(() =>
  z
    .strictObject({
      step: StepSchema.optional().describe(
        'One step (a leaf): a name, exactly one step type, common settings.',
      ),
      sequence: z.array(NodeShapeSchema).min(1).optional().describe('Nodes run one after another.'),
      parallel: z.array(NodeShapeSchema).min(1).optional().describe('Nodes run at once; waits for all.'),
      or: z.array(BranchSchema).min(1).optional().describe('Every branch whose condition holds runs.'),
      xor: z.array(BranchSchema).min(1).optional().describe('Only the first branch that holds runs.'),
      loop: LoopSchema.optional().describe(
        'Runs `do`, then repeats while `while` holds (at most maxIterations).',
      ),
      foreach: ForeachSchema.optional().describe(
        'Runs `do` once per item of `items`, bound to the name `as`.',
      ),
    })
    .check(exactlyOne(NODE_KINDS, 'block'))
    // The same rule in JSON Schema terms, so that the API server enforces it at the typed levels.
    .meta({ minProperties: 1, maxProperties: 1 }),
);

export const BranchSchema: z.ZodType<BranchShape> = z.lazy(() =>
  z
    .strictObject({
      when: ExpressionSchema.optional().describe('Condition of this branch.'),
      // biome-ignore lint/suspicious/noThenProperty: `then` is the branch field name of the API.
      then: NodeShapeSchema.optional(),
      otherwise: NodeShapeSchema.optional().describe('Runs when no condition holds; last branch only.'),
    })
    .check(
      z.superRefine<BranchShape>(
        (b, ctx) => {
          if (typeof b !== 'object' || b === null) return;
          const fail = (message: string, field?: string): void =>
            ctx.addIssue({
              code: 'custom',
              ...(field ? { path: [field] } : {}),
              params: { code: 'SCHEMA_BRANCH' },
              message,
              input: b,
            });
          if (b.otherwise !== undefined) {
            if (b.when !== undefined || b.then !== undefined)
              fail('expected either {when, then} or {otherwise}, not both');
          } else if (b.when === undefined)
            fail('expected a condition expression (a branch is {when, then} or {otherwise})', 'when');
          else if (b.then === undefined) fail('expected the node to run when the condition holds', 'then');
        },
        { when: () => true },
      ),
    )
    .meta({ oneOf: [{ required: ['when', 'then'] }, { required: ['otherwise'] }] }),
);

/**
 * The largest `maxIterations` a loop may declare. A ceiling for the declaration only: what a
 * run may actually start is bounded by the run limits (src/engine/limits.ts, maxIterations,
 * default 200,000, configurable up to any value), so that a hostile 2^53 is refused on PUT.
 */
export const MAX_LOOP_ITERATIONS = 1_000_000;

export const LoopSchema = z.lazy(() =>
  z.strictObject({
    do: NodeShapeSchema.describe('The loop body.'),
    while: ExpressionSchema.describe('Evaluated after each iteration; true repeats. LOOP_INDEX is 0-based.'),
    maxIterations: z
      .number()
      .int()
      .positive()
      .max(MAX_LOOP_ITERATIONS)
      .describe(
        `Upper bound on iterations (required; at most ${MAX_LOOP_ITERATIONS}). A run is also bounded by the server's limit on the loop and foreach iterations of a run (default 200000).`,
      ),
  }),
);

export const ForeachSchema = z.lazy(() =>
  z.strictObject({
    items: ExpressionSchema.describe('Expression yielding the list to iterate over.'),
    as: IdentifierSchema.describe('Name bound to the current item inside `do`.'),
    parallelism: z.number().int().positive().optional().describe('Iterations running at once.'),
    do: NodeShapeSchema.describe('The body run once per item.'),
  }),
);

export const DefinitionNodeSchema = NodeShapeSchema as unknown as z.ZodType<DefinitionNode>;

// --- triggers, notifications, concurrency ---------------------------------------------------

export const CronTriggerSchema = z.strictObject({
  schedule: z.string().min(1).describe('Quartz 7-field, 6-field or classic 5-field cron expression.'),
  timezone: z.string().min(1).optional().describe('IANA time zone, e.g. America/Los_Angeles; default UTC.'),
});
export const TriggersSchema = z.strictObject({
  cron: z.array(CronTriggerSchema).optional().describe('Time-based schedules; each fire starts a run.'),
  artifacts: z.array(ArtifactRefSchema).optional().describe('Run when all of these artifacts are announced.'),
});

export const WebhookSchema = z.strictObject({
  url: z.url().describe('HTTP(S) endpoint receiving a JSON POST.'),
  headers: StringMapSchema.optional().describe('Extra request headers.'),
});
export const NOTIFICATION_EVENTS = ['start', 'success', 'failure', 'stopped'] as const;
export const NotificationSchema = z.strictObject({
  on: z.array(z.enum(NOTIFICATION_EVENTS)).min(1).describe('Run events that call the webhook.'),
  webhook: WebhookSchema,
});

export const CONCURRENCY_POLICIES = ['queue', 'skip', 'replace'] as const;
export const ConcurrencySchema = z.strictObject({
  maxActiveRuns: z.number().int().positive().optional().describe('Runs of this workflow active at once.'),
  policy: z.enum(CONCURRENCY_POLICIES).optional().describe('What a new run does at the limit.'),
});

const TtlSecondsSchema = z.number().int().nonnegative();
export const RetentionTtlSchema = z.strictObject({
  succeeded: TtlSecondsSchema.optional().describe('Seconds a Succeeded run is kept after it ended.'),
  failed: TtlSecondsSchema.optional().describe('Seconds a Failed run is kept after it ended.'),
  stopped: TtlSecondsSchema.optional().describe('Seconds a Stopped run is kept after it ended.'),
});
export const RetentionSchema = z.strictObject({
  keepLast: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe('Finished runs kept (the newest); older ones are deleted with their logs and files.'),
  ttlSecondsAfterFinished: RetentionTtlSchema.optional().describe(
    'Finished runs are deleted this long after they ended, per phase.',
  ),
});

export const WorkflowSpecSchema = z
  .strictObject({
    description: z.string().optional().describe('Free text shown in listings.'),
    parameters: keyedList(ParameterSchema, 'name')
      .optional()
      .describe('Workflow parameters, resolved in dependency order when a run starts.'),
    triggers: TriggersSchema.optional().describe(
      'What starts runs besides users: cron schedules, artifacts.',
    ),
    notifications: z.array(NotificationSchema).optional().describe('Webhooks called on run events.'),
    concurrency: ConcurrencySchema.optional().describe('Limit on active runs and what happens at the limit.'),
    retention: RetentionSchema.optional().describe(
      "How long finished runs are kept; unset fields take the server's defaults.",
    ),
    activeVersion: z.number().int().positive().optional().describe('Pin a version (rollback).'),
    suspend: z
      .boolean()
      .optional()
      .describe(
        'true pauses the cron and artifact triggers (runs started by users still run). Slots and artifact sets that come due while suspended are skipped, not caught up on resume: use a backfill to run them.',
      ),
    definition: DefinitionNodeSchema.describe('The graph of steps, block-structured.'),
  })
  .describe(
    'A workflow definition: parameters, triggers, notifications, concurrency and the graph of steps. Every change makes a new WorkflowVersion.',
  );
export type WorkflowSpec = z.infer<typeof WorkflowSpecSchema>;

export const WorkflowStatusSchema = z.strictObject({
  observedGeneration: z.number().int().nonnegative().optional(),
  latestVersion: z.number().int().positive().optional(),
  activeVersion: z.number().int().positive().optional(),
  specHash: z.string().optional().describe('Content hash of the spec of the latest version.'),
  lastRun: z.string().optional().describe('Name of the most recent WorkflowRun.'),
  lastRunPhase: z.string().optional(),
  lastScheduleTime: TimestampSchema.optional(),
  nextScheduleTime: TimestampSchema.optional(),
  conditions: ConditionsSchema.optional(),
});
export type WorkflowStatus = z.infer<typeof WorkflowStatusSchema>;

export const WorkflowSchema = resourceSchema('Workflow', WorkflowSpecSchema, WorkflowStatusSchema);
export type Workflow = z.infer<typeof WorkflowSchema>;

/**
 * A frozen copy of a Workflow's spec plus where it came from. The Workflow's annotations are
 * copied onto the version's metadata.annotations.
 */
export const WorkflowVersionSpecSchema = WorkflowSpecSchema.extend({
  workflow: NameSchema.describe('Name of the Workflow this is a version of.'),
  version: z.number().int().positive().describe('Version number, 1, 2, 3...'),
  specHash: z.string().min(1).describe('Content hash of the Workflow spec.'),
}).describe('A frozen copy of a Workflow spec (written by the controller, never changed).');
export type WorkflowVersionSpec = z.infer<typeof WorkflowVersionSpecSchema>;

export const WorkflowVersionSchema = resourceSchema(
  'WorkflowVersion',
  WorkflowVersionSpecSchema,
  z.strictObject({ conditions: ConditionsSchema.optional() }),
);
export type WorkflowVersion = z.infer<typeof WorkflowVersionSchema>;
