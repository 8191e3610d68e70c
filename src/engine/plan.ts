// Compiles a definition tree once into plan nodes with parent pointers, field paths (for error
// messages) and the list of enclosing iterators (loop/foreach) that gives instance ids their
// indices. The engine walks plan nodes, never the raw definition.
import type { DefinitionNode, NodeKind, Step } from '../crds/index.ts';
import { DEFAULT_RUN_LIMITS, limitMessage, resolveRunLimits } from './limits.ts';

export interface PlanNode {
  kind: NodeKind;
  /** Field path of the node, e.g. `spec.definition.sequence[1].foreach.do`. */
  path: string;
  parent: PlanNode | null;
  /** sequence/parallel items; or/xor branch bodies (in order); loop/foreach body. */
  children: PlanNode[];
  /** or/xor: per child, the `when` expression, or null for `otherwise`. */
  conditions: (string | null)[];
  step?: Step;
  loop?: { while: string; maxIterations: number };
  foreach?: { items: string; as: string; parallelism?: number };
  /** Enclosing loop/foreach nodes, outermost first (not including this node). */
  iterators: PlanNode[];
  /**
   * Step names that this node's own expressions/templates read as `steps.<name>`; `null` when
   * it reads none, `'all'` when it indexes `steps` dynamically.
   */
  stepRefs: string[] | 'all' | null;
  /** The step's fields contain `${` (interpolation needed). */
  hasTemplates: boolean;
  /** Memo of directSteps(this). */
  directSteps?: PlanNode[];
}

export interface Plan {
  root: PlanNode;
  /** Step name -> its (unique) plan node. */
  steps: Map<string, PlanNode>;
  /** Nesting depth of blocks: 0 for a lone step, 1 for a block of steps, ... */
  depth: number;
}

export class PlanError extends Error {
  override name = 'PlanError';
  code: string;
  path: string;
  constructor(path: string, message: string, code = 'ENGINE_INVALID_DEFINITION') {
    super(`${path}: ${message}`);
    this.path = path;
    this.code = code;
  }
}

const cache = new WeakMap<object, Plan>();

/**
 * Compiles (memoised per definition object). Throws PlanError on a malformed tree, and with
 * code RUN_LIMIT_BLOCK_DEPTH when blocks nest deeper than `maxBlockDepth` (checked while
 * compiling, so that a hostile depth cannot overflow the stack).
 */
export function compilePlan(
  definition: DefinitionNode,
  rootPath = 'spec.definition',
  maxBlockDepth = DEFAULT_RUN_LIMITS.maxBlockDepth,
): Plan {
  const hit = cache.get(definition);
  if (hit && hit.root.path === rootPath) {
    if (hit.depth > maxBlockDepth) throw tooDeep(hit.root.path, maxBlockDepth);
    return hit;
  }
  const steps = new Map<string, PlanNode>();
  const ctx = { steps, maxDepth: maxBlockDepth, depth: 0 };
  const root = compileNode(definition, rootPath, null, [], ctx, 0);
  const plan = { root, steps, depth: ctx.depth };
  cache.set(definition, plan);
  return plan;
}

function tooDeep(path: string, max: number): PlanError {
  const limits = resolveRunLimits({ maxBlockDepth: max });
  return new PlanError(
    path,
    limitMessage('maxBlockDepth', limits, `blocks are nested more than ${max} deep here`),
    'RUN_LIMIT_BLOCK_DEPTH',
  );
}

interface CompileContext {
  steps: Map<string, PlanNode>;
  maxDepth: number;
  /** The deepest block nesting seen. */
  depth: number;
}

function compileNode(
  def: DefinitionNode,
  path: string,
  parent: PlanNode | null,
  iterators: PlanNode[],
  ctx: CompileContext,
  blockDepth: number,
): PlanNode {
  const steps = ctx.steps;
  if (typeof def !== 'object' || def === null) throw new PlanError(path, 'expected a definition node object');
  const d = def as Record<string, unknown>;
  const kinds = (['step', 'sequence', 'parallel', 'or', 'xor', 'loop', 'foreach'] as const).filter(
    (k) => d[k] !== undefined,
  );
  if (kinds.length !== 1)
    throw new PlanError(path, `expected exactly one block key; found ${kinds.length === 0 ? 'none' : kinds}`);
  const kind = kinds[0] as NodeKind;
  const depth = kind === 'step' ? blockDepth : blockDepth + 1;
  if (depth > ctx.maxDepth) throw tooDeep(`${path}.${kind}`, ctx.maxDepth);
  if (depth > ctx.depth) ctx.depth = depth;
  const node: PlanNode = {
    kind,
    path: `${path}.${kind}`,
    parent,
    children: [],
    conditions: [],
    iterators,
    stepRefs: null,
    hasTemplates: false,
  };
  switch (kind) {
    case 'step': {
      const step = d.step as Step;
      if (typeof step?.name !== 'string') throw new PlanError(node.path, 'expected a step with a name');
      if (steps.has(step.name))
        throw new PlanError(`${node.path}.name`, `duplicate step name "${step.name}"`);
      steps.set(step.name, node);
      node.step = step;
      const text = JSON.stringify(step);
      node.stepRefs = stepRefsOf(text);
      node.hasTemplates = text.includes('${');
      break;
    }
    case 'sequence':
    case 'parallel': {
      const list = d[kind];
      if (!Array.isArray(list)) throw new PlanError(node.path, 'expected a list of nodes');
      node.children = list.map((c, i) => compileNode(c, `${node.path}[${i}]`, node, iterators, ctx, depth));
      break;
    }
    case 'or':
    case 'xor': {
      const list = d[kind];
      if (!Array.isArray(list)) throw new PlanError(node.path, 'expected a list of branches');
      const texts: string[] = [];
      list.forEach((b: Record<string, unknown>, i: number) => {
        const bp = `${node.path}[${i}]`;
        if (b?.otherwise !== undefined) {
          if (i !== list.length - 1) throw new PlanError(bp, '`otherwise` must be the last branch');
          node.conditions.push(null);
          node.children.push(
            compileNode(b.otherwise as DefinitionNode, `${bp}.otherwise`, node, iterators, ctx, depth),
          );
        } else {
          if (typeof b?.when !== 'string')
            throw new PlanError(`${bp}.when`, 'expected a condition expression');
          node.conditions.push(b.when);
          texts.push(b.when);
          node.children.push(
            compileNode(b.then as DefinitionNode, `${bp}.then`, node, iterators, ctx, depth),
          );
        }
      });
      node.stepRefs = stepRefsOf(texts.join('\n'));
      break;
    }
    case 'loop': {
      const l = d.loop as { do: DefinitionNode; while: string; maxIterations: number };
      if (typeof l?.while !== 'string') throw new PlanError(`${node.path}.while`, 'expected an expression');
      if (!Number.isInteger(l.maxIterations) || l.maxIterations < 1)
        throw new PlanError(`${node.path}.maxIterations`, 'expected a positive integer');
      node.loop = { while: l.while, maxIterations: l.maxIterations };
      node.stepRefs = stepRefsOf(l.while);
      node.children = [compileNode(l.do, `${node.path}.do`, node, [...iterators, node], ctx, depth)];
      break;
    }
    case 'foreach': {
      const f = d.foreach as { items: string; as: string; parallelism?: number; do: DefinitionNode };
      if (typeof f?.items !== 'string') throw new PlanError(`${node.path}.items`, 'expected an expression');
      if (typeof f.as !== 'string' || f.as === '') throw new PlanError(`${node.path}.as`, 'expected a name');
      if (f.parallelism !== undefined && (!Number.isInteger(f.parallelism) || f.parallelism < 1))
        throw new PlanError(`${node.path}.parallelism`, 'expected a positive integer');
      node.foreach = { items: f.items, as: f.as, parallelism: f.parallelism };
      node.stepRefs = stepRefsOf(f.items);
      node.children = [compileNode(f.do, `${node.path}.do`, node, [...iterators, node], ctx, depth)];
      break;
    }
  }
  return node;
}

const STEP_REF = /\bsteps\s*\.\s*([A-Za-z_$][\w$]*)/g;

/** The step names read as `steps.<name>` in some expression text (see PlanNode.stepRefs). */
export function stepRefsOf(text: string): string[] | 'all' | null {
  if (!/\bsteps\b/.test(text)) return null;
  const names = new Set<string>();
  let dynamic = false;
  for (const m of text.matchAll(/\bsteps\b\s*(\.|\[)?/g)) if (m[1] !== '.') dynamic = true;
  for (const m of text.matchAll(STEP_REF)) names.add(m[1] as string);
  return dynamic ? 'all' : [...names];
}

/** Step nodes reachable from `node` without entering another loop/foreach (for Skipped marks). */
export function directSteps(node: PlanNode, out: PlanNode[] = []): PlanNode[] {
  if (node.kind === 'step') out.push(node);
  else if (node.kind !== 'loop' && node.kind !== 'foreach')
    for (const c of node.children) directSteps(c, out);
  return out;
}

/** Every step node in `node`'s subtree, loops and foreach bodies included. */
function allSteps(node: PlanNode, out: Set<string>): void {
  if (node.kind === 'step' && node.step) out.add(node.step.name);
  for (const c of node.children) allSteps(c, out);
}

/**
 * The steps a restart "from step `name`" runs again: the step itself and everything that can
 * see its effects. That is: later items of every enclosing sequence; the whole body of an
 * enclosing loop (its next iteration runs what came before the step again); and, to a fixed
 * point, every block or step whose expressions read one of those steps (`steps.x`, or `steps`
 * indexed dynamically). Branches of a parallel, or an or/xor beside the step, are not
 * downstream: they never waited for it. Throws on a name that is not a step of the plan.
 */
export function stepsDownstreamOf(plan: Plan, name: string): Set<string> {
  const start = plan.steps.get(name);
  if (!start) throw new PlanError('spec.restartOf.step', `no step named "${name}" in this version`);
  const out = new Set<string>([name]);
  for (let n: PlanNode = start; n.parent; n = n.parent) {
    const p = n.parent;
    if (p.kind === 'sequence')
      for (const later of p.children.slice(p.children.indexOf(n) + 1)) allSteps(later, out);
    if (p.kind === 'loop') allSteps(p, out);
  }
  const readers: PlanNode[] = [];
  const collect = (n: PlanNode) => {
    if (n.stepRefs !== null) readers.push(n);
    for (const c of n.children) collect(c);
  };
  collect(plan.root);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of readers) {
      const reads = r.stepRefs === 'all' || (r.stepRefs ?? []).some((s) => out.has(s));
      if (!reads) continue;
      const before = out.size;
      allSteps(r, out);
      if (out.size > before) grew = true;
    }
  }
  return out;
}
