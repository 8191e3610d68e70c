// Canonical JSON and the content hash of a Workflow spec. The canonical form is pure (sorted
// object keys, `undefined` members dropped, no whitespace), so two specs that mean the same
// thing hash the same whatever their key order or the YAML they came from.
import { createHash } from 'node:crypto';
import type { WorkflowSpec } from '../crds/index.ts';

/**
 * Stable JSON text: object keys sorted by code unit, `undefined` members omitted (as JSON
 * does), arrays in order. Throws TypeError on values JSON cannot represent (functions,
 * bigint, non-finite numbers) or on cycles, rather than hashing something lossy.
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

function write(value: unknown, seen: Set<object>): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cannot canonicalise the number ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (seen.has(value)) throw new TypeError('cannot canonicalise a cyclic value');
      seen.add(value);
      let out: string;
      if (Array.isArray(value))
        out = `[${value.map((v) => (v === undefined ? 'null' : write(v, seen))).join(',')}]`;
      else {
        const parts: string[] = [];
        for (const k of Object.keys(value).sort()) {
          const v = (value as Record<string, unknown>)[k];
          if (v !== undefined) parts.push(`${JSON.stringify(k)}:${write(v, seen)}`);
        }
        out = `{${parts.join(',')}}`;
      }
      seen.delete(value);
      return out;
    }
    default:
      throw new TypeError(`cannot canonicalise a ${typeof value}`);
  }
}

/**
 * The fields of a Workflow spec that make up its content. `activeVersion` is a pointer (the
 * rollback pin) and `suspend` a switch on the triggers, not content: changing them creates no
 * version and neither is frozen into one.
 */
export function versionedSpec(spec: WorkflowSpec): Omit<WorkflowSpec, 'activeVersion' | 'suspend'> {
  const { activeVersion: _pin, suspend: _suspend, ...content } = spec;
  return content;
}

/** `sha256:<hex>` of the canonical JSON of the versioned part of `spec`. */
export function specHash(spec: WorkflowSpec): string {
  return `sha256:${createHash('sha256')
    .update(canonicalJson(versionedSpec(spec)))
    .digest('hex')}`;
}
