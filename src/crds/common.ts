// Building blocks shared by the four kinds: object metadata, conditions, quantities,
// partitions and the "exactly one of these keys" rule used by steps and definition nodes.
import { z } from 'zod';

export const API_GROUP = 'meson.dev';
export const API_VERSION = 'meson.dev/v1alpha1';

/** Stable issue code for "exactly one of these keys" violations (steps, nodes, spark jobs). */
export const ONE_OF_CODE = 'SCHEMA_ONE_OF';

/**
 * Marks a schema as free-form JSON: the CRD generator emits `x-kubernetes-preserve-unknown-fields`
 * for it instead of a typed schema. Use only where the spec is free-form (parameter values,
 * output parameters, Spark conf, partitions, number-or-string quantities).
 */
export const FREE_FORM = 'x-meson-free-form';

/** Meta key: how the validator words what a schema expects (for unions, where zod's words are poor). */
export const EXPECTED = 'x-meson-expected';

export function freeForm<T extends z.ZodType>(schema: T, description: string, expected?: string): T {
  return schema.meta({ description, [FREE_FORM]: true, ...(expected ? { [EXPECTED]: expected } : {}) });
}

/** Any JSON value (parameter values, output parameters, resolved parameters). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export const JsonValueSchema: z.ZodType<JsonValue> = freeForm(
  z.json() as z.ZodType<JsonValue>,
  'Any JSON value.',
  'any JSON value',
);

/** RFC 3339 timestamp, as Kubernetes writes them. */
export const TimestampSchema = z.iso.datetime({ offset: true }).describe('RFC 3339 timestamp.');

/**
 * A resource quantity: a plain number (`2`, `0.5`) or a Kubernetes quantity string
 * (`500m`, `8Gi`). Parsed exactly by src/offer-adapter/quantity.ts; the schema only checks the
 * JSON type, the validator checks the syntax.
 */
export const QuantitySchema = freeForm(
  z.union([z.number().nonnegative(), z.string().min(1)]),
  'A number or a Kubernetes quantity string such as 500m, 512Mi, 8Gi.',
  'a non-negative number or a quantity string such as 500m, 512Mi or 8Gi',
);
export type QuantityValue = z.infer<typeof QuantitySchema>;

/** Scalar partition value; values compare as strings when matching artifacts. */
export const PartitionSchema = freeForm(
  z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  'Partition keys and values of a data artifact (values compare as strings; may interpolate expressions).',
);
export type Partition = z.infer<typeof PartitionSchema>;

export const StringMapSchema = z.record(z.string(), z.string());

/**
 * Kubernetes ObjectMeta: only the fields users write are typed; everything the API server adds
 * (managedFields, ownerReferences, ...) passes through untouched.
 */
export const ObjectMetaSchema = z
  .looseObject({
    name: z.string().min(1).optional(),
    generateName: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
    labels: StringMapSchema.optional(),
    annotations: StringMapSchema.optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    generation: z.number().int().optional(),
    // creationTimestamp, deletionTimestamp, managedFields...: server-written, passed through
    // untyped (client libraries may hand them over as Date objects).
  })
  .describe('Standard Kubernetes object metadata.');
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

/** Kubernetes metav1.Condition (reason/message/lastTransitionTime optional for convenience). */
export const ConditionSchema = z.strictObject({
  type: z.string().min(1).describe('Condition type, e.g. Succeeded, Failed, Ready.'),
  status: z.enum(CONDITION_STATUSES),
  observedGeneration: z.number().int().nonnegative().optional(),
  lastTransitionTime: TimestampSchema.optional(),
  reason: z.string().optional().describe('CamelCase machine-readable reason.'),
  message: z.string().optional().describe('Human-readable detail.'),
});
export type Condition = z.infer<typeof ConditionSchema>;

/**
 * A list whose items are identified by `key` (Kubernetes list-type map): server-side apply merges
 * by key and the API server rejects two items with the same key.
 */
export function keyedList<T extends z.ZodType>(item: T, key: string) {
  return z.array(item).meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [key] });
}

export const ConditionsSchema = keyedList(ConditionSchema, 'type').describe(
  'Kubernetes-style conditions, one per type (Succeeded, Failed, Ready...).',
);

export function listOf(keys: readonly string[]): string {
  return keys.join(', ');
}

function andList(keys: string[]): string {
  if (keys.length <= 1) return keys.join('');
  return `${keys.slice(0, -1).join(', ')} and ${keys[keys.length - 1]}`;
}

/**
 * A refinement: the object must hold exactly one of `keys`. Runs even when the children had
 * errors, so that "two step types" is reported alongside their own problems.
 */
export function exactlyOne(keys: readonly string[], what: string) {
  return z.superRefine<Record<string, unknown>>(
    (value, ctx) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
      const found = keys.filter((k) => value[k] !== undefined);
      if (found.length === 1) return;
      ctx.addIssue({
        code: 'custom',
        params: { code: ONE_OF_CODE },
        message: `expected exactly one ${what} of ${listOf(keys)}; found ${found.length === 0 ? 'none' : andList(found)}`,
        input: value,
      });
    },
    { when: () => true },
  );
}

/** A namespaced resource of this API: apiVersion, kind, metadata, spec and an optional status. */
export function resourceSchema<K extends string, S extends z.ZodType, T extends z.ZodType>(
  kind: K,
  spec: S,
  status: T,
) {
  return z.strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(kind),
    metadata: ObjectMetaSchema,
    spec,
    status: status.optional(),
  });
}
