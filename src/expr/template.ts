// `${EXPR}` interpolation inside strings. `$${` is a literal `${` (the escape); a `$` not
// followed by `{` is just a character. Inside `${...}` the expression ends at the first `}`
// outside a string literal (the language has no braces of its own).
import { checkExpressionErrors } from './check.ts';
import { ExprError, type ExprIssue } from './errors.ts';
import { evaluate, resolveLimits } from './evaluate.ts';
import { Lru } from './lru.ts';
import type { CheckScope, Limits, Value } from './types.ts';
import { checkStringLength, displayString, type Meter } from './values.ts';

export interface TemplateExpression {
  /** The expression text between `${` and `}`. */
  expr: string;
  /** Offset of `expr` in the template (add an expression's positions to get template positions). */
  offset: number;
}

type Segment = string | TemplateExpression;

const scans = new Lru<string, Segment[]>(2000);
const MAX_CACHED_TEMPLATE = 4096;

/** Splits a template into literal text and expressions. Throws EXPR_PARSE for an unclosed `${`. */
function scan(template: string): Segment[] {
  const hit = scans.get(template);
  if (hit) return hit;
  const out: Segment[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const next = template.indexOf('$', i);
    if (next < 0) {
      text += template.slice(i);
      break;
    }
    text += template.slice(i, next);
    if (template.startsWith('$${', next)) {
      text += '${';
      i = next + 3;
    } else if (template.startsWith('${', next)) {
      const start = next + 2;
      const end = findClose(template, start);
      if (end < 0)
        throw new ExprError('EXPR_PARSE', 'unclosed "${" (write "$${" for a literal "${")', {
          position: next,
          expression: template,
        });
      if (text) out.push(text);
      text = '';
      out.push({ expr: template.slice(start, end), offset: start });
      i = end + 1;
    } else {
      text += '$';
      i = next + 1;
    }
  }
  if (text) out.push(text);
  // Long templates (whole scripts) are cheap to rescan and would make the cache heavy.
  if (template.length <= MAX_CACHED_TEMPLATE) scans.set(template, out);
  return out;
}

function findClose(s: string, from: number): number {
  let quote: string | null = null;
  for (let i = from; i < s.length; i++) {
    const ch = s[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '}') return i;
  }
  return -1;
}

/** The expressions of a template with their offsets. Throws EXPR_PARSE for an unclosed `${`. */
export function templateExpressions(template: string): TemplateExpression[] {
  return scan(template).filter((s): s is TemplateExpression => typeof s !== 'string');
}

/** True when the string contains at least one `${...}` (escaped `$${` does not count). */
export function hasInterpolation(template: string): boolean {
  if (!template.includes('${')) return false;
  try {
    return templateExpressions(template).length > 0;
  } catch {
    return true;
  }
}

function evalIn(
  seg: TemplateExpression,
  template: string,
  vars: Record<string, Value>,
  limits?: Partial<Limits>,
) {
  try {
    return evaluate(seg.expr, vars, limits);
  } catch (err) {
    throw inTemplate(err as ExprError, seg.offset, template);
  }
}

/**
 * Replaces every `${EXPR}` in `template` by the value of EXPR as text: strings as they are,
 * numbers, booleans and null as in JSON, lists and maps as compact JSON. Throws ExprError
 * whose position is an offset in the template.
 */
export function interpolate(template: string, vars: Record<string, Value>, limits?: Partial<Limits>): string {
  const segments = scan(template);
  if (segments.length === 1 && typeof segments[0] === 'string') return segments[0];
  return render(template, segments, vars, limits, (text) => text);
}

/**
 * Walks the segments: literal text as it is, each expression's value rendered as text (see
 * interpolate) and passed through `place`, whose result goes into the output instead.
 */
function render(
  template: string,
  segments: Segment[],
  vars: Record<string, Value>,
  limits: Partial<Limits> | undefined,
  place: (text: string, seg: TemplateExpression) => string,
): string {
  const l = resolveLimits(limits);
  const shared = l.budget;
  const meter: Meter = {
    charge: (units) => shared?.charge(units),
    maxListLength: l.maxListLength,
    maxStringLength: l.maxStringLength,
    maxValueDepth: l.maxValueDepth,
  };
  let out = '';
  for (const seg of segments) {
    try {
      if (typeof seg === 'string') out += seg;
      else {
        const text = displayString(evalIn(seg, template, vars, l), meter);
        checkStringLength(text.length, meter);
        out += place(text, seg);
        meter.charge(Math.ceil(text.length / 64));
      }
      if (out.length > meter.maxStringLength) checkStringLength(out.length, meter);
    } catch (err) {
      if (err instanceof ExprError && err.expression === template) throw err;
      const offset = typeof seg === 'string' ? 0 : seg.offset;
      throw new ExprError((err as ExprError).code ?? 'EXPR_LIMIT', (err as ExprError).detail ?? String(err), {
        position: offset,
        expression: template,
        cause: err,
      });
    }
  }
  return out;
}

/**
 * Interpolation for text that another language will parse (a shell script): the values are
 * NOT pasted. Each distinct `${EXPR}` (same expression text, same value) is evaluated once,
 * its value rendered as interpolate would is appended to `values`, and the text gets
 * `reference(index)` in its place (e.g. a shell variable reference). `$${` is a literal `${`.
 */
export function interpolateByReference(
  template: string,
  vars: Record<string, Value>,
  reference: (index: number) => string,
  limits?: Partial<Limits>,
): { text: string; values: string[] } {
  const segments = scan(template);
  const values: string[] = [];
  const seen = new Map<string, number>();
  const text = render(template, segments, vars, limits, (value, seg) => {
    let index = seen.get(seg.expr);
    if (index === undefined) {
      index = values.push(value) - 1;
      seen.set(seg.expr, index);
    }
    return reference(index);
  });
  return { text, values };
}

/**
 * Like interpolate, but a template that is exactly one `${EXPR}` yields EXPR's value with its
 * type (a list stays a list); anything else yields the interpolated string.
 */
export function interpolateValue(
  template: string,
  vars: Record<string, Value>,
  limits?: Partial<Limits>,
): Value {
  const segments = scan(template);
  const only = segments[0];
  if (segments.length === 1 && typeof only !== 'string' && only) return evalIn(only, template, vars, limits);
  return interpolate(template, vars, limits);
}

/** Statically checks every expression of a template; positions are offsets in the template. */
export function checkTemplate(template: string, scope: CheckScope, limits?: Partial<Limits>): ExprIssue[] {
  let exprs: TemplateExpression[];
  try {
    exprs = templateExpressions(template);
  } catch (err) {
    return [(err as ExprError).toIssue()];
  }
  const issues: ExprIssue[] = [];
  for (const { expr, offset } of exprs)
    for (const e of checkExpressionErrors(expr, scope, limits))
      issues.push(inTemplate(e, offset, template).toIssue());
  return issues;
}

/**
 * An expression's error re-positioned in its template. An unknown name or a parse error is
 * often shell syntax (`${HOME}`, `${name:-default}` in a script), so the message says how to
 * write a literal `${`.
 */
function inTemplate(err: ExprError, offset: number, template: string): ExprError {
  const e = err.shifted(offset, template);
  if (e.code !== 'EXPR_UNKNOWN_NAME' && e.code !== 'EXPR_PARSE') return e;
  return new ExprError(e.code, `${e.detail} (for a literal "\${" write "$\${")`, {
    position: e.position,
    expression: template,
    cause: err,
  });
}
