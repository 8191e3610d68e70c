import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateDocument, validateManifests } from './validate.ts';

const BASE = parse(`
apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: w }
spec:
  parameters: [{ name: a, value: 1 }, { name: b, expression: "a + 1" }]
  triggers: { cron: [{ schedule: "0 0 * * *", timezone: UTC }] }
  definition:
    sequence:
      - step: { name: s, shell: { script: "echo \${a}" }, resources: { cpus: 1, memory: 1Gi } }
      - foreach:
          items: "range(3)"
          as: x
          do: { loop: { do: { step: { name: t, noop: {} } }, while: "LOOP_INDEX < x", maxIterations: 3 } }
      - xor: [{ when: "b > 1", then: { step: { name: u, noop: {} } } }, { otherwise: { step: { name: v, noop: {} } } }]
`) as unknown;

/** Every path to a value inside `v`. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) for (const [i, x] of v.entries()) out.push(...paths(x, [...prefix, i]));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function replaceAt(v: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = structuredClone(v) as Record<string | number, unknown>;
  let cur = copy;
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = replacement;
  return copy;
}

const ALL_PATHS = paths(BASE);

describe('validateDocument (property)', () => {
  it('accepts the base document', () => {
    expect(validateDocument(BASE)).toEqual([]);
  });

  it('never throws, and reports an issue with a path and message, whatever replaces any part of a valid document', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALL_PATHS), fc.jsonValue({ maxDepth: 3 }), (path, replacement) => {
        const doc = replaceAt(BASE, path, replacement);
        const issues = validateDocument(doc);
        for (const i of issues) {
          expect(typeof i.path).toBe('string');
          expect(i.message.length).toBeGreaterThan(0);
          expect(i.code).toMatch(/^[A-Z][A-Z_]+$/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary YAML text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        validateManifests(text, 'x.yaml');
      }),
      { numRuns: 1000 },
    );
  });
});
