import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { artifactMatches } from './policy.ts';
import type { ArtifactRecord, ArtifactSelector } from './types.ts';
import { WaitIndex } from './wait-index.ts';

const key = fc.constantFrom('country', 'dateint', 'hour', 'region');
const value = fc.constantFrom('US', 'CA', '1', '2');
const selector: fc.Arbitrary<ArtifactSelector> = fc.record({
  name: fc.constantFrom('views', 'plays'),
  partition: fc.dictionary(key, value, { maxKeys: 3 }),
});
const artifact: fc.Arbitrary<ArtifactRecord> = fc.record({
  name: fc.constantFrom('views', 'plays'),
  partition: fc.dictionary(key, fc.oneof(value, fc.constant(1), fc.constant(2))),
});

describe('WaitIndex', () => {
  it('finds exactly the waiters with a matching selector (against a brute-force scan)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(selector, { minLength: 1, maxLength: 3 }), { maxLength: 20 }),
        fc.array(fc.nat(19)),
        artifact,
        (waiters, removed, a) => {
          const index = new WaitIndex<number>();
          waiters.forEach((sels, w) => {
            index.add(w, sels);
          });
          const gone = new Set(removed.filter((r) => r < waiters.length));
          for (const r of gone) index.remove(r, waiters[r] as ArtifactSelector[]);
          const expected = waiters
            .map((sels, w) => (!gone.has(w) && sels.some((s) => artifactMatches(s, a)) ? w : -1))
            .filter((w) => w >= 0);
          const found = [...index.candidates(a)].filter((w) =>
            (waiters[w] as ArtifactSelector[]).some((s) => artifactMatches(s, a)),
          );
          expect(found.sort((x, y) => x - y)).toEqual(expected);
          // Candidates are only waiters whose selectors could match (no false positives here).
          expect(index.candidates(a).size).toBe(expected.length);
        },
      ),
    );
  });

  it('falls back to a scan by name for artifacts with many partition keys', () => {
    const index = new WaitIndex<string>();
    index.add('w', [{ name: 'v', partition: { a: '1' } }]);
    const partition = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, i]));
    expect([...index.candidates({ name: 'v', partition: { ...partition, a: 1 } })]).toEqual(['w']);
  });
});
