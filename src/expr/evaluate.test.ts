import { describe, expect, it } from 'vitest';
import { ExprError } from './errors.ts';
import { evaluate } from './evaluate.ts';
import { parseExpression } from './index.ts';
import type { Limits, Value } from './types.ts';

function ev(src: string, vars: Record<string, Value> = {}, limits?: Partial<Limits>): Value {
  return evaluate(src, vars, limits);
}

function err(src: string, vars: Record<string, Value> = {}, limits?: Partial<Limits>): ExprError {
  try {
    evaluate(src, vars, limits);
  } catch (e) {
    expect(e).toBeInstanceOf(ExprError);
    return e as ExprError;
  }
  throw new Error(`expected ${src} to fail`);
}

describe('operators', () => {
  it('arithmetic and precedence', () => {
    expect(ev('1 + 2 * 3')).toBe(7);
    expect(ev('(1 + 2) * 3')).toBe(9);
    expect(ev('7 % 3 - 10 / 4')).toBe(-1.5);
    expect(ev('-x + 1', { x: 3 })).toBe(-2);
    expect(ev('-(0)')).toBe(0);
    expect(Object.is(ev('0 * -1'), -0)).toBe(false);
  });
  it('+ joins strings (numbers and booleans as text) and concatenates lists', () => {
    expect(ev('"s3://a/" + d', { d: 20171107 })).toBe('s3://a/20171107');
    expect(ev('1 + "a" + true')).toBe('1atrue');
    expect(ev('[1] + [2, 3]')).toEqual([1, 2, 3]);
    expect(err('"a" + [1]').code).toBe('EXPR_TYPE');
    expect(err('[1] + 1').code).toBe('EXPR_TYPE');
    expect(err('true + 1').code).toBe('EXPR_TYPE');
  });
  it('comparisons: numbers with numbers, strings with strings, equality is structural', () => {
    expect(ev('x < 5', { x: 3 })).toBe(true);
    expect(ev('"abc" < "abd"')).toBe(true);
    expect(ev('2 >= 2 && 1 <= 0')).toBe(false);
    expect(ev('[1, [2]] == [1, [2]]')).toBe(true);
    expect(ev('m == n', { m: { a: [1] }, n: { a: [1] } })).toBe(true);
    expect(ev('1 == "1"')).toBe(false);
    expect(ev('1 === 1 && 1 !== 2 && 1 != 2')).toBe(true);
    expect(err('1 < "2"').code).toBe('EXPR_TYPE');
  });
  it('&& || ! ?: need booleans and short-circuit', () => {
    expect(ev('true || 1/0 == 1')).toBe(true);
    expect(ev('false && 1/0 == 1')).toBe(false);
    expect(ev('!false')).toBe(true);
    expect(ev('x > 1 ? "big" : "small"', { x: 2 })).toBe('big');
    expect(ev('false ? 1/0 : 2')).toBe(2);
    expect(err('1 && true').code).toBe('EXPR_TYPE');
    expect(err('!0').code).toBe('EXPR_TYPE');
    expect(err('"" ? 1 : 2').code).toBe('EXPR_TYPE');
  });
  it('division by zero, overflow and out-of-range literals are EXPR_ARITHMETIC', () => {
    expect(err('1 / 0').code).toBe('EXPR_ARITHMETIC');
    expect(err('1 % 0').code).toBe('EXPR_ARITHMETIC');
    expect(err('0 / 0').code).toBe('EXPR_ARITHMETIC');
    expect(err('1e308 * 10').code).toBe('EXPR_ARITHMETIC');
    expect(err('1e999').code).toBe('EXPR_ARITHMETIC');
  });
  it('rejects operators outside the spec', () => {
    for (const src of [
      '1 | 2',
      '1 & 2',
      '1 ^ 2',
      '1 << 2',
      '1 >> 2',
      '1 >>> 2',
      '2 ** 3',
      'a ?? 1',
      '~1',
      '+1',
    ])
      expect(err(src, { a: 1 }).code).toBe('EXPR_FORBIDDEN');
  });
});

describe('names and member access', () => {
  const vars = {
    steps: { agg: { outputs: { rows: 12, parts: ['a', 'b'] } } },
    m: { 'key with space': 1 },
  };
  it('reads variables, step outputs, list indices and map keys', () => {
    expect(ev('steps.agg.outputs.rows', vars)).toBe(12);
    expect(ev('steps.agg.outputs.parts[1]', vars)).toBe('b');
    expect(ev('steps["agg"].outputs["rows"]', vars)).toBe(12);
    expect(ev('m["key with space"]', vars)).toBe(1);
    expect(ev('"abc"[1]')).toBe('b');
    expect(ev('[10, 20][1]')).toBe(20);
  });
  it('reports unknown names, missing keys and bad indices', () => {
    expect(err('nope').code).toBe('EXPR_UNKNOWN_NAME');
    expect(err('steps.other.outputs', vars).code).toBe('EXPR_KEY');
    expect(err('steps.agg.outputs.parts[2]', vars).code).toBe('EXPR_KEY');
    expect(err('steps.agg.outputs.parts[-1]', vars).code).toBe('EXPR_KEY');
    expect(err('steps.agg.outputs.parts.length', vars).code).toBe('EXPR_TYPE');
    expect(err('steps.agg.outputs.rows.x', vars).code).toBe('EXPR_TYPE');
    expect(err('m[[1]]', vars).code).toBe('EXPR_TYPE');
  });
  it('?. yields null for a null object or a missing key', () => {
    expect(ev('steps?.other', vars)).toBe(null);
    expect(ev('steps?.other?.outputs', vars)).toBe(null);
    expect(ev('n?.x', { n: null })).toBe(null);
    expect(ev('[1]?.[3]')).toBe(null);
  });
  it('reports unknown functions and wrong arity', () => {
    expect(err('nope(1)').code).toBe('EXPR_UNKNOWN_FUNCTION');
    expect(err('len()').code).toBe('EXPR_ARITY');
    expect(err('len(1, 2)').code).toBe('EXPR_ARITY');
    expect(err('len').code).toBe('EXPR_UNKNOWN_NAME');
  });
});

describe('sandbox', () => {
  it('rejects prototype and host access statically', () => {
    for (const src of [
      'constructor',
      '"".constructor',
      'x.__proto__',
      'x.prototype',
      'x.hasOwnProperty',
      'x.toString',
      'x.valueOf',
      '__defineGetter__',
      'this',
      'this.x',
      'globalThis',
    ]) {
      const e = err(src, { x: {} });
      expect(e.code, src).toBe('EXPR_FORBIDDEN');
    }
  });
  it('decodes string escapes, \\u included, and refuses unknown ones instead of dropping the backslash', () => {
    expect(evaluate(String.raw`"a\u00e9\u{1F600}\n\t\"\\\/"`, {})).toBe('aé😀\n\t"\\/');
    expect(evaluate(String.raw`'it\'s'`, {})).toBe("it's");
    expect(() => evaluate(String.raw`"C:\data"`, {})).toThrow('unsupported escape "\\d"');
    expect(() => evaluate(String.raw`"\u12"`, {})).toThrow(ExprError);
  });
  it('reads -0 from a variable as 0 (JSON cannot tell them apart; found by the property test)', () => {
    expect(Object.is(evaluate('y', { y: -0 }), 0)).toBe(true);
    expect(Object.is(evaluate('l[0]', { l: [-0] }), 0)).toBe(true);
  });
  it('rejects computed prototype keys at evaluation', () => {
    expect(err('x["__proto__"]', { x: {} }).code).toBe('EXPR_FORBIDDEN');
    expect(err('x["construc" + "tor"]', { x: {} }).code).toBe('EXPR_FORBIDDEN');
    expect(err('x[k]', { x: {}, k: 'prototype' }).code).toBe('EXPR_FORBIDDEN');
    // A literal forbidden key is rejected when parsed, whatever it indexes.
    expect(err('[]["constructor"]').code).toBe('EXPR_FORBIDDEN');
  });
  it('allows only calls of built-in functions (no methods, no computed callee)', () => {
    expect(err('"a".toUpperCase()').code).toBe('EXPR_FORBIDDEN');
    expect(err('x.f()', { x: {} }).code).toBe('EXPR_FORBIDDEN');
    expect(err('[len][0](1)').code).toBe('EXPR_FORBIDDEN');
  });
  it('never reads inherited properties, getters or non-data values', () => {
    const withProto = Object.create({ secret: 1 }) as Record<string, Value>;
    expect(err('o.secret', { o: withProto }).code).toBe('EXPR_TYPE');
    const getter = {} as Record<string, Value>;
    Object.defineProperty(getter, 'g', { get: () => 1, enumerable: true });
    expect(err('o.g', { o: getter }).code).toBe('EXPR_FORBIDDEN');
    expect(err('f', { f: (() => 1) as unknown as Value }).code).toBe('EXPR_TYPE');
    expect(err('d', { d: new Date() as unknown as Value }).code).toBe('EXPR_TYPE');
    expect(err('u', { u: undefined as unknown as Value }).code).toBe('EXPR_UNKNOWN_NAME');
    expect(err('toString', {}).code).toBe('EXPR_FORBIDDEN');
    expect(err('hasOwn', {}).code).toBe('EXPR_UNKNOWN_NAME');
  });
  it('keeps results JSON: a cyclic input is rejected, not returned', () => {
    const cyclic: Record<string, Value> = {};
    cyclic.self = cyclic;
    expect(err('c', { c: cyclic }).code).toBe('EXPR_LIMIT');
    expect(err('[n]', { n: Number.NaN }).code).toBe('EXPR_ARITHMETIC');
  });
  it('rejects assignment, new, arrow functions and comma expressions as syntax', () => {
    for (const src of ['x = 1', 'new Date()', '() => 1', 'a, b', 'a; b', 'a;', 'a,', '`t`', '{a: 1}'])
      expect(['EXPR_PARSE', 'EXPR_FORBIDDEN']).toContain(err(src, { a: 1, b: 2, x: 1 }).code);
  });
});

describe('limits', () => {
  it('bounds the source, the AST and the nesting', () => {
    expect(err('1'.repeat(10_001)).code).toBe('EXPR_LIMIT');
    expect(err(Array.from({ length: 2100 }, () => '1').join('+')).code).toBe('EXPR_LIMIT');
    expect(err(`${'('.repeat(5000)}1${')'.repeat(5000)}`).code).toBe('EXPR_LIMIT');
    expect(err(`${'!'.repeat(3000)}true`).code).toBe('EXPR_LIMIT');
    expect(err(`${'['.repeat(100)}${']'.repeat(100)}`).code).toBe('EXPR_LIMIT');
  });
  it('turns pathological text at the length limit into ExprError quickly', () => {
    const n = 9_999;
    for (const src of [
      '-'.repeat(n) + '1',
      '!'.repeat(n),
      '('.repeat(n),
      `${'a?'.repeat(n / 3)}1:2`,
      `a${'.b'.repeat(n / 2 - 1)}`,
      `a${'[0]'.repeat(n / 3 - 1)}`,
      `f(${'1,'.repeat(n / 2 - 1)}1)`,
      `[${'['.repeat(70)}${']'.repeat(70)}]`,
      '"'.repeat(n),
      `'${'\\'.repeat(n / 2 - 1)}'`,
    ]) {
      const t = performance.now();
      try {
        expect(typeof evaluate(src, {})).toBe('string'); // only the string of backslashes is valid
      } catch (e) {
        expect(e).toBeInstanceOf(ExprError);
      }
      expect(performance.now() - t).toBeLessThan(500);
    }
  });
  it('bounds strings, lists and steps', () => {
    expect(err('split(s, "")', { s: 'x'.repeat(100_001) }).code).toBe('EXPR_LIMIT');
    expect(err('split(s, ",")', { s: ','.repeat(100_000) }).code).toBe('EXPR_LIMIT');
    expect(ev('len(split(s, ","))', { s: ','.repeat(99_999) })).toBe(100_000);
    expect(err('s + s', { s: 'x'.repeat(600_000) }).code).toBe('EXPR_LIMIT');
    expect(err('range(10)', {}, { maxListLength: 5 }).code).toBe('EXPR_LIMIT');
    expect(err('len(range(90000)) + len(range(90000))', {}, { maxSteps: 100_000 }).code).toBe('EXPR_LIMIT');
    expect(err('join(range(100000), "xxxxxxxxxxxxxx")').code).toBe('EXPR_LIMIT');
    const big = () => Array.from({ length: 100 }, () => 1);
    expect(err('x == y', { x: big(), y: big() }, { maxSteps: 50 }).code).toBe('EXPR_LIMIT');
  });
});

describe('errors', () => {
  it('carry code, position and expression, and say the position in the message', () => {
    const e = err('1 + nope');
    expect(e.code).toBe('EXPR_UNKNOWN_NAME');
    expect(e.position).toBe(4);
    expect(e.expression).toBe('1 + nope');
    expect(e.message).toBe('unknown name "nope" at character 4');
    expect(e.detail).toBe('unknown name "nope"');
  });
  it('point at the offending argument', () => {
    expect(err('dateIntAdd(20171108, "x")').position).toBe(21);
    expect(err('len(1)').position).toBe(4);
    expect(err('1 +').code).toBe('EXPR_PARSE');
    expect(err('"abc').code).toBe('EXPR_PARSE');
    expect(err('').code).toBe('EXPR_PARSE');
    expect(err('[1,,2]').code).toBe('EXPR_PARSE');
  });
});

describe('cache', () => {
  it('parses once per source', () => {
    expect(parseExpression('a + 1')).toBe(parseExpression('a + 1'));
    expect(ev('a + 1', { a: 1 })).toBe(2);
    expect(ev('a + 1', { a: 2 })).toBe(3);
  });
});
