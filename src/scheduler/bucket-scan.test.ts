import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Scheduler } from './scheduler.ts';
import { GiB, offer, task } from './test-helpers.ts';
import type { HostFilter, SchedulerOptions } from './types.ts';

/** A filter that allows everything; any plugin filter turns remembered scans off. */
const allowAll: HostFilter = { name: 'allow-all', filter: () => undefined };

describe('remembered bucket scans', () => {
  it('place exactly as scanning every bucket afresh, across passes and offer changes', () => {
    // Many hosts in few states, so that buckets hold more than SCAN_MIN_HOSTS hosts, and tasks
    // of few shapes, so that scans are reused; offers are replaced between passes.
    const stateArb = fc.record({
      usedTenths: fc.integer({ min: 0, max: 40 }),
      memUsedGi: fc.integer({ min: 0, max: 32 }),
      pods: fc.integer({ min: 0, max: 4 }),
    });
    const shapeArb = fc.record({
      millis: fc.constantFrom(0, 50, 100, 250, 1000),
      memMi: fc.constantFrom(0, 500, 4096),
      pods: fc.constantFrom(0, 1, 2),
      // Label constraints are part of a remembered scan's key.
      zone: fc.constantFrom(undefined, 'a', 'b'),
    });
    fc.assert(
      fc.property(
        fc.array(stateArb, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 20, max: 120 }),
        // Up to 10 shapes: more than a bucket keeps scans for (SCAN_SHAPES).
        fc.array(fc.array(shapeArb, { minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 80 }),
        fc.constantFrom(null, 0.3, 0.5, 0.9),
        fc.boolean(),
        fc.integer(),
        // Shapes one after the other, or interleaved task by task.
        fc.boolean(),
        (states, hostCount, passes, perShape, goodEnough, spread, seed, interleave) => {
          const run = (filters: HostFilter[]) => {
            const options: SchedulerOptions = {
              goodEnough,
              seed,
              filters,
              fitness: spread ? 'spread' : 'binpack',
            };
            const s = new Scheduler(options);
            const offerFor = (i: number, pass: number) => {
              const st = states[(i + pass) % states.length]!;
              return offer(`h${i}`, 0, 0, {
                id: `h${i}-offer-${pass}`,
                resources: {
                  cpuMillis: 4000 - st.usedTenths * 100,
                  memoryBytes: (32 - st.memUsedGi) * GiB,
                  scalars: { pods: st.pods },
                },
                capacity: { cpuMillis: 4000, memoryBytes: 32 * GiB, diskBytes: 0, gpus: 0 },
                attributes: { zone: ['a', 'b', 'c'][i % 3]! },
              });
            };
            for (let i = 0; i < hostCount; i++) s.addOffer(offerFor(i, 0));
            const out: string[] = [];
            passes.forEach((shapes, pass) => {
              // Between passes, every third host's offer is replaced by one in another state.
              if (pass > 0) {
                for (let i = 0; i < hostCount; i += 3) {
                  s.rescindOffer(`h${i}-offer-${pass - 1}`);
                  s.rescindOffer(`h${i}-offer-0`);
                  s.addOffer(offerFor(i, pass));
                }
              }
              let n = 0;
              for (const [j, shape] of shapes.entries()) {
                for (let k = 0; k < perShape; k++) {
                  s.enqueue(
                    task(`p${pass}-${n++}`, 0, 0, {
                      submittedAt: interleave ? k * shapes.length + j : n,
                      resources: {
                        cpuMillis: shape.millis,
                        memoryBytes: shape.memMi * 1024 * 1024,
                        scalars: { pods: shape.pods },
                      },
                      ...(shape.zone ? { constraints: { nodeSelector: { zone: shape.zone } } } : {}),
                    }),
                  );
                }
              }
              const res = s.schedule(0);
              for (const p of res.placements) out.push(`${p.taskId}@${p.hostname}:${p.score}`);
              for (const u of res.unplaced) out.push(`${u.taskId}:${u.outcome}`);
            });
            return out;
          };
          expect(run([])).toEqual(run([allowAll]));
        },
      ),
      { numRuns: 150 },
    );
  });
});
