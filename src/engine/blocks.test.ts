// biome-ignore-all lint/suspicious/noThenProperty: the workflow API names a branch body `then`
import { describe, expect, it } from 'vitest';
import type { DefinitionNode } from '../crds/index.ts';
import { Driver, noop, sh, shellText } from './test-driver.ts';

const ids = (d: Driver) => d.launches.map((l) => l.replace(/#\d+$/, ''));

describe('sequence', () => {
  it('runs nodes one after another and succeeds', () => {
    const d = new Driver({ sequence: [sh('a'), sh('b'), sh('c')] });
    expect(d.launches).toEqual(['a#1']);
    d.settle();
    expect(d.launches).toEqual(['a#1', 'b#1', 'c#1']);
    expect(d.phase).toBe('Succeeded');
    expect(d.phases()).toEqual({ a: 'Succeeded', b: 'Succeeded', c: 'Succeeded' });
    const cond = Object.fromEntries((d.status().conditions ?? []).map((c) => [c.type, c.status]));
    expect(cond).toEqual({ Running: 'False', Succeeded: 'True', Failed: 'False' });
  });

  it('a failed node fails the sequence and the run; later nodes never start', () => {
    const d = new Driver(
      { sequence: [sh('a'), sh('b'), sh('c')] },
      { script: { b: { fail: 'exit 3', exitCode: 3 } } },
    );
    d.settle();
    expect(ids(d)).toEqual(['a', 'b']);
    expect(d.phase).toBe('Failed');
    expect(d.inst('b')).toMatchObject({ phase: 'Failed', exitCode: 3, message: 'exit 3' });
    expect(d.status().message).toBe('step b failed: exit 3');
    expect(d.actions.at(-1)).toEqual({
      type: 'RunFinished',
      phase: 'Failed',
      message: 'step b failed: exit 3',
    });
  });

  it('completes a run of noops synchronously at start (noops never reach an executor)', () => {
    const d = new Driver({ sequence: [noop('a'), noop('b')] });
    expect(d.launches).toEqual([]);
    expect(d.phase).toBe('Succeeded');
    expect(d.inst('a')).toMatchObject({ phase: 'Succeeded', attempts: 1 });
  });
});

describe('parallel', () => {
  it('launches every branch at once and joins when all are done', () => {
    const d = new Driver({ sequence: [{ parallel: [sh('a'), sh('b'), sh('c')] }, sh('after')] });
    expect(ids(d)).toEqual(['a', 'b', 'c']);
    d.send({ type: 'StepSucceeded', instanceId: 'a', attempt: 1 });
    d.send({ type: 'StepSucceeded', instanceId: 'c', attempt: 1 });
    expect(ids(d)).toEqual(['a', 'b', 'c']);
    d.send({ type: 'StepSucceeded', instanceId: 'b', attempt: 1 });
    expect(ids(d)).toEqual(['a', 'b', 'c', 'after']);
  });

  it('a failing branch fails the run once the other branches have finished (no new work starts)', () => {
    const d = new Driver(
      { parallel: [sh('a'), { sequence: [sh('b'), sh('b2')] }] },
      { script: { a: { fail: 'boom' } } },
    );
    // a fails first (FIFO); b is running and finishes, but b2 must not start.
    d.send({ type: 'StepFailed', instanceId: 'a', attempt: 1, message: 'boom' });
    expect(d.phase).toBe('Running');
    expect(d.status().conditions?.find((c) => c.type === 'Running')?.reason).toBe('Failing');
    d.send({ type: 'StepSucceeded', instanceId: 'b', attempt: 1 });
    expect(d.phase).toBe('Failed');
    expect(ids(d)).toEqual(['a', 'b']);
    expect(d.status().message).toBe('step a failed: boom');
  });
});

describe('or / xor', () => {
  const branches = (kind: 'or' | 'xor', otherwise: boolean): DefinitionNode => {
    const list: ({ when: string; then: DefinitionNode } | { otherwise: DefinitionNode })[] = [
      { when: 'x < 5', then: sh('b') },
      { when: 'x < 10', then: sh('c') },
    ];
    if (otherwise) list.push({ otherwise: sh('d') });
    return { sequence: [sh('a'), kind === 'or' ? { or: list } : { xor: list }, sh('e')] } as DefinitionNode;
  };
  const params = (x: number) => ({ parameters: [{ name: 'x', type: 'long' as const, value: x }] });

  it('or runs every true branch and joins on those taken', () => {
    const d = new Driver(branches('or', true), params(3)).settle();
    expect(ids(d)).toEqual(['a', 'b', 'c', 'e']);
    expect(d.phases()).toMatchObject({ d: 'Skipped', e: 'Succeeded' });
    expect(d.phase).toBe('Succeeded');
  });

  it('or waits for every branch taken before the next node', () => {
    const d = new Driver(branches('or', false), params(3));
    d.send({ type: 'StepSucceeded', instanceId: 'a', attempt: 1 });
    expect(ids(d)).toEqual(['a', 'b', 'c']);
    d.send({ type: 'StepSucceeded', instanceId: 'c', attempt: 1 });
    expect(ids(d)).toEqual(['a', 'b', 'c']);
    d.send({ type: 'StepSucceeded', instanceId: 'b', attempt: 1 });
    expect(ids(d)).toEqual(['a', 'b', 'c', 'e']);
  });

  it('xor runs only the first true branch', () => {
    const d = new Driver(branches('xor', true), params(3)).settle();
    expect(ids(d)).toEqual(['a', 'b', 'e']);
    expect(d.phases()).toMatchObject({ c: 'Skipped', d: 'Skipped' });
  });

  it('otherwise runs when no condition holds', () => {
    for (const kind of ['or', 'xor'] as const) {
      const d = new Driver(branches(kind, true), params(20)).settle();
      expect(ids(d)).toEqual(['a', 'd', 'e']);
    }
  });

  it('with no true branch and no otherwise, takes no branch and the run continues', () => {
    for (const kind of ['or', 'xor'] as const) {
      const d = new Driver(branches(kind, false), params(20)).settle();
      expect(ids(d)).toEqual(['a', 'e']);
      expect(d.phase).toBe('Succeeded');
      expect(d.phases()).toMatchObject({ b: 'Skipped', c: 'Skipped' });
    }
  });

  it('a condition that is not a boolean fails the run naming the field path', () => {
    const d = new Driver({ xor: [{ when: 'x + 1', then: sh('b') }] }, params(1));
    expect(d.phase).toBe('Failed');
    expect(d.status().message).toMatch(/^spec\.definition\.xor\[0\]\.when: expected a boolean, got number/);
  });

  it('conditions may read upstream step outputs', () => {
    const def: DefinitionNode = {
      sequence: [
        sh('a'),
        { xor: [{ when: 'steps.a.outputs.n > 1', then: sh('big') }, { otherwise: sh('small') }] },
      ],
    };
    const d = new Driver(def, { script: { a: { succeed: { n: 5 } } } }).settle();
    expect(ids(d)).toEqual(['a', 'big']);
  });
});

describe('loop', () => {
  it('is a do-while with a 0-based LOOP_INDEX visible inside', () => {
    const def: DefinitionNode = {
      loop: { do: sh('body', 'echo ${LOOP_INDEX}'), while: 'LOOP_INDEX < 2', maxIterations: 10 },
    };
    const d = new Driver(def);
    const scripts: string[] = [];
    d.settle();
    for (const a of d.actions) if (a.type === 'LaunchStep') scripts.push(shellText(a.step) ?? '');
    expect(ids(d)).toEqual(['body[0]', 'body[1]', 'body[2]']);
    expect(scripts).toEqual(['echo 0', 'echo 1', 'echo 2']);
    expect(d.phase).toBe('Succeeded');
  });

  it('runs the body once when the condition is false at first', () => {
    const d = new Driver({ loop: { do: sh('body'), while: 'false', maxIterations: 3 } }).settle();
    expect(ids(d)).toEqual(['body[0]']);
  });

  it('fails clearly when maxIterations is hit', () => {
    const d = new Driver({ loop: { do: sh('body'), while: 'true', maxIterations: 3 } }).settle();
    expect(ids(d)).toEqual(['body[0]', 'body[1]', 'body[2]']);
    expect(d.phase).toBe('Failed');
    expect(d.status().message).toBe(
      'spec.definition.loop: loop exceeded maxIterations (3): `while` was still true after iteration 2 (LOOP_INDEX is 0-based)',
    );
  });

  it('the while condition reads the output of the iteration that just ran (closing the loop)', () => {
    const def: DefinitionNode = {
      loop: { do: sh('poll'), while: 'steps.poll.outputs.more', maxIterations: 10 },
    };
    const d = new Driver(def, {
      script: {
        poll: ({ instanceId }) => ({ succeed: { more: instanceId !== 'poll[3]' } }),
      },
    }).settle();
    expect(ids(d)).toEqual(['poll[0]', 'poll[1]', 'poll[2]', 'poll[3]']);
    expect(d.phase).toBe('Succeeded');
  });
});

describe('foreach', () => {
  it('runs one iteration per item with the item bound and waits for all', () => {
    const def: DefinitionNode = {
      sequence: [
        { foreach: { items: 'countries', as: 'c', do: sh('agg', 'agg ${c}') } },
        sh('after', 'echo ${len(countries)}'),
      ],
    };
    const d = new Driver(def, {
      parameters: [{ name: 'countries', type: 'list', value: ['US', 'CA', 'FR'] }],
    });
    expect(ids(d)).toEqual(['agg[0]', 'agg[1]', 'agg[2]']);
    const launched = d.actions.flatMap((a) => (a.type === 'LaunchStep' ? [a.step] : []));
    expect(launched.map((s) => shellText(s))).toEqual(['agg US', 'agg CA', 'agg FR']);
    expect(launched[1]?.parameters.c).toBe('CA');
    expect(launched[1]?.locals).toEqual({ c: 'CA' });
    d.settle();
    expect(ids(d).at(-1)).toBe('after');
    expect(d.phase).toBe('Succeeded');
  });

  it('an empty list completes at once', () => {
    const d = new Driver({ sequence: [{ foreach: { items: '[]', as: 'x', do: sh('never') } }, sh('after')] });
    expect(ids(d)).toEqual(['after']);
  });

  it('honours parallelism', () => {
    const def: DefinitionNode = { foreach: { items: 'range(10)', as: 'i', parallelism: 3, do: sh('w') } };
    const d = new Driver(def);
    expect(ids(d)).toEqual(['w[0]', 'w[1]', 'w[2]']);
    d.send({ type: 'StepSucceeded', instanceId: 'w[1]', attempt: 1 });
    expect(ids(d)).toEqual(['w[0]', 'w[1]', 'w[2]', 'w[3]']);
    d.settle();
    expect(d.maxConcurrent.get('w')).toBe(3);
    expect(d.launches).toHaveLength(10);
    expect(d.phase).toBe('Succeeded');
  });

  it('iterates over a list output of an upstream step', () => {
    const def: DefinitionNode = {
      sequence: [
        sh('list'),
        { foreach: { items: 'steps.list.outputs.files', as: 'f', do: sh('proc', 'cat ${f}') } },
      ],
    };
    const d = new Driver(def, { script: { list: { succeed: { files: ['a.csv', 'b.csv'] } } } }).settle();
    const scripts = d.actions.flatMap((a) => (a.type === 'LaunchStep' ? [shellText(a.step)] : []));
    expect(scripts).toEqual(['echo list', 'cat a.csv', 'cat b.csv']);
    expect(d.phase).toBe('Succeeded');
  });

  it('fails naming the field when items is not a list', () => {
    const d = new Driver({ foreach: { items: '"abc"', as: 'x', do: sh('w') } });
    expect(d.phase).toBe('Failed');
    expect(d.status().message).toBe('spec.definition.foreach.items: expected a list, got string');
  });

  it('nests: ids carry one index per level and inner steps see both variables', () => {
    const def: DefinitionNode = {
      foreach: {
        items: '["a", "b"]',
        as: 'outer',
        do: { foreach: { items: 'range(2)', as: 'inner', do: sh('cell', '${outer}-${inner}') } },
      },
    };
    const d = new Driver(def).settle();
    expect(ids(d)).toEqual(['cell[0][0]', 'cell[0][1]', 'cell[1][0]', 'cell[1][1]']);
    const scripts = d.actions.flatMap((a) => (a.type === 'LaunchStep' ? [shellText(a.step)] : []));
    expect(scripts).toEqual(['a-0', 'a-1', 'b-0', 'b-1']);
    const last = d.actions.filter((a) => a.type === 'LaunchStep').at(-1);
    expect(last?.type === 'LaunchStep' && last.step.locals).toEqual({ outer: 'b', inner: 1 });
  });

  it('a step inside an iteration reads the output of the same iteration; after the foreach, the list', () => {
    const def: DefinitionNode = {
      sequence: [
        {
          foreach: {
            items: 'range(3)',
            as: 'i',
            do: { sequence: [sh('produce'), sh('consume', 'got ${steps.produce.outputs.v}')] },
          },
        },
        sh('fanin', 'sum ${join(steps.produce.outputs.v, "+")}'),
      ],
    };
    const d = new Driver(def, {
      script: { produce: ({ instanceId }) => ({ succeed: { v: `v${instanceId.slice(-2, -1)}` } }) },
    }).settle();
    const scripts = Object.fromEntries(
      d.actions.flatMap((a) => (a.type === 'LaunchStep' ? [[a.instanceId, shellText(a.step)]] : [])),
    );
    expect(scripts['consume[0]']).toBe('got v0');
    expect(scripts['consume[2]']).toBe('got v2');
    expect(scripts.fanin).toBe('sum v0+v1+v2');
  });

  it('a fan-in view follows the foreach as it progresses', () => {
    const def: DefinitionNode = {
      parallel: [
        { foreach: { items: 'range(2)', as: 'i', do: sh('w') } },
        {
          loop: {
            do: sh('r', 'seen ${join(steps.w.phases, ",")}'),
            while: 'LOOP_INDEX < 1',
            maxIterations: 3,
          },
        },
      ],
    };
    const d = new Driver(def, { script: { w: 'hang', r: 'hang' } });
    d.send({ type: 'StepSucceeded', instanceId: 'w[0]', attempt: 1 });
    d.send({ type: 'StepSucceeded', instanceId: 'r[0]', attempt: 1 });
    const scripts = d.actions.flatMap((a) =>
      a.type === 'LaunchStep' && a.step.name === 'r' ? [shellText(a.step)] : [],
    );
    expect(scripts).toEqual(['seen Queued,Queued', 'seen Succeeded,Queued']);
  });

  it('one failed iteration fails the foreach and stops starting new iterations', () => {
    const def: DefinitionNode = { foreach: { items: 'range(5)', as: 'i', parallelism: 2, do: sh('w') } };
    const d = new Driver(def, {
      script: { w: ({ instanceId }) => (instanceId === 'w[1]' ? { fail: 'bad' } : undefined) },
    });
    d.settle();
    expect(ids(d)).toEqual(['w[0]', 'w[1]', 'w[2]']);
    expect(d.phase).toBe('Failed');
    expect(d.status().message).toBe('step w[1] failed: bad');
  });
});

describe('nesting', () => {
  it('a foreach inside a loop inside a parallel', () => {
    const def: DefinitionNode = {
      sequence: [
        {
          parallel: [
            sh('side'),
            {
              loop: {
                do: {
                  sequence: [
                    {
                      foreach: {
                        items: 'range(LOOP_INDEX + 1)',
                        as: 'k',
                        parallelism: 2,
                        do: sh('cell', 'run ${LOOP_INDEX}.${k}'),
                      },
                    },
                    noop('mark'),
                  ],
                },
                while: 'LOOP_INDEX < 2',
                maxIterations: 5,
              },
            },
          ],
        },
        sh('end'),
      ],
    };
    const d = new Driver(def).settle();
    expect(d.phase).toBe('Succeeded');
    expect(ids(d)).toEqual([
      'side',
      'cell[0][0]',
      'cell[1][0]',
      'cell[1][1]',
      'cell[2][0]',
      'cell[2][1]',
      'cell[2][2]',
      'end',
    ]);
    expect(d.phases()).toMatchObject({
      'mark[0]': 'Succeeded',
      'mark[1]': 'Succeeded',
      'mark[2]': 'Succeeded',
    });
    const scripts = d.actions.flatMap((a) => (a.type === 'LaunchStep' ? [shellText(a.step)] : []));
    expect(scripts).toContain('run 2.1');
    expect(d.maxConcurrent.get('cell')).toBe(2);
  });

  it('branches inside a foreach are evaluated per item, with per-item Skipped marks', () => {
    const def: DefinitionNode = {
      foreach: {
        items: 'range(4)',
        as: 'n',
        do: { xor: [{ when: 'n % 2 == 0', then: sh('even') }, { otherwise: sh('odd') }] },
      },
    };
    const d = new Driver(def).settle();
    expect(d.phases()).toEqual({
      'even[0]': 'Succeeded',
      'odd[0]': 'Skipped',
      'odd[1]': 'Succeeded',
      'even[1]': 'Skipped',
      'even[2]': 'Succeeded',
      'odd[2]': 'Skipped',
      'odd[3]': 'Succeeded',
      'even[3]': 'Skipped',
    });
  });
});
