// Workflow/step parameter resolution: dependency order, cycles rejected (naming the cycle),
// values coerced to their declared type. Also the static counterpart for validation.
import { BUILTIN_NAMES, checkExpression, inferType } from './check.ts';
import { ExprError, type ExprErrorCode, type ExprIssue, foreignMessage } from './errors.ts';
import { evaluate, resolveLimits } from './evaluate.ts';
import { type Expr, isForbiddenName, parseCached } from './parse.ts';
import { checkTemplate, hasInterpolation, interpolateValue, templateExpressions } from './template.ts';
import type { CheckScope, Limits, Value, ValueType } from './types.ts';
import { assertValue, isPlainObject, typeOf } from './values.ts';

export type ParameterType = 'string' | 'long' | 'double' | 'boolean' | 'list' | 'map';

/** The shape of a parameter declaration (structurally the Parameter of src/crds). */
export interface ParameterDecl {
  name: string;
  type?: ParameterType;
  value?: unknown;
  expression?: string;
}

export interface ResolveContext {
  /** Values visible to every expression: builtinValues(...), plus workflow parameters for steps. */
  builtins: Record<string, Value>;
  /** Run overrides: replace a declared parameter's value (then coerced to its type) or add one. */
  overrides?: Record<string, Value>;
  limits?: Partial<Limits>;
}

function fail(
  code: ExprErrorCode,
  parameter: string,
  detail: string,
  position?: number,
  expression?: string,
): never {
  throw new ExprError(code, detail, { parameter, position, expression });
}

/** Converts `v` to the declared type, or throws EXPR_TYPE naming the parameter. */
export function coerceParameter(name: string, type: ParameterType | undefined, v: Value): Value {
  const bad = (expected: string): never =>
    fail('EXPR_TYPE', name, `expected ${expected}, got ${typeOf(v)} ${JSON.stringify(v)?.slice(0, 60)}`);
  switch (type) {
    case undefined:
      return v;
    case 'string':
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      return bad('a string');
    case 'long': {
      const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
      if (typeof n === 'number' && Number.isSafeInteger(n)) return n === 0 ? 0 : n;
      return bad('a long (an integer)');
    }
    case 'double': {
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
      if (typeof n === 'number' && Number.isFinite(n)) return n;
      return bad('a double (a number)');
    }
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === 'false') return v === 'true';
      return bad('a boolean');
    case 'list':
      if (Array.isArray(v)) return v;
      if (typeof v === 'string' && v.trim().startsWith('[')) {
        const parsed = parseJson(v);
        if (Array.isArray(parsed)) return parsed;
      }
      return bad('a list');
    case 'map':
      if (isPlainObject(v)) return v;
      if (typeof v === 'string' && v.trim().startsWith('{')) {
        const parsed = parseJson(v);
        if (isPlainObject(parsed)) return parsed;
      }
      return bad('a map');
    default:
      return fail('EXPR_PARAMETER', name, `unknown type "${String(type)}"`);
  }
}

function parseJson(s: string): Value | undefined {
  try {
    return JSON.parse(s) as Value;
  } catch {
    return undefined;
  }
}

/** Identifiers an expression reads (free names), in order of first use. */
export function freeNames(ast: Expr, out: Set<string> = new Set()): Set<string> {
  switch (ast.t) {
    case 'name':
      out.add(ast.name);
      break;
    case 'literal':
      break;
    case 'list':
      for (const x of ast.items) freeNames(x, out);
      break;
    case 'member':
      freeNames(ast.object, out);
      if (typeof ast.key !== 'string') freeNames(ast.key, out);
      break;
    case 'call':
      for (const x of ast.args) freeNames(x, out);
      break;
    case 'unary':
      freeNames(ast.arg, out);
      break;
    case 'binary':
      freeNames(ast.left, out);
      freeNames(ast.right, out);
      break;
    case 'cond':
      freeNames(ast.test, out);
      freeNames(ast.consequent, out);
      freeNames(ast.otherwise, out);
      break;
  }
  return out;
}

/** Expressions a declaration evaluates: its `expression`, or the `${}` of a string `value`. */
function sourcesOf(p: ParameterDecl): {
  field: 'expression' | 'value';
  exprs: { expr: string; offset: number }[];
} {
  if (typeof p.expression === 'string')
    return { field: 'expression', exprs: [{ expr: p.expression, offset: 0 }] };
  if (typeof p.value === 'string' && hasInterpolation(p.value))
    return { field: 'value', exprs: templateExpressions(p.value) };
  return { field: 'value', exprs: [] };
}

function dependencies(p: ParameterDecl, declared: ReadonlySet<string>): string[] {
  const deps = new Set<string>();
  for (const { expr } of sourcesOf(p).exprs)
    for (const n of freeNames(parseCached(expr))) if (declared.has(n)) deps.add(n);
  return [...deps];
}

/**
 * Orders declarations so that each comes after the ones it reads. Returns the order, or the
 * first cycle found as a list of names whose last element repeats the first (a -> b -> a).
 */
function dependencyOrder(
  params: ParameterDecl[],
  depsOf: (p: ParameterDecl) => string[],
): { order: ParameterDecl[]; cycle?: string[] } {
  const byName = new Map(params.map((p) => [p.name, p]));
  const state = new Map<string, 'visiting' | 'done'>();
  const order: ParameterDecl[] = [];
  const path: string[] = [];
  const visit = (p: ParameterDecl): string[] | undefined => {
    const s = state.get(p.name);
    if (s === 'done') return undefined;
    if (s === 'visiting') return [...path.slice(path.indexOf(p.name)), p.name];
    state.set(p.name, 'visiting');
    path.push(p.name);
    for (const d of depsOf(p)) {
      const dep = byName.get(d);
      if (!dep) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(p.name, 'done');
    order.push(p);
    return undefined;
  };
  for (const p of params) {
    const cycle = visit(p);
    if (cycle) return { order, cycle };
  }
  return { order };
}

function checkNames(params: ParameterDecl[]): void {
  const seen = new Set<string>();
  for (const p of params) {
    if (typeof p?.name !== 'string' || p.name === '')
      fail('EXPR_PARAMETER', String(p?.name), 'a parameter needs a name');
    if (isForbiddenName(p.name)) fail('EXPR_FORBIDDEN', p.name, 'this name is not allowed');
    if (BUILTIN_NAMES.has(p.name))
      fail('EXPR_PARAMETER', p.name, 'this name is reserved for a built-in value');
    if (seen.has(p.name)) fail('EXPR_PARAMETER', p.name, 'declared twice');
    seen.add(p.name);
  }
}

/**
 * Resolves parameter declarations to values. Overrides replace declared values (and are
 * coerced to the declared type); every other declaration is evaluated after the ones it
 * reads, with `ctx.builtins` and the already-resolved parameters in scope. Throws ExprError:
 * EXPR_CYCLE naming the cycle, EXPR_TYPE for a value of the wrong type, expression errors with
 * `parameter` set. The result holds the declared parameters (in declaration order) and any
 * extra overrides.
 */
export function resolveParameters(params: ParameterDecl[], ctx: ResolveContext): Record<string, Value> {
  checkNames(params);
  const limits = resolveLimits(ctx.limits);
  const overrides = ctx.overrides ?? {};
  const isOverridden = (name: string) => Object.hasOwn(overrides, name);
  const declared = new Set(params.map((p) => p.name));
  const { order, cycle } = dependencyOrder(params, (p) => {
    if (isOverridden(p.name)) return [];
    try {
      return dependencies(p, declared);
    } catch (err) {
      throw withParameter(err, p.name);
    }
  });
  if (cycle) fail('EXPR_CYCLE', cycle[0]!, `parameters depend on each other: ${cycle.join(' -> ')}`);

  const scope: Record<string, Value> = Object.create(null);
  Object.assign(scope, ctx.builtins);
  const resolved = new Map<string, Value>();
  for (const p of order) {
    let v: Value;
    try {
      if (isOverridden(p.name)) v = assertValue(overrides[p.name], meterFor(limits));
      else if (typeof p.expression === 'string') v = evaluate(p.expression, scope, limits);
      else if (typeof p.value === 'string') v = interpolateValue(p.value, scope, limits);
      else if (p.value !== undefined) v = assertValue(p.value, meterFor(limits));
      else fail('EXPR_PARAMETER', p.name, 'has no value, no expression and no override');
      v = coerceParameter(p.name, p.type, v);
    } catch (err) {
      throw withParameter(err, p.name);
    }
    scope[p.name] = v;
    resolved.set(p.name, v);
  }
  const out: Record<string, Value> = {};
  for (const p of params) out[p.name] = resolved.get(p.name)!;
  for (const [k, v] of Object.entries(overrides))
    if (!declared.has(k)) out[k] = asParameter(k, () => assertValue(v, meterFor(limits)));
  return out;
}

function meterFor(l: Limits) {
  let steps = 0;
  return {
    maxValueDepth: l.maxValueDepth,
    maxListLength: l.maxListLength,
    maxStringLength: l.maxStringLength,
    charge(units: number) {
      steps += units;
      if (steps > l.maxSteps) throw new ExprError('EXPR_LIMIT', `value larger than ${l.maxSteps} elements`);
      l.budget?.charge(units);
    },
  };
}

function asParameter<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw withParameter(err, name);
  }
}

function withParameter(err: unknown, name: string): ExprError {
  if (!(err instanceof ExprError))
    return new ExprError('EXPR_PARAMETER', foreignMessage(err), {
      parameter: name,
      cause: err,
    });
  if (err.parameter !== undefined) return err;
  return new ExprError(err.code, err.detail, {
    parameter: name,
    position: err.position,
    expression: err.expression,
    cause: err.cause,
  });
}

/** A static finding about parameter `index` (`field` says which part: name, value or expression). */
export interface ParameterIssue extends ExprIssue {
  index: number;
  field: 'name' | 'value' | 'expression';
}

/**
 * Static validation of parameter declarations without evaluating: names (duplicates, reserved),
 * cycles, each expression against the built-ins, `scope` and the other parameters, and literal
 * values against declared types.
 */
export function checkParameters(
  params: ParameterDecl[],
  scope: CheckScope = { names: new Map() },
  limits?: Partial<Limits>,
): ParameterIssue[] {
  const issues: ParameterIssue[] = [];
  const add = (index: number, field: ParameterIssue['field'], e: ExprError | ExprIssue) => {
    const issue = e instanceof ExprError ? e.toIssue() : e;
    issues.push({ ...issue, index, field });
  };
  const names = new Map(scope.names);
  const seen = new Set<string>();
  params.forEach((p, i) => {
    if (isForbiddenName(p.name))
      add(i, 'name', new ExprError('EXPR_FORBIDDEN', `name "${p.name}" is not allowed`));
    else if (BUILTIN_NAMES.has(p.name))
      add(i, 'name', new ExprError('EXPR_PARAMETER', `name "${p.name}" is reserved for a built-in value`));
    else if (seen.has(p.name))
      add(i, 'name', new ExprError('EXPR_PARAMETER', `parameter "${p.name}" is declared twice`));
    seen.add(p.name);
  });
  // Declared types first, so that expressions may use parameters declared after them.
  for (const p of params) names.set(p.name, p.type ?? literalType(p.value));
  const full: CheckScope = { names };
  params.forEach((p, i) => {
    if (typeof p.expression === 'string') {
      for (const issue of checkExpression(p.expression, full, limits)) add(i, 'expression', issue);
      const t = inferType(p.expression, full, limits);
      const constant = constantValue(p.expression, limits);
      if (p.type && constant !== undefined) {
        try {
          coerceParameter(p.name, p.type, constant);
        } catch (err) {
          add(i, 'expression', (err as ExprError).withExpression(p.expression, 0));
        }
      } else if (p.type && t !== 'any' && !compatible(p.type, t))
        add(
          i,
          'expression',
          new ExprError(
            'EXPR_TYPE',
            `parameter "${p.name}" is declared ${p.type} but its expression gives ${t}`,
            {
              position: 0,
            },
          ),
        );
    } else if (typeof p.value === 'string' && hasInterpolation(p.value)) {
      for (const issue of checkTemplate(p.value, full, limits)) add(i, 'value', issue);
    } else if (p.value !== undefined) {
      try {
        coerceParameter(p.name, p.type, assertValue(p.value, meterFor(resolveLimits(limits))));
      } catch (err) {
        add(i, 'value', err as ExprError);
      }
    }
  });
  const { cycle } = dependencyOrder(params, (p) => {
    try {
      return dependencies(p, seen);
    } catch {
      return []; // reported above as a parse error
    }
  });
  if (cycle) {
    const index = params.findIndex((p) => p.name === cycle[0]);
    const field = typeof params[index]?.expression === 'string' ? 'expression' : 'value';
    add(index, field, new ExprError('EXPR_CYCLE', `parameters depend on each other: ${cycle.join(' -> ')}`));
  }
  return issues;
}

/** The value of an expression that reads no names (undefined when it reads some or fails). */
function constantValue(src: string, limits?: Partial<Limits>): Value | undefined {
  try {
    if (freeNames(parseCached(src)).size > 0) return undefined;
    if (limits?.budget?.exhausted) return undefined;
    return evaluate(src, {}, limits);
  } catch {
    return undefined; // reported by checkExpression
  }
}

function literalType(v: unknown): ValueType | 'any' {
  if (typeof v === 'string' && hasInterpolation(v)) return 'string';
  try {
    return v === undefined ? 'any' : typeOf(v);
  } catch {
    return 'any';
  }
}

/** Whether an expression of static type `t` can be coerced to declared type `declared`. */
function compatible(declared: ParameterType, t: ValueType | 'any'): boolean {
  switch (declared) {
    case 'string':
      return t === 'string' || t === 'long' || t === 'double' || t === 'boolean';
    case 'long':
      return t === 'long' || t === 'double' || t === 'string';
    case 'double':
      return t === 'long' || t === 'double' || t === 'string';
    case 'boolean':
      return t === 'boolean' || t === 'string';
    case 'list':
      return t === 'list' || t === 'string';
    case 'map':
      return t === 'map' || t === 'string';
  }
}
