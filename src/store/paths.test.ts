import { isAbsolute, join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSegment, instanceSegment, MAX_SEGMENT_BYTES, pathInside } from './paths.ts';
import { SqliteStore } from './sqlite.ts';

const ROOT = join('/tmp', 'meson-paths-root');
const unsafe = expect.objectContaining({ name: 'StoreError', code: 'STORE_UNSAFE_PATH' });

/** Names that must never become a path: traversal, separators, absolute, NUL, too long, empty. */
const HOSTILE = [
  '..',
  '.',
  '../x',
  'a/../../b',
  '/etc',
  '/',
  'a/b',
  '..\\..\\x',
  'a\0b',
  '\0',
  '',
  'x'.repeat(MAX_SEGMENT_BYTES + 1),
  'é'.repeat(MAX_SEGMENT_BYTES / 2 + 1), // short in characters, too long in bytes
  decodeURIComponent('%2e%2e'), // what a router hands over for %2e%2e
  decodeURIComponent('%2e%2e%2fetc'),
  decodeURIComponent('%2Fetc%2Fpasswd'),
];

function inside(p: string): boolean {
  const rel = relative(ROOT, p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

describe('path containment', () => {
  it('accepts ordinary names and returns a path under the root', () => {
    expect(pathInside(ROOT, [{ what: 'run', value: 'daily-x7k2' }])).toBe(join(ROOT, 'daily-x7k2'));
    expect(checkSegment('run', 'a..b')).toBe('a..b'); // dots inside a name are fine
    expect(checkSegment('run', '...')).toBe('...');
  });

  it.each(HOSTILE)('refuses %j as a namespace, run or launch id', (name) => {
    expect(() => pathInside(ROOT, [{ what: 'namespace', value: name }])).toThrow(unsafe);
    expect(() =>
      pathInside(ROOT, [
        { what: 'ns', value: 'ok' },
        { what: 'run', value: name },
      ]),
    ).toThrow(unsafe);
  });

  it('store.attemptDir and store.runDir refuse every hostile name in every position', () => {
    const store = new SqliteStore({ dir: ':memory:', attemptsDir: ROOT });
    for (const bad of HOSTILE) {
      expect(() => store.attemptDir(bad, 'run', 'a', 1, 'l1'), `namespace ${JSON.stringify(bad)}`).toThrow(
        unsafe,
      );
      expect(() => store.attemptDir('ns', bad, 'a', 1, 'l1'), `run ${JSON.stringify(bad)}`).toThrow(unsafe);
      expect(() => store.attemptDir('ns', 'run', 'a', 1, bad), `launch ${JSON.stringify(bad)}`).toThrow(
        unsafe,
      );
      expect(() => store.runDir(bad, 'run')).toThrow(unsafe);
      expect(() => store.runDir('ns', bad)).toThrow(unsafe);
      // a step instance id is made path-safe (separators and NUL become `_`) or refused, never escapes
      let dir: string | undefined;
      try {
        dir = store.attemptDir('ns', 'run', bad, 1, 'l1');
      } catch (err) {
        expect(err).toEqual(unsafe);
      }
      if (dir !== undefined) {
        expect(inside(dir), dir).toBe(true);
        expect(dir.startsWith(join(ROOT, 'ns', 'run') + sep)).toBe(true);
        expect(dir.split(sep)).not.toContain('..');
        expect(dir).not.toContain('\0');
      }
    }
    for (const attempt of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => store.attemptDir('ns', 'run', 'a', attempt, 'l1')).toThrow(unsafe);
    }
    expect(store.attemptDir('ns', 'run', 'b[2].c', 3, 'l1')).toBe(join(ROOT, 'ns', 'run', 'b[2].c', '3-l1'));
    store.close();
  });

  it('shortens very long step-instance ids with a hash, keeping distinct ids distinct', () => {
    const a = `${'loop[1].'.repeat(60)}a`;
    const b = `${'loop[1].'.repeat(60)}b`;
    expect(Buffer.byteLength(instanceSegment(a))).toBeLessThanOrEqual(MAX_SEGMENT_BYTES);
    expect(instanceSegment(a)).not.toBe(instanceSegment(b));
    expect(instanceSegment('b[2]')).toBe('b[2]');
  });
});
