// docs/api-reference.md, generated from the same zod schemas as the CRDs and the validator: one
// table of fields per object type, with types, whether required, and the schema's description.
import type { z } from 'zod';
import { DataArtifactSchema, DataArtifactSpecSchema } from './artifact.ts';
import { ConditionSchema, FREE_FORM, ObjectMetaSchema } from './common.ts';
import { NODE_DEPTH } from './crd.ts';
import { expectedOf, unwrap } from './messages.ts';
import {
  InitiatorSchema,
  LinkSchema,
  RunParameterSchema,
  RunSummarySchema,
  StepInstanceStatusSchema,
  WorkflowRunSchema,
  WorkflowRunSpecSchema,
  WorkflowRunStatusSchema,
} from './run.ts';
import {
  ArtifactOutputSchema,
  ArtifactRefSchema,
  BranchSchema,
  ConcurrencySchema,
  ConstraintsSchema,
  ContainerStepSchema,
  CopyStepSchema,
  CronTriggerSchema,
  DefinitionNodeSchema,
  EnvVarSchema,
  ForeachSchema,
  LoopSchema,
  NoopStepSchema,
  NotificationSchema,
  ParameterSchema,
  ResourcesSchema,
  RetrySchema,
  ShellStepSchema,
  SparkStepSchema,
  StepSchema,
  SubworkflowParameterSchema,
  SubworkflowStepSchema,
  TriggersSchema,
  WebhookSchema,
  WorkflowSchema,
  WorkflowSpecSchema,
  WorkflowStatusSchema,
  WorkflowVersionSchema,
  WorkflowVersionSpecSchema,
} from './workflow.ts';

/** Named object types, in the order the reference presents them. */
const TYPES: [string, z.ZodType, string?][] = [
  ['Workflow', WorkflowSchema, 'A named, mutable workflow definition (short name `mwf`).'],
  ['WorkflowSpec', WorkflowSpecSchema],
  ['Parameter', ParameterSchema, 'At most one of `value` and `expression`.'],
  ['Triggers', TriggersSchema],
  ['CronTrigger', CronTriggerSchema],
  ['ArtifactRef', ArtifactRefSchema, 'A data artifact to wait for (step input, artifact trigger).'],
  ['Notification', NotificationSchema],
  ['Webhook', WebhookSchema],
  ['Concurrency', ConcurrencySchema],
  [
    'DefinitionNode',
    DefinitionNodeSchema,
    'Exactly one key. The CRD schema expands the tree ' +
      `${NODE_DEPTH} levels deep and keeps deeper nodes free-form; \`mesonctl validate\` and the ` +
      'controller check the whole tree.',
  ],
  ['Branch', BranchSchema, 'Either `{when, then}` or `{otherwise}` (the last branch only).'],
  ['Loop', LoopSchema],
  ['Foreach', ForeachSchema],
  [
    'Step',
    StepSchema,
    'Exactly one of `shell`, `container`, `spark`, `copy`, `subworkflow`, `noop`. ' +
      `\`\${EXPR}\` in every string field interpolates.`,
  ],
  ['ShellStep', ShellStepSchema],
  ['ContainerStep', ContainerStepSchema],
  ['EnvVar', EnvVarSchema],
  ['SparkStep', SparkStepSchema, 'Exactly one of `jobClass` and `mainApplication`.'],
  ['CopyStep', CopyStepSchema],
  ['SubworkflowStep', SubworkflowStepSchema],
  ['SubworkflowParameter', SubworkflowParameterSchema, 'Exactly one of `value` and `expression`.'],
  ['NoopStep', NoopStepSchema],
  ['ArtifactOutput', ArtifactOutputSchema],
  ['Resources', ResourcesSchema],
  ['Constraints', ConstraintsSchema],
  ['Retry', RetrySchema],
  ['WorkflowStatus', WorkflowStatusSchema],
  [
    'WorkflowVersion',
    WorkflowVersionSchema,
    'Immutable snapshot written by the controller (short name `mwfv`).',
  ],
  ['WorkflowVersionSpec', WorkflowVersionSpecSchema, 'The Workflow spec fields plus the ones below.'],
  ['WorkflowRun', WorkflowRunSchema, 'One execution of one version (short name `mwfr`).'],
  ['WorkflowRunSpec', WorkflowRunSpecSchema],
  ['RunParameter', RunParameterSchema],
  ['Initiator', InitiatorSchema],
  ['WorkflowRunStatus', WorkflowRunStatusSchema],
  ['StepInstanceStatus', StepInstanceStatusSchema],
  ['Link', LinkSchema],
  ['RunSummary', RunSummarySchema],
  ['DataArtifact', DataArtifactSchema, 'An announced data set partition (short name `da`).'],
  ['DataArtifactSpec', DataArtifactSpecSchema],
  ['Condition', ConditionSchema, 'Kubernetes-style condition.'],
  ['ObjectMeta', ObjectMetaSchema, 'Standard Kubernetes metadata; only the common fields are listed.'],
];

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
}
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

function meta(s: z.ZodType): Record<string, unknown> {
  return ((s as unknown as { meta: () => Record<string, unknown> | undefined }).meta() ?? {}) as Record<
    string,
    unknown
  >;
}

/** Description and free-form mark, looked up through optional wrappers. */
function info(s: z.ZodType): { description?: string; freeForm: boolean } {
  let cur: z.ZodType | undefined = s;
  let description: string | undefined;
  let freeForm = false;
  for (let i = 0; cur && i < 10; i++) {
    const m = meta(cur);
    description ??= (m.description as string | undefined) ?? cur.description;
    if (m[FREE_FORM] === true) freeForm = true;
    const d = defOf(cur);
    cur = d.innerType ?? (d.type === 'lazy' ? unwrap(cur) : undefined);
  }
  return description === undefined ? { freeForm } : { description, freeForm };
}

function typeName(s: z.ZodType, names: Map<z.ZodType, string>): string {
  const u = unwrap(s);
  const named = names.get(u);
  if (named) return `[${named}](#${named.toLowerCase()})`;
  const d = defOf(u);
  if (d.type === 'array' && d.element) return `list of ${typeName(d.element, names)}`;
  if (d.type === 'record' && d.valueType) return `map of string to ${typeName(d.valueType, names)}`;
  if (d.type === 'object') return 'object';
  if (d.type === 'custom' || d.type === 'any' || d.type === 'unknown') return 'any JSON';
  return (expectedOf(s) ?? d.type).replace(/^an? /, '').replace(/ or an? /g, ' or ');
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function apiReferenceMarkdown(): string {
  const names = new Map<z.ZodType, string>();
  for (const [name, schema] of TYPES) names.set(unwrap(schema), name);
  const out: string[] = [
    '<!-- Generated by `npm run generate` from src/crds (zod schemas). Do not edit. -->',
    '# API reference: meson.dev/v1alpha1',
    '',
    'Every object below is strict: an unknown field is an error naming the field and the fields',
    'that are allowed. Fields marked *free-form* accept any JSON of the given shape (they are',
    `\`x-kubernetes-preserve-unknown-fields\` in the CRDs). \`\${EXPR}\` in any string field of a step is`,
    'interpolated when the step is launched. In operator mode, `WorkflowRun.status.steps` of a large',
    'run lists only the most relevant instances (running, failed, most recent) so that the object',
    'stays under the 1 MiB limit of Kubernetes; `status.summary` always counts every instance.',
    '',
  ];
  for (const [name, schema, note] of TYPES) {
    const shape = defOf(unwrap(schema)).shape;
    if (!shape) continue;
    out.push(`## ${name}`, '');
    if (note) out.push(note, '');
    const fields = Object.entries(shape);
    if (fields.length === 0) {
      out.push('No fields: write `{}`.', '');
      continue;
    }
    out.push('| field | type | required | description |', '|---|---|---|---|');
    for (const [field, fs] of fields) {
      const { description, freeForm } = info(fs);
      const required = !(fs as unknown as { isOptional: () => boolean }).isOptional();
      const type = typeName(fs, names) + (freeForm ? ' (free-form)' : '');
      out.push(
        `| \`${field}\` | ${escapeCell(type)} | ${required ? 'yes' : ''} | ${escapeCell(description ?? '')} |`,
      );
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
