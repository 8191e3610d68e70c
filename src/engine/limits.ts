// Bounds on what one run may cost the process that drives it: step instances, iterations,
// nesting and expression evaluation. A run that reaches one fails with a message that starts
// with the limit's stable code and says how to raise it; the process goes on. Defaults and the
// settings that change them are documented in docs/engine.md ("Limits").
import { DEFAULT_EXPR_BUDGET } from '../expr/index.ts';

export interface RunLimits {
  /**
   * Step instances one run may have (every `[i]` of a step in a loop/foreach, Skipped marks
   * and instances reused by a restart included). Each costs about 1.5 KiB of heap.
   */
  maxStepInstances: number;
  /** Loop and foreach iterations one run may start, all blocks together. */
  maxIterations: number;
  /** Nesting depth of blocks (sequence, parallel, or, xor, loop, foreach) in the definition. */
  maxBlockDepth: number;
  /**
   * Evaluation steps (the unit of the expression limits) that all the expressions of one step
   * instance may spend together; also those of the run's parameters at start.
   */
  exprBudget: number;
  /** Evaluation steps one run may spend in all while this process drives it. */
  exprRunBudget: number;
}

export const DEFAULT_RUN_LIMITS: Readonly<RunLimits> = Object.freeze({
  maxStepInstances: 100_000,
  maxIterations: 200_000,
  maxBlockDepth: 32,
  exprBudget: DEFAULT_EXPR_BUDGET,
  exprRunBudget: 100_000_000,
});

/**
 * Stable codes that start the message of a run stopped by a structural limit. (A spent
 * expression budget is an EXPR_LIMIT error of the step or expression that spent it, whose
 * message names the budget and how to raise it.)
 */
export const RUN_LIMIT_CODES = Object.freeze({
  maxStepInstances: 'RUN_LIMIT_STEP_INSTANCES',
  maxIterations: 'RUN_LIMIT_ITERATIONS',
  maxBlockDepth: 'RUN_LIMIT_BLOCK_DEPTH',
} as const);

export type StructuralLimit = keyof typeof RUN_LIMIT_CODES;

/** How an operator raises each limit: the server's flag and environment variable. */
export const RUN_LIMIT_SETTINGS: Readonly<Record<keyof RunLimits, { flag: string; env: string }>> =
  Object.freeze({
    maxStepInstances: { flag: '--max-step-instances', env: 'MESON_MAX_STEP_INSTANCES' },
    maxIterations: { flag: '--max-iterations', env: 'MESON_MAX_ITERATIONS' },
    maxBlockDepth: { flag: '--max-block-depth', env: 'MESON_MAX_BLOCK_DEPTH' },
    exprBudget: { flag: '--expr-budget', env: 'MESON_EXPR_BUDGET' },
    exprRunBudget: { flag: '--expr-run-budget', env: 'MESON_EXPR_RUN_BUDGET' },
  });

/** "--max-step-instances or MESON_MAX_STEP_INSTANCES" */
export function limitHint(key: keyof RunLimits): string {
  const s = RUN_LIMIT_SETTINGS[key];
  return `${s.flag} or ${s.env}`;
}

/** `partial` over the defaults; values that are not positive integers are ignored. */
export function resolveRunLimits(partial?: Partial<RunLimits>): RunLimits {
  if (!partial) return DEFAULT_RUN_LIMITS;
  const out = { ...DEFAULT_RUN_LIMITS };
  for (const k of Object.keys(DEFAULT_RUN_LIMITS) as (keyof RunLimits)[]) {
    const v = partial[k];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) out[k] = v;
  }
  return out;
}

/** The message of a run stopped by limit `key`: code, what happened, the limit, how to raise it. */
export function limitMessage(key: StructuralLimit, limits: RunLimits, what: string): string {
  return `${RUN_LIMIT_CODES[key]}: ${what} (limit ${limits[key]}; raise it with ${limitHint(key)})`;
}
