/**
 * Stable error codes of the expression language. Every failure of parsing, checking or
 * evaluating an expression is an ExprError with one of these codes; nothing else escapes.
 */
export const EXPR_ERROR_CODES = [
  'EXPR_PARSE', // the text is not an expression (syntax), or a template is malformed
  'EXPR_UNKNOWN_NAME', // an identifier that is neither a variable nor a built-in value
  'EXPR_UNKNOWN_FUNCTION', // a call of something that is not a built-in function
  'EXPR_ARITY', // a built-in called with too few or too many arguments
  'EXPR_TYPE', // an operand or argument of the wrong type
  'EXPR_FORBIDDEN', // prototype access, `this`, unsupported operators, non-data values
  'EXPR_LIMIT', // a bound was exceeded (source/AST size, string/list length, steps)
  'EXPR_CYCLE', // parameters that depend on each other
  'EXPR_ARITHMETIC', // division by zero, a result that is NaN or infinite
  'EXPR_KEY', // a missing map key or an index out of range
  'EXPR_ARGUMENT', // an argument of the right type but an invalid value (bad timezone, 20171345)
  'EXPR_PARAMETER', // a parameter declaration that cannot be resolved (duplicate, no value)
] as const;

export type ExprErrorCode = (typeof EXPR_ERROR_CODES)[number];

/** A problem found without evaluating: `position` is a 0-based character offset in the source. */
export interface ExprIssue {
  code: ExprErrorCode;
  message: string;
  position: number;
}

/**
 * The only exception type the expression module throws. `message` already says where
 * ("... at character 4"); `detail` is the same message without the position, for callers that
 * show the position themselves (a caret). Callers add the field path.
 */
export class ExprError extends Error {
  override name = 'ExprError';
  code: ExprErrorCode;
  position?: number;
  expression?: string;
  detail: string;
  /** The parameter being resolved when the error happened, if any. */
  parameter?: string;

  constructor(
    code: ExprErrorCode,
    detail: string,
    opts: { position?: number; expression?: string; parameter?: string; cause?: unknown } = {},
  ) {
    super(formatMessage(detail, opts.position, opts.parameter), { cause: opts.cause });
    this.code = code;
    this.detail = detail;
    if (opts.position !== undefined) this.position = opts.position;
    if (opts.expression !== undefined) this.expression = opts.expression;
    if (opts.parameter !== undefined) this.parameter = opts.parameter;
  }

  /** The same error with the expression text (and a position, when it had none) attached. */
  withExpression(expression: string, fallbackPosition?: number): ExprError {
    if (this.expression !== undefined) return this;
    const e = new ExprError(this.code, this.detail, {
      position: this.position ?? fallbackPosition,
      expression,
      parameter: this.parameter,
      cause: this.cause,
    });
    return e;
  }

  /** The same error shifted by `offset` characters (an expression inside a template). */
  shifted(offset: number, template: string): ExprError {
    return new ExprError(this.code, this.detail, {
      position: (this.position ?? 0) + offset,
      expression: template,
      parameter: this.parameter,
      cause: this.cause,
    });
  }

  toIssue(): ExprIssue {
    return { code: this.code, message: this.message, position: this.position ?? 0 };
  }
}

function formatMessage(detail: string, position?: number, parameter?: string): string {
  const where = position === undefined ? '' : ` at character ${position}`;
  const who = parameter === undefined ? '' : `parameter "${parameter}": `;
  return `${who}${detail}${where}`;
}

/** The message of a foreign error, without ever throwing (for wrapping unexpected errors). */
export function foreignMessage(err: unknown): string {
  try {
    return String((err as Error)?.message ?? err);
  } catch {
    return 'unknown error';
  }
}
