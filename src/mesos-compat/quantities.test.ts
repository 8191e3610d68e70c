import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fits, quantitiesFromCapacity, quantitiesFromResources, subtractRanges } from './quantities.ts';

const MB = 1024 * 1024;

describe('Mesos quantities', () => {
  it('property: tasks that fit an offer never exceed the host capacity in bytes or millicores', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 64_000 }),
        fc.array(
          fc.record({ mem: fc.integer({ min: 1, max: 10_000_000 }), cpu: fc.integer({ min: 1, max: 8000 }) }),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        (memoryBytes, cpuMillis, tasks) => {
          const cap = quantitiesFromCapacity({ cpuMillis, memoryBytes, diskBytes: 0, gpus: 0 });
          // task amounts as a framework writes them: MB and cpus with 3 decimals
          const need = quantitiesFromResources(
            tasks.flatMap((t) => [
              { name: 'mem', type: 'SCALAR' as const, scalar: { value: t.mem / 1000 } },
              { name: 'cpus', type: 'SCALAR' as const, scalar: { value: t.cpu / 1000 } },
            ]),
          );
          if (fits(need, cap)) {
            const bytes = tasks.reduce((a, t) => a + (t.mem / 1000) * MB, 0);
            expect(bytes).toBeLessThanOrEqual(memoryBytes + 1e-6);
            expect(tasks.reduce((a, t) => a + t.cpu, 0)).toBeLessThanOrEqual(cpuMillis);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('rounds a task request up and host capacity down', () => {
    expect(
      quantitiesFromResources([{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.0001 } }]).scalars.get(
        'cpus',
      ),
    ).toBe(1);
    expect(
      quantitiesFromCapacity({ cpuMillis: 0, memoryBytes: MB - 1, diskBytes: 0, gpus: 0 }).scalars.get('mem'),
    ).toBe(999);
  });

  it('requires every task port inside a free range', () => {
    const have = quantitiesFromCapacity({
      cpuMillis: 0,
      memoryBytes: 0,
      diskBytes: 0,
      gpus: 0,
      ports: [{ begin: 10, end: 20 }],
    });
    const port = (b: number, e: number) =>
      quantitiesFromResources([{ name: 'ports', type: 'RANGES', ranges: { range: [{ begin: b, end: e }] } }]);
    expect(fits(port(10, 20), have)).toBe(true);
    expect(fits(port(19, 21), have)).toBe(false);
    expect(subtractRanges([{ begin: 1, end: 10 }], [{ begin: 3, end: 4 }])).toEqual([
      { begin: 1, end: 2 },
      { begin: 5, end: 10 },
    ]);
  });
});
