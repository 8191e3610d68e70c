// The flow combinators: every step constructor returns a `Flow`, and flows chain like the
// Scala DSL's (`a.sequence(b).parallel(c, d).or(...).end()`). Flows are immutable values:
// each method returns a new flow and never changes the one it was called on, so a flow can
// be shared and extended in several places.
import { DslError, invalidArgument } from './errors.ts';
import type { Branch as BranchNode, DefinitionNode, Step } from './manifest.ts';

declare const rootBrand: unique symbol;
/** The type-level marker of a top-level flow (one that `.end()` does not leave). */
export type Root = typeof rootBrand;

/** A finished flow that may be used as a definition or as an argument of a combinator. */
export type Flow = Chain<Root>;

export interface LoopOptions {
  /** evaluated after each iteration; true runs `do` again. `LOOP_INDEX` is 0-based. */
  while: string;
  maxIterations: number;
}

export interface ForeachOptions {
  /** an expression yielding a list, or a literal list of scalars */
  items: string | (string | number | boolean)[];
  /** the name the current item is bound to inside the body */
  as: string;
  parallelism?: number;
}

/** An open block: what `.end()` does with the body built since it was opened. */
interface Scope {
  /** what the scope is, for messages: `loop`, `foreach "country"`, `branch "x < 5"` */
  label: string;
  finish: (body: DefinitionNode) => unknown;
}

const BRANCH = Symbol('meson.dsl.branch');

/** One branch of an `or`/`xor`: made by `Condition(expr).branch(flow)` or `Otherwise(flow)`. */
export interface Branch {
  readonly [BRANCH]: BranchNode;
}

/**
 * A chain of definition nodes. `P` is what `.end()` returns: the enclosing chain for a
 * loop/foreach opened without a body, the flow itself at top level.
 */
export class Chain<P = Root> {
  readonly #items: readonly DefinitionNode[];
  readonly #scope: Scope | undefined;

  /** @internal use the step constructors and combinators instead */
  constructor(items: readonly DefinitionNode[], scope?: Scope) {
    this.#items = items;
    this.#scope = scope;
  }

  /** Runs `next` one after another, after this flow. */
  sequence(...next: Flow[]): Chain<P> {
    let chain: Chain<P> = this;
    next.forEach((flow, i) => {
      chain = chain.#append(nodeOf(flow, `sequence(): argument ${i + 1}`));
    });
    return chain;
  }

  /** After this flow, runs all `branches` at once and waits for all of them (Meson's AND). */
  parallel(...branches: Flow[]): Chain<P> {
    if (branches.length === 0) throw new DslError('DSL_EMPTY_BLOCK', 'parallel(): needs at least one flow');
    return this.#append({ parallel: branches.map((b, i) => nodeOf(b, `parallel(): argument ${i + 1}`)) });
  }

  /** After this flow, runs every branch whose condition is true (`Otherwise` when none is). */
  or(...branches: Branch[]): Chain<P> {
    return this.#append({ or: branchNodes('or', branches) });
  }

  /** After this flow, runs only the first branch whose condition is true. */
  xor(...branches: Branch[]): Chain<P> {
    return this.#append({ xor: branchNodes('xor', branches) });
  }

  /**
   * After this flow, repeats `body` while `options.while` holds. Without `body`, opens the
   * loop: the following calls build its body until `.end()` returns to this chain.
   */
  loop(options: LoopOptions): Chain<Chain<P>>;
  loop(options: LoopOptions, body: Flow): Chain<P>;
  loop(options: LoopOptions, body?: Flow): Chain<P> | Chain<Chain<P>> {
    const close = loopCloser(options);
    if (body !== undefined) return this.#append(close(nodeOf(body, 'loop(): body')));
    return new Chain<Chain<P>>([], { label: 'loop', finish: (b) => this.#append(close(b)) });
  }

  /**
   * After this flow, runs `body` once per item. Without `body`, opens the foreach: the
   * following calls build its body until `.end()` returns to this chain.
   */
  foreach(options: ForeachOptions): Chain<Chain<P>>;
  foreach(options: ForeachOptions, body: Flow): Chain<P>;
  foreach(options: ForeachOptions, body?: Flow): Chain<P> | Chain<Chain<P>> {
    const close = foreachCloser(options);
    if (body !== undefined) return this.#append(close(nodeOf(body, 'foreach(): body')));
    return new Chain<Chain<P>>([], {
      label: `foreach "${options.as}"`,
      finish: (b) => this.#append(close(b)),
    });
  }

  /**
   * Closes the loop/foreach this chain builds and returns the enclosing chain (or, for a
   * branch opened by `Condition(...).branch()` / `Otherwise()`, the finished branch). On a
   * top-level flow it returns the flow itself (as the Scala DSL's `definition = ....end()`).
   */
  end(): P extends Root ? Flow : P {
    const scope = this.#scope;
    if (scope === undefined) return this as never;
    if (this.#items.length === 0) {
      throw new DslError(
        'DSL_EMPTY_BLOCK',
        `${scope.label}: the body is empty (nothing between it and .end())`,
      );
    }
    return scope.finish(bodyOf(this.#items)) as never;
  }

  /** The definition node this flow synthesises to. */
  toNode(): DefinitionNode {
    return nodeOf(this as Chain<unknown> as Flow, 'flow');
  }

  /** @internal */
  static nodeOf(flow: unknown, where: string): DefinitionNode {
    if (!(flow instanceof Chain)) {
      throw invalidArgument(where, 'a flow (a step such as Shell(...), or a combination of steps)', flow);
    }
    if (flow.#scope !== undefined) {
      throw new DslError(
        'DSL_UNCLOSED_SCOPE',
        `${where}: the ${flow.#scope.label} opened here is not closed; call .end() after its body`,
      );
    }
    if (flow.#items.length === 0) throw new DslError('DSL_EMPTY_BLOCK', `${where}: the flow is empty`);
    return bodyOf(flow.#items);
  }

  #append(node: DefinitionNode): Chain<P> {
    // Sequences inside sequences mean the same as one flat sequence; keeping them flat makes
    // `a.sequence(b).sequence(c)` and `a.sequence(b.sequence(c))` synthesise identically.
    const added = 'sequence' in node ? node.sequence : [node];
    return new Chain<P>([...this.#items, ...added], this.#scope);
  }
}

/** The nodes directly inside a block (none for a step). */
export function childNodes(node: DefinitionNode): DefinitionNode[] {
  if ('sequence' in node) return node.sequence;
  if ('parallel' in node) return node.parallel;
  if ('or' in node) return node.or.map(branchBody);
  if ('xor' in node) return node.xor.map(branchBody);
  if ('loop' in node) return [node.loop.do];
  if ('foreach' in node) return [node.foreach.do];
  return [];
}

function branchBody(branch: BranchNode): DefinitionNode {
  return 'otherwise' in branch ? branch.otherwise : branch.then;
}

function bodyOf(items: readonly DefinitionNode[]): DefinitionNode {
  return items.length === 1 ? items[0]! : { sequence: [...items] };
}

/** The definition node of a finished flow; throws naming `where` when it is not one. */
export function nodeOf(flow: Flow, where: string): DefinitionNode {
  return Chain.nodeOf(flow, where);
}

/** A flow of a single step (what every step constructor returns). */
export function stepFlow(step: Step): Flow {
  return new Chain<Root>([{ step }]);
}

const EMPTY: Flow = new Chain<Root>([]);

/** `sequence(a, b, c)`: a, then b, then c. */
export function sequence(...flows: Flow[]): Flow {
  if (flows.length === 0) throw new DslError('DSL_EMPTY_BLOCK', 'sequence(): needs at least one flow');
  return EMPTY.sequence(...flows);
}

/** `parallel(a, b)`: a and b at once, waiting for both. */
export function parallel(...flows: Flow[]): Flow {
  return EMPTY.parallel(...flows);
}

/** `or(Condition("x<5").branch(a), Otherwise(b))` as the first block of a flow. */
export function or(...branches: Branch[]): Flow {
  return EMPTY.or(...branches);
}

/** `xor(...)` as the first block of a flow. */
export function xor(...branches: Branch[]): Flow {
  return EMPTY.xor(...branches);
}

/** `loop({ while, maxIterations }, body)`, or `loop({...}).sequence(...).end()`. */
export function loop(options: LoopOptions): Chain<Flow>;
export function loop(options: LoopOptions, body: Flow): Flow;
export function loop(options: LoopOptions, body?: Flow): Flow | Chain<Flow> {
  return body === undefined ? EMPTY.loop(options) : EMPTY.loop(options, body);
}

/** `foreach({ items, as, parallelism }, body)`, or `foreach({...}).sequence(...).end()`. */
export function foreach(options: ForeachOptions): Chain<Flow>;
export function foreach(options: ForeachOptions, body: Flow): Flow;
export function foreach(options: ForeachOptions, body?: Flow): Flow | Chain<Flow> {
  return body === undefined ? EMPTY.foreach(options) : EMPTY.foreach(options, body);
}

/**
 * `Condition("x < 5").branch(flow)`: a branch of an `or`/`xor` taken when the expression is
 * true. `Condition("x < 5").branch()` opens the branch instead: the calls that follow build it
 * and `.end()` returns the finished branch.
 */
export function Condition(when: string): { branch(): Chain<Branch>; branch(flow: Flow): Branch } {
  if (typeof when !== 'string' || when.trim() === '') {
    throw invalidArgument('Condition()', 'a non-empty expression string', when);
  }
  const label = `branch ${JSON.stringify(when)}`;
  const make = (then: DefinitionNode): Branch => ({ [BRANCH]: { when, then } });
  return {
    branch(flow?: Flow): never {
      if (flow === undefined) return new Chain<Branch>([], { label, finish: make }) as never;
      return make(nodeOf(flow, `Condition(${JSON.stringify(when)}).branch()`)) as never;
    },
  };
}

/**
 * The branch of an `or`/`xor` taken when no condition is true; it must come last.
 * `Otherwise()` opens it, like `Condition(...).branch()`.
 */
export function Otherwise(): Chain<Branch>;
export function Otherwise(flow: Flow): Branch;
export function Otherwise(flow?: Flow): Branch | Chain<Branch> {
  const make = (otherwise: DefinitionNode): Branch => ({ [BRANCH]: { otherwise } });
  if (flow === undefined) return new Chain<Branch>([], { label: 'otherwise branch', finish: make });
  return make(nodeOf(flow, 'Otherwise()'));
}

function branchNodes(kind: 'or' | 'xor', branches: Branch[]): BranchNode[] {
  if (branches.length === 0) {
    throw new DslError('DSL_EMPTY_BLOCK', `${kind}(): needs at least one Condition(...).branch(...)`);
  }
  return branches.map((branch, i) => {
    const where = `${kind}(): argument ${i + 1}`;
    // an opened branch whose .end() was forgotten: say so rather than "not a branch"
    if (branch instanceof Chain) Chain.nodeOf(branch, where);
    if (branch === null || typeof branch !== 'object' || !(BRANCH in branch)) {
      throw invalidArgument(where, 'Condition(expr).branch(flow) or Otherwise(flow)', branch);
    }
    const node = branch[BRANCH];
    if ('otherwise' in node && i !== branches.length - 1) {
      throw new DslError('DSL_BRANCH_ORDER', `${where}: Otherwise(...) must be the last branch`);
    }
    return node;
  });
}

function loopCloser(options: LoopOptions): (body: DefinitionNode) => DefinitionNode {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument('loop()', '{ while, maxIterations }', options);
  }
  const { while: condition, maxIterations } = options;
  if (typeof condition !== 'string' || condition.trim() === '') {
    throw invalidArgument('loop(): while', 'a non-empty expression string', condition);
  }
  if (!Number.isInteger(maxIterations) || maxIterations < 1) {
    throw invalidArgument('loop(): maxIterations', 'a positive integer', maxIterations);
  }
  return (body) => ({ loop: { do: body, while: condition, maxIterations } });
}

function foreachCloser(options: ForeachOptions): (body: DefinitionNode) => DefinitionNode {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument('foreach()', '{ items, as, parallelism? }', options);
  }
  const { as, parallelism } = options;
  const items = itemsExpression(options.items);
  if (typeof as !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(as)) {
    throw invalidArgument('foreach(): as', 'an identifier to bind each item to', as);
  }
  if (parallelism !== undefined && (!Number.isInteger(parallelism) || parallelism < 1)) {
    throw invalidArgument('foreach(): parallelism', 'a positive integer', parallelism);
  }
  return (body) => ({ foreach: { items, as, parallelism, do: body } });
}

/** A literal list becomes the expression that denotes it, e.g. `["US","CA"]`. */
function itemsExpression(items: ForeachOptions['items']): string {
  if (typeof items === 'string') {
    if (items.trim() === '') throw invalidArgument('foreach(): items', 'a non-empty expression', items);
    return items;
  }
  if (!Array.isArray(items)) throw invalidArgument('foreach(): items', 'an expression or a list', items);
  items.forEach((item, i) => {
    const ok = typeof item === 'string' || typeof item === 'boolean' || Number.isFinite(item);
    if (!ok) throw invalidArgument(`foreach(): items[${i}]`, 'a string, number or boolean', item);
  });
  return JSON.stringify(items);
}
