// Properties of synthesis over generated programs: the YAML reads back as exactly the manifest
// (whatever the strings hold), the output is valid, and it does not depend on the order in
// which options were written.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateDocument } from '../crds/validate.ts';
import {
  Condition,
  type Flow,
  foreach,
  loop,
  Noop,
  Otherwise,
  Parameter,
  parallel,
  Shell,
  synth,
  toYaml,
  Workflow,
} from './index.ts';

/** Strings YAML likes to reinterpret: numbers, booleans, nulls, indicators, line breaks, blanks. */
const trickyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom(
    '123',
    '0x1F',
    '1e3',
    'yes',
    'No',
    'null',
    '~',
    'true',
    '- a',
    'a: b',
    '#comment',
    '*alias',
    '&anchor',
    '!tag',
    '%YAML',
    '@x',
    '`x`',
    '"quoted"',
    "'single'",
    ' leading',
    'trailing ',
    'two\nlines',
    'trailing newline\n',
    'blank line\n\n',
    'tab\there',
    'cr\r\nlf',
    '---',
    '...',
    '{a: 1}',
    '[1, 2]',
    '',
  ),
);

/** Literal text for shell scripts: no `${` so that the validator has no expression to check. */
const scriptText = trickyString.filter((s) => s.trim() !== '' && !s.includes('${'));

interface Tree {
  kind: 'step' | 'sequence' | 'parallel' | 'or' | 'xor' | 'loop' | 'foreach';
  script?: string;
  children: Tree[];
}

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ kind: fc.constant('step' as const), script: scriptText, children: fc.constant<Tree[]>([]) }),
    fc.record({
      kind: fc.constantFrom('sequence', 'parallel', 'or', 'xor', 'loop', 'foreach'),
      children: fc.array(tie('node'), { minLength: 1, maxLength: 3 }),
    }),
  ),
})).node;

/** Builds the DSL program for a tree; step names are numbered so that they are unique. */
function build(t: Tree, counter: { n: number }): Flow {
  if (t.kind === 'step') return Shell(`s${counter.n++}`, { script: t.script!, retry: counter.n % 3 });
  const kids = t.children.map((c) => build(c, counter));
  switch (t.kind) {
    case 'sequence':
      return kids.reduce((a, b) => a.sequence(b));
    case 'parallel':
      return parallel(...kids);
    case 'or':
    case 'xor': {
      const branches = kids.map((k, i) =>
        i === kids.length - 1 && kids.length > 1 ? Otherwise(k) : Condition(`LIMIT > ${i}`).branch(k),
      );
      return t.kind === 'or'
        ? Noop(`n${counter.n++}`).or(...branches)
        : Noop(`n${counter.n++}`).xor(...branches);
    }
    case 'loop':
      return loop(
        { while: 'LOOP_INDEX < LIMIT', maxIterations: 3 },
        kids.reduce((a, b) => a.sequence(b)),
      );
    case 'foreach':
      return foreach(
        { items: 'range(LIMIT)', as: `i${counter.n++}` },
        kids.reduce((a, b) => a.sequence(b)),
      );
  }
}

function workflowOf(t: Tree, description: string) {
  return Workflow({
    id: 'generated',
    description,
    parameters: [Parameter.long('LIMIT', 2)],
    definition: build(t, { n: 0 }),
  });
}

describe('synthesis properties', () => {
  it('YAML reads back as exactly the manifest, and the manifest is valid', () => {
    fc.assert(
      fc.property(tree, trickyString, (t, description) => {
        const manifest = synth(workflowOf(t, description));
        const text = toYaml([manifest, manifest]);
        const docs = parseAllDocuments(text);
        expect(docs).toHaveLength(2);
        for (const doc of docs) {
          expect(doc.errors).toEqual([]);
          expect(doc.toJS()).toEqual(manifest);
        }
        expect(validateDocument(manifest)).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('is deterministic and independent of the order options were written in', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(['script', 'retry', 'timeoutSeconds', 'priority', 'resources'] as const, {
          minLength: 5,
        }),
        scriptText,
        (order, script) => {
          const values = {
            script,
            retry: 2,
            timeoutSeconds: 60,
            priority: 1,
            resources: { memory: '1Gi', cpus: 1 },
          };
          const shuffled = Object.fromEntries(order.map((k) => [k, values[k]])) as typeof values;
          const a = toYaml(synth(Workflow({ id: 'w', definition: Shell('s', values) })));
          const b = toYaml(synth(Workflow({ id: 'w', definition: Shell('s', shuffled) })));
          expect(b).toBe(a);
        },
      ),
    );
  });
});
