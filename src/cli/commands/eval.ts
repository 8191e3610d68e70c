// `mesonctl eval EXPR [--param k=v]...`: evaluates one expression and prints its value as JSON.
// Exit 0 on success; 2 on any expression error (parse, check, evaluation) or bad usage.

import {
  builtinValues,
  type CheckScope,
  checkExpression,
  ExprError,
  type ExprIssue,
  evaluate,
  type Value,
  type ValueType,
} from '../../expr/index.ts';
import type { CliIo, Command } from '../cli.ts';

const USAGE = `usage: mesonctl eval EXPR [--param k=v]...

Evaluates an expression (EXPR "-" reads it from stdin) and prints its value as JSON. --param values are parsed as JSON
where they parse, else taken as strings; they may also set RUN_TS, RUN_ID, WORKFLOW_ID,
WORKFLOW_VERSION, LOOP_INDEX or steps. RUN_TS defaults to now.
`;

interface EvalArgs {
  expression: string;
  params: Record<string, Value>;
}

/** `--param` value: JSON where it parses (a number, true, [1,2], {"a":1}), else the raw string. */
export function parseParamValue(text: string): Value {
  try {
    return JSON.parse(text) as Value;
  } catch {
    return text;
  }
}

function parseArgs(args: string[]): EvalArgs | string {
  const params: Record<string, Value> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let assignment: string | undefined;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    } else if (a === '--param' || a === '-p') {
      assignment = args[++i];
      if (assignment === undefined) return `${a} needs k=v`;
    } else if (a.startsWith('--param=')) assignment = a.slice('--param='.length);
    else if (a.startsWith('--') && a.length > 2) return `unknown option ${a}`;
    else positional.push(a);
    if (assignment !== undefined) {
      const eq = assignment.indexOf('=');
      if (eq <= 0) return `--param needs k=v, got "${assignment}"`;
      Object.defineProperty(params, assignment.slice(0, eq), {
        value: parseParamValue(assignment.slice(eq + 1)),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  if (positional.length !== 1)
    return positional.length === 0 ? 'missing EXPR' : 'expected exactly one EXPR (quote it)';
  return { expression: positional[0]!, params };
}

/** The expression's line with a caret under `position` (multi-line expressions show one line). */
export function caret(expression: string, position: number): string {
  const lineStart = expression.lastIndexOf('\n', position - 1) + 1;
  const lineEnd = expression.indexOf('\n', position);
  const line = expression.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
  const column = Math.max(0, position - lineStart);
  if (line.length <= CARET_WIDTH) return `  ${line}\n  ${' '.repeat(column)}^\n`;
  // A long line (a generated expression, 10,000 characters) is shown around the position only.
  const from = Math.max(0, Math.min(column - CARET_WIDTH / 2, line.length - CARET_WIDTH));
  const head = from > 0 ? '...' : '';
  const tail = from + CARET_WIDTH < line.length ? '...' : '';
  const shown = `${head}${line.slice(from, from + CARET_WIDTH)}${tail}`;
  return `  ${shown}\n  ${' '.repeat(head.length + column - from)}^\n`;
}

const CARET_WIDTH = 100;

function report(io: CliIo, expression: string, issue: ExprIssue): void {
  // Outside a workflow the usual unknown name is a parameter the user meant to pass.
  const name =
    issue.code === 'EXPR_UNKNOWN_NAME' ? /unknown name "([^"]+)"/.exec(issue.message)?.[1] : undefined;
  const hint = name ? ` (give it a value with --param ${name}=...)` : '';
  const message = issue.message.replace(/( at character \d+)?$/, (at) => `${hint}${at}`);
  io.stderr(`mesonctl eval: ${issue.code}: ${message}\n${caret(expression, issue.position)}`);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream)
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  return text;
}

function staticType(v: Value): ValueType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'map';
  if (typeof v === 'number') return Number.isInteger(v) ? 'long' : 'double';
  return typeof v as 'string' | 'boolean';
}

export const evalCommand: Command = async (args: string[], io: CliIo) => {
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout(USAGE);
    return 0;
  }
  const parsed = parseArgs(args);
  if (typeof parsed === 'string') {
    io.stderr(`mesonctl eval: ${parsed}\n\n${USAGE}`);
    return 2;
  }
  const { params } = parsed;
  const expression =
    parsed.expression === '-' ? (await readAll(io.stdin)).replace(/\r?\n$/, '') : parsed.expression;
  const vars: Record<string, Value> = {
    ...builtinValues({ runTs: Date.now(), runId: 'eval', workflowId: 'eval', workflowVersion: 0 }),
  };
  for (const [k, v] of Object.entries(params)) Object.defineProperty(vars, k, { value: v, enumerable: true });
  const scope: CheckScope = { names: new Map(Object.entries(params).map(([k, v]) => [k, staticType(v)])) };
  const issues = checkExpression(expression, scope);
  if (issues.length > 0) {
    for (const issue of issues) report(io, expression, issue);
    return 2;
  }
  try {
    io.stdout(`${JSON.stringify(evaluate(expression, vars))}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ExprError)) throw err;
    report(io, expression, err.toIssue());
    return 2;
  }
};
