// WorkflowRun: one execution of one version, with per-step-instance status.
import { z } from 'zod';
import {
  ConditionsSchema,
  freeForm,
  type JsonValue,
  JsonValueSchema,
  PartitionSchema,
  resourceSchema,
  TimestampSchema,
} from './common.ts';
import { StepNameSchema } from './workflow.ts';

export const RUN_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Stopped'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

export const STEP_PHASES = [
  'Pending',
  'WaitingForInputs',
  'Queued',
  'Running',
  'Succeeded',
  'Failed',
  'Skipped',
  'Stopped',
] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

export const INITIATOR_TYPES = [
  'manual',
  'cron',
  'artifact',
  'subworkflow',
  'api',
  'backfill',
  'restart',
] as const;
export type InitiatorType = (typeof INITIATOR_TYPES)[number];

export const PLACEMENT_SOURCES = ['kubernetes', 'mesos', 'local'] as const;

export const RunParameterSchema = z.strictObject({
  name: z.string().min(1).describe('Name of a parameter of the Workflow.'),
  value: JsonValueSchema.describe('Override value (any JSON).'),
});

/** One DataArtifact that made an artifact trigger fire. */
export const TriggerArtifactSchema = z.strictObject({
  name: z.string().min(1).describe('Data set name.'),
  partition: PartitionSchema.optional(),
  location: z.string().optional().describe('Where the data lives, as announced.'),
});
export type TriggerArtifact = z.infer<typeof TriggerArtifactSchema>;

/** What the system records about the trigger of a run (never written by clients). */
const triggerFields = {
  scheduledTime: TimestampSchema.optional().describe(
    'cron runs: the scheduled slot, exactly (the run may start a little later).',
  ),
  date: z.number().int().optional().describe('backfill runs: the date of the run, as a dateint (20240131).'),
  artifacts: z
    .array(TriggerArtifactSchema)
    .optional()
    .describe('artifact runs: the announced artifacts that fired the trigger, one per trigger entry.'),
};

export const InitiatorSchema = z.strictObject({
  type: z.enum(INITIATOR_TYPES),
  user: z.string().optional().describe('Who started the run (manual, api).'),
  parent: z
    .strictObject({
      run: z.string().min(1).describe('Parent WorkflowRun name.'),
      step: z.string().optional().describe('Step instance id in the parent run.'),
    })
    .optional()
    .describe('Set for subworkflow runs.'),
  ...triggerFields,
});

/** The TRIGGER value of a run's expressions, as shown in its status. */
export const RunTriggerSchema = z
  .strictObject({ type: z.enum(INITIATOR_TYPES), ...triggerFields })
  .describe('What started the run: the TRIGGER value its expressions see (see docs/expressions.md).');
export type RunTrigger = z.infer<typeof RunTriggerSchema>;

export const RESTART_FROM = ['failed', 'beginning', 'step'] as const;

export const WorkflowRunSpecSchema = z
  .strictObject({
    workflow: z.string().min(1).describe('Name of the Workflow (same namespace).'),
    version: z.number().int().positive().optional().describe('Version to run; default the active version.'),
    parameters: z.array(RunParameterSchema).optional().describe('Parameter overrides.'),
    initiator: InitiatorSchema.optional(),
    restartOf: z
      .strictObject({
        run: z.string().min(1).describe('The run to restart.'),
        from: z
          .enum(RESTART_FROM)
          .describe(
            'failed: re-run only instances that did not succeed; beginning: everything; step: `step` and everything downstream of it.',
          ),
        step: StepNameSchema.optional().describe('With from: step, the step to restart from.'),
      })
      .refine((r) => (r.from === 'step') === (r.step !== undefined), {
        message: 'expected step exactly when from is step',
        path: ['step'],
      })
      .optional(),
    stop: z.boolean().optional().describe('Set true to stop the run.'),
  })
  .describe('One execution of one version of a Workflow, with parameter overrides.');
export type WorkflowRunSpec = z.infer<typeof WorkflowRunSpecSchema>;

export const LinkSchema = z.strictObject({ name: z.string().min(1), url: z.string().min(1) });

export const StepInstanceStatusSchema = z.strictObject({
  id: z.string().min(1).describe('Stable id: step name plus loop/foreach indices, e.g. agg[3].'),
  step: z.string().min(1).describe('Step name in the definition.'),
  phase: z.enum(STEP_PHASES),
  attempts: z.number().int().nonnegative().optional(),
  preemptions: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe(
      'Attempts that were preempted (evicted for a step of a higher tier). They do not count against retry.limit.',
    ),
  startTime: TimestampSchema.optional(),
  endTime: TimestampSchema.optional(),
  nextAttemptTime: TimestampSchema.optional().describe('When a retry is due (backoff).'),
  inputsDeadline: TimestampSchema.optional().describe(
    'When a step waiting for its inputs gives up (inputsTimeoutSeconds).',
  ),
  placement: z
    .strictObject({
      source: z.enum(PLACEMENT_SOURCES),
      node: z.string().optional(),
    })
    .optional(),
  childRun: z.string().optional().describe('WorkflowRun started by a subworkflow step.'),
  outputs: freeForm(
    z.record(z.string(), JsonValueSchema),
    'Output parameters reported by the step (free-form).',
  ).optional(),
  links: z.array(LinkSchema).optional(),
  message: z.string().optional(),
  exitCode: z.number().int().optional(),
});
export type StepInstanceStatus = z.infer<typeof StepInstanceStatusSchema>;

/** Counts of step instances per phase: always complete, even when `steps` is truncated. */
export const RunSummarySchema = z.strictObject({
  total: z.number().int().nonnegative(),
  phases: z
    .strictObject(
      Object.fromEntries(STEP_PHASES.map((p) => [p, z.number().int().nonnegative().optional()])) as Record<
        StepPhase,
        z.ZodOptional<z.ZodNumber>
      >,
    )
    .describe('Step instances per phase.'),
  truncated: z.boolean().optional().describe('True when `steps` lists only some instances.'),
});
export type RunSummary = z.infer<typeof RunSummarySchema>;

export const WorkflowRunStatusSchema = z.strictObject({
  phase: z.enum(RUN_PHASES).optional(),
  observedGeneration: z.number().int().nonnegative().optional(),
  version: z.number().int().positive().optional(),
  startTime: TimestampSchema.optional(),
  endTime: TimestampSchema.optional(),
  duration: z.string().optional().describe('Run time once finished, e.g. 1h2m3s (shown by kubectl get).'),
  message: z.string().optional(),
  parameters: freeForm(z.record(z.string(), JsonValueSchema), 'Resolved parameters (free-form).').optional(),
  trigger: RunTriggerSchema.optional(),
  steps: z
    .array(StepInstanceStatusSchema)
    .optional()
    .describe(
      'One entry per step instance. In operator mode a large run (e.g. a 10,000-way foreach) keeps ' +
        'only the most relevant instances here (running, failed, most recent) so that the object ' +
        'stays under the 1 MiB limit; `summary` always counts all of them.',
    ),
  summary: RunSummarySchema.optional(),
  engineState: freeForm(
    z.json() as z.ZodType<JsonValue>,
    "The engine's own bookkeeping (block progress); opaque to users.",
  ).optional(),
  conditions: ConditionsSchema.optional(),
});
export type WorkflowRunStatus = z.infer<typeof WorkflowRunStatusSchema>;

export const WorkflowRunSchema = resourceSchema(
  'WorkflowRun',
  WorkflowRunSpecSchema,
  WorkflowRunStatusSchema,
);
export type WorkflowRun = z.infer<typeof WorkflowRunSchema>;
