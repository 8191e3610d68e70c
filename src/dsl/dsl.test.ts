import { describe, expect, it } from 'vitest';
import {
  Condition,
  Container,
  Copy,
  collectWorkflows,
  DataArtifact,
  DslError,
  foreach,
  loop,
  Noop,
  Notification,
  Otherwise,
  Parameter,
  parallel,
  Shell,
  Spark,
  Step,
  Subworkflow,
  sequence,
  synth,
  synthAll,
  Trigger,
  toYaml,
  Workflow,
  xor,
} from './index.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DslError) return err.code;
    throw err;
  }
  throw new Error('expected a DslError');
}

const step = (name: string) => Noop(name);
/** A branch node; built by a function because a literal `then:` reads as a thenable to the linter. */
const when = (condition: string, then: unknown) => ({ when: condition, then });

describe('the seed talk programs', () => {
  it('synthesises the "my-cool-workflow" slide', () => {
    const sparkStep = Spark('sparkStep', {
      jobClass: 'netflix.MySparkJob',
      conf: { 'spark.driver.memory': '8g' },
    });
    const cpStep = Copy('cpStep', { from: 's3://a/${dateint}', to: 's3://b/${dateint}' });
    const workflow = Workflow({
      id: 'my-cool-workflow',
      triggers: [Trigger.cron('0 0 0 1/1 * ? *')],
      notification: Notification.webhook('http://hooks.example/meson', {
        on: ['start', 'success', 'failure'],
      }),
      parameters: [
        Parameter.string('country', 'US'),
        Parameter.long({ name: 'dateint', expression: 'tsToDateInt(RUN_TS)' }),
      ],
      definition: sparkStep.sequence(cpStep).end(),
    });
    expect(toYaml(synth(workflow))).toBe(
      [
        'apiVersion: meson.dev/v1alpha1',
        'kind: Workflow',
        'metadata:',
        '  name: my-cool-workflow',
        'spec:',
        '  notifications:',
        '    - "on": [start, success, failure]',
        '      webhook:',
        '        url: http://hooks.example/meson',
        '  parameters:',
        '    - name: country',
        '      type: string',
        '      value: US',
        '    - name: dateint',
        '      expression: tsToDateInt(RUN_TS)',
        '      type: long',
        '  triggers:',
        '    cron:',
        '      - schedule: 0 0 0 1/1 * ? *',
        '  definition:',
        '    sequence:',
        '      - step:',
        '          name: sparkStep',
        '          spark:',
        '            conf:',
        '              spark.driver.memory: 8g',
        '            jobClass: netflix.MySparkJob',
        '      - step:',
        '          name: cpStep',
        '          copy:',
        '            from: s3://a/${dateint}',
        '            to: s3://b/${dateint}',
        '',
      ].join('\n'),
    );
  });

  it('builds the branches slide: a.or(b, c, d).sequence(e)', () => {
    const flow = step('a')
      .or(
        Condition('x<5').branch(step('b')),
        Condition('x<10').branch(step('c')),
        Condition('x>10').branch(step('d')),
      )
      .sequence(step('e'));
    expect(flow.toNode()).toEqual({
      sequence: [
        { step: { name: 'a', noop: {} } },
        {
          or: [
            when('x<5', { step: { name: 'b', noop: {} } }),
            when('x<10', { step: { name: 'c', noop: {} } }),
            when('x>10', { step: { name: 'd', noop: {} } }),
          ],
        },
        { step: { name: 'e', noop: {} } },
      ],
    });
  });

  it('builds the data artifacts slide with the Scala-style params list', () => {
    const flow = Shell('someJob', {
      script: 'true',
      inputs: [DataArtifact({ name: 'views', params: [Parameter.string('country', 'US')] })],
      outputs: [
        DataArtifact({
          name: 'aggViews',
          params: [Parameter.string('ts', '${RUN_TS}'), Parameter.expr('country', 'country')],
        }),
      ],
    });
    expect(flow.toNode()).toEqual({
      step: {
        name: 'someJob',
        shell: { script: 'true' },
        inputs: [{ name: 'views', partition: { country: 'US' } }],
        outputs: [{ name: 'aggViews', partition: { ts: '${RUN_TS}', country: '${country}' } }],
      },
    });
  });
});

describe('combinators', () => {
  it('flattens chained sequences so that equivalent programs synthesise identically', () => {
    const a = step('a').sequence(step('b')).sequence(step('c'));
    const b = step('a').sequence(step('b').sequence(step('c')));
    const c = sequence(step('a'), sequence(step('b'), step('c')));
    expect(a.toNode()).toEqual(b.toNode());
    expect(c.toNode()).toEqual(a.toNode());
    expect(a.toNode()).toEqual({
      sequence: [
        { step: { name: 'a', noop: {} } },
        { step: { name: 'b', noop: {} } },
        { step: { name: 'c', noop: {} } },
      ],
    });
  });

  it('never changes a flow when it is extended (flows are values)', () => {
    const base = step('a').sequence(step('b'));
    const left = base.sequence(step('c'));
    const right = base.parallel(step('d'), step('e'));
    expect(base.toNode()).toEqual({
      sequence: [{ step: { name: 'a', noop: {} } }, { step: { name: 'b', noop: {} } }],
    });
    expect(left.toNode()).toMatchObject({ sequence: [{}, {}, { step: { name: 'c' } }] });
    expect(right.toNode()).toMatchObject({ sequence: [{}, {}, { parallel: [{}, {}] }] });
  });

  it('a.parallel(b, c) runs a, then b and c at once; parallel(b, c) alone is just the fork', () => {
    expect(
      step('a')
        .parallel(step('b'), step('c').sequence(step('d')))
        .toNode(),
    ).toEqual({
      sequence: [
        { step: { name: 'a', noop: {} } },
        {
          parallel: [
            { step: { name: 'b', noop: {} } },
            { sequence: [{ step: { name: 'c', noop: {} } }, { step: { name: 'd', noop: {} } }] },
          ],
        },
      ],
    });
    expect(parallel(step('b'), step('c')).toNode()).toEqual({
      parallel: [{ step: { name: 'b', noop: {} } }, { step: { name: 'c', noop: {} } }],
    });
  });

  it('xor with Otherwise, as a method and as a function', () => {
    const branches = [Condition('x < 5').branch(step('b')), Otherwise(step('d'))] as const;
    expect(
      step('a')
        .xor(...branches)
        .toNode(),
    ).toEqual({
      sequence: [
        { step: { name: 'a', noop: {} } },
        {
          xor: [
            when('x < 5', { step: { name: 'b', noop: {} } }),
            { otherwise: { step: { name: 'd', noop: {} } } },
          ],
        },
      ],
    });
    expect(xor(...branches).toNode()).toEqual({
      xor: [
        when('x < 5', { step: { name: 'b', noop: {} } }),
        { otherwise: { step: { name: 'd', noop: {} } } },
      ],
    });
  });

  it('loop and foreach take a body, or open a scope that .end() closes', () => {
    const withBody = step('a')
      .foreach({ items: 'dateIntRange(from, to)', as: 'day', parallelism: 2 }, step('b').sequence(step('c')))
      .sequence(step('d'));
    const scoped = step('a')
      .foreach({ items: 'dateIntRange(from, to)', as: 'day', parallelism: 2 })
      .sequence(step('b'))
      .sequence(step('c'))
      .end()
      .sequence(step('d'));
    expect(scoped.toNode()).toEqual(withBody.toNode());
    expect(withBody.toNode()).toEqual({
      sequence: [
        { step: { name: 'a', noop: {} } },
        {
          foreach: {
            items: 'dateIntRange(from, to)',
            as: 'day',
            parallelism: 2,
            do: { sequence: [{ step: { name: 'b', noop: {} } }, { step: { name: 'c', noop: {} } }] },
          },
        },
        { step: { name: 'd', noop: {} } },
      ],
    });
  });

  it('nests scopes: each .end() returns to the enclosing chain', () => {
    const flow = loop({ while: 'LOOP_INDEX < 2', maxIterations: 3 })
      .sequence(step('a'))
      .foreach({ items: ['US', 'CA'], as: 'country' })
      .sequence(step('b'))
      .end()
      .end()
      .sequence(step('c'));
    expect(flow.toNode()).toEqual({
      sequence: [
        {
          loop: {
            while: 'LOOP_INDEX < 2',
            maxIterations: 3,
            do: {
              sequence: [
                { step: { name: 'a', noop: {} } },
                {
                  foreach: {
                    items: '["US","CA"]',
                    as: 'country',
                    parallelism: undefined,
                    do: { step: { name: 'b', noop: {} } },
                  },
                },
              ],
            },
          },
        },
        { step: { name: 'c', noop: {} } },
      ],
    });
    expect(foreach({ items: 'range(3)', as: 'i' }, step('x')).toNode()).toMatchObject({
      foreach: { items: 'range(3)', as: 'i', do: { step: { name: 'x' } } },
    });
  });

  it('Condition(...).branch() and Otherwise() open a branch that .end() finishes', () => {
    const scoped = step('a')
      .xor(
        Condition('x < 5').branch().sequence(step('b')).sequence(step('c')).end(),
        Otherwise().sequence(step('d')).end(),
      )
      .sequence(step('e'));
    const inline = step('a')
      .xor(Condition('x < 5').branch(step('b').sequence(step('c'))), Otherwise(step('d')))
      .sequence(step('e'));
    expect(scoped.toNode()).toEqual(inline.toNode());
    expect(() => step('a').or(Condition('x < 5').branch().sequence(step('b')) as never)).toThrow(
      /or\(\): argument 1: the branch "x < 5" opened here is not closed; call \.end\(\)/,
    );
    expect(codeOf(() => Otherwise().end())).toBe('DSL_EMPTY_BLOCK');
    expect(codeOf(() => step('a').or(step('b') as never))).toBe('DSL_INVALID_ARGUMENT');
  });

  it('.end() on a top-level flow returns the flow itself, so it may close an inline branch', () => {
    const flow = step('a').sequence(step('b'));
    expect(flow.end()).toBe(flow);
    expect(
      step('a')
        .parallel(step('b').sequence(step('c')).end(), step('d'))
        .toNode(),
    ).toEqual(
      step('a')
        .parallel(step('b').sequence(step('c')), step('d'))
        .toNode(),
    );
  });

  it('rejects misuse with stable codes', () => {
    expect(codeOf(() => step('a').foreach({ items: 'x', as: 'i' }).toNode())).toBe('DSL_UNCLOSED_SCOPE');
    expect(codeOf(() => step('a').sequence(loop({ while: 'true', maxIterations: 2 }) as never))).toBe(
      'DSL_UNCLOSED_SCOPE',
    );
    expect(codeOf(() => step('a').loop({ while: 'true', maxIterations: 2 }).end())).toBe('DSL_EMPTY_BLOCK');
    expect(codeOf(() => step('a').or())).toBe('DSL_EMPTY_BLOCK');
    expect(codeOf(() => step('a').parallel())).toBe('DSL_EMPTY_BLOCK');
    expect(codeOf(() => step('a').xor(Otherwise(step('b')), Condition('x').branch(step('c'))))).toBe(
      'DSL_BRANCH_ORDER',
    );
    expect(codeOf(() => step('a').or(step('b') as never))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => step('a').sequence({} as never))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => loop({ while: 'x', maxIterations: 0 }, step('a')))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => loop({ while: '', maxIterations: 2 }, step('a')))).toBe('DSL_INVALID_ARGUMENT');
    expect(() => loop({ while: 'x' } as never, step('a'))).toThrow(
      'loop(): maxIterations: expected a positive integer, got nothing',
    );
    expect(codeOf(() => foreach({ items: 'x', as: 'not an identifier' }, step('a')))).toBe(
      'DSL_INVALID_ARGUMENT',
    );
    expect(codeOf(() => foreach({ items: 'x', as: 'i', parallelism: 1.5 }, step('a')))).toBe(
      'DSL_INVALID_ARGUMENT',
    );
    expect(codeOf(() => foreach({ items: [{}] as never, as: 'i' }, step('a')))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => Condition(''))).toBe('DSL_INVALID_ARGUMENT');
  });
});

describe('steps', () => {
  it('splits step-type fields from the common ones, and expands shorthands', () => {
    const flow = Container('train', {
      image: 'registry.example/trainer:1.4',
      command: ['python', 'train.py'],
      env: { LR: '${lr}', EPOCHS: '10' },
      resources: { cpus: 4, memory: '16Gi', gpus: 1 },
      constraints: { nodeSelector: { 'meson.dev/pool': 'gpu' } },
      retry: 2,
      timeoutSeconds: 3600,
      priority: 10,
    });
    expect(flow.toNode()).toEqual({
      step: {
        name: 'train',
        container: {
          image: 'registry.example/trainer:1.4',
          command: ['python', 'train.py'],
          env: [
            { name: 'LR', value: '${lr}' },
            { name: 'EPOCHS', value: '10' },
          ],
        },
        resources: { cpus: 4, memory: '16Gi', gpus: 1 },
        constraints: { nodeSelector: { 'meson.dev/pool': 'gpu' } },
        retry: { limit: 2 },
        timeoutSeconds: 3600,
        priority: 10,
      },
    });
  });

  it('Step(name, fields) takes a step as the manifest writes it (the escape hatch)', () => {
    const fields = { shell: { script: 'true' }, retry: { limit: 2 } };
    expect(Step('raw', fields).toNode()).toEqual({
      step: { name: 'raw', shell: { script: 'true' }, retry: { limit: 2 } },
    });
    expect(codeOf(() => Step('raw', 'shell' as never))).toBe('DSL_INVALID_ARGUMENT');
  });

  it('takes a shell script as one string or as its lines', () => {
    expect(Shell('s', ['set -eu', 'echo "${who}"']).toNode()).toEqual({
      step: { name: 's', shell: { script: 'set -eu\necho "${who}"\n' } },
    });
    expect(Shell('s', { script: ['true'], retry: 1 }).toNode()).toEqual({
      step: { name: 's', shell: { script: 'true\n' }, retry: { limit: 1 } },
    });
    expect(codeOf(() => Shell('s', ['a\nb']))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => Shell('s', []))).toBe('DSL_INVALID_ARGUMENT');
  });

  it('a Subworkflow names its child by id or by the Workflow value, and passes parameters', () => {
    const child = Workflow({ id: 'child', definition: step('x') });
    const byValue = Subworkflow('runChild', {
      workflow: child,
      version: 2,
      parameters: { country: '${country}', limit: 10 },
      stepParameters: [Parameter.long('limit', 10)],
    });
    expect(byValue.toNode()).toEqual({
      step: {
        name: 'runChild',
        subworkflow: {
          workflow: 'child',
          version: 2,
          parameters: [
            { name: 'country', value: '${country}' },
            { name: 'limit', value: 10 },
          ],
        },
        parameters: [{ name: 'limit', type: 'long', value: 10 }],
      },
    });
    expect(
      Subworkflow('s', { workflow: 'child', parameters: [Parameter.expr('d', 'dateint')] }).toNode(),
    ).toMatchObject({
      step: { subworkflow: { workflow: 'child', parameters: [{ name: 'd', expression: 'dateint' }] } },
    });
  });

  it('rejects bad step options naming the step', () => {
    expect(() => Shell('s', { script: 'true', retries: 3 } as never)).toThrow(
      /Shell\("s"\): unknown option "retries" \(did you mean "retry"\?\)/,
    );
    expect(() => Spark('s', { args: [] })).toThrow(
      /Spark\("s"\): expected exactly one of jobClass or mainApplication/,
    );
    expect(() => Container('c', { image: '' })).toThrow(
      /Container\("c"\): image: expected a non-empty string/,
    );
    expect(() => Copy('c', { from: 's3://a' } as never)).toThrow(/Copy\("c"\): to/);
    expect(() => Shell('', 'true')).toThrow(/Shell\(\): name/);
    expect(() => Subworkflow('s', { workflow: 42 as never })).toThrow(/workflow: expected a workflow id/);
    expect(() => Shell('s', { script: 'x', resources: { cpus: () => 1 } as never })).toThrow(
      /Shell\("s"\)\.resources\.cpus: expected plain data/,
    );
    expect(() => Shell('s', { script: 'x', priority: Number.NaN })).toThrow(
      /priority: expected a finite number/,
    );
  });

  it('parameters: typed constructors, both call styles, exactly one of value or expression', () => {
    expect(Parameter.string('country', 'US')).toEqual({ name: 'country', type: 'string', value: 'US' });
    expect(Parameter.long({ name: 'dateint', expression: 'tsToDateInt(RUN_TS)' })).toEqual({
      name: 'dateint',
      type: 'long',
      expression: 'tsToDateInt(RUN_TS)',
    });
    expect(Parameter.list('countries', ['US', 'CA'])).toEqual({
      name: 'countries',
      type: 'list',
      value: ['US', 'CA'],
    });
    expect(Parameter.of('x', 1)).toEqual({ name: 'x', value: 1 });
    expect(codeOf(() => Parameter.long({ name: 'x', value: 1, expression: '1' } as never))).toBe(
      'DSL_INVALID_ARGUMENT',
    );
    expect(codeOf(() => Parameter.long({ name: 'x' } as never))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => Parameter.string('', 'x'))).toBe('DSL_INVALID_ARGUMENT');
  });
});

describe('Workflow and synthesis', () => {
  it('groups triggers by kind and writes artifacts partitions as strings', () => {
    const workflow = Workflow({
      id: 'features',
      triggers: [
        Trigger.artifact('views', { country: 'US', dateint: 20171107 }),
        Trigger.cron('0 3 * * *', { timezone: 'UTC' }),
        Trigger.artifact(DataArtifact('logins')),
      ],
      concurrency: { maxActiveRuns: 2, policy: 'skip' },
      definition: step('a'),
    });
    expect(synth(workflow).spec.triggers).toEqual({
      cron: [{ schedule: '0 3 * * *', timezone: 'UTC' }],
      artifacts: [{ name: 'views', partition: { country: 'US', dateint: '20171107' } }, { name: 'logins' }],
    });
  });

  it('rejects a step used twice and unknown options', () => {
    const a = step('a');
    expect(codeOf(() => Workflow({ id: 'w', definition: a.sequence(a) }))).toBe('DSL_DUPLICATE_STEP');
    expect(
      codeOf(() =>
        Workflow({ id: 'w', definition: parallel(step('x'), foreach({ items: 'l', as: 'i' }, step('x'))) }),
      ),
    ).toBe('DSL_DUPLICATE_STEP');
    expect(() => Workflow({ id: 'w', definition: a, trigger: [] } as never)).toThrow(
      /unknown option "trigger"/,
    );
    expect(codeOf(() => Workflow({ id: '', definition: a }))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => Workflow({ id: 'w' } as never))).toBe('DSL_INVALID_ARGUMENT');
    expect(codeOf(() => Workflow({ id: 'w', definition: a, triggers: [{ cron: 'x' }] as never }))).toBe(
      'DSL_INVALID_ARGUMENT',
    );
    expect(codeOf(() => Notification.webhook('http://x', { on: ['finish' as never] }))).toBe(
      'DSL_INVALID_ARGUMENT',
    );
  });

  it('is byte-stable: key order does not depend on the order options were written in', () => {
    const one = Workflow({
      id: 'w',
      description: 'd',
      definition: Shell('s', { script: 'true', resources: { memory: '1Gi', cpus: 1 }, retry: 1 }),
    });
    const two = Workflow({
      definition: Shell('s', { retry: 1, resources: { cpus: 1, memory: '1Gi' }, script: 'true' }),
      description: 'd',
      id: 'w',
    });
    expect(toYaml(synth(two))).toBe(toYaml(synth(one)));
    expect(Object.keys(synth(one).spec)).toEqual(['description', 'definition']);
    expect(Object.keys(synth(one).spec.definition)).toEqual(['step']);
  });

  it('writes multi-document YAML with scripts as literal blocks and no anchors', () => {
    const shared = { cpus: 1, memory: '1Gi' };
    const w1 = Workflow({
      id: 'one',
      definition: Shell('a', { script: 'echo a\necho b\n', resources: shared }),
    });
    const w2 = Workflow({ id: 'two', definition: Shell('b', { script: 'true', resources: shared }) });
    const text = toYaml(synthAll([w1, w2]));
    expect(text.split('\n---\n')).toHaveLength(2);
    expect(text).toContain('script: |\n');
    expect(text).not.toMatch(/[&*]a\d/);
    expect(text.endsWith('\n')).toBe(true);
    expect(codeOf(() => synthAll([w1, Workflow({ id: 'one', definition: step('z') })]))).toBe(
      'DSL_DUPLICATE_WORKFLOW',
    );
  });
});

describe('collectWorkflows', () => {
  const w1 = Workflow({ id: 'one', definition: step('a') });
  const w2 = Workflow({ id: 'two', definition: step('a') });

  it('takes the default export (a workflow or a nested list) over named ones', () => {
    expect(collectWorkflows({ default: w2, w1 }, 'p.ts')).toEqual([w2]);
    expect(collectWorkflows({ default: [w2, [w1]] }, 'p.ts')).toEqual([w2, w1]);
  });

  it('otherwise takes every named export that is a workflow or a list of them, by export name', () => {
    expect(collectWorkflows({ zeta: w1, alpha: [w2], helper: 'not a workflow', n: 3 }, 'p.ts')).toEqual([
      w2,
      w1,
    ]);
    expect(collectWorkflows({ a: w1, b: w1 }, 'p.ts')).toEqual([w1]);
  });

  it('recognises a workflow built by another copy of the DSL module (a registry-symbol brand)', () => {
    const foreign = { [Symbol.for('meson.dev/dsl.Workflow')]: true, manifest: { ...synth(w1) } };
    expect(collectWorkflows({ default: foreign }, 'p.ts')).toEqual([foreign]);
    expect(synth(foreign as never)).toEqual(synth(w1));
  });

  it('explains what is wrong when nothing or something else is exported', () => {
    expect(codeOf(() => collectWorkflows({ x: 1 }, 'p.ts'))).toBe('DSL_NOTHING_EXPORTED');
    expect(() => collectWorkflows({ default: [w1, 'x'] }, 'p.ts')).toThrow(
      /p\.ts: export default\[1\]: expected a Workflow/,
    );
  });
});

describe('YAML for kubectl', () => {
  it('quotes the words YAML 1.1 readers (kubectl, client-go) would read as booleans', async () => {
    const { parse } = await import('yaml');
    const text = toYaml({ on: ['yes'], n: 'no', off: 'y', plain: 'start' });
    expect(text).toBe('"n": "no"\n"off": "y"\n"on": ["yes"]\nplain: start\n');
    expect(parse(text, { version: '1.1' })).toEqual({ on: ['yes'], n: 'no', off: 'y', plain: 'start' });
  });
});
