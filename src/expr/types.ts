import { ExprError } from './errors.ts';

/** A value of the expression language: exactly the JSON values (numbers are finite). */
export type Value = null | boolean | number | string | Value[] | { [k: string]: Value };

/** The declared parameter types of workflow-api.md, plus `null` for the static checker. */
export type ValueType = 'string' | 'long' | 'double' | 'boolean' | 'list' | 'map' | 'null';

/** What the static checker knows about the names in scope (built-in values are always known). */
export interface CheckScope {
  names: Map<string, ValueType | 'any'>;
}

/**
 * Bounds that keep any input from hanging or exhausting the process. Every one is checked
 * before the work it bounds is done (range(1e9) fails before allocating).
 */
export interface Limits {
  /** Characters in an expression's source. */
  maxSourceLength: number;
  /** Nodes in a parsed expression. */
  maxAstNodes: number;
  /** Nesting depth of a parsed expression. */
  maxAstDepth: number;
  /** Characters in any string produced during evaluation. */
  maxStringLength: number;
  /** Elements in any list produced during evaluation. */
  maxListLength: number;
  /** Evaluation work units: one per node evaluated plus the size of what builtins produce or scan. */
  maxSteps: number;
  /** Nesting depth of values walked (equality, JSON checks): guards cyclic input objects. */
  maxValueDepth: number;
  /**
   * A budget shared with other evaluations (every expression of a document, of a run's
   * parameters, of one step instance): each evaluation is bounded by `maxSteps` and, together
   * with the others, by the budget. Without one, only `maxSteps` applies.
   */
  budget?: ExprBudget;
}

/**
 * Evaluation work shared by several expressions: what one `${}` may spend (`maxSteps`) is
 * bounded, and so is what all the expressions of one field set spend together, so that
 * 300 `${}` of 200,000 steps each cannot cost 60 million. Charged with the same units as
 * `maxSteps`; `charge` throws EXPR_LIMIT once `max` is exceeded (and keeps throwing).
 */
export class ExprBudget {
  used = 0;
  readonly max: number;
  /** What the budget covers, for the message ("the expressions of step x"). */
  readonly scope: string;
  /** How to raise it, appended to the message (e.g. "--expr-budget or MESON_EXPR_BUDGET"). */
  readonly hint: string | undefined;
  /** A wider budget charged with everything this one is (a step's within its run's). */
  readonly parent: ExprBudget | undefined;
  constructor(max: number, scope: string, hint?: string, parent?: ExprBudget) {
    this.max = max;
    this.scope = scope;
    this.hint = hint;
    this.parent = parent;
  }
  get exhausted(): boolean {
    return this.used > this.max || (this.parent?.exhausted ?? false);
  }
  charge(units: number): void {
    this.used += units;
    if (this.used > this.max) throw this.error();
    this.parent?.charge(units);
  }
  error(): ExprError {
    const raise = this.hint ? `; raise it with ${this.hint}` : '';
    return new ExprError(
      'EXPR_LIMIT',
      `${this.scope} took more than ${this.max} evaluation steps together (the shared expression budget${raise})`,
    );
  }
}

/** Evaluation steps shared by the expressions of one document, run start or step instance. */
export const DEFAULT_EXPR_BUDGET = 2_000_000;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxSourceLength: 10_000,
  maxAstNodes: 2_000,
  maxAstDepth: 64,
  maxStringLength: 1_000_000,
  maxListLength: 100_000,
  maxSteps: 1_000_000,
  maxValueDepth: 64,
});
