import { describe, expect, it } from 'vitest';
import { EXPR_ERROR_CODES, ExprError, type ExprErrorCode } from './errors.ts';
import { evaluate } from './evaluate.ts';
import { resolveParameters } from './parameters.ts';

/** One input per error code, so that a new code cannot be added without a test. */
const EXAMPLES: Record<ExprErrorCode, () => unknown> = {
  EXPR_PARSE: () => evaluate('1 +', {}),
  EXPR_UNKNOWN_NAME: () => evaluate('nope', {}),
  EXPR_UNKNOWN_FUNCTION: () => evaluate('nope(1)', {}),
  EXPR_ARITY: () => evaluate('len()', {}),
  EXPR_TYPE: () => evaluate('"a" - 1', {}),
  EXPR_FORBIDDEN: () => evaluate('x.constructor', { x: {} }),
  EXPR_LIMIT: () => evaluate('range(1e9)', {}),
  EXPR_CYCLE: () =>
    resolveParameters(
      [
        { name: 'a', expression: 'b' },
        { name: 'b', expression: 'a' },
      ],
      { builtins: {} },
    ),
  EXPR_ARITHMETIC: () => evaluate('1 / 0', {}),
  EXPR_KEY: () => evaluate('m.missing', { m: {} }),
  EXPR_ARGUMENT: () => evaluate('tsToDateInt(0, "Nowhere/City")', {}),
  EXPR_PARAMETER: () => resolveParameters([{ name: 'p' }], { builtins: {} }),
};

describe('ExprError', () => {
  it.each(EXPR_ERROR_CODES.map((c) => [c]))('%s has an example that raises it', (code) => {
    let caught: unknown;
    try {
      EXAMPLES[code]();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ExprError);
    expect((caught as ExprError).code).toBe(code);
    expect((caught as ExprError).message.length).toBeGreaterThan(0);
  });
  it('says the position and the parameter in its message, and keeps the cause', () => {
    const cause = new Error('inner');
    const e = new ExprError('EXPR_TYPE', 'bad', { position: 3, parameter: 'p', expression: 'abcd', cause });
    expect(e.message).toBe('parameter "p": bad at character 3');
    expect(e.cause).toBe(cause);
    expect(e.toIssue()).toEqual({ code: 'EXPR_TYPE', message: e.message, position: 3 });
    const shifted = e.shifted(10, 'xx ${abcd}');
    expect([shifted.position, shifted.expression]).toEqual([13, 'xx ${abcd}']);
  });
});
