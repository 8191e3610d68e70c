// Parsing: jsep (with character positions added) into a small, validated AST. Everything the
// language does not allow is rejected here, once, so that the checker and the evaluator only
// ever see the spec's constructs.
import jsep from 'jsep';
import { ExprError } from './errors.ts';
import { Lru } from './lru.ts';
import { DEFAULT_LIMITS, type Limits, type Value } from './types.ts';

export type BinaryOp =
  | '||'
  | '&&'
  | '=='
  | '!='
  | '==='
  | '!=='
  | '<'
  | '>'
  | '<='
  | '>='
  | '+'
  | '-'
  | '*'
  | '/'
  | '%';
export type UnaryOp = '!' | '-';

/** A parsed expression. `pos` is the 0-based character offset where the construct starts. */
export type Expr =
  | { t: 'literal'; pos: number; value: Value }
  | { t: 'list'; pos: number; items: Expr[] }
  | { t: 'name'; pos: number; name: string }
  | { t: 'member'; pos: number; object: Expr; key: string | Expr; keyPos: number; optional: boolean }
  | { t: 'call'; pos: number; fn: string; args: Expr[] }
  | { t: 'unary'; pos: number; op: UnaryOp; arg: Expr }
  | { t: 'binary'; pos: number; op: BinaryOp; left: Expr; right: Expr }
  | { t: 'cond'; pos: number; test: Expr; consequent: Expr; otherwise: Expr };

const BINARY_OPS = new Set<string>([
  '||',
  '&&',
  '==',
  '!=',
  '===',
  '!==',
  '<',
  '>',
  '<=',
  '>=',
  '+',
  '-',
  '*',
  '/',
  '%',
]);
const UNARY_OPS = new Set<string>(['!', '-']);

/**
 * Names that reach into the host: never valid as a variable or a key, whatever the data
 * holds. Member access is on own properties only anyway; this makes the intent explicit and
 * the error static.
 */
const FORBIDDEN_NAMES: ReadonlySet<string> = new Set([
  ...Object.getOwnPropertyNames(Object.prototype),
  'caller',
  'callee',
  'arguments',
  'prototype',
  'constructor',
  '__proto__',
  'globalThis',
  'this',
]);

export function isForbiddenName(name: string): boolean {
  return FORBIDDEN_NAMES.has(name);
}

// ---- jsep with positions -------------------------------------------------------------------

interface JsepNode {
  type: string;
  start?: number;
  [k: string]: unknown;
}
interface JsepParser {
  index: number;
  gobbleSpaces(): void;
  gobbleToken(): JsepNode | false;
  gobbleIdentifier(): JsepNode;
  parse(): JsepNode;
}
const JsepBase = (jsep as unknown as { Jsep: new (expr: string) => JsepParser }).Jsep;

/** jsep records no positions; this subclass stamps the start offset on tokens and identifiers. */
class PositionedParser extends JsepBase {
  override gobbleToken(): JsepNode | false {
    this.gobbleSpaces();
    const start = this.index;
    const node = super.gobbleToken();
    if (node && node.start === undefined) node.start = start;
    return node;
  }
  override gobbleIdentifier(): JsepNode {
    const start = this.index;
    const node = super.gobbleIdentifier();
    node.start = start;
    return node;
  }
}

/**
 * Rejects nesting deeper than the limit before jsep (which is recursive) sees the text:
 * brackets, runs of prefix operators and conditionals (`a ? b : c ? ...` nests to the right);
 * also the statement separators that jsep would silently accept.
 */
function checkNesting(src: string, maxDepth: number): void {
  let depth = 0;
  let prefixRun = 0;
  let conditionals = 0;
  let quote: string | null = null;
  const tooDeep = (i: number): never => {
    throw new ExprError('EXPR_LIMIT', `nesting deeper than ${maxDepth} levels`, { position: i });
  };
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = null;
      continue;
    }
    if (ch === '!' || ch === '-' || ch === '+' || ch === '~') {
      if (src[i + 1] !== '=' && ++prefixRun > maxDepth) tooDeep(i);
      continue;
    }
    if (ch !== ' ' && ch !== '\t' && ch !== '\n' && ch !== '\r') prefixRun = 0;
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ';' || (ch === ',' && depth === 0))
      // jsep silently accepts `a;` and `a,` as separators of several expressions.
      throw new ExprError('EXPR_PARSE', `unexpected "${ch}": an expression is a single expression`, {
        position: i,
      });
    else if (ch === '(' || ch === '[') {
      if (++depth > maxDepth) tooDeep(i);
    } else if (ch === ')' || ch === ']') depth--;
    else if (ch === '?' && src[i + 1] !== '.' && ++conditionals > maxDepth) tooDeep(i);
  }
}

// ---- conversion -----------------------------------------------------------------------------

interface Budget {
  nodes: number;
  maxNodes: number;
  maxDepth: number;
}

const FIRST_CHILD_KEYS = ['left', 'object', 'callee', 'test', 'argument'] as const;

/**
 * Where a node starts: its own stamp, else that of its leftmost child (binary, member and call
 * nodes are built by jsep without passing through the stamping methods). Iterative, and it
 * stamps every node on the way, so long chains cost linear time in total.
 */
function startOf(n: JsepNode | null | undefined): number | undefined {
  const chain: JsepNode[] = [];
  let cur: JsepNode | undefined = n ?? undefined;
  while (cur && typeof cur.start !== 'number') {
    chain.push(cur);
    let next: JsepNode | undefined;
    for (const k of FIRST_CHILD_KEYS) {
      const c = cur[k] as JsepNode | undefined;
      if (c && typeof c === 'object') {
        next = c;
        break;
      }
    }
    cur = next;
  }
  const start = cur?.start;
  if (start !== undefined) for (const c of chain) c.start = start;
  return start;
}

function convert(n: JsepNode, depth: number, b: Budget): Expr {
  const pos = startOf(n) ?? 0;
  if (++b.nodes > b.maxNodes)
    throw new ExprError('EXPR_LIMIT', `expression has more than ${b.maxNodes} nodes`, { position: pos });
  if (depth > b.maxDepth)
    throw new ExprError('EXPR_LIMIT', `expression nested deeper than ${b.maxDepth} levels`, {
      position: pos,
    });
  const sub = (x: unknown) => convert(x as JsepNode, depth + 1, b);
  switch (n.type) {
    case 'Literal': {
      // Strings are decoded here from their source: jsep drops unknown escapes and has no \u.
      const v = typeof n.value === 'string' ? decodeString(String(n.raw), pos) : n.value;
      if (typeof v === 'number' && !Number.isFinite(v))
        throw new ExprError('EXPR_ARITHMETIC', `number ${String(n.raw)} is out of range`, { position: pos });
      // An id such as 9007199254740993 would silently become ...992: refuse instead of rounding.
      if (typeof v === 'number' && /^\d+$/.test(String(n.raw)) && !Number.isSafeInteger(v))
        throw new ExprError(
          'EXPR_ARITHMETIC',
          `integer ${String(n.raw)} is larger than 2^53 and cannot be represented exactly (write it as a string)`,
          { position: pos },
        );
      if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
        return { t: 'literal', pos, value: v };
      throw new ExprError('EXPR_FORBIDDEN', 'unsupported literal', { position: pos });
    }
    case 'Identifier': {
      const name = n.name as string;
      if (isForbiddenName(name))
        throw new ExprError('EXPR_FORBIDDEN', `"${name}" is not accessible in expressions`, {
          position: pos,
        });
      return { t: 'name', pos, name };
    }
    case 'ArrayExpression': {
      const elements = n.elements as (JsepNode | null)[];
      if (elements.some((e) => e === null))
        throw new ExprError('EXPR_PARSE', 'empty element in list', { position: pos });
      return { t: 'list', pos, items: elements.map(sub) };
    }
    case 'MemberExpression': {
      const object = sub(n.object);
      const property = n.property as JsepNode;
      const optional = n.optional === true;
      if (n.computed) {
        const key = sub(property);
        // m["constructor"] is the same access as m.constructor: reject it before any run too.
        if (key.t === 'literal' && typeof key.value === 'string' && isForbiddenName(key.value))
          throw new ExprError('EXPR_FORBIDDEN', `property "${key.value}" is not accessible in expressions`, {
            position: key.pos,
          });
        return { t: 'member', pos, object, key, keyPos: key.pos, optional };
      }
      const name = property.name as string;
      const keyPos = property.start ?? pos;
      if (isForbiddenName(name))
        throw new ExprError('EXPR_FORBIDDEN', `property "${name}" is not accessible in expressions`, {
          position: keyPos,
        });
      return { t: 'member', pos, object, key: name, keyPos, optional };
    }
    case 'CallExpression': {
      const callee = n.callee as JsepNode;
      if (callee.type !== 'Identifier')
        throw new ExprError('EXPR_FORBIDDEN', 'only built-in functions can be called (no methods)', {
          position: pos,
        });
      const fn = callee.name as string;
      if (isForbiddenName(fn))
        throw new ExprError('EXPR_FORBIDDEN', `"${fn}" is not accessible in expressions`, { position: pos });
      return { t: 'call', pos, fn, args: (n.arguments as JsepNode[]).map(sub) };
    }
    case 'UnaryExpression': {
      const op = n.operator as string;
      if (!UNARY_OPS.has(op))
        throw new ExprError('EXPR_FORBIDDEN', `operator "${op}" is not supported`, { position: pos });
      const arg = sub(n.argument);
      // Fold negative number literals so that -1 is a literal (for static types and speed).
      if (op === '-' && arg.t === 'literal' && typeof arg.value === 'number')
        return { t: 'literal', pos, value: arg.value === 0 ? 0 : -arg.value };
      return { t: 'unary', pos, op: op as UnaryOp, arg };
    }
    case 'BinaryExpression': {
      const op = n.operator as string;
      const left = sub(n.left);
      const right = sub(n.right);
      if (!BINARY_OPS.has(op))
        throw new ExprError('EXPR_FORBIDDEN', `operator "${op}" is not supported`, { position: right.pos });
      return { t: 'binary', pos, op: op as BinaryOp, left, right };
    }
    case 'ConditionalExpression':
      return {
        t: 'cond',
        pos,
        test: sub(n.test),
        consequent: sub(n.consequent),
        otherwise: sub(n.alternate),
      };
    case 'ThisExpression':
      throw new ExprError('EXPR_FORBIDDEN', '"this" is not accessible in expressions', { position: pos });
    case 'Compound': {
      const body = n.body as JsepNode[];
      if (body.length === 0) throw new ExprError('EXPR_PARSE', 'empty expression', { position: 0 });
      throw new ExprError('EXPR_PARSE', 'unexpected second expression (missing operator?)', {
        position: startOf(body[1]) ?? pos,
      });
    }
    case 'SequenceExpression':
      throw new ExprError('EXPR_PARSE', 'comma expressions are not supported', { position: pos });
    default:
      throw new ExprError('EXPR_FORBIDDEN', `unsupported construct ${n.type}`, { position: pos });
  }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
  v: '\v',
  "'": "'",
  '"': '"',
  '\\': '\\',
  '/': '/',
};

/**
 * The value of a string literal from its source text (quotes included): the escapes of
 * JavaScript strings and JSON — `\n \t \r \b \f \v \\ \" \' \/` and `\u00e9` / `\u{1F600}`.
 * Any other backslash is an error: jsep dropped it ("C:\data" became "C:data").
 */
function decodeString(raw: string, pos: number): string {
  let out = '';
  for (let i = 1; i < raw.length - 1; i++) {
    const ch = raw[i]!;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = raw[i + 1] ?? '';
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      out += simple;
      i++;
      continue;
    }
    const unicode =
      next === 'u' ? /^u(?:([0-9a-fA-F]{4})|\{([0-9a-fA-F]{1,6})\})/.exec(raw.slice(i + 1)) : null;
    const code = unicode ? Number.parseInt(unicode[1] ?? unicode[2] ?? '', 16) : Number.NaN;
    if (unicode && code <= 0x10ffff) {
      out += String.fromCodePoint(code);
      i += unicode[0].length;
      continue;
    }
    throw new ExprError(
      'EXPR_PARSE',
      `unsupported escape "\\${next}" in a string: the escapes are \\n \\t \\r \\\\ \\" \\' and \\u00e9 (write \\\\ for a backslash)`,
      { position: pos + i },
    );
  }
  return out;
}

/**
 * `${x}` in a field that is already an expression (items, when, while, expression) is the most
 * common way to get a parse error there: say so instead of only "Unexpected {".
 */
function templateHint(src: string): string {
  const m = /\$\{([^}]*)\}/.exec(src);
  if (!m) return '';
  const inner = m[1]?.trim() || 'name';
  return `; an expression is not text with \${...} in it: write ${inner}, not \${${inner}}`;
}

function parseUncached(src: string, limits: Limits): Expr {
  if (typeof src !== 'string') throw new ExprError('EXPR_PARSE', 'an expression must be a string');
  if (src.length > limits.maxSourceLength)
    throw new ExprError('EXPR_LIMIT', `expression longer than ${limits.maxSourceLength} characters`, {
      position: limits.maxSourceLength,
    });
  checkNesting(src, limits.maxAstDepth);
  let root: JsepNode;
  try {
    root = new PositionedParser(src).parse();
  } catch (err) {
    if (err instanceof RangeError)
      throw new ExprError('EXPR_LIMIT', 'expression nested too deeply', { position: 0, cause: err });
    const e = err as { description?: unknown; index?: unknown; message?: unknown };
    const detail = typeof e.description === 'string' ? e.description : String(e.message ?? err);
    const position = typeof e.index === 'number' ? Math.min(e.index, src.length) : 0;
    throw new ExprError('EXPR_PARSE', `${detail}${templateHint(src)}`, { position, cause: err });
  }
  try {
    return convert(root, 1, { nodes: 0, maxNodes: limits.maxAstNodes, maxDepth: limits.maxAstDepth });
  } catch (err) {
    if (err instanceof ExprError) throw err;
    throw new ExprError('EXPR_LIMIT', 'expression nested too deeply', { position: 0, cause: err });
  }
}

// ---- cache ----------------------------------------------------------------------------------

/** Parsed expressions keyed by source: the engine evaluates the same few thousands times. */
const cache = new Lru<string, Expr>(2000);

function usesDefaultAstLimits(l: Limits): boolean {
  return (
    l.maxSourceLength === DEFAULT_LIMITS.maxSourceLength &&
    l.maxAstNodes === DEFAULT_LIMITS.maxAstNodes &&
    l.maxAstDepth === DEFAULT_LIMITS.maxAstDepth
  );
}

/**
 * Parses (or returns the cached parse of) `src`. The result is shared: never mutate it.
 * Errors carry `expression`; failures are not cached (they are cheap to reproduce).
 */
export function parseCached(src: string, limits: Limits = DEFAULT_LIMITS): Expr {
  const cacheable = usesDefaultAstLimits(limits);
  if (cacheable) {
    const hit = cache.get(src);
    if (hit) return hit;
  }
  let ast: Expr;
  try {
    ast = parseUncached(src, limits);
  } catch (err) {
    const e =
      err instanceof ExprError
        ? err
        : new ExprError('EXPR_PARSE', 'cannot parse', { position: 0, cause: err });
    throw e.withExpression(typeof src === 'string' ? src : '');
  }
  if (cacheable) cache.set(src, ast);
  return ast;
}
