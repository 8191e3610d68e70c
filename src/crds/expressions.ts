// Static facts about expressions that the validator needs beyond src/expr's checker: which names
// an expression reads (parameter dependency graph), which `steps.<name>` it references, and
// whether its result can possibly be a list (foreach items). Reads jsep's AST directly; an
// expression jsep cannot parse yields nothing here (src/expr reports the parse error).
import jsep from 'jsep';

interface JsepNode {
  type: string;
  [k: string]: unknown;
}

function parse(src: string): JsepNode | undefined {
  try {
    return jsep(src) as unknown as JsepNode;
  } catch {
    return undefined;
  }
}

function children(n: JsepNode): JsepNode[] {
  const out: JsepNode[] = [];
  for (const [k, v] of Object.entries(n)) {
    if (k === 'type') continue;
    if (Array.isArray(v))
      for (const x of v) if (x && typeof x === 'object' && 'type' in x) out.push(x as JsepNode);
    if (v && typeof v === 'object' && !Array.isArray(v) && 'type' in v) out.push(v as JsepNode);
  }
  return out;
}

/** Free identifiers read by an expression (not property names, not called function names). */
export function referencedNames(src: string): Set<string> {
  const names = new Set<string>();
  const root = parse(src);
  const visit = (n: JsepNode): void => {
    if (n.type === 'Identifier') {
      names.add(n.name as string);
      return;
    }
    if (n.type === 'MemberExpression') {
      visit(n.object as JsepNode);
      if (n.computed) visit(n.property as JsepNode);
      return;
    }
    if (n.type === 'CallExpression') {
      const callee = n.callee as JsepNode;
      if (callee.type !== 'Identifier') visit(callee);
      for (const a of n.arguments as JsepNode[]) visit(a);
      return;
    }
    for (const c of children(n)) visit(c);
  };
  if (root) visit(root);
  return names;
}

/** A `steps.<name>...` access: the step name and the segment after it (normally `outputs`). */
export interface StepReference {
  step: string;
  next?: string;
}

function propertyName(member: JsepNode): string | undefined {
  const p = member.property as JsepNode;
  if (!member.computed && p.type === 'Identifier') return p.name as string;
  if (member.computed && p.type === 'Literal' && typeof p.value === 'string') return p.value;
  return undefined;
}

/** Every `steps.X` (or `steps["X"]`) in an expression, with the field read after it. */
export function stepReferences(src: string): StepReference[] {
  const refs: StepReference[] = [];
  const root = parse(src);
  const visit = (n: JsepNode, parent?: JsepNode): void => {
    if (n.type === 'MemberExpression') {
      const obj = n.object as JsepNode;
      if (obj.type === 'Identifier' && obj.name === 'steps') {
        const step = propertyName(n);
        if (step !== undefined) {
          const next =
            parent?.type === 'MemberExpression' && parent.object === n ? propertyName(parent) : undefined;
          refs.push(next === undefined ? { step } : { step, next });
        }
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
const SCALAR_OPERATORS = new Set([
  '-',
  '*',
  '/',
  '%',
  '==',
  '!=',
  '===',
  '!==',
  '<',
  '>',
  '<=',
  '>=',
  '!',
  '&&',
  '||',
]);

/**
 * Why `src` can never evaluate to a list, or undefined when it might. `typeOf` gives the declared
 * type of a name ('list', 'any', 'long', ...) or undefined when unknown.
 */
export function whyNotList(src: string, typeOf: (name: string) => string | undefined): string | undefined {
  const root = parse(src);
  if (!root) return undefined;
  const why = (n: JsepNode): string | undefined => {
    switch (n.type) {
      case 'Literal':
        return `it is the literal ${n.raw as string}`;
      case 'ObjectExpression':
        return 'it is a map literal';
      case 'TemplateLiteral':
        return 'it is a string';
      case 'BinaryExpression': {
        if (SCALAR_OPERATORS.has(n.operator as string))
          return `the operator ${n.operator as string} yields a scalar`;
        if (n.operator === '+') {
          const l = why(n.left as JsepNode);
          const r = why(n.right as JsepNode);
          return l !== undefined && r !== undefined ? 'both operands of + are scalars' : undefined;
        }
        return undefined;
      }
      case 'UnaryExpression':
        return `the operator ${n.operator as string} yields a scalar`;
      case 'CallExpression': {
        const callee = n.callee as JsepNode;
        if (callee.type === 'Identifier' && SCALAR_FUNCTIONS.has(callee.name as string))
          return `${callee.name as string}() does not return a list`;
        return undefined;
      }
      case 'Identifier': {
        const t = typeOf(n.name as string);
        if (t === undefined || t === 'any' || t === 'list') return undefined;
        return `${n.name as string} is declared ${t}`;
      }
      case 'ConditionalExpression': {
        const a = why(n.consequent as JsepNode);
        const b = why(n.alternate as JsepNode);
        return a !== undefined && b !== undefined ? 'neither side of ?: is a list' : undefined;
      }
      default:
        return undefined;
    }
  };
  return why(root);
}

/** A cycle in a dependency graph, as the list of names [a, b, ..., a], or undefined. */
export function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const dfs = (v: string): string[] | undefined => {
    state.set(v, 'visiting');
    stack.push(v);
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!graph.has(w)) continue;
      const s = state.get(w);
      if (s === 'visiting') return [...stack.slice(stack.indexOf(w)), w];
      if (s === undefined) {
        const c = dfs(w);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(v, 'done');
    return undefined;
  };
  for (const v of [...graph.keys()].sort()) {
    if (state.get(v) === undefined) {
      const c = dfs(v);
      if (c) return c;
    }
  }
  return undefined;
}
