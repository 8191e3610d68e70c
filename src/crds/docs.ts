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
import { MAX_NESTING } from './validate.ts';
import {
  ArtifactOutputSchema,
  ArtifactRefSchema,
  BackoffSchema,
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
  RetentionSchema,
  RetentionTtlSchema,
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

/** How manifests are checked beyond the tables: kept next to the generator so the codes stay listed. */
const VALIDATION_SECTION = [
  '## Validation',
  '',
  '`mesonctl validate FILE...` (and the REST API and the controller) check every document against',
  'the schemas above and then the rules below, and print each problem as `FILE: PATH: message (line N)`,',
  'e.g. `wf.yaml: spec.definition.sequence[1].step: expected exactly one step type of shell, container,',
  'spark, copy, subworkflow, noop; found shell and noop (line 12)`. Every issue has a stable code:',
  '',
  '| code | meaning |',
  '|---|---|',
  '| `SCHEMA_TYPE`, `SCHEMA_REQUIRED`, `SCHEMA_ENUM`, `SCHEMA_RANGE`, `SCHEMA_FORMAT` | a field of the wrong type, missing, not one of the allowed values, out of range, badly formatted |',
  '| `SCHEMA_UNKNOWN_FIELD` | a field the object does not have (with a suggestion for a misspelling) |',
  '| `SCHEMA_ONE_OF` | not exactly one step type, block kind, or Spark entry point |',
  '| `SCHEMA_BRANCH`, `BRANCH_OTHERWISE_NOT_LAST` | a branch that is neither `{when, then}` nor `{otherwise}`; `otherwise` before the last branch |',
  '| `SCHEMA_API_VERSION`, `SCHEMA_KIND`, `NAME_INVALID` | wrong apiVersion or kind; a name that is not a Kubernetes name: `metadata.name`, `spec.workflow`, `spec.restartOf.run` and `spec.initiator.parent.run` are DNS-1123 subdomains (at most 253 characters), `metadata.namespace` a DNS-1123 label (at most 63), `metadata.generateName` the prefix of a subdomain; a step instance id (`spec.initiator.parent.step`) is a step name with `[i]` indices |',
  '| `SYSTEM_FIELD` | (REST API) a field only the system writes on a run: an initiator other than `api` or `manual`, `initiator.parent`, a `meson.dev/` label or annotation |',
  '| `STEP_DUPLICATE` | two steps with the same name anywhere in the tree |',
  `| \`EXPR_*\` | an expression (parameter, \`when\`, \`while\`, \`items\`, \`\${...}\` in any string field of a step) that does not parse, names an unknown value or function, calls a function with the wrong arguments or types, or parameters that depend on each other (\`EXPR_CYCLE\`, naming the cycle); \`EXPR_UNKNOWN_STEP\` for \`steps.<name>\` of a step that does not exist; \`LOOP_INDEX\` outside a loop |`,
  "| `EXPR_STEP_ORDER` | `steps.<name>` of a step that has certainly not finished where it is read: the step itself, a later node of the same sequence, a parallel sibling, another branch of the same `or`/`xor`, a step inside the branch whose `when` reads it or inside the foreach whose `items` read it, or any step from a workflow parameter (a loop's `while` may read its own body) |",
  '| `PARAM_VALUE`, `PARAM_UNKNOWN`, `PARAM_MISSING`, `PARAM_DUPLICATE`, `PARAM_RESERVED` | value and expression both or neither (steps, subworkflows; every parameter of a cron-triggered workflow); a run or subworkflow passing a parameter its Workflow (in the same set of files) does not declare, or not passing one declared without a value; duplicate names; a foreach variable named like a built-in |',
  '| `FOREACH_SHADOWS` | a foreach `as` named like a workflow parameter or the variable of an enclosing foreach (the outer value would be unreachable inside) |',
  '| `FOREACH_NOT_LIST` | foreach `items` that cannot yield a list (a literal, arithmetic, a scalar parameter) |',
  '| `CONDITION_NOT_BOOLEAN` | a `when` or `while` whose expression gives a number, string, list or map |',
  '| `SUBWORKFLOW_SELF` | a workflow that runs itself as a subworkflow |',
  '| `CRON_*`, `TIMEZONE_INVALID` | a schedule that does not parse as Quartz 7/6-field or classic 5-field cron, or never fires (`CRON_NEVER_FIRES`: 31 February); an unknown IANA time zone, or an abbreviation such as `PST` or `BST` (ICU reads `BST` as Asia/Dhaka) |',
  '| `QUANTITY_INVALID` | a resource quantity that does not parse (`500m`, `8Gi`, `1.5` are fine) |',
  '| `YAML_SYNTAX` | YAML that does not parse (duplicate keys included) |',
  `| \`SCHEMA_TOO_DEEP\` | a document nested more than ${MAX_NESTING} levels (about 80 nested blocks) |`,
  '| `YAML_KUBECTL_BOOLEAN` | a warning only: an unquoted `on`, `yes`, `no`, `off`, `y`, `n` that kubectl (YAML 1.1) would read as a boolean; quote it (`"on":`) |',
  '',
  'The CRDs carry the same types, so `kubectl apply` rejects unknown fields, wrong types, a node',
  'with two blocks and a step with two types. Kubernetes structural schemas cannot express the rest:',
  `the definition tree is typed ${NODE_DEPTH} levels deep (deeper nodes are kept as free-form objects),`,
  'and the other rules of this section are enforced by `mesonctl validate` and by the controller, which',
  'sets a failed condition on an invalid Workflow instead of running it.',
];

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
  ['Retention', RetentionSchema],
  ['RetentionTtl', RetentionTtlSchema],
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
  ['Backoff', BackoffSchema],
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

/** Table rows for the fields of an object; unnamed nested objects get dotted rows of their own. */
function fieldRows(fields: [string, z.ZodType][], names: Map<z.ZodType, string>, prefix: string): string[] {
  const rows: string[] = [];
  for (const [field, fs] of fields) {
    const { description, freeForm } = info(fs);
    const required = !(fs as unknown as { isOptional: () => boolean }).isOptional();
    const type = typeName(fs, names) + (freeForm ? ' (free-form)' : '');
    rows.push(
      `| \`${prefix}${field}\` | ${escapeCell(type)} | ${required ? 'yes' : ''} | ${escapeCell(description ?? '')} |`,
    );
    const inner = unwrap(fs);
    const shape = defOf(inner).shape;
    if (shape && !names.has(inner) && !freeForm)
      rows.push(...fieldRows(Object.entries(shape), names, `${prefix}${field}.`));
  }
  return rows;
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
    'The CustomResourceDefinitions are in `deploy/crds` (`kubectl apply -f deploy/crds/`, client- or',
    'server-side; each is well under the size limit of client-side apply). They and this page are',
    'generated from the zod schemas in `src/crds` by `npm run generate`; a unit test fails when they are',
    'stale. `kubectl get meson` lists every kind (category `meson`; short names `mwf`, `mwfv`, `mwfr`, `da`).',
    'Quote the notification key as `"on":` in YAML that kubectl reads (YAML 1.1 reads a plain `on` as',
    '`true`); `mesonctl validate` warns about it.',
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
    out.push(...fieldRows(fields, names, ''));
    out.push('');
  }
  out.push(...VALIDATION_SECTION);
  return `${out.join('\n')}\n`;
}
