// The evaluator: a tree walk over the parsed AST with a step budget. It only reads own data
// properties of plain objects and arrays; every value it returns is JSON.
import { Args, BUILTINS } from './builtins.ts';
import { ExprError, foreignMessage } from './errors.ts';
import { type Expr, isForbiddenName, parseCached } from './parse.ts';
import { DEFAULT_LIMITS, type ExprBudget, type Limits, type Value } from './types.ts';
import {
  assertValue,
  checkListLength,
  checkStringLength,
  deepEqual,
  displayString,
  isPlainObject,
  type Meter,
  typeOf,
} from './values.ts';

type NumericLimit = Exclude<keyof Limits, 'budget'>;

export function resolveLimits(limits?: Partial<Limits>): Limits {
  const budget = limits?.budget ?? ambientBudget;
  if (!limits && !budget) return DEFAULT_LIMITS;
  const out: Limits = { ...DEFAULT_LIMITS };
  if (limits)
    for (const k of Object.keys(DEFAULT_LIMITS) as NumericLimit[]) {
      const v = limits[k];
      if (typeof v === 'number' && v >= 0) out[k] = v;
    }
  if (budget) out.budget = budget;
  return out;
}

/** The budget of the innermost withExprBudget call in progress (see there). */
let ambientBudget: ExprBudget | undefined;

/**
 * Runs `f` with `budget` shared by every evaluation inside it that is not given one
 * explicitly (through `limits.budget`). For callers that evaluate through code they do not
 * own: the engine resolves a step's fields with one budget for the whole step. Synchronous:
 * the budget applies to `f`'s own call stack only.
 */
export function withExprBudget<T>(budget: ExprBudget, f: () => T): T {
  const outer = ambientBudget;
  ambientBudget = budget;
  try {
    return f();
  } finally {
    ambientBudget = outer;
  }
}

class Budget implements Meter {
  steps = 0;
  readonly maxSteps: number;
  readonly maxValueDepth: number;
  readonly maxStringLength: number;
  readonly maxListLength: number;
  readonly shared: ExprBudget | undefined;
  constructor(l: Limits) {
    this.maxSteps = l.maxSteps;
    this.maxValueDepth = l.maxValueDepth;
    this.maxStringLength = l.maxStringLength;
    this.maxListLength = l.maxListLength;
    this.shared = l.budget;
  }
  charge(units: number): void {
    this.steps += units;
    if (this.steps > this.maxSteps)
      throw new ExprError('EXPR_LIMIT', `evaluation took more than ${this.maxSteps} steps`);
    this.shared?.charge(units);
  }
}

/** Attaches `pos` to errors raised without a position (value helpers do not know positions). */
function at<T>(pos: number, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof ExprError && err.position === undefined)
      throw new ExprError(err.code, err.detail, { position: pos, cause: err.cause });
    throw err;
  }
}

/**
 * Own data property `key` of `obj` (never a getter or an inherited property), checked to be a
 * data value; `undefined` when absent. Errors carry `pos`.
 */
function readData(obj: object, key: string, pos: number): Value | undefined {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  if (d === undefined) return undefined;
  if (!('value' in d))
    throw new ExprError('EXPR_FORBIDDEN', `"${key.slice(0, 80)}" is an accessor, not data`, {
      position: pos,
    });
  const v: unknown = d.value;
  if (v === undefined) return undefined;
  const t = typeof v;
  if (v === null || t === 'string' || t === 'boolean' || Array.isArray(v) || isPlainObject(v))
    return v as Value;
  // -0 from a variable reads as 0, as arithmetic results do: JSON cannot tell them apart.
  if (t === 'number' && Number.isFinite(v)) return v === 0 ? 0 : (v as number);
  return at(pos, () => typeOf(v) as never); // throws the precise type error
}

function lookup(vars: Record<string, Value>, name: string, pos: number): Value {
  const v = readData(vars, name, pos);
  if (v === undefined) throw new ExprError('EXPR_UNKNOWN_NAME', `unknown name "${name}"`, { position: pos });
  return v;
}

function arithmetic(r: number, op: string, pos: number): number {
  if (!Number.isFinite(r))
    throw new ExprError('EXPR_ARITHMETIC', `result of ${op} is not a finite number`, { position: pos });
  return r === 0 ? 0 : r; // no -0: it is not distinguishable in JSON
}

class Evaluator {
  readonly vars: Record<string, Value>;
  readonly meter: Budget;
  constructor(vars: Record<string, Value>, limits: Limits) {
    this.vars = vars;
    this.meter = new Budget(limits);
  }

  eval(e: Expr): Value {
    const meter = this.meter;
    meter.steps++;
    const shared = meter.shared;
    if (shared !== undefined)
      try {
        shared.charge(1);
      } catch (err) {
        at(e.pos, () => {
          throw err;
        });
      }
    if (meter.steps > meter.maxSteps) at(e.pos, () => meter.charge(0));
    switch (e.t) {
      case 'literal':
        return e.value;
      case 'name':
        return lookup(this.vars, e.name, e.pos);
      case 'list': {
        at(e.pos, () => checkListLength(e.items.length, this.meter));
        return e.items.map((x) => this.eval(x));
      }
      case 'member':
        return this.member(e);
      case 'call':
        return this.call(e);
      case 'unary': {
        const v = this.eval(e.arg);
        if (e.op === '!') return !this.boolean(v, e.arg.pos, '!');
        if (typeof v !== 'number')
          throw new ExprError('EXPR_TYPE', `unary - needs a number, got ${typeOf(v)}`, {
            position: e.arg.pos,
          });
        return v === 0 ? 0 : -v;
      }
      case 'cond':
        return this.boolean(this.eval(e.test), e.test.pos, '?:')
          ? this.eval(e.consequent)
          : this.eval(e.otherwise);
      case 'binary':
        return this.binary(e);
    }
  }

  boolean(v: Value, pos: number, op: string): boolean {
    if (typeof v !== 'boolean')
      throw new ExprError('EXPR_TYPE', `${op} needs a boolean, got ${typeOf(v)}`, { position: pos });
    return v;
  }

  member(e: Extract<Expr, { t: 'member' }>): Value {
    const obj = this.eval(e.object);
    const key = typeof e.key === 'string' ? e.key : this.eval(e.key);
    if (obj === null && e.optional) return null;
    const pos = e.keyPos;
    if (Array.isArray(obj) || typeof obj === 'string') {
      if (typeof key !== 'number' || !Number.isInteger(key))
        throw new ExprError(
          'EXPR_TYPE',
          `a ${typeOf(obj)} is indexed by an integer, got ${typeof e.key === 'string' ? `.${e.key}` : typeOf(key)}` +
            (typeof e.key === 'string' ? ' (use len(x) for the length)' : ''),
          { position: pos },
        );
      // Strings are indexed by character (code point), as len() counts them.
      if (typeof obj === 'string') at(pos, () => this.meter.charge(Math.ceil(obj.length / 16)));
      const items = typeof obj === 'string' ? Array.from(obj) : obj;
      if (key < 0 || key >= items.length) {
        if (e.optional) return null;
        throw new ExprError('EXPR_KEY', `index ${key} is out of range (length ${items.length})`, {
          position: pos,
        });
      }
      if (typeof obj === 'string') return items[key] as string;
      const v = readData(obj, String(key), pos);
      if (v === undefined)
        throw new ExprError('EXPR_TYPE', `a list with holes is not a data value`, { position: pos });
      return v;
    }
    if (isPlainObject(obj)) {
      if (typeof key !== 'string' && typeof key !== 'number')
        throw new ExprError('EXPR_TYPE', `a map key must be a string, got ${typeOf(key)}`, { position: pos });
      const k = String(key);
      if (isForbiddenName(k))
        throw new ExprError('EXPR_FORBIDDEN', `property "${k}" is not accessible in expressions`, {
          position: pos,
        });
      const v = readData(obj, k, pos);
      if (v === undefined) {
        if (e.optional) return null;
        throw new ExprError('EXPR_KEY', `no key "${k.slice(0, 80)}" in map`, { position: pos });
      }
      return v;
    }
    const shown = typeof key === 'string' ? `"${key.slice(0, 80)}"` : String(key);
    throw new ExprError('EXPR_TYPE', `cannot read ${shown} of a ${typeOf(obj)}`, { position: pos });
  }

  call(e: Extract<Expr, { t: 'call' }>): Value {
    const b = BUILTINS.get(e.fn);
    if (!b) throw new ExprError('EXPR_UNKNOWN_FUNCTION', `unknown function "${e.fn}"`, { position: e.pos });
    if (e.args.length < b.min || e.args.length > b.max)
      throw new ExprError('EXPR_ARITY', arityMessage(e.fn, b.min, b.max, e.args.length), { position: e.pos });
    const values = e.args.map((x) => this.eval(x));
    const args = new Args(
      e.fn,
      values,
      e.args.map((x) => x.pos),
      this.meter,
    );
    const v = at(e.pos, () => b.impl(args));
    // Every built-in result is data: a NaN or an infinity (a date computation that left the
    // calendar, an overflow) is an error here rather than a "NaN" in a script or a comparison
    // that is silently false.
    if (typeof v === 'number' && !Number.isFinite(v))
      throw new ExprError('EXPR_ARITHMETIC', `${e.fn}() gave ${v}, not a finite number`, { position: e.pos });
    return v;
  }

  binary(e: Extract<Expr, { t: 'binary' }>): Value {
    const { op } = e;
    if (op === '&&' || op === '||') {
      const l = this.boolean(this.eval(e.left), e.left.pos, op);
      if (op === '&&' ? !l : l) return l;
      return this.boolean(this.eval(e.right), e.right.pos, op);
    }
    const l = this.eval(e.left);
    const r = this.eval(e.right);
    switch (op) {
      case '==':
      case '===':
        return at(e.pos, () => deepEqual(l, r, this.meter));
      case '!=':
      case '!==':
        return !at(e.pos, () => deepEqual(l, r, this.meter));
      case '<':
      case '>':
      case '<=':
      case '>=': {
        if (
          !(
            (typeof l === 'number' && typeof r === 'number') ||
            (typeof l === 'string' && typeof r === 'string')
          )
        )
          throw new ExprError(
            'EXPR_TYPE',
            `${op} compares two numbers or two strings, got ${typeOf(l)} and ${typeOf(r)}`,
            {
              position: e.right.pos,
            },
          );
        if (op === '<') return l < r;
        if (op === '>') return l > r;
        if (op === '<=') return l <= r;
        return l >= r;
      }
      case '+':
        return this.plus(l, r, e);
      default: {
        if (typeof l !== 'number' || typeof r !== 'number')
          throw new ExprError('EXPR_TYPE', `${op} needs two numbers, got ${typeOf(l)} and ${typeOf(r)}`, {
            position: typeof l !== 'number' ? e.left.pos : e.right.pos,
          });
        if ((op === '/' || op === '%') && r === 0)
          throw new ExprError('EXPR_ARITHMETIC', op === '/' ? 'division by zero' : 'modulo by zero', {
            position: e.right.pos,
          });
        const v = op === '-' ? l - r : op === '*' ? l * r : op === '/' ? l / r : l % r;
        return arithmetic(v, op, e.pos);
      }
    }
  }

  plus(l: Value, r: Value, e: Extract<Expr, { t: 'binary' }>): Value {
    if (typeof l === 'number' && typeof r === 'number') return arithmetic(l + r, '+', e.pos);
    if (typeof l === 'string' || typeof r === 'string') {
      const other = typeof l === 'string' ? r : l;
      if (other !== null && typeof other === 'object')
        throw new ExprError('EXPR_TYPE', `+ cannot join a string and a ${typeOf(other)} (use str(x))`, {
          position: typeof l === 'string' ? e.right.pos : e.left.pos,
        });
      const ls = displayString(l, this.meter);
      const rs = displayString(r, this.meter);
      at(e.pos, () => checkStringLength(ls.length + rs.length, this.meter));
      return ls + rs;
    }
    if (Array.isArray(l) && Array.isArray(r)) {
      at(e.pos, () => checkListLength(l.length + r.length, this.meter));
      return l.concat(r);
    }
    throw new ExprError('EXPR_TYPE', `+ needs numbers, strings or lists, got ${typeOf(l)} and ${typeOf(r)}`, {
      position: e.pos,
    });
  }
}

export function arityMessage(fn: string, min: number, max: number, got: number): string {
  const want =
    min === max ? `${min}` : max === Number.POSITIVE_INFINITY ? `at least ${min}` : `${min} to ${max}`;
  return `${fn}() takes ${want} argument${want === '1' ? '' : 's'}, got ${got}`;
}

/** Evaluates a parsed expression. Throws only ExprError (with position, without expression). */
export function evaluateAst(ast: Expr, vars: Record<string, Value>, limits: Limits): Value {
  const ev = new Evaluator(vars, limits);
  const v = ev.eval(ast);
  if (v !== null && typeof v === 'object') at(ast.pos, () => assertValue(v, ev.meter));
  return v;
}

/**
 * Parses (cached) and evaluates `src` with `vars`. Throws only ExprError, which carries the
 * code, the position and the expression.
 */
export function evaluate(src: string, vars: Record<string, Value>, limits?: Partial<Limits>): Value {
  const l = resolveLimits(limits);
  const ast = parseCached(src, l);
  try {
    if (vars === null || typeof vars !== 'object')
      throw new ExprError('EXPR_TYPE', 'variables must be an object', { position: 0 });
    return evaluateAst(ast, vars, l);
  } catch (err) {
    throw toExprError(err, ast.pos).withExpression(src, ast.pos);
  }
}

/** Anything that escaped the evaluator becomes an ExprError (stack overflow, host errors). */
export function toExprError(err: unknown, position: number): ExprError {
  if (err instanceof ExprError) return err;
  if (err instanceof RangeError)
    return new ExprError('EXPR_LIMIT', 'evaluation exhausted a host limit', { position, cause: err });
  return new ExprError('EXPR_TYPE', `evaluation failed: ${foreignMessage(err)}`, {
    position,
    cause: err,
  });
}
