// Helpers both stores' list and page reads share: opaque continue tokens and label matching.
import { type LabelRequirement, type ResourceObject, StoreError } from './types.ts';

export function encodeToken(parts: unknown[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeToken(token: string): unknown[] {
  try {
    const parts = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(parts)) return parts;
  } catch {
    // fall through to the error below
  }
  throw new StoreError('STORE_INVALID', `invalid continue token "${token}"`);
}

export function labelsMatch(obj: ResourceObject, want: Record<string, string> | undefined): boolean {
  if (!want) return true;
  const have = obj.metadata.labels ?? {};
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) return false;
  return true;
}

/** Whether labels `have` satisfy every requirement of a parsed label selector. */
export function labelsHold(
  have: Record<string, string> | undefined,
  want: LabelRequirement[] | undefined,
): boolean {
  for (const r of want ?? []) {
    const v = have?.[r.key];
    if (r.op === 'eq' && v !== r.value) return false;
    if (r.op === 'neq' && v === r.value) return false;
    if (r.op === 'exists' && v === undefined) return false;
    if (r.op === 'absent' && v !== undefined) return false;
  }
  return true;
}
