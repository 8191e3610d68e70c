// The static checker: finds unknown names and functions, wrong arity and operand types that
// are knowable without values. Constant sub-expressions (no names) are evaluated, so a bad
// literal argument (a timezone, a date, range(1e9)) is reported here rather than at run time.
import { BUILTINS, type Builtin, builtinParamTypes, type StaticType } from './builtins.ts';
import { ExprError, type ExprIssue } from './errors.ts';
import { arityMessage, evaluateAst, resolveLimits } from './evaluate.ts';
import { type Expr, parseCached } from './parse.ts';
import type { CheckScope, Limits, Value, ValueType } from './types.ts';
import { typeOf } from './values.ts';

/** Names every expression may use, with their types (see docs/expressions.md). */
export const BUILTIN_NAMES: ReadonlyMap<string, ValueType | 'any'> = new Map<string, ValueType | 'any'>([
  ['RUN_TS', 'long'],
  ['RUN_ID', 'string'],
  ['WORKFLOW_ID', 'string'],
  ['WORKFLOW_VERSION', 'long'],
  ['TRIGGER', 'map'],
  ['LOOP_INDEX', 'long'],
  ['steps', 'map'],
]);

interface Info {
  type: StaticType;
  /** Set when the sub-expression uses no names: its value is then known. */
  constant: boolean;
  /** The value of a constant sub-expression once folded. */
  value?: Value;
}

const NUMERIC: ReadonlySet<StaticType> = new Set(['long', 'double']);

class Checker {
  readonly issues: ExprError[] = [];
  readonly scope: CheckScope;
  readonly limits: Limits;
  constructor(scope: CheckScope, limits: Limits) {
    this.scope = scope;
    this.limits = limits;
  }

  issue(code: ExprIssue['code'], detail: string, position: number): void {
    this.issues.push(new ExprError(code, detail, { position }));
  }

  /**
   * Evaluates a constant sub-expression into `info`; reports its error. Once the shared
   * budget (`limits.budget`: one per validated document) is spent, constants are no longer
   * folded: what they would have reported is reported when a run evaluates them.
   */
  fold(e: Expr, info: Info): void {
    const budget = this.limits.budget;
    if (budget?.exhausted) {
      info.type = 'any';
      return;
    }
    try {
      info.value = evaluateAst(e, {}, this.limits);
      info.type = typeOf(info.value);
    } catch (err) {
      if (!(err instanceof ExprError)) throw err;
      if (!budget?.exhausted) this.issues.push(err);
      info.type = 'any';
    }
  }

  /** Checks children and folds those that are constant when their parent is not. */
  children(list: Expr[]): Info[] {
    const infos = list.map((c) => this.check(c));
    if (infos.some((i) => !i.constant))
      infos.forEach((info, idx) => {
        if (info.constant) this.fold(list[idx]!, info);
      });
    return infos;
  }

  constantArg(b: Builtin, fn: string, i: number, v: Value, pos: number): void {
    try {
      b.checkConstantArg?.(i, v);
    } catch (err) {
      if (!(err instanceof ExprError)) throw err;
      this.issue(err.code, `${fn}(): argument ${i + 1}: ${err.detail}`, pos);
    }
  }

  expectType(t: StaticType, allowed: readonly StaticType[], pos: number, what: string): void {
    if (t === 'any' || allowed.includes('any') || allowed.includes(t)) return;
    this.issue('EXPR_TYPE', `${what} must be ${allowed.join(' or ')}, got ${t}`, pos);
  }

  check(e: Expr): Info {
    switch (e.t) {
      case 'literal':
        return { type: typeOf(e.value), constant: true };
      case 'name': {
        const t = this.scope.names.get(e.name) ?? BUILTIN_NAMES.get(e.name);
        if (t === undefined) {
          const hint = suggest(e.name, [...this.scope.names.keys(), ...BUILTIN_NAMES.keys()]);
          const fnHint = BUILTINS.has(e.name) ? ` ("${e.name}" is a function: call it)` : '';
          this.issue('EXPR_UNKNOWN_NAME', `unknown name "${e.name}"${hint}${fnHint}`, e.pos);
          return { type: 'any', constant: false };
        }
        return { type: t, constant: false };
      }
      case 'list': {
        const infos = this.children(e.items);
        return { type: 'list', constant: infos.every((i) => i.constant) };
      }
      case 'member': {
        const parts: Expr[] = typeof e.key === 'string' ? [e.object] : [e.object, e.key];
        const infos = this.children(parts);
        const [obj, key] = infos as [Info, Info | undefined];
        const constant = infos.every((i) => i.constant);
        if (!constant) {
          if (typeof e.key === 'string')
            this.expectType(obj.type, ['map', 'null'], e.keyPos, `.${e.key}: the object`);
          else {
            this.expectType(obj.type, ['map', 'list', 'string', 'null'], e.object.pos, 'an indexed value');
            if (key) this.expectType(key.type, ['string', 'long', 'double'], e.keyPos, 'an index');
          }
        }
        return { type: 'any', constant };
      }
      case 'call': {
        const b = BUILTINS.get(e.fn);
        const infos = this.children(e.args);
        if (!b) {
          const hint = suggest(e.fn, [...BUILTINS.keys()]);
          this.issue('EXPR_UNKNOWN_FUNCTION', `unknown function "${e.fn}"${hint}`, e.pos);
          return { type: 'any', constant: false };
        }
        if (e.args.length < b.min || e.args.length > b.max) {
          this.issue('EXPR_ARITY', arityMessage(e.fn, b.min, b.max, e.args.length), e.pos);
          return { type: 'any', constant: false };
        }
        const constant = infos.every((i) => i.constant);
        const types = infos.map((i) => i.type);
        if (!constant)
          infos.forEach((info, i) => {
            const pos = e.args[i]!.pos;
            this.expectType(info.type, builtinParamTypes(b, i), pos, `${e.fn}(): argument ${i + 1}`);
            if (info.value !== undefined && b.checkConstantArg) this.constantArg(b, e.fn, i, info.value, pos);
          });
        const type = typeof b.returns === 'function' ? b.returns(types) : b.returns;
        return { type, constant };
      }
      case 'unary': {
        const [arg] = this.children([e.arg]) as [Info];
        if (arg.constant) return { type: arg.type, constant: true };
        if (e.op === '!') {
          this.expectType(arg.type, ['boolean'], e.arg.pos, '!: the operand');
          return { type: 'boolean', constant: false };
        }
        this.expectType(arg.type, ['long', 'double'], e.arg.pos, '-: the operand');
        return {
          type: arg.type === 'long' ? 'long' : arg.type === 'double' ? 'double' : 'any',
          constant: false,
        };
      }
      case 'cond': {
        const [test, a, b] = this.children([e.test, e.consequent, e.otherwise]) as [Info, Info, Info];
        const constant = test.constant && a.constant && b.constant;
        if (!constant) this.expectType(test.type, ['boolean'], e.test.pos, '?: the condition');
        return { type: a.type === b.type ? a.type : 'any', constant };
      }
      case 'binary':
        return this.binary(e);
    }
  }

  binary(e: Extract<Expr, { t: 'binary' }>): Info {
    const [l, r] = this.children([e.left, e.right]) as [Info, Info];
    const constant = l.constant && r.constant;
    const { op } = e;
    if (constant) return { type: binaryType(op, l.type, r.type), constant };
    switch (op) {
      case '&&':
      case '||':
        this.expectType(l.type, ['boolean'], e.left.pos, `${op}: the left operand`);
        this.expectType(r.type, ['boolean'], e.right.pos, `${op}: the right operand`);
        break;
      case '<':
      case '>':
      case '<=':
      case '>=':
        this.expectType(l.type, ['long', 'double', 'string'], e.left.pos, `${op}: the left operand`);
        this.expectType(r.type, ['long', 'double', 'string'], e.right.pos, `${op}: the right operand`);
        if (l.type !== 'any' && r.type !== 'any' && NUMERIC.has(l.type) !== NUMERIC.has(r.type))
          this.issue(
            'EXPR_TYPE',
            `${op} compares two numbers or two strings, got ${l.type} and ${r.type}`,
            e.right.pos,
          );
        break;
      case '+':
        if (l.type !== 'string' && r.type !== 'string') {
          this.expectType(l.type, ['long', 'double', 'list'], e.left.pos, '+: the left operand');
          this.expectType(r.type, ['long', 'double', 'list'], e.right.pos, '+: the right operand');
        } else {
          const other = l.type === 'string' ? r : l;
          const pos = l.type === 'string' ? e.right.pos : e.left.pos;
          this.expectType(
            other.type,
            ['string', 'long', 'double', 'boolean', 'null'],
            pos,
            '+ with a string: the operand',
          );
        }
        break;
      case '-':
      case '*':
      case '/':
      case '%':
        this.expectType(l.type, ['long', 'double'], e.left.pos, `${op}: the left operand`);
        this.expectType(r.type, ['long', 'double'], e.right.pos, `${op}: the right operand`);
        break;
    }
    return { type: binaryType(op, l.type, r.type), constant };
  }
}

function binaryType(op: string, l: StaticType, r: StaticType): StaticType {
  switch (op) {
    case '+':
      if (l === 'string' || r === 'string') return 'string';
      if (l === 'list' && r === 'list') return 'list';
      if (l === 'long' && r === 'long') return 'long';
      return NUMERIC.has(l) && NUMERIC.has(r) ? 'double' : 'any';
    case '-':
    case '*':
    case '%':
      if (l === 'long' && r === 'long') return 'long';
      return NUMERIC.has(l) && NUMERIC.has(r) ? 'double' : 'any';
    case '/':
      return NUMERIC.has(l) && NUMERIC.has(r) ? 'double' : 'any';
    default:
      return 'boolean';
  }
}

/** A " (did you mean ...?)" hint for a name within edit distance 2 of a known one. */
function suggest(name: string, known: string[]): string {
  let best: string | undefined;
  let bestD = name.length <= 4 ? 2 : 3; // at most 1 edit for short names, 2 for longer ones
  for (const k of known) {
    if (Math.abs(k.length - name.length) >= bestD) continue;
    const d = editDistance(name.toLowerCase(), k.toLowerCase(), bestD);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}

function editDistance(a: string, b: string, cap: number): number {
  if (a.length > 64 || b.length > 64) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * Statically checks `src` against the names in `scope` (built-in values are always known).
 * Returns every issue found (empty when fine); positions are 0-based offsets in `src`.
 */
export function checkExpression(src: string, scope: CheckScope, limits?: Partial<Limits>): ExprIssue[] {
  return checkExpressionErrors(src, scope, limits).map((e) => e.toIssue());
}

/** checkExpression's findings as ExprErrors (for callers that re-position them, e.g. templates). */
export function checkExpressionErrors(src: string, scope: CheckScope, limits?: Partial<Limits>): ExprError[] {
  const l = resolveLimits(limits);
  let ast: Expr;
  try {
    ast = parseCached(src, l);
  } catch (err) {
    return [err as ExprError];
  }
  const checker = new Checker(scope, l);
  const root = checker.check(ast);
  if (root.constant) checker.fold(ast, root);
  return checker.issues;
}

/** The static type of `src` (or 'any'), for callers that check e.g. that foreach items is a list. */
export function inferType(src: string, scope: CheckScope, limits?: Partial<Limits>): StaticType {
  try {
    const l = resolveLimits(limits);
    const ast = parseCached(src, l);
    const checker = new Checker(scope, l);
    const info = checker.check(ast);
    if (info.constant) checker.fold(ast, info);
    return info.type;
  } catch {
    return 'any';
  }
}
