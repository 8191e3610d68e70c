import { describe, expect, it } from 'vitest';
import { referencedNames, stepReferences, whyNotList } from './expressions.ts';

describe('referencedNames', () => {
  it('lists free names, not properties or function names', () => {
    expect([...referencedNames('len(a.b) + c[d] > x ? y : 1')].sort()).toEqual(['a', 'c', 'd', 'x', 'y']);
    expect(referencedNames('1 +')).toEqual(new Set());
  });
});

describe('stepReferences', () => {
  it('finds steps.X and steps["X"] with the field after it and the position', () => {
    expect(stepReferences('steps.a.outputs.rows + steps["b-c"].outputs.n + steps.d.rows')).toEqual([
      { step: 'a', next: 'outputs', position: 0 },
      { step: 'b-c', next: 'outputs', position: 23 },
      { step: 'd', next: 'rows', position: 48 },
    ]);
  });
});

describe('whyNotList', () => {
  const types: Record<string, string> = { n: 'long', xs: 'list', v: 'any' };
  const why = (src: string) => whyNotList(src, (name) => types[name]);
  it.each([
    ["'abc'", 'it is the literal "abc"'],
    ['42', 'it is the literal 42'],
    ['n', 'n is declared long'],
    ['RUN_TS % 7', 'the operator % yields a scalar'],
    ['!v', 'the operator ! yields a scalar'],
    ['len(xs)', 'len() does not return a list'],
    ["v ? 1 : 'a'", 'neither side of ?: is a list'],
  ])('%s cannot be a list: %s', (src, reason) => {
    expect(why(src)).toBe(reason);
  });
  it.each([
    'xs',
    'v',
    '[1, 2]',
    'range(3)',
    'split(v, ",")',
    'v ? xs : [1]',
    'xs + v',
    'steps.a.outputs.items',
  ])('%s may be a list', (src) => {
    expect(why(src)).toBeUndefined();
  });
});
