// Where a `${EXPR}` sits in a shell script, to warn about the places where the engine's way of
// passing values (each `${EXPR}` becomes a reference to an environment variable holding the
// value, see docs/expressions.md) does not do what the author meant or is not safe:
//
// - inside single quotes, `$'...'`, a quoted here-document or after a backslash: the shell does
//   not expand the reference any more, the script sees the text `${MESON_V_0}`;
// - inside `$((...))`, `((...))`, `$[...]`, `[[ ... ]]`: bash evaluates a variable's content as an
//   arithmetic expression there, where `a[$(cmd)]` runs cmd;
// - in the arguments of eval, let, declare, typeset, source, `.`, or of `sh -c`: they read the
//   value again as code;
// - as the command word: the value chooses the program that runs.
//
// A lexer, not a parser: it follows quotes, substitutions, arithmetic, `[[`, comments and
// here-documents well enough for warnings. It never throws.
import { templateExpressions } from '../expr/index.ts';

export type SpliceProblem = 'not-expanded' | 'arithmetic' | 'reevaluated' | 'command';

export interface SpliceWarning {
  /** Offset of the `${` in the script. */
  offset: number;
  /** The expression between `${` and `}`. */
  expr: string;
  problem: SpliceProblem;
}

const REEVALUATING = new Set(['eval', 'let', 'declare', 'typeset', 'source', '.']);
const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh']);
const KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', '{', 'time', 'exec']);

type Kind = 'code' | 'dq' | 'sq' | 'arith' | 'test' | 'heredoc';

interface Frame {
  kind: Kind;
  /** code: closed by `)` (a `$(`), a backtick, or nothing (the script). */
  close?: string;
  depth: number;
  /** code: words of the current simple command so far. */
  words: string[];
  word: string;
}

/** Problems of each `${EXPR}` of `script`, in order. Expressions in safe places are not listed. */
export function scriptSpliceWarnings(script: string): SpliceWarning[] {
  let exprs: { expr: string; offset: number }[];
  try {
    exprs = templateExpressions(script);
  } catch {
    return []; // malformed: the expression checks report it
  }
  if (exprs.length === 0) return [];
  /** `${` offset -> index of the `}` that closes it. */
  const at = new Map(exprs.map((e) => [e.offset - 2, e]));
  const out: SpliceWarning[] = [];
  const stack: Frame[] = [{ kind: 'code', depth: 0, words: [], word: '' }];
  const pendingHeredocs: { delim: string; quoted: boolean; strip: boolean }[] = [];
  const top = () => stack[stack.length - 1] as Frame;
  const code = () => {
    for (let k = stack.length - 1; k >= 0; k--) if (stack[k]?.kind === 'code') return stack[k] as Frame;
    return stack[0] as Frame;
  };
  const endWord = (f: Frame) => {
    if (f.word !== '') f.words.push(f.word);
    f.word = '';
  };
  const endCommand = (f: Frame) => {
    f.word = '';
    f.words = [];
  };
  const commandName = (f: Frame): string | undefined =>
    f.words.find((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w) && !KEYWORDS.has(w));
  const reevaluates = (f: Frame): boolean => {
    const name = commandName(f);
    if (name === undefined) return false;
    const base = name.slice(name.lastIndexOf('/') + 1);
    if (REEVALUATING.has(base)) return true;
    return SHELLS.has(base) && f.words.some((w) => /^-[A-Za-z]*c[A-Za-z]*$/.test(w));
  };
  const classify = (): SpliceProblem | undefined => {
    const f = top();
    if (f.kind === 'sq' || (f.kind === 'heredoc' && f.close === 'quoted')) return 'not-expanded';
    if (f.kind === 'arith' || stack.some((s) => s.kind === 'arith' || s.kind === 'test')) return 'arithmetic';
    const c = code();
    if (reevaluates(c)) return 'reevaluated';
    if (f.kind === 'code' && f.word === '' && commandName(f) === undefined) return 'command';
    return undefined;
  };

  let i = 0;
  const n = script.length;
  while (i < n) {
    const f = top();
    const ch = script[i] as string;
    // a template expression: record where it is, then skip it as part of a word
    const e = at.get(i);
    if (e) {
      const problem = classify();
      if (problem) out.push({ offset: i, expr: e.expr, problem });
      if (f.kind === 'code') f.word += '\u0000';
      i = e.offset + e.expr.length + 1;
      continue;
    }
    if (script.startsWith('$${', i)) {
      // a literal `${` for the shell (its own parameter expansion): skip to its `}`
      const close = script.indexOf('}', i);
      if (f.kind === 'code') f.word += script.slice(i, close < 0 ? n : close + 1);
      i = close < 0 ? n : close + 1;
      continue;
    }
    if (f.kind === 'sq') {
      if (ch === '\\' && f.close === 'ansi') i += 2;
      else if (ch === "'") {
        stack.pop();
        i++;
      } else i++;
      continue;
    }
    if (f.kind === 'heredoc') {
      // body lines until the delimiter line
      const eol = script.indexOf('\n', i);
      const line = script.slice(i, eol < 0 ? n : eol);
      const delim = (f.words[0] ?? '') as string;
      if ((f.depth === 1 ? line.replace(/^\t+/, '') : line) === delim) {
        stack.pop();
        i = eol < 0 ? n : eol + 1;
        startHeredoc(i);
        continue;
      }
      // look for expressions on this line; unquoted bodies expand, quoted ones do not
      const end = eol < 0 ? n : eol + 1;
      for (let j = i; j < end; j++) {
        const hit = at.get(j);
        if (!hit) continue;
        const escaped = f.close !== 'quoted' && script[j - 1] === '\\';
        const problem = f.close === 'quoted' || escaped ? 'not-expanded' : undefined;
        if (problem) out.push({ offset: j, expr: hit.expr, problem });
        j = hit.offset + hit.expr.length;
      }
      i = end;
      continue;
    }
    if (ch === '\\') {
      if (at.has(i + 1)) {
        const hit = at.get(i + 1) as { expr: string; offset: number };
        if (f.kind !== 'arith') out.push({ offset: i + 1, expr: hit.expr, problem: 'not-expanded' });
        if (f.kind === 'code') f.word += '\u0000';
        i = hit.offset + hit.expr.length + 1;
        continue;
      }
      if (f.kind === 'code') f.word += script.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (f.kind === 'dq') {
      if (ch === '"') {
        stack.pop();
        i++;
      } else if (script.startsWith('$((', i)) {
        stack.push({ kind: 'arith', depth: 0, words: [], word: '' });
        i += 3;
      } else if (script.startsWith('$(', i)) {
        stack.push({ kind: 'code', close: ')', depth: 0, words: [], word: '' });
        i += 2;
      } else if (ch === '`') {
        stack.push({ kind: 'code', close: '`', depth: 0, words: [], word: '' });
        i++;
      } else i++;
      continue;
    }
    if (f.kind === 'arith') {
      if (ch === '(') f.depth++;
      else if (ch === ')' && f.depth > 0) f.depth--;
      else if (script.startsWith('))', i) && f.close !== ']') {
        stack.pop();
        i += 2;
        continue;
      } else if (ch === ']' && f.close === ']') {
        stack.pop();
        i++;
        continue;
      } else if (script.startsWith('$(', i) && !script.startsWith('$((', i)) {
        stack.push({ kind: 'code', close: ')', depth: 0, words: [], word: '' });
        i += 2;
        continue;
      }
      i++;
      continue;
    }
    // code and [[ ]]
    if (ch === "'") {
      stack.push({ kind: 'sq', depth: 0, words: [], word: '' });
      if (f.kind === 'code') f.word += "'";
      i++;
    } else if (script.startsWith("$'", i)) {
      stack.push({ kind: 'sq', close: 'ansi', depth: 0, words: [], word: '' });
      if (f.kind === 'code') f.word += "$'";
      i += 2;
    } else if (ch === '"') {
      stack.push({ kind: 'dq', depth: 0, words: [], word: '' });
      if (f.kind === 'code') f.word += '"';
      i++;
    } else if (script.startsWith('$((', i) || script.startsWith('$[', i)) {
      stack.push({ kind: 'arith', close: script[i + 1] === '[' ? ']' : '))', depth: 0, words: [], word: '' });
      if (f.kind === 'code') f.word += '$';
      i += script[i + 1] === '[' ? 2 : 3;
    } else if (script.startsWith('$(', i)) {
      stack.push({ kind: 'code', close: ')', depth: 0, words: [], word: '' });
      if (f.kind === 'code') f.word += '$';
      i += 2;
    } else if (ch === '`') {
      if (f.kind === 'code' && f.close === '`') {
        stack.pop();
      } else stack.push({ kind: 'code', close: '`', depth: 0, words: [], word: '' });
      i++;
    } else if (f.kind === 'test') {
      if (script.startsWith(']]', i) && /[\s;]/.test(script[i - 1] ?? ' ')) {
        stack.pop();
        i += 2;
      } else i++;
    } else if (f.word === '' && script.startsWith('((', i) && commandName(f) === undefined) {
      stack.push({ kind: 'arith', close: '))', depth: 0, words: [], word: '' });
      i += 2;
    } else if (f.word === '' && script.startsWith('[[', i) && /[\s]/.test(script[i + 2] ?? ' ')) {
      stack.push({ kind: 'test', depth: 0, words: [], word: '' });
      i += 2;
    } else if (f.word === '' && ch === '#') {
      const eol = script.indexOf('\n', i);
      i = eol < 0 ? n : eol;
    } else if (script.startsWith('<<', i) && !script.startsWith('<<<', i)) {
      const m = /^<<(-?)[ \t]*(?:'([^'\n]*)'|"([^"\n]*)"|\\?([A-Za-z0-9_]+))/.exec(script.slice(i));
      if (m) {
        const quoted = m[2] !== undefined || m[3] !== undefined || m[0].includes('\\');
        pendingHeredocs.push({ delim: (m[2] ?? m[3] ?? m[4]) as string, quoted, strip: m[1] === '-' });
        i += m[0].length;
      } else i += 2;
    } else if (ch === '\n') {
      endCommand(f);
      i++;
      startHeredoc(i);
    } else if (ch === ';' || ch === '&' || ch === '|' || ch === '(' || ch === '{' || ch === '}') {
      endCommand(f);
      i++;
    } else if (ch === ')') {
      if (f.close === ')' && f.depth === 0) stack.pop();
      else endCommand(f);
      i++;
    } else if (ch === ' ' || ch === '\t') {
      endWord(f);
      i++;
    } else {
      f.word += ch;
      i++;
    }
  }
  return out;

  function startHeredoc(from: number): void {
    const h = pendingHeredocs.shift();
    if (!h || from >= n) return;
    stack.push({
      kind: 'heredoc',
      close: h.quoted ? 'quoted' : undefined,
      depth: h.strip ? 1 : 0,
      words: [h.delim],
      word: '',
    });
  }
}

const SHELL_NAMES = new Set([...SHELLS, 'busybox']);

/**
 * The index in `argv` of the script a shell runs with `-c` (`sh -c S`, `bash -ec S`,
 * `/bin/bash -o pipefail -c S`, `busybox sh -c S`), or -1 when argv is not a shell given a
 * script. The engine rewrites that script like a shell step's.
 */
export function shellScriptIndex(argv: readonly string[]): number {
  const first = argv[0];
  if (first === undefined) return -1;
  let i = 1;
  const base = first.slice(first.lastIndexOf('/') + 1);
  if (!SHELL_NAMES.has(base)) return -1;
  if (base === 'busybox') {
    const applet = argv[1];
    if (applet === undefined || !SHELLS.has(applet)) return -1;
    i = 2;
  }
  let dashC = false;
  while (i < argv.length) {
    const a = argv[i] as string;
    if (a === '--') {
      i++;
      break;
    }
    if (/^[-+][oO]$/.test(a)) {
      i += 2;
      continue;
    }
    if (/^--[a-z-]+$/.test(a)) {
      i++;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(a)) {
      if (a.startsWith('-') && a.includes('c')) dashC = true;
      i++;
      continue;
    }
    break;
  }
  return dashC && i < argv.length ? i : -1;
}

/** Interpreters whose `-c`/`-e` argument is a program: a value spliced into it is code. */
const INTERPRETER = /^(python[0-9.]*|node|nodejs|deno|perl|ruby|php|Rscript|lua|tclsh|psql|mysql|sqlite3)$/;

/** The index of the program text given to a non-shell interpreter (`python -c P`), or -1. */
export function interpreterCodeIndex(argv: readonly string[]): number {
  const first = argv[0];
  if (first === undefined || !INTERPRETER.test(first.slice(first.lastIndexOf('/') + 1))) return -1;
  const flag = argv.findIndex((a, i) => i > 0 && /^(-c|-e|--eval|-E|--command)$/.test(a));
  return flag > 0 && flag + 1 < argv.length ? flag + 1 : -1;
}
