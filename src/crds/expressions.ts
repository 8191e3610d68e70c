// Static facts about expressions that the validator needs beyond src/expr's checker: which names
// an expression reads (parameter dependency graph), which `steps.<name>` it references, and
// whether its result can possibly be a list (foreach items). Works on src/expr's AST; an
// expression that does not parse yields nothing here (the checker reports the parse error).
import { type Expr, freeNames, parseExpression } from '../expr/index.ts';

function parse(src: string): Expr | undefined {
  try {
    return parseExpression(src);
  } catch {
    return undefined;
  }
}

function children(n: Expr): Expr[] {
  switch (n.t) {
    case 'list':
      return n.items;
    case 'member':
      return typeof n.key === 'string' ? [n.object] : [n.object, n.key];
    case 'call':
      return n.args;
    case 'unary':
      return [n.arg];
    case 'binary':
      return [n.left, n.right];
    case 'cond':
      return [n.test, n.consequent, n.otherwise];
    default:
      return [];
  }
}

/** Free identifiers read by an expression (not property names, not called function names). */
export function referencedNames(src: string): Set<string> {
  const root = parse(src);
  return root ? freeNames(root) : new Set();
}

/** A `steps.<name>...` access: the step name, the segment after it (normally `outputs`), where. */
export interface StepReference {
  step: string;
  next?: string;
  position: number;
}

function keyName(member: Expr & { t: 'member' }): string | undefined {
  if (typeof member.key === 'string') return member.key;
  return member.key.t === 'literal' && typeof member.key.value === 'string' ? member.key.value : undefined;
}

/** Every `steps.X` (or `steps["X"]`) in an expression, with the field read after it. */
export function stepReferences(src: string): StepReference[] {
  const refs: StepReference[] = [];
  const root = parse(src);
  const visit = (n: Expr, parent?: Expr): void => {
    if (n.t === 'member' && n.object.t === 'name' && n.object.name === 'steps') {
      const step = keyName(n);
      if (step !== undefined) {
        const next = parent?.t === 'member' && parent.object === n ? keyName(parent) : undefined;
        refs.push(next === undefined ? { step, position: n.pos } : { step, next, position: n.pos });
      }
    }
    for (const c of children(n)) visit(c, n);
  };
  if (root) visit(root);
  return refs;
}

/** Built-in functions whose result is never a list. */
const SCALAR_FUNCTIONS = new Set([
  'tsToDateInt',
  'dateIntToTs',
  'dateIntAdd',
  'dayFromDateInt',
  'formatTs',
  'min',
  'max',
  'len',
  'join',
  'lower',
  'upper',
  'contains',
]);

/**
 * Why `src` can never evaluate to a list, or undefined when it might. `typeOf` gives the declared
 * type of a name ('list', 'any', 'long', ...) or undefined when unknown.
 */
export function whyNotList(src: string, typeOf: (name: string) => string | undefined): string | undefined {
  const root = parse(src);
  if (!root) return undefined;
  const why = (n: Expr): string | undefined => {
    switch (n.t) {
      case 'literal':
        return `it is the literal ${JSON.stringify(n.value)}`;
      case 'binary':
        if (n.op !== '+') return `the operator ${n.op} yields a scalar`;
        return why(n.left) !== undefined && why(n.right) !== undefined
          ? 'both operands of + are scalars'
          : undefined;
      case 'unary':
        return `the operator ${n.op} yields a scalar`;
      case 'call':
        return SCALAR_FUNCTIONS.has(n.fn) ? `${n.fn}() does not return a list` : undefined;
      case 'name': {
        const t = typeOf(n.name);
        return t === undefined || t === 'any' || t === 'list' ? undefined : `${n.name} is declared ${t}`;
      }
      case 'cond':
        return why(n.consequent) !== undefined && why(n.otherwise) !== undefined
          ? 'neither side of ?: is a list'
          : undefined;
      default:
        return undefined;
    }
  };
  return why(root);
}
