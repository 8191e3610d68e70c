// Paths the server builds from names (namespace, run, step instance, attempt, launch id) must
// stay inside their root, whatever the names: a name is a single path segment, never `..`, a
// separator, a NUL byte or longer than a file name may be. Checked here even when the names were
// validated upstream (the REST API, the schemas): defence in depth, because one unchecked entry
// point is enough to write or delete outside the data directory.
import { createHash } from 'node:crypto';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { StoreError } from './types.ts';

/** Longest path segment in bytes (NAME_MAX of ext4, xfs, apfs). */
export const MAX_SEGMENT_BYTES = 255;

function unsafe(what: string, value: string, why: string): StoreError {
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return new StoreError('STORE_UNSAFE_PATH', `${what} ${shown} cannot name a path: ${why}`);
}

/** Throws STORE_UNSAFE_PATH unless `value` is one ordinary path segment. */
export function checkSegment(what: string, value: string): string {
  if (typeof value !== 'string' || value === '') throw unsafe(what, String(value), 'it is empty');
  if (value === '.' || value === '..') throw unsafe(what, value, 'it is a relative path segment');
  if (value.includes('\0')) throw unsafe(what, value, 'it contains a NUL byte');
  if (/[/\\]/.test(value)) throw unsafe(what, value, 'it contains a path separator');
  if (Buffer.byteLength(value) > MAX_SEGMENT_BYTES)
    throw unsafe(what, value, `it is longer than ${MAX_SEGMENT_BYTES} bytes`);
  return value;
}

/**
 * `root` joined with `segments` (each checked with checkSegment), verified to resolve inside
 * `root`: path.relative from the resolved root must neither climb ('..') nor be absolute.
 */
export function pathInside(root: string, segments: readonly { what: string; value: string }[]): string {
  for (const s of segments) checkSegment(s.what, s.value);
  const base = resolve(root);
  const full = resolve(join(base, ...segments.map((s) => s.value)));
  const rel = relative(base, full);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new StoreError(
      'STORE_UNSAFE_PATH',
      `path ${JSON.stringify(full)} is outside ${JSON.stringify(base)}`,
    );
  }
  return full;
}

/**
 * A step-instance id as a directory name: characters other than [A-Za-z0-9._-[]] become `_`,
 * and an id too long for a file name keeps its start plus a hash of the whole id (ids of
 * deeply nested foreach/loop instances grow with the nesting).
 */
export function instanceSegment(instance: string): string {
  if (typeof instance !== 'string') throw unsafe('step instance', String(instance), 'it is not a string');
  const safe = instance.replace(/[^A-Za-z0-9._\-[\]]/g, '_');
  if (safe.length <= 200) return safe;
  const hash = createHash('sha256').update(instance).digest('hex').slice(0, 16);
  return `${safe.slice(0, 180)}~${hash}`;
}
