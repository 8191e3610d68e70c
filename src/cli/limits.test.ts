import { describe, expect, it } from 'vitest';
import { RUN_LIMIT_OPTIONS, runLimitsFrom, runLimitUsage } from './limits.ts';

describe('run limits from the command line and the environment', () => {
  it('reads each limit from its flag, else its variable; flags win', () => {
    expect(
      runLimitsFrom(
        { 'max-step-instances': '500000', 'expr-budget': '4_000_000' },
        { MESON_MAX_STEP_INSTANCES: '7', MESON_MAX_ITERATIONS: '300000', MESON_MAX_BLOCK_DEPTH: '' },
      ),
    ).toEqual({ maxStepInstances: 500_000, maxIterations: 300_000, exprBudget: 4_000_000 });
    expect(runLimitsFrom({}, {})).toEqual({});
  });

  it('rejects what is not a positive integer, naming where it came from', () => {
    for (const bad of ['0', '-5', '1.5', '1e6', 'lots', '99999999999999999999'])
      expect(() => runLimitsFrom({ 'max-iterations': bad }, {})).toThrow(
        `--max-iterations: expected a positive integer, got "${bad}"`,
      );
    expect(() => runLimitsFrom({}, { MESON_EXPR_RUN_BUDGET: 'x' })).toThrow('MESON_EXPR_RUN_BUDGET');
  });

  it('has an option and a usage line per limit', () => {
    expect(Object.keys(RUN_LIMIT_OPTIONS).sort()).toEqual([
      'expr-budget',
      'expr-run-budget',
      'max-block-depth',
      'max-iterations',
      'max-step-instances',
    ]);
    expect(runLimitUsage()).toContain('--max-step-instances N');
    expect(runLimitUsage()).toContain('MESON_MAX_STEP_INSTANCES, default 100000');
  });
});

describe('mesonctl server: run limits', () => {
  it('refuses to start with a limit that is not a positive integer, naming it', async () => {
    const { Readable } = await import('node:stream');
    const { serverCommand } = await import('./commands/server.ts');
    let err = '';
    const code = await serverCommand([], {
      stdout: () => {},
      stderr: (s) => {
        err += s;
      },
      stdin: Readable.from([]),
      cwd: '/nonexistent',
      env: { MESON_MAX_STEP_INSTANCES: 'many' },
    });
    expect(code).toBe(2);
    expect(err).toContain('MESON_MAX_STEP_INSTANCES: expected a positive integer, got "many"');
  });

  it('lists the limits in its usage', async () => {
    const { Readable } = await import('node:stream');
    const { serverCommand } = await import('./commands/server.ts');
    let out = '';
    await serverCommand(['--help'], {
      stdout: (s) => {
        out += s;
      },
      stderr: () => {},
      stdin: Readable.from([]),
      cwd: '/nonexistent',
      env: {},
    });
    expect(out).toContain('--max-step-instances N');
    expect(out).toContain('MESON_EXPR_RUN_BUDGET, default 100000000');
  });
});
