import { describe, expect, it } from 'vitest';
import { ExprError } from './errors.ts';
import { builtinValues } from './index.ts';
import { checkParameters, coerceParameter, type ParameterDecl, resolveParameters } from './parameters.ts';
import { fails } from './test-helpers.ts';
import type { Value } from './types.ts';

const builtins = builtinValues({ runTs: 1510099200000, runId: 'r1', workflowId: 'wf', workflowVersion: 3 });

describe('builtinValues', () => {
  it('names the run', () => {
    expect(builtins).toEqual({
      RUN_TS: 1510099200000,
      RUN_ID: 'r1',
      WORKFLOW_ID: 'wf',
      WORKFLOW_VERSION: 3,
      TRIGGER: { type: 'manual', scheduledTime: null, date: null, artifacts: [] },
    });
  });

  it('says what triggered the run, every key present so that a fallback needs no `?.`', () => {
    const of = (trigger: Parameters<typeof builtinValues>[0]['trigger']) =>
      builtinValues({
        runTs: 0,
        runId: 'r',
        workflowId: 'w',
        workflowVersion: 1,
        ...(trigger ? { trigger } : {}),
      }).TRIGGER;
    expect(of({ type: 'cron', scheduledTime: '2026-03-08T10:00:00.000Z' })).toEqual({
      type: 'cron',
      scheduledTime: '2026-03-08T10:00:00.000Z',
      date: null,
      artifacts: [],
    });
    expect(of({ type: 'backfill', date: 20240131 })).toMatchObject({ date: 20240131, scheduledTime: null });
    expect(
      of({ type: 'artifact', artifacts: [{ name: 'views', partition: { dateint: 20200105 } }] }),
    ).toMatchObject({ artifacts: [{ name: 'views', partition: { dateint: 20200105 }, location: null }] });
    // TRIGGER is a built-in: a parameter cannot shadow it, an expression can read it
    const params: ParameterDecl[] = [
      {
        name: 'dateint',
        type: 'long',
        expression:
          'TRIGGER.artifacts?.[0]?.partition?.dateint != null ? long(TRIGGER.artifacts[0].partition.dateint) : tsToDateInt(RUN_TS)',
      },
    ];
    const artifact = builtinValues({
      runTs: 1510099200000,
      runId: 'r',
      workflowId: 'w',
      workflowVersion: 1,
      trigger: { type: 'artifact', artifacts: [{ name: 'views', partition: { dateint: '20200105' } }] },
    });
    expect(resolveParameters(params, { builtins: artifact })).toEqual({ dateint: 20200105 });
    expect(resolveParameters(params, { builtins })).toEqual({ dateint: 20171108 });
    expect(() => resolveParameters([{ name: 'TRIGGER', type: 'map', value: {} }], { builtins })).toThrow(
      /TRIGGER/,
    );
  });
});

describe('resolveParameters', () => {
  it('resolves in dependency order, whatever the declaration order', () => {
    const params: ParameterDecl[] = [
      { name: 'path', type: 'string', value: 's3://views/${dateint}/${country}' },
      { name: 'yesterday', type: 'long', expression: 'dateIntAdd(dateint, -1)' },
      { name: 'dateint', type: 'long', expression: 'tsToDateInt(RUN_TS)' },
      { name: 'country', type: 'string', value: 'US' },
    ];
    const out = resolveParameters(params, { builtins });
    expect(out).toEqual({
      path: 's3://views/20171108/US',
      yesterday: 20171107,
      dateint: 20171108,
      country: 'US',
    });
    expect(Object.keys(out)).toEqual(['path', 'yesterday', 'dateint', 'country']);
  });
  it('applies overrides before dependents, coerced to the declared type; extra overrides pass through', () => {
    const params: ParameterDecl[] = [
      { name: 'dateint', type: 'long', expression: 'tsToDateInt(RUN_TS)' },
      { name: 'next', type: 'long', expression: 'dateIntAdd(dateint, 1)' },
    ];
    expect(resolveParameters(params, { builtins, overrides: { dateint: '20171231', extra: [1] } })).toEqual({
      dateint: 20171231,
      next: 20180101,
      extra: [1],
    });
  });
  it('lets step parameters read workflow parameters through builtins', () => {
    const wf = resolveParameters([{ name: 'country', value: 'US' }], { builtins });
    const step = resolveParameters([{ name: 'dir', expression: 'lower(country) + "/" + RUN_ID' }], {
      builtins: { ...builtins, ...wf },
    });
    expect(step).toEqual({ dir: 'us/r1' });
  });
  it('rejects cycles naming them', () => {
    const e = fails(() =>
      resolveParameters(
        [
          { name: 'a', expression: 'b + 1' },
          { name: 'b', expression: 'c' },
          { name: 'c', value: '${a}' },
        ],
        { builtins },
      ),
    );
    expect(e.code).toBe('EXPR_CYCLE');
    expect(e.message).toContain('a -> b -> c -> a');
    expect(fails(() => resolveParameters([{ name: 'a', expression: 'a' }], { builtins })).message).toContain(
      'a -> a',
    );
  });
  it('an override breaks a cycle (the overridden value is not evaluated)', () => {
    const params: ParameterDecl[] = [
      { name: 'a', expression: 'b + 1' },
      { name: 'b', expression: 'a' },
    ];
    expect(resolveParameters(params, { builtins, overrides: { a: 1 } })).toEqual({ a: 1, b: 1 });
  });
  it('checks declared types (long must be an integer)', () => {
    const e = fails(() =>
      resolveParameters([{ name: 'n', type: 'long', expression: '10 / 4' }], { builtins }),
    );
    expect(e.code).toBe('EXPR_TYPE');
    expect(e.parameter).toBe('n');
    expect(e.message).toMatch(/^parameter "n": expected a long/);
    expect(
      fails(() => resolveParameters([{ name: 'b', type: 'boolean', value: 'yes' }], { builtins })).code,
    ).toBe('EXPR_TYPE');
  });
  it('names the parameter whose expression fails, with the position', () => {
    const e = fails(() => resolveParameters([{ name: 'p', expression: '1 + nope' }], { builtins }));
    expect(e.code).toBe('EXPR_UNKNOWN_NAME');
    expect(e.parameter).toBe('p');
    expect(e.position).toBe(4);
    expect(e.message).toBe('parameter "p": unknown name "nope" at character 4');
  });
  it('rejects duplicate, reserved and forbidden names and missing values', () => {
    expect(
      fails(() =>
        resolveParameters(
          [
            { name: 'a', value: 1 },
            { name: 'a', value: 2 },
          ],
          { builtins },
        ),
      ).code,
    ).toBe('EXPR_PARAMETER');
    expect(fails(() => resolveParameters([{ name: 'RUN_TS', value: 1 }], { builtins })).code).toBe(
      'EXPR_PARAMETER',
    );
    expect(fails(() => resolveParameters([{ name: '__proto__', value: 1 }], { builtins })).code).toBe(
      'EXPR_FORBIDDEN',
    );
    expect(fails(() => resolveParameters([{ name: 'x' }], { builtins })).code).toBe('EXPR_PARAMETER');
  });
  it('rejects non-JSON values', () => {
    expect(fails(() => resolveParameters([{ name: 'x', value: new Date() }], { builtins })).code).toBe(
      'EXPR_TYPE',
    );
  });
});

describe('coerceParameter', () => {
  it('converts per declared type', () => {
    expect(coerceParameter('p', 'string', 5)).toBe('5');
    expect(coerceParameter('p', 'long', ' 42 ')).toBe(42);
    expect(coerceParameter('p', 'double', '2.5')).toBe(2.5);
    expect(coerceParameter('p', 'boolean', 'false')).toBe(false);
    expect(coerceParameter('p', 'list', '[1,2]')).toEqual([1, 2]);
    expect(coerceParameter('p', 'map', '{"a":1}')).toEqual({ a: 1 });
    expect(coerceParameter('p', undefined, [1])).toEqual([1]);
  });
  it('rejects what does not fit', () => {
    for (const [type, v] of [
      ['long', 1.5],
      ['long', '1.5'],
      ['long', 2 ** 60],
      ['double', 'x'],
      ['string', [1]],
      ['boolean', 1],
      ['list', '{}'],
      ['map', [1]],
    ] as const)
      expect(() => coerceParameter('p', type, v as Value)).toThrow(ExprError);
  });
});

describe('checkParameters', () => {
  it('finds cycles, unknown names, duplicates and literal type errors without evaluating', () => {
    const issues = checkParameters([
      { name: 'a', type: 'long', expression: 'b + 1' },
      { name: 'b', type: 'long', expression: 'a' },
      { name: 'c', expression: 'nope' },
      { name: 'c', value: 1 },
      { name: 'd', type: 'long', value: 'abc' },
      { name: 'e', type: 'long', expression: 'upper("x")' },
      { name: 'f', value: 's3://${a}/${zzz}' },
    ]);
    expect(issues.map((i) => [i.index, i.field, i.code])).toEqual([
      [3, 'name', 'EXPR_PARAMETER'],
      [2, 'expression', 'EXPR_UNKNOWN_NAME'],
      [4, 'value', 'EXPR_TYPE'],
      [5, 'expression', 'EXPR_TYPE'],
      [6, 'value', 'EXPR_UNKNOWN_NAME'],
      [0, 'expression', 'EXPR_CYCLE'],
    ]);
    expect(issues.at(-1)?.message).toContain('a -> b -> a');
  });
  it('accepts a valid set, using the given scope for outer names', () => {
    expect(
      checkParameters(
        [
          { name: 'dateint', type: 'long', expression: 'tsToDateInt(RUN_TS)' },
          { name: 'dir', value: '${region}/${dateint}' },
        ],
        { names: new Map([['region', 'string']]) },
      ),
    ).toEqual([]);
  });
});
