// CustomResourceDefinitions generated from the zod schemas (`npm run generate` writes them to
// deploy/crds). The openAPIV3Schema is *structural* (Kubernetes' rules): every field typed, no
// $ref, no typed alternatives under anyOf/oneOf, and x-kubernetes-preserve-unknown-fields only
// where the API is free-form. Two consequences, documented in docs/api-reference.md:
//  - the definition tree is recursive, which a structural schema cannot express: it is expanded
//    NODE_DEPTH levels deep and nodes below are kept as free-form objects;
//  - "exactly one" rules are expressed as JSON Schema the API server checks (one block per node:
//    min/maxProperties 1; one step type, one Spark entry point: oneOf of `required` lists); the
//    other rules (names, expressions, cron, quantities, ...) are enforced by the validator
//    (src/crds/validate.ts) and the controller.
import { stringify } from 'yaml';
import { z } from 'zod';
import { DataArtifactSchema } from './artifact.ts';
import { API_GROUP, EXPECTED, FREE_FORM } from './common.ts';
import { WorkflowRunSchema } from './run.ts';
import { WorkflowRunShardSchema } from './shard.ts';
import { WorkflowSchema, WorkflowVersionSchema } from './workflow.ts';

/** How many times one recursive schema (a definition node, a branch) is expanded on a path. */
export const NODE_DEPTH = 2;

type Json = Record<string, unknown>;

const SAFE_INT = Number.MAX_SAFE_INTEGER;
const DROP_KEYS = new Set([
  '$schema',
  'definitions',
  '$defs',
  'additionalProperties',
  'id',
  '$id',
  FREE_FORM,
  EXPECTED,
]);

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The definition a node refers to: `{$ref}` or zod's `{allOf: [{$ref}], description}` wrapper. */
function refOf(node: Json): string | undefined {
  if (typeof node.$ref === 'string') return node.$ref;
  const all = node.allOf;
  if (Array.isArray(all) && all.length === 1 && isObj(all[0]) && typeof all[0].$ref === 'string')
    return all[0].$ref;
  return undefined;
}

function freeFormNode(node: Json): Json {
  const out: Json = { 'x-kubernetes-preserve-unknown-fields': true };
  if (node.type === 'object') out.type = 'object';
  if (typeof node.description === 'string') out.description = node.description;
  return out;
}

/**
 * Makes one zod JSON Schema (openapi-3.0 target) structural: resolves references (bounded depth
 * for recursive ones), turns free-form marks into x-kubernetes-preserve-unknown-fields, drops
 * what Kubernetes rejects or ignores (additionalProperties: false, safe-integer bounds).
 */
export function toStructural(root: Json): Json {
  const defs = (isObj(root.definitions) ? root.definitions : isObj(root.$defs) ? root.$defs : {}) as Json;
  const resolve = (ref: string): Json => {
    const name = ref.split('/').pop()!;
    const d = defs[name];
    if (!isObj(d)) throw new Error(`unresolvable $ref ${ref}`);
    return d;
  };
  const walk = (node: unknown, stack: string[]): unknown => {
    if (Array.isArray(node)) return node.map((n) => walk(n, stack));
    if (!isObj(node)) return node;
    if (node[FREE_FORM] === true) return freeFormNode(node);
    const ref = refOf(node);
    if (ref !== undefined) {
      const target = resolve(ref);
      const description = node.description ?? target.description;
      if (stack.filter((r) => r === ref).length >= NODE_DEPTH) {
        return {
          type: 'object',
          'x-kubernetes-preserve-unknown-fields': true,
          description: `${description ?? 'Nested node'} (nested deeper than the CRD schema expands; validated by the controller)`,
        };
      }
      const expanded = walk(target, [...stack, ref]) as Json;
      return description === undefined ? expanded : { ...expanded, description };
    }
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) {
      if (DROP_KEYS.has(k) && !(k === 'additionalProperties' && isObj(v) && Object.keys(v).length > 0))
        continue;
      if ((k === 'maximum' && v === SAFE_INT) || (k === 'minimum' && v === -SAFE_INT)) continue;
      // zod spells timestamps as format + a long regex; the API server checks the format itself.
      if (k === 'pattern' && node.format === 'date-time') continue;
      if (k === 'properties' && isObj(v)) {
        out[k] = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, walk(s, stack)]));
        continue;
      }
      out[k] = walk(v, stack);
    }
    return out;
  };
  return walk(root, []) as Json;
}

export interface CrdKind {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  schema: z.ZodType;
  columns: { name: string; type: string; jsonPath: string; description: string; priority?: number }[];
  /** Internal kinds (written only by the operator): no status subresource, not in category `meson`. */
  internal?: boolean;
}

const AGE = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};

export const CRD_KINDS: CrdKind[] = [
  {
    kind: 'Workflow',
    plural: 'workflows',
    singular: 'workflow',
    shortNames: ['mwf'],
    schema: WorkflowSchema,
    columns: [
      { name: 'Latest', type: 'integer', jsonPath: '.status.latestVersion', description: 'Latest version.' },
      {
        name: 'Active',
        type: 'integer',
        jsonPath: '.status.activeVersion',
        description: 'Version new runs use.',
      },
      {
        name: 'Last Run',
        type: 'string',
        jsonPath: '.status.lastRunPhase',
        description: 'Phase of the last run.',
      },
      AGE,
    ],
  },
  {
    kind: 'WorkflowVersion',
    plural: 'workflowversions',
    singular: 'workflowversion',
    shortNames: ['mwfv'],
    schema: WorkflowVersionSchema,
    columns: [
      { name: 'Workflow', type: 'string', jsonPath: '.spec.workflow', description: 'Workflow name.' },
      { name: 'Version', type: 'integer', jsonPath: '.spec.version', description: 'Version number.' },
      { name: 'Hash', type: 'string', jsonPath: '.spec.specHash', description: 'Spec hash.', priority: 1 },
      AGE,
    ],
  },
  {
    kind: 'WorkflowRun',
    plural: 'workflowruns',
    singular: 'workflowrun',
    shortNames: ['mwfr'],
    schema: WorkflowRunSchema,
    columns: [
      { name: 'Workflow', type: 'string', jsonPath: '.spec.workflow', description: 'Workflow name.' },
      { name: 'Version', type: 'integer', jsonPath: '.status.version', description: 'Version being run.' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Run phase.' },
      // progress of a large run at a glance: its instances live in shards, the summary counts them
      { name: 'Steps', type: 'integer', jsonPath: '.status.summary.total', description: 'Step instances.' },
      {
        name: 'Succeeded',
        type: 'integer',
        jsonPath: '.status.summary.phases.Succeeded',
        description: 'Step instances that succeeded.',
      },
      {
        name: 'Failed',
        type: 'integer',
        jsonPath: '.status.summary.phases.Failed',
        description: 'Step instances that failed.',
      },
      { name: 'Started', type: 'date', jsonPath: '.status.startTime', description: 'When the run started.' },
      {
        name: 'Duration',
        type: 'string',
        jsonPath: '.status.duration',
        description: 'Run time once finished.',
      },
    ],
  },
  {
    kind: 'DataArtifact',
    plural: 'dataartifacts',
    singular: 'dataartifact',
    shortNames: ['da'],
    schema: DataArtifactSchema,
    columns: [
      { name: 'Name', type: 'string', jsonPath: '.spec.name', description: 'Data set name.' },
      { name: 'Partition', type: 'string', jsonPath: '.spec.partition', description: 'Partition keys.' },
      { name: 'Announced', type: 'date', jsonPath: '.status.announcedAt', description: 'When announced.' },
    ],
  },
];

/** Kinds the operator's store keeps for itself (src/store/kubernetes.ts); not part of the user API. */
export const INTERNAL_CRD_KINDS: CrdKind[] = [
  {
    kind: 'WorkflowRunShard',
    plural: 'workflowrunshards',
    singular: 'workflowrunshard',
    shortNames: ['mwfrs'],
    schema: WorkflowRunShardSchema,
    internal: true,
    columns: [
      { name: 'Run', type: 'string', jsonPath: '.spec.run', description: 'The WorkflowRun.' },
      { name: 'Index', type: 'integer', jsonPath: '.spec.index', description: 'Shard number.' },
      { name: 'Instances', type: 'integer', jsonPath: '.spec.instances', description: 'Step instances.' },
      {
        name: 'Tasks',
        type: 'integer',
        jsonPath: '.spec.tasks',
        description: 'Queued or launched attempts.',
      },
      AGE,
    ],
  },
];

/** The openAPIV3Schema of one kind. */
export function openApiSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Json;
  const structural = toStructural(json);
  const props = structural.properties as Json;
  // The API server owns these: apiVersion/kind are plain strings, metadata must stay untyped.
  props.apiVersion = { type: 'string', description: 'meson.dev/v1alpha1' };
  props.kind = { type: 'string' };
  props.metadata = { type: 'object' };
  structural.required = ['spec'];
  return structural;
}

export function crdObject(k: CrdKind): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${k.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: k.kind,
        listKind: `${k.kind}List`,
        plural: k.plural,
        singular: k.singular,
        shortNames: k.shortNames,
        ...(k.internal ? {} : { categories: ['meson'] }),
      },
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          ...(k.internal ? {} : { subresources: { status: {} } }),
          additionalPrinterColumns: k.columns,
          schema: { openAPIV3Schema: openApiSchema(k.schema) },
        },
      ],
    },
  };
}

const HEADER = '# Generated by `npm run generate` from src/crds (zod schemas). Do not edit.\n';

/** Every CRD file: name under deploy/crds and byte-stable YAML (sorted keys). */
export function crdFiles(): { file: string; yaml: string }[] {
  return [...CRD_KINDS, ...INTERNAL_CRD_KINDS].map((k) => ({
    file: `${k.plural}.${API_GROUP}.yaml`,
    yaml:
      HEADER +
      // YAML 1.1 quoting: kubectl reads YAML 1.1, where a plain `on` (the Notification field) is true.
      stringify(crdObject(k), {
        version: '1.1',
        sortMapEntries: true,
        lineWidth: 0,
        aliasDuplicateObjects: false,
      }),
  }));
}
