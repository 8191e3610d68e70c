import { describe, expect, it } from 'vitest';
import { checkExpression, inferType } from './check.ts';
import type { CheckScope, ValueType } from './types.ts';

function scope(names: Record<string, ValueType | 'any'> = {}): CheckScope {
  return { names: new Map(Object.entries(names)) };
}

function codes(src: string, names: Record<string, ValueType | 'any'> = {}): string[] {
  return checkExpression(src, scope(names)).map((i) => i.code);
}

describe('checkExpression', () => {
  it('accepts valid expressions with built-in values always in scope', () => {
    expect(checkExpression('tsToDateInt(RUN_TS, "America/Los_Angeles")', scope())).toEqual([]);
    expect(checkExpression('RUN_ID + "-" + WORKFLOW_ID + WORKFLOW_VERSION + LOOP_INDEX', scope())).toEqual(
      [],
    );
    expect(checkExpression('steps.agg.outputs.rows > 0', scope())).toEqual([]);
    expect(checkExpression('x < 5 ? country : "US"', scope({ x: 'long', country: 'string' }))).toEqual([]);
  });
  it('rejects forbidden names written as a computed member with a literal key, before any run', () => {
    expect(codes('m["constructor"]', { m: 'map' })).toEqual(['EXPR_FORBIDDEN']);
    expect(codes("m['__proto__'].x", { m: 'map' })).toEqual(['EXPR_FORBIDDEN']);
    expect(codes('m["key"]', { m: 'map' })).toEqual([]);
  });

  it('refuses integer literals that a double cannot hold exactly instead of rounding them', () => {
    expect(codes('9007199254740993')).toEqual(['EXPR_ARITHMETIC']);
    expect(codes('9007199254740991 + 1.5e300')).toEqual([]);
  });

  it('says that ${...} does not belong in an expression field', () => {
    const [issue] = checkExpression('${countries}', scope({ countries: 'list' }));
    expect(issue?.code).toBe('EXPR_PARSE');
    expect(issue?.message).toContain('write countries, not ${countries}');
  });

  it('reports unknown names with a suggestion and the position', () => {
    const [issue] = checkExpression('tsToDateInt(RUN_TSS)', scope());
    expect(issue).toEqual({
      code: 'EXPR_UNKNOWN_NAME',
      message: 'unknown name "RUN_TSS" (did you mean "RUN_TS"?) at character 12',
      position: 12,
    });
  });
  it('reports unknown functions and arity, every issue at once', () => {
    const issues = checkExpression('foo(1) + len(1, 2) + bar', scope());
    expect(issues.map((i) => [i.code, i.position])).toEqual([
      ['EXPR_UNKNOWN_FUNCTION', 0],
      ['EXPR_ARITY', 9],
      ['EXPR_UNKNOWN_NAME', 21],
    ]);
  });
  it('reports operand and argument types known from declarations', () => {
    expect(codes('country - 1', { country: 'string' })).toEqual(['EXPR_TYPE']);
    expect(codes('flag && n', { flag: 'boolean', n: 'long' })).toEqual(['EXPR_TYPE']);
    expect(codes('n ? 1 : 2', { n: 'long' })).toEqual(['EXPR_TYPE']);
    expect(codes('tsToDateInt(country)', { country: 'string' })).toEqual(['EXPR_TYPE']);
    expect(codes('len(n)', { n: 'long' })).toEqual(['EXPR_TYPE']);
    expect(codes('n < s', { n: 'long', s: 'string' })).toEqual(['EXPR_TYPE']);
    expect(codes('n.x', { n: 'long' })).toEqual(['EXPR_TYPE']);
    expect(codes('"a" + l', { l: 'list' })).toEqual(['EXPR_TYPE']);
    expect(codes('!s', { s: 'string' })).toEqual(['EXPR_TYPE']);
    expect(codes('x - 1', { x: 'any' })).toEqual([]);
  });
  it('evaluates constant parts: literal errors are found before any run', () => {
    expect(codes('tsToDateInt("abc")')).toEqual(['EXPR_TYPE']);
    expect(codes('range(1e9)')).toEqual(['EXPR_LIMIT']);
    expect(codes('1 / 0')).toEqual(['EXPR_ARITHMETIC']);
    expect(codes('x + 1 / 0', { x: 'long' })).toEqual(['EXPR_ARITHMETIC']);
    expect(codes('tsToDateInt(RUN_TS, "Mars/Phobos")')).toEqual(['EXPR_ARGUMENT']);
    expect(codes('formatTs(RUN_TS, "yyyy-QQ")')).toEqual(['EXPR_ARGUMENT']);
    expect(codes('dateIntAdd(20170230, LOOP_INDEX)')).toEqual(['EXPR_ARGUMENT']);
    expect(codes('[1, 2][x] + len("ab")', { x: 'long' })).toEqual([]);
  });
  it('reports parse errors and forbidden access as one issue', () => {
    expect(codes('1 +')).toEqual(['EXPR_PARSE']);
    expect(codes('x.constructor', { x: 'map' })).toEqual(['EXPR_FORBIDDEN']);
    const [issue] = checkExpression('"".constructor', scope());
    expect(issue?.position).toBe(3);
  });
});

describe('inferType', () => {
  it('knows the result types of built-ins and operators', () => {
    expect(inferType('tsToDateInt(RUN_TS)', scope())).toBe('long');
    expect(inferType('dateIntRange(d, 20171110)', scope({ d: 'long' }))).toBe('list');
    expect(inferType('"a" + x', scope({ x: 'any' }))).toBe('string');
    expect(inferType('x / 2', scope({ x: 'long' }))).toBe('double');
    expect(inferType('split(s, ",")', scope({ s: 'string' }))).toBe('list');
    expect(inferType('[1]', scope())).toBe('list');
    expect(inferType('steps.a.outputs.x', scope())).toBe('any');
    expect(inferType('x ?', scope())).toBe('any');
  });
});
