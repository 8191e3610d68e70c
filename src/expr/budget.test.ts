// The shared expression budget: what all the expressions of one document, one run's
// parameters or one step instance may spend together, whatever shape the spending takes.
import { describe, expect, it } from 'vitest';
import { checkExpression } from './check.ts';
import { evaluate, withExprBudget } from './evaluate.ts';
import { checkParameters, resolveParameters } from './parameters.ts';
import { checkTemplate, interpolate, interpolateValue } from './template.ts';
import { fails } from './test-helpers.ts';
import { DEFAULT_LIMITS, ExprBudget } from './types.ts';

/** ~210,000 evaluation steps, under the 1,000,000 of one expression. */
const COSTLY = 'len(str(range(99999)))';

describe('ExprBudget', () => {
  it('lets each expression alone spend up to maxSteps, as before', () => {
    expect(evaluate(COSTLY, {})).toBe(588885);
    expect(DEFAULT_LIMITS.maxSteps).toBe(1_000_000);
  });

  it('bounds many small expressions in one template together', () => {
    const template = Array.from({ length: 300 }, () => `echo \${${COSTLY}}`).join('\n');
    const budget = new ExprBudget(1_000_000, 'the expressions of step x', '--expr-budget');
    const t = performance.now();
    const e = fails(() => interpolate(template, {}, { budget }));
    expect(performance.now() - t).toBeLessThan(2000);
    expect(e.code).toBe('EXPR_LIMIT');
    expect(e.message).toContain('the expressions of step x took more than 1000000 evaluation steps together');
    expect(e.message).toContain('--expr-budget');
    // Stopped after a handful of expressions, not 300.
    expect(budget.used).toBeLessThan(1_300_000);
  });

  it('bounds one big expression by the smaller of its own limit and the budget', () => {
    const budget = new ExprBudget(100_000, 'the run parameters');
    const e = fails(() => evaluate(COSTLY, {}, { budget }));
    expect(e.code).toBe('EXPR_LIMIT');
    expect(e.message).toContain('the run parameters took more than 100000');
    expect(typeof e.position).toBe('number');
  });

  it('is shared across separate evaluations and templates, nested or not', () => {
    const budget = new ExprBudget(500_000, 'step y');
    expect(evaluate(COSTLY, {}, { budget })).toBe(588885);
    expect(interpolateValue(`\${${COSTLY}}`, {}, { budget })).toBe(588885);
    // A template whose expression builds another template-like string, then a third cost.
    const e = fails(() => interpolate(`a\${"\${" + str(${COSTLY}) + "}"}b`, {}, { budget }));
    expect(e.code).toBe('EXPR_LIMIT');
    expect(budget.exhausted).toBe(true);
    // Spent is spent: even a cheap expression now fails.
    expect(fails(() => evaluate('1 + 1', {}, { budget })).code).toBe('EXPR_LIMIT');
  });

  it('applies to everything inside withExprBudget, also calls that pass no limits', () => {
    const budget = new ExprBudget(300_000, 'step z');
    const e = withExprBudget(budget, () =>
      fails(() => {
        evaluate(COSTLY, {});
        interpolate(`\${${COSTLY}}`, {});
      }),
    );
    expect(e.message).toContain('step z took more than 300000');
    // Outside, no budget applies any more.
    expect(evaluate(COSTLY, {})).toBe(588885);
  });

  it('bounds parameters that depend on each other, each costly', () => {
    const params = Array.from({ length: 20 }, (_, i) => ({
      name: `p${i}`,
      type: 'long' as const,
      expression: i === 0 ? COSTLY : `p${i - 1} + ${COSTLY}`,
    }));
    const budget = new ExprBudget(1_000_000, 'the parameters of run r');
    const e = fails(() => resolveParameters(params, { builtins: {}, limits: { budget } }));
    expect(e.code).toBe('EXPR_LIMIT');
    expect(e.parameter).toMatch(/^p\d+$/);
    expect(e.message).toContain('the parameters of run r took more than');
    // Without the budget the same declarations resolve (each expression is within its limit).
    expect(resolveParameters(params, { builtins: {} }).p19).toBe(588885 * 20);
  });

  it('charges run overrides (large values) to the budget too', () => {
    const big = Array.from({ length: 50_000 }, (_, i) => i);
    const budget = new ExprBudget(60_000, 'the parameters of run r');
    const e = fails(() =>
      resolveParameters([{ name: 'a', type: 'list' }], {
        builtins: {},
        overrides: { a: big, b: big },
        limits: { budget },
      }),
    );
    expect(e.code).toBe('EXPR_LIMIT');
  });
});

describe('the static checker with a document budget', () => {
  it('folds constants until the budget is spent, then checks types and names only', () => {
    const budget = new ExprBudget(500_000, 'the constant expressions');
    const template = Array.from({ length: 300 }, () => `\${${COSTLY}}`).join(' ');
    const t = performance.now();
    expect(checkTemplate(template, { names: new Map() }, { budget })).toEqual([]);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(budget.exhausted).toBe(true);
    // Unknown names are still reported once the budget is spent.
    expect(checkExpression('nope + 1', { names: new Map() }, { budget }).map((i) => i.code)).toEqual([
      'EXPR_UNKNOWN_NAME',
    ]);
    // ...but not a constant error that only folding finds (it is reported at run time).
    expect(checkExpression('range(1e9)', { names: new Map() }, { budget })).toEqual([]);
    expect(checkExpression('range(1e9)', { names: new Map() }).map((i) => i.code)).toEqual(['EXPR_LIMIT']);
  });

  it('bounds parameter declarations checked with the budget', () => {
    const budget = new ExprBudget(500_000, 'the constant expressions');
    const params = Array.from({ length: 100 }, (_, i) => ({
      name: `p${i}`,
      type: 'long' as const,
      expression: COSTLY,
    }));
    const t = performance.now();
    expect(checkParameters(params, undefined, { budget })).toEqual([]);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});
