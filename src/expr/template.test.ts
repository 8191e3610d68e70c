import { describe, expect, it } from 'vitest';
import { ExprError } from './errors.ts';
import {
  checkTemplate,
  hasInterpolation,
  interpolate,
  interpolateByReference,
  interpolateValue,
  templateExpressions,
} from './template.ts';
import type { CheckScope } from './types.ts';

const vars = { dateint: 20171107, country: 'US', list: [1, 'a'], m: { k: true }, nothing: null };
const scope: CheckScope = {
  names: new Map([
    ['dateint', 'long'],
    ['country', 'string'],
  ]),
};

describe('interpolate', () => {
  it('replaces every ${EXPR} and leaves other text alone', () => {
    expect(interpolate('s3://a/${dateint}/${lower(country)}', vars)).toBe('s3://a/20171107/us');
    expect(interpolate('no expressions, $5 and {braces}', vars)).toBe('no expressions, $5 and {braces}');
    expect(interpolate('${dateint}${country}', vars)).toBe('20171107US');
    expect(interpolate('', vars)).toBe('');
  });
  it('shows values as text: lists and maps as JSON, null as null', () => {
    expect(interpolate('${list} ${m} ${nothing} ${1.5} ${true}', vars)).toBe(
      '[1,"a"] {"k":true} null 1.5 true',
    );
  });
  it('escapes $${ as a literal ${', () => {
    expect(interpolate('echo $${HOME} ${country}', vars)).toBe('echo ${HOME} US');
    expect(interpolate('$$${country}', vars)).toBe('$${country}');
  });
  it('ends an expression at the first } outside a string literal', () => {
    expect(interpolate('${join(["a}", "b"], "}")}!', vars)).toBe('a}}b!');
  });
  it('reports errors with positions in the template', () => {
    try {
      interpolate('s3://a/${nope}', vars);
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(ExprError);
      const err = e as ExprError;
      expect(err.code).toBe('EXPR_UNKNOWN_NAME');
      expect(err.position).toBe(9);
      expect(err.expression).toBe('s3://a/${nope}');
    }
    expect(() => interpolate('x ${country', vars)).toThrow(/unclosed/);
    expect(() => interpolate('x ${}', vars)).toThrow(/empty expression/);
  });
});

describe('interpolateByReference', () => {
  const ref = (i: number) => `<${i}>`;
  it('puts references in the text and the rendered values beside it, one per distinct expression', () => {
    expect(interpolateByReference('a ${x} ${y} ${x} $${z} ${[1,"b"]}', { x: '$(id)', y: 2 }, ref)).toEqual({
      text: 'a <0> <1> <0> ${z} <2>',
      values: ['$(id)', '2', '[1,"b"]'],
    });
    expect(interpolateByReference('no expressions', {}, ref)).toEqual({ text: 'no expressions', values: [] });
  });
  it('reports errors at their offset in the template, like interpolate', () => {
    try {
      interpolateByReference('ok ${x} then ${nope}', { x: 1 }, ref);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ExprError);
      expect((e as ExprError).position).toBe(15);
    }
  });
});

describe('interpolateValue', () => {
  it('keeps the type of a lone ${EXPR}', () => {
    expect(interpolateValue('${list}', vars)).toEqual([1, 'a']);
    expect(interpolateValue('${dateint}', vars)).toBe(20171107);
    expect(interpolateValue(' ${dateint}', vars)).toBe(' 20171107');
  });
});

describe('templateExpressions and checkTemplate', () => {
  it('lists expressions with their offsets', () => {
    expect(templateExpressions('a ${x} b ${ y + 1 } $${z}')).toEqual([
      { expr: 'x', offset: 4 },
      { expr: ' y + 1 ', offset: 11 },
    ]);
    expect(hasInterpolation('a $${b}')).toBe(false);
    expect(hasInterpolation('a ${b}')).toBe(true);
  });
  it('checks each expression, positions relative to the template', () => {
    expect(checkTemplate('s3://${dateint}/${country}', scope)).toEqual([]);
    const issues = checkTemplate('s3://${dateint}/${countr}', scope);
    expect(issues).toEqual([
      {
        code: 'EXPR_UNKNOWN_NAME',
        message:
          'unknown name "countr" (did you mean "country"?) (for a literal "${" write "$${") at character 18',
        position: 18,
      },
    ]);
    expect(checkTemplate('${', scope).map((i) => i.code)).toEqual(['EXPR_PARSE']);
  });
  it('says how to write a literal ${ when shell syntax does not parse (${name:-default})', () => {
    const [issue] = checkTemplate('echo ${out:-/tmp}', scope);
    expect(issue?.code).toBe('EXPR_PARSE');
    expect(issue?.message).toContain('(for a literal "${" write "$${")');
  });
});
