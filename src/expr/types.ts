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
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxSourceLength: 10_000,
  maxAstNodes: 2_000,
  maxAstDepth: 64,
  maxStringLength: 1_000_000,
  maxListLength: 100_000,
  maxSteps: 1_000_000,
  maxValueDepth: 64,
});
