// biome-ignore-all lint/suspicious/noThenProperty: the workflow API names a branch body `then`
import { describe, expect, it } from 'vitest';
import { entryMatches, MAX_DEPTH, startedBy, workflowConsumes } from './lineage.ts';

const views = { name: 'views', partition: { country: 'US', dateint: 20240501 } };

describe('artifact lineage (pure)', () => {
  it('finds trigger entries and step inputs anywhere in the block structure', () => {
    const spec = {
      triggers: { artifacts: [{ name: 'views', partition: { country: 'US' } }, { name: 'clicks' }] },
      definition: {
        sequence: [
          {
            step: {
              name: 'first',
              noop: {},
              inputs: [{ name: 'views', partition: { dateint: '${dateint}' } }],
            },
          },
          {
            parallel: [
              {
                xor: [
                  {
                    when: 'true',
                    then: { step: { name: 'in-branch', noop: {}, inputs: [{ name: 'views' }] } },
                  },
                ],
              },
              {
                foreach: {
                  items: 'range(2)',
                  as: 'i',
                  do: {
                    loop: {
                      while: 'false',
                      do: { step: { name: 'deep', noop: {}, inputs: [{ name: 'views' }] } },
                    },
                  },
                },
              },
              { or: [{ otherwise: { step: { name: 'other', noop: {}, inputs: [{ name: 'clicks' }] } } }] },
            ],
          },
        ],
      },
    };
    expect(workflowConsumes(spec, views)).toEqual([
      { via: 'trigger', partition: { country: 'US' } },
      { via: 'input', step: 'first', partition: { dateint: '${dateint}' } },
      { via: 'input', step: 'in-branch' },
      { via: 'input', step: 'deep' },
    ]);
  });

  it('matches partitions as the trigger and the engine read them', () => {
    // every key the entry fixes must be in the artifact with the same value (as strings)
    expect(entryMatches({ name: 'views', partition: { dateint: '20240501' } }, views, false)).toBe(true);
    expect(entryMatches({ name: 'views', partition: { country: 'FR' } }, views, false)).toBe(false);
    expect(entryMatches({ name: 'views', partition: { hour: '1' } }, views, false)).toBe(false);
    expect(entryMatches({ name: 'view', partition: {} }, views, false)).toBe(false);
    // a template in a step input matches any value of that key; in a trigger it is literal
    expect(entryMatches({ name: 'views', partition: { dateint: '${d}' } }, views, true)).toBe(true);
    expect(entryMatches({ name: 'views', partition: { dateint: '${d}' } }, views, false)).toBe(false);
    expect(entryMatches({ name: 'views', partition: { hour: '${h}' } }, views, true)).toBe(false);
  });

  it('says which runs an artifact trigger started with this very artifact', () => {
    const run = (initiator: unknown) => ({ spec: { workflow: 'w', initiator } });
    const fired = {
      type: 'artifact',
      artifacts: [{ name: 'views', partition: { dateint: '20240501', country: 'US' } }],
    };
    expect(startedBy(run(fired), views)).toBe(true);
    expect(startedBy(run({ ...fired, type: 'manual' }), views)).toBe(false);
    expect(
      startedBy(
        run({ type: 'artifact', artifacts: [{ name: 'views', partition: { country: 'US' } }] }),
        views,
      ),
    ).toBe(false);
    expect(startedBy(run({ type: 'artifact', artifacts: 'views' }), views)).toBe(false);
    expect(startedBy(null, views)).toBe(false);
  });

  it('bounds the walk of a hostile definition: deep nesting, huge fan-out, cycles, junk shapes', () => {
    // nested far beyond MAX_DEPTH: the steps past it are not reached, and nothing overflows the stack
    let deep: Record<string, unknown> = { step: { name: 'bottom', inputs: [{ name: 'views' }] } };
    for (let i = 0; i < 100_000; i++) deep = { sequence: [deep] };
    expect(workflowConsumes({ definition: deep }, views)).toEqual([]);
    let shallow: Record<string, unknown> = { step: { name: 'reached', inputs: [{ name: 'views' }] } };
    for (let i = 0; i < MAX_DEPTH; i++) shallow = { sequence: [shallow] };
    expect(workflowConsumes({ definition: shallow }, views)).toEqual([{ via: 'input', step: 'reached' }]);
    // a million siblings: the walk stops at its node budget, fast
    const wide = {
      parallel: Array.from({ length: 1_000_000 }, () => ({
        step: { name: 's', inputs: [{ name: 'views' }] },
      })),
    };
    // the walk stops at its node budget (no timing here: the budget is what bounds the time;
    // a million-sibling walk is 3-16 ms, measured once by hand)
    expect(workflowConsumes({ definition: wide }, views).length).toBeLessThan(10_001);
    // a cycle (objects built in-process; JSON cannot hold one, but the walk must not loop)
    const cyclic: Record<string, unknown> = { sequence: [] };
    (cyclic.sequence as unknown[]).push(cyclic);
    expect(workflowConsumes({ definition: cyclic }, views)).toEqual([]);
    // junk shapes: nothing thrown, nothing found
    for (const junk of [
      null,
      1,
      'x',
      [],
      { triggers: 'x' },
      { triggers: { artifacts: [1, null, { name: 3 }] } },
    ])
      expect(workflowConsumes(junk, views)).toEqual([]);
    // a step-shaped object in a parameter value or a step's own fields is not a step
    const decoy = {
      parameters: [{ name: 'p', value: { step: { name: 'fake', inputs: [{ name: 'views' }] } } }],
      definition: {
        step: {
          name: 'real',
          noop: {},
          subworkflow: { step: { name: 'fake2', inputs: [{ name: 'views' }] } },
        },
      },
    };
    expect(workflowConsumes(decoy, views)).toEqual([]);
  });
});
