// The expression language of workflow-api.md ("Parameters and expressions"): parse, check,
// evaluate, interpolate, resolve parameters. See docs/expressions.md for the user's view.
// Everything here is pure and throws only ExprError.
import { ExprError } from './errors.ts';
import { resolveLimits } from './evaluate.ts';
import { type Expr, parseCached } from './parse.ts';
import type { Limits, Value } from './types.ts';

export { abbreviationProblem as timeZoneAbbreviationProblem } from '../time/zone.ts';
export { BUILTINS, type Builtin, type StaticType } from './builtins.ts';
export { BUILTIN_NAMES, checkExpression, inferType } from './check.ts';
export { EXPR_ERROR_CODES, ExprError, type ExprErrorCode, type ExprIssue } from './errors.ts';
export { evaluate, withExprBudget } from './evaluate.ts';
export {
  checkParameters,
  coerceParameter,
  freeNames,
  type ParameterDecl,
  type ParameterIssue,
  type ParameterType,
  type ResolveContext,
  resolveParameters,
} from './parameters.ts';
export type { BinaryOp, Expr, UnaryOp } from './parse.ts';
export {
  checkTemplate,
  hasInterpolation,
  interpolate,
  interpolateByReference,
  interpolateValue,
  type TemplateExpression,
  templateExpressions,
} from './template.ts';
export {
  type CheckScope,
  DEFAULT_EXPR_BUDGET,
  DEFAULT_LIMITS,
  ExprBudget,
  type Limits,
  type Value,
  type ValueType,
} from './types.ts';

/**
 * Parses `src` into the language's AST (cached; do not mutate the result). Throws ExprError
 * (EXPR_PARSE, EXPR_FORBIDDEN, EXPR_LIMIT) with the position and the expression.
 */
export function parseExpression(src: string, limits?: Partial<Limits>): Expr {
  return parseCached(src, resolveLimits(limits));
}

/** What started a run, as recorded by the system (a WorkflowRun's spec.initiator). */
export interface TriggerInfo {
  type: string;
  scheduledTime?: string;
  date?: number;
  artifacts?: { name: string; partition?: Record<string, string | number | boolean>; location?: string }[];
}

export interface RunIdentity {
  runTs: number;
  runId: string;
  workflowId: string;
  workflowVersion: number;
  /** Default: a manual run. */
  trigger?: TriggerInfo;
}

/**
 * The TRIGGER value: every key always present (null or empty when the trigger has none), so
 * that `TRIGGER.date != null ? ... : ...` needs no `?.`.
 */
export function triggerValue(t: TriggerInfo = { type: 'manual' }): Value {
  return {
    type: t.type,
    scheduledTime: t.scheduledTime ?? null,
    date: t.date ?? null,
    artifacts: (t.artifacts ?? []).map((a) => ({
      name: a.name,
      partition: { ...(a.partition ?? {}) },
      location: a.location ?? null,
    })),
  };
}

/** The built-in values of a run: RUN_TS (epoch ms), RUN_ID, WORKFLOW_ID, WORKFLOW_VERSION, TRIGGER. */
export function builtinValues(run: RunIdentity): Record<string, Value> {
  if (!Number.isFinite(run.runTs))
    throw new ExprError('EXPR_TYPE', `RUN_TS must be epoch milliseconds, got ${run.runTs}`);
  return {
    RUN_TS: run.runTs,
    RUN_ID: run.runId,
    WORKFLOW_ID: run.workflowId,
    WORKFLOW_VERSION: run.workflowVersion,
    TRIGGER: triggerValue(run.trigger),
  };
}
