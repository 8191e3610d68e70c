// Property tests: whatever the expression text and whatever the variables (including values
// that are not JSON), the module returns JSON or throws ExprError, quickly. Never another
// exception, a crash or a hang.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUILTINS } from './builtins.ts';
import { checkExpression } from './check.ts';
import { ExprError } from './errors.ts';
import { evaluate } from './evaluate.ts';
import { checkParameters, resolveParameters } from './parameters.ts';
import { checkTemplate, interpolate } from './template.ts';
import type { CheckScope, Value } from './types.ts';

const NAMES = ['x', 'y', 's', 'l', 'm', 'steps', 'RUN_TS', 'LOOP_INDEX'];
const TOKENS = [
  ...NAMES,
  ...BUILTINS.keys(),
  'constructor',
  '__proto__',
  'prototype',
  'this',
  'new',
  'toString',
  'length',
  '0',
  '1',
  '-1',
  '1e9',
  '1e309',
  '0.5',
  '20171231',
  '1510099200000',
  '"America/Los_Angeles"',
  '"yyyy-MM-dd"',
  '"a,b"',
  '""',
  "'",
  '"',
  '\\',
  'true',
  'null',
  '+',
  '-',
  '*',
  '/',
  '%',
  '==',
  '!=',
  '<',
  '>=',
  '&&',
  '||',
  '!',
  '?',
  ':',
  '?.',
  '.',
  ',',
  ';',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  '${',
  '$${',
  '=',
  '=>',
  '**',
  '|',
  '~',
  '`',
];

/** Expression-like text: random tokens from the language and its neighbours. */
const tokenSoup = fc
  .array(fc.constantFrom(...TOKENS), { maxLength: 25 })
  .chain((ts) => fc.constantFrom(' ', '').map((sep) => ts.join(sep)));

/** Well-formed expressions: calls of built-ins with random arguments, operators, members. */
const { expr: treeExpr } = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...NAMES),
    fc.integer({ min: -5, max: 30_000_000 }).map(String),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => `(${JSON.stringify(d)})`),
    fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
    fc
      .tuple(fc.constantFrom(...BUILTINS.keys()), fc.array(tie('expr'), { maxLength: 3 }))
      .map(([f, args]) => `${f}(${args.join(', ')})`),
    fc
      .tuple(tie('expr'), fc.constantFrom('+', '-', '*', '/', '%', '==', '<', '>=', '&&', '||'), tie('expr'))
      .map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc
      .tuple(tie('expr'), fc.constantFrom('.a', '[0]', '[1]', '?.a', '["k"]', '.length'))
      .map(([a, m]) => a + m),
    fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([a, b, c]) => `(${a} ? ${b} : ${c})`),
    fc.array(tie('expr'), { maxLength: 3 }).map((items) => `[${items.join(', ')}]`),
    tie('expr').map((a) => `!${a}`),
  ),
}));

/** Any variables, including values that are not JSON (functions, dates, maps, NaN, cycles). */
const anyValue = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
});
const jsonVars = fc.record({
  x: fc.integer(),
  y: fc.double({ noNaN: true, noDefaultInfinity: true }),
  s: fc.string(),
  l: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
  m: fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  steps: fc.constant({ a: { outputs: { rows: 3, parts: ['p'] } } }),
  RUN_TS: fc.integer({ min: 0, max: 4_000_000_000_000 }),
  LOOP_INDEX: fc.nat(10),
});
const wildVars = fc.oneof(
  jsonVars as fc.Arbitrary<Record<string, unknown>>,
  fc.dictionary(fc.constantFrom(...NAMES, '__proto__', 'constructor'), anyValue),
);

const scope: CheckScope = { names: new Map(NAMES.map((n) => [n, 'any' as const])) };

/** evaluate's errors always say where and in what. */
function evaluateChecked(src: string, vars: Record<string, unknown>): Value {
  try {
    return evaluate(src, vars as Record<string, Value>);
  } catch (err) {
    if (err instanceof ExprError) {
      expect(typeof err.position).toBe('number');
      expect(err.expression).toBe(src);
    }
    throw err;
  }
}

/**
 * -0 (a variable may hold one: fc.double and JSON.parse('-0') make it) is JSON's 0; everything
 * else is compared as it is, so a Map, a Date or a function still fails the round trip.
 */
function negativeZeroAsZero(v: unknown): unknown {
  if (Object.is(v, -0)) return 0;
  if (Array.isArray(v)) return v.map(negativeZeroAsZero);
  if (v !== null && typeof v === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(v)))
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, negativeZeroAsZero(x)]));
  return v;
}

/** Runs f; it must return JSON (round-trips) or throw ExprError, within a second. */
function onlyJsonOrExprError(f: () => unknown): void {
  const start = performance.now();
  try {
    const v = f();
    expect(JSON.parse(JSON.stringify(v))).toEqual(negativeZeroAsZero(v));
  } catch (err) {
    if (!(err instanceof ExprError)) throw err;
    expect(typeof err.code).toBe('string');
    expect(err.code.startsWith('EXPR_')).toBe(true);
  }
  expect(performance.now() - start).toBeLessThan(1000);
}

describe('no input escapes the sandbox', () => {
  it('arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), tokenSoup), wildVars, (src, vars) => {
        onlyJsonOrExprError(() => evaluateChecked(src, vars));
        onlyJsonOrExprError(() => checkExpression(src, scope));
        onlyJsonOrExprError(() => interpolate(`a\${${src}}b`, vars as Record<string, Value>));
        onlyJsonOrExprError(() => checkTemplate(src, scope));
        onlyJsonOrExprError(() => interpolate(src, vars as Record<string, Value>));
      }),
      { numRuns: 1000 },
    );
  });
  it('well-formed expressions over built-ins', () => {
    fc.assert(
      fc.property(treeExpr, wildVars, (src, vars) => {
        onlyJsonOrExprError(() => evaluateChecked(src, vars));
        onlyJsonOrExprError(() => checkExpression(src, scope));
      }),
      { numRuns: 1000 },
    );
  });
  it('static check agrees with evaluation on constant expressions', () => {
    // If the checker finds nothing in a constant expression, evaluating it must succeed.
    fc.assert(
      fc.property(treeExpr, (src) => {
        const issues = checkExpression(src, { names: new Map() });
        if (issues.length > 0) return;
        let value: Value | undefined;
        try {
          value = evaluate(src, {});
        } catch (err) {
          if (!(err instanceof ExprError)) throw err;
          // Only names (the checker reports them) can make a statically clean expression fail.
          expect(err.code).toBe('EXPR_UNKNOWN_NAME');
        }
        if (value !== undefined) expect(JSON.parse(JSON.stringify(value))).toEqual(value);
      }),
      { numRuns: 400 },
    );
  });
  it('arbitrary parameter declarations', () => {
    const decl = fc.record(
      {
        name: fc.constantFrom('a', 'b', 'c', 'RUN_TS', '__proto__', ''),
        type: fc.constantFrom('string', 'long', 'double', 'boolean', 'list', 'map'),
        value: anyValue,
        expression: fc.oneof(treeExpr, tokenSoup, fc.constantFrom('a', 'b + 1', 'c')),
      },
      { requiredKeys: ['name'] },
    );
    fc.assert(
      fc.property(fc.array(decl, { maxLength: 4 }), wildVars, (params, builtins) => {
        onlyJsonOrExprError(() =>
          resolveParameters(params as never, { builtins: builtins as Record<string, Value> }),
        );
        onlyJsonOrExprError(() => checkParameters(params as never));
      }),
      { numRuns: 1000 },
    );
  });
});

/** Numbers at the edges: beyond dates, beyond exact integers, beyond Date's range, tiny. */
const EXTREME_NUMBERS = [
  '0',
  '-1',
  '1',
  '0.5',
  '-0.5',
  '20240101',
  '99991231',
  '10000101',
  '1e15',
  '-1e15',
  '8.64e15',
  '9007199254740991',
  '-9007199254740991',
  '9007199254740993',
  '1e300',
  '-1e300',
  '1.7976931348623157e308',
  '-1.7976931348623157e308',
  '5e-324',
  '1510099200000',
  '253402300799999',
];
const EXTREME_ARGS = [
  ...EXTREME_NUMBERS,
  '"20240101"',
  '"1e400"',
  '"-1e400"',
  '"9999999999999999999999"',
  '"yyyy-MM-dd HH:mm:ss.SSS XXX"',
  '"UTC"',
  '"Pacific/Kiritimati"',
  '[1e308, 1e308]',
  '[]',
  '""',
];

/** Every number inside `v`, which must all be finite. */
function assertFinite(v: unknown): void {
  if (typeof v === 'number') expect(Number.isFinite(v), `${v} is not finite`).toBe(true);
  else if (Array.isArray(v)) for (const x of v) assertFinite(x);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) assertFinite(x);
}

describe('no NaN or infinity escapes evaluation', () => {
  it('dateIntAdd past the calendar is an argument error, not NaN', () => {
    for (const days of ['1e15', '-1e15', '9007199254740991', '-9007199254740991']) {
      let err: unknown;
      try {
        evaluate(`str(dateIntAdd(20240101, ${days}))`, {});
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ExprError);
      expect((err as ExprError).code).toBe('EXPR_ARGUMENT');
      expect((err as ExprError).message).toContain('outside years 1000..9999');
    }
  });

  it('every built-in and operator gives finite numbers or an EXPR_* error, with edge arguments', () => {
    const call = fc
      .tuple(
        fc.constantFrom(...BUILTINS.keys()),
        fc.array(fc.constantFrom(...EXTREME_ARGS), { maxLength: 3 }),
      )
      .map(([f, args]) => `${f}(${args.join(', ')})`);
    const operand = fc.oneof(call, fc.constantFrom(...EXTREME_NUMBERS));
    const arithmetic = fc
      .tuple(operand, fc.constantFrom('+', '-', '*', '/', '%'), operand)
      .map(([a, op, b]) => `(${a}) ${op} (${b})`);
    fc.assert(
      fc.property(fc.oneof(call, arithmetic), (src) => {
        // Wrapped so that a NaN cannot hide in a string or a comparison: each shape must fail
        // or give only finite numbers.
        for (const shape of [src, `[${src}]`, `str(${src})`, `${src} == ${src}`]) {
          try {
            const v = evaluate(shape, {});
            assertFinite(v);
            if (typeof v === 'string') expect(v).not.toMatch(/NaN|Infinity/);
            if (shape.endsWith(` == ${src}`)) expect(v).toBe(true);
          } catch (err) {
            if (!(err instanceof ExprError)) throw err;
            expect(err.code.startsWith('EXPR_')).toBe(true);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
