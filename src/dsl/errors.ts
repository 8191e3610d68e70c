/**
 * Errors raised while a DSL program builds or synthesises a workflow. They carry a stable
 * `code` (for tests and tooling) and name the place in the program that is wrong, e.g.
 * `workflow "daily-agg": step "aggregate": ...`.
 */
export class DslError extends Error {
  readonly code: DslErrorCode;

  constructor(code: DslErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DslError';
    this.code = code;
  }
}

export type DslErrorCode =
  /** an argument of a DSL function has the wrong shape or type */
  | 'DSL_INVALID_ARGUMENT'
  /** a loop, foreach or branch opened without a body was never closed with `.end()` */
  | 'DSL_UNCLOSED_SCOPE'
  /** `.end()` called on a flow that has nothing left to close */
  | 'DSL_NOTHING_TO_END'
  /** a block or definition has no content */
  | 'DSL_EMPTY_BLOCK'
  /** `Otherwise(...)` is not the last branch, or appears twice */
  | 'DSL_BRANCH_ORDER'
  /** two steps (or the same step used twice) share a name within one workflow */
  | 'DSL_DUPLICATE_STEP'
  /** two workflows with the same namespace and id in one program */
  | 'DSL_DUPLICATE_WORKFLOW'
  /** a DSL program exports no workflow */
  | 'DSL_NOTHING_EXPORTED';

export function invalidArgument(where: string, expected: string, got: unknown): DslError {
  return new DslError('DSL_INVALID_ARGUMENT', `${where}: expected ${expected}, got ${describe(got)}`);
}

/** A short, safe description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** An option nobody knows, with the closest known one when it looks like a typo. */
export function unknownOption(where: string, key: string, known: readonly string[]): DslError {
  const lower = key.toLowerCase();
  const close = known.filter((k) => {
    const candidate = k.toLowerCase();
    return (
      editDistance(candidate, lower) <= 2 || (lower.length >= 4 && candidate.startsWith(lower.slice(0, 4)))
    );
  });
  const hint = close.length > 0 ? ` (did you mean "${close[0]}"?)` : '';
  return new DslError(
    'DSL_INVALID_ARGUMENT',
    `${where}: unknown option "${key}"${hint}; expected one of ${known.join(', ')}`,
  );
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length]!;
}
