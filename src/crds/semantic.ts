// Checks beyond the shape of a document: names, expressions in scope, parameter cycles, cron
// schedules, time zones, quantities, and the rules of the blocks. Defensive on purpose: it runs
// on documents that may also have schema errors, so every field is type-checked before use and
// a wrong shape is skipped (the schema pass reports it).

import { imageProblem, JAVA_CLASS } from '../../executors/safety.ts';
import { type SparkOwnership, sparkOwnershipProblem } from '../../executors/spark.ts';
import {
  BUILTIN_NAMES,
  checkExpression,
  checkParameters as checkExpressionParameters,
  checkTemplate,
  DEFAULT_EXPR_BUDGET,
  ExprBudget,
  inferType,
  type Limits,
  type ParameterDecl,
  templateExpressions,
  timeZoneAbbreviationProblem,
  type ValueType,
} from '../expr/index.ts';
import { parseQuantity } from '../offer-adapter/quantity.ts';
import { nextFireAfter, parseSchedule } from '../triggers/cron.ts';
import { referencedNames, stepReferences, whyNotList } from './expressions.ts';
import { formatPath, issue, type PathSegment, type ValidationIssue } from './messages.ts';
import { nameIssue } from './names.ts';
import {
  interpreterCodeIndex,
  type SpliceProblem,
  scriptSpliceWarnings,
  shellScriptIndex,
} from './shell-lint.ts';
import { PARAMETER_TYPES } from './workflow.ts';

type Obj = Record<string, unknown>;
type ScopeType = ValueType | 'any';

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

interface Scope {
  names: Map<string, ScopeType>;
  inLoop: boolean;
  /** Names bound by enclosing foreach blocks (to say what a new `as` would hide). */
  foreachVars?: ReadonlySet<string>;
}

interface Context {
  issues: ValidationIssue[];
  workflowName?: string;
  steps: Set<string>;
  /** Where each step is first defined, to tell whether it has run before a reference. */
  stepPaths: Map<string, PathSegment[]>;
  /** Spark settings the operator owns (SemanticOptions.spark). */
  spark?: SparkOwnership;
  /** The document's expression budget (constant folding stops when it is spent). */
  limits: Partial<Limits>;
}

export interface SemanticOptions {
  /**
   * Evaluation steps that folding the constant expressions of one document may take in all
   * (default DEFAULT_EXPR_BUDGET). Past it, constants are checked when a run evaluates them.
   */
  exprBudget?: number;
  /**
   * The Spark settings a step may not set, because the operator sets them (spark-submit on
   * Kubernetes: executors/spark.ts). Absent (the standalone server, `mesonctl validate`): a
   * step's spark-submit is its own to configure.
   */
  spark?: SparkOwnership;
}

function withNames(scope: Scope, extra: [string, ScopeType][], inLoop = scope.inLoop): Scope {
  const names = new Map(scope.names);
  for (const [k, t] of extra) names.set(k, t);
  return { ...scope, names, inLoop };
}

/**
 * Why step `stepPath` has certainly not finished when the field at `at` is evaluated, or
 * undefined when it may have. The engine shows `steps.<name>` only for instances that exist in
 * the reader's iteration, so a step that comes later, runs alongside, sits in another branch,
 * or is the reader itself is a missing key (EXPR_KEY) at run time: reject it now.
 */
function whyNotRunYet(stepPath: PathSegment[], at: PathSegment[]): string | undefined {
  let k = 0;
  while (k < stepPath.length && k < at.length && stepPath[k] === at[k]) k++;
  if (k === stepPath.length) return 'a step cannot read its own outputs (they exist once it has finished)';
  const container = at[k - 1];
  const mine = at[k];
  const theirs = stepPath[k];
  const where = formatPath(stepPath);
  if (container === 'sequence' && typeof theirs === 'number' && typeof mine === 'number')
    return theirs > mine ? `it comes later in the same sequence (${where})` : undefined;
  if (container === 'parallel')
    return `it runs in parallel with this (${where}); read it after the parallel block`;
  if (container === 'or' || container === 'xor')
    return `it is in another branch of the same ${container} (${where})`;
  if (typeof container === 'number' && mine === 'when')
    return `it is inside this branch, which runs only after its condition (${where})`;
  if (container === 'foreach' && mine === 'items')
    return `it is inside this foreach, whose items are evaluated before any iteration runs (${where})`;
  if (mine === 'parameters' && theirs === 'definition')
    return 'workflow parameters are resolved when the run starts, before any step runs';
  return undefined;
}

/** Adds this module's own findings (step references, LOOP_INDEX placement) to src/expr's. */
function checkReferences(
  src: string,
  path: PathSegment[],
  scope: Scope,
  ctx: Context,
  isTemplate: boolean,
): void {
  const exprs = isTemplate ? templateBodies(src) : [{ expr: src, offset: 0 }];
  const shown = `${isTemplate ? 'in' : 'in expression'} ${JSON.stringify(src)}`;
  for (const { expr, offset } of exprs) {
    for (const ref of stepReferences(expr)) {
      const where = `at character ${offset + ref.position} ${shown}`;
      if (!ctx.steps.has(ref.step)) {
        const all = [...ctx.steps].sort();
        const known = all.length > 10 ? `${all.slice(0, 10).join(', ')}, ...` : all.join(', ') || 'none';
        ctx.issues.push(
          issue(path, 'EXPR_UNKNOWN_STEP', `unknown step "${ref.step}" (known steps: ${known}) ${where}`),
        );
        continue;
      }
      const stepPath = ctx.stepPaths.get(ref.step);
      const why = stepPath ? whyNotRunYet(stepPath, path) : undefined;
      if (why)
        ctx.issues.push(
          issue(
            path,
            'EXPR_STEP_ORDER',
            `steps.${ref.step} has no outputs here: ${why}; only steps that finished before this point can be read ${where}`,
          ),
        );
      if (ref.next !== undefined && ref.next !== 'outputs') {
        ctx.issues.push(
          issue(
            path,
            'EXPR_UNKNOWN_NAME',
            `expected steps.${ref.step}.outputs.<name>, found steps.${ref.step}.${ref.next} ${where}`,
          ),
        );
      }
    }
    if (!scope.inLoop && referencedNames(expr).has('LOOP_INDEX'))
      ctx.issues.push(issue(path, 'EXPR_UNKNOWN_NAME', `LOOP_INDEX is only defined inside a loop, ${shown}`));
  }
}

/** The `${...}` bodies of a template (none when malformed: checkTemplate reports that). */
function templateBodies(template: string): { expr: string; offset: number }[] {
  try {
    return templateExpressions(template);
  } catch {
    return [];
  }
}

function checkExpr(src: unknown, path: PathSegment[], scope: Scope, ctx: Context): void {
  if (!isStr(src)) return;
  for (const e of checkExpression(src, { names: scope.names }, ctx.limits))
    ctx.issues.push(issue(path, e.code, `${e.message} in expression ${JSON.stringify(src)}`));
  checkReferences(src, path, scope, ctx, false);
}

/** `when` and `while`: an expression that must give a boolean (`&&`, `||`, `!` need them too). */
function checkCondition(src: unknown, path: PathSegment[], scope: Scope, ctx: Context): void {
  if (!isStr(src)) return;
  const before = ctx.issues.length;
  checkExpr(src, path, scope, ctx);
  if (ctx.issues.length > before) return;
  const type = inferType(src, { names: scope.names }, ctx.limits);
  if (type !== 'boolean' && type !== 'any')
    ctx.issues.push(
      issue(
        path,
        'CONDITION_NOT_BOOLEAN',
        `expected a condition that gives true or false, but ${JSON.stringify(src)} gives a ${type}`,
      ),
    );
}

function checkTmpl(src: string, path: PathSegment[], scope: Scope, ctx: Context): void {
  if (!src.includes('${')) return;
  for (const e of checkTemplate(src, { names: scope.names }, ctx.limits))
    ctx.issues.push(issue(path, e.code, `${e.message} in ${JSON.stringify(src)}`));
  checkReferences(src, path, scope, ctx, true);
}

/** Interpolation applies to every string field of a step: walk them all. */
function checkTemplatesIn(value: unknown, path: PathSegment[], scope: Scope, ctx: Context): void {
  if (isStr(value)) checkTmpl(value, path, scope, ctx);
  else if (Array.isArray(value))
    value.forEach((v, i) => {
      checkTemplatesIn(v, [...path, i], scope, ctx);
    });
  else if (isObj(value))
    for (const [k, v] of Object.entries(value)) checkTemplatesIn(v, [...path, k], scope, ctx);
}

function typeOfValue(v: unknown): ScopeType {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'long' : 'double';
  if (typeof v === 'boolean') return 'boolean';
  if (Array.isArray(v)) return 'list';
  if (isObj(v)) return 'map';
  return 'any';
}

/**
 * Checks a parameter list and returns the scope extended with its names. The rules of
 * parameters (names, reserved names, literal values against declared types, expressions in
 * scope, cycles) are src/expr's checkParameters, the same code that resolves them at run time;
 * this adds the field paths, value-versus-expression presence and step references.
 */
function checkParameters(
  params: unknown,
  path: PathSegment[],
  scope: Scope,
  ctx: Context,
  opts: { requireValue: boolean },
): Scope {
  if (!Array.isArray(params)) return scope;
  const entries: { decl: ParameterDecl; index: number }[] = [];
  params.forEach((p, index) => {
    if (!isObj(p) || !isStr(p.name)) return;
    const at = [...path, index];
    const hasValue = p.value !== undefined;
    const hasExpr = p.expression !== undefined;
    if (hasValue && hasExpr)
      ctx.issues.push(
        issue(at, 'PARAM_VALUE', `expected either value or expression for "${p.name}", not both`),
      );
    if (opts.requireValue && !hasValue && !hasExpr)
      ctx.issues.push(issue(at, 'PARAM_VALUE', `expected a value or an expression for "${p.name}"`));
    const typeOk = p.type === undefined || (PARAMETER_TYPES as readonly unknown[]).includes(p.type);
    if (typeOk && (p.expression === undefined || isStr(p.expression)))
      entries.push({ decl: p as unknown as ParameterDecl, index });
  });
  const decls = entries.map((e) => e.decl);
  for (const i of checkExpressionParameters(decls, { names: scope.names }, ctx.limits)) {
    const decl = decls[i.index]!;
    const source = i.field === 'expression' ? decl.expression : i.field === 'value' ? decl.value : undefined;
    const shown =
      isStr(source) && (i.field === 'expression' || source.includes('${'))
        ? ` in ${JSON.stringify(source)}`
        : '';
    ctx.issues.push(issue([...path, entries[i.index]!.index, i.field], i.code, `${i.message}${shown}`));
  }
  const declared = decls.map((d): [string, ScopeType] => [d.name, d.type ?? typeOfValue(d.value)]);
  // A parameter with a misspelt type or a non-string expression is reported by the schema pass;
  // it is still declared, so its readers must not also get "unknown name" errors.
  const checked = new Set(decls.map((d) => d.name));
  for (const p of params)
    if (isObj(p) && isStr(p.name) && !checked.has(p.name)) declared.push([p.name, 'any']);
  const inner = withNames(scope, declared);
  for (const { decl, index } of entries) {
    if (isStr(decl.expression))
      checkReferences(decl.expression, [...path, index, 'expression'], inner, ctx, false);
    else if (isStr(decl.value)) checkReferences(decl.value, [...path, index, 'value'], inner, ctx, true);
  }
  return inner;
}

function checkQuantities(resources: unknown, path: PathSegment[], ctx: Context): void {
  if (!isObj(resources)) return;
  for (const key of ['cpus', 'memory', 'gpus', 'disk']) {
    const q = resources[key];
    if (typeof q !== 'string' || q.includes('${')) continue;
    try {
      parseQuantity(q);
    } catch (err) {
      // "8GB", "512mb": the most common slip; name both Kubernetes spellings.
      const bytes = /^([0-9.]+)\s*([kKmMgGtTpP])i?[bB]$/.exec(q);
      const unit = bytes?.[2]?.toUpperCase().replace('K', 'k');
      const hint =
        bytes && unit
          ? `Kubernetes writes bytes without B: did you mean ${bytes[1]}${unit === 'k' ? 'Ki' : `${unit}i`} (powers of 1024) or ${bytes[1]}${unit} (powers of 1000)?`
          : (err as Error).message;
      ctx.issues.push(
        issue(
          [...path, key],
          'QUANTITY_INVALID',
          `expected a number or a quantity such as 500m, 512Mi or 8Gi, found ${JSON.stringify(q)} (${hint})`,
        ),
      );
    }
  }
}

function checkStep(step: unknown, path: PathSegment[], outer: Scope, ctx: Context): void {
  if (!isObj(step)) return;
  const scope = checkParameters(step.parameters, [...path, 'parameters'], outer, ctx, { requireValue: true });
  for (const [k, v] of Object.entries(step)) {
    if (k === 'name' || k === 'parameters') continue;
    if (k === 'subworkflow' && isObj(v)) {
      checkSubworkflow(v, [...path, k], scope, ctx);
      continue;
    }
    checkTemplatesIn(v, [...path, k], scope, ctx);
  }
  checkQuantities(step.resources, [...path, 'resources'], ctx);
  checkProgramValues(step, path, ctx);
  const backoff = isObj(step.retry) ? step.retry.backoff : undefined;
  if (
    isObj(backoff) &&
    typeof backoff.initialSeconds === 'number' &&
    typeof backoff.maxSeconds === 'number'
  ) {
    if (backoff.maxSeconds < backoff.initialSeconds)
      ctx.issues.push(
        issue(
          [...path, 'retry', 'backoff', 'maxSeconds'],
          'SCHEMA_RANGE',
          `expected maxSeconds >= initialSeconds (${backoff.initialSeconds}), found ${backoff.maxSeconds}`,
        ),
      );
  }
}

/**
 * Values that would become options of the program that runs the step: an image that is not an
 * image reference (`--privileged`), a Spark class or application starting with `-`, an env name
 * with `=`. With `${}` in them only the literal start can be checked here; the executor checks
 * the resolved values again.
 */
function checkProgramValues(step: Obj, path: PathSegment[], ctx: Context): void {
  const c = step.container;
  if (isObj(c)) {
    if (isStr(c.image) && c.image !== '') {
      const bad = c.image.includes('${')
        ? c.image.startsWith('-')
          ? `expected an image reference, found ${JSON.stringify(c.image)} (it would be read as an option)`
          : undefined
        : imageProblem(c.image);
      if (bad) ctx.issues.push(issue([...path, 'container', 'image'], 'STEP_IMAGE', bad));
    }
    if (Array.isArray(c.env))
      c.env.forEach((e, i) => {
        if (isObj(e) && isStr(e.name) && e.name.includes('='))
          ctx.issues.push(
            issue(
              [...path, 'container', 'env', i, 'name'],
              'STEP_ENV_NAME',
              `expected an environment variable name without "=", found ${JSON.stringify(e.name)}`,
            ),
          );
      });
  }
  const sp = step.spark;
  if (isObj(sp)) {
    if (isStr(sp.jobClass) && !sp.jobClass.includes('${') && !JAVA_CLASS.test(sp.jobClass))
      ctx.issues.push(
        issue(
          [...path, 'spark', 'jobClass'],
          'STEP_SPARK_CLASS',
          `expected a class name such as com.example.Job, found ${JSON.stringify(sp.jobClass)}`,
        ),
      );
    if (ctx.spark) {
      // keys are literal (only values are interpolated), and an owned key is refused whatever
      // its value; an argument is checked on its literal text here, resolved at launch
      const conf = isObj(sp.conf) ? (sp.conf as Record<string, string>) : undefined;
      const args = Array.isArray(sp.args) ? sp.args.filter(isStr) : undefined;
      const taken = sparkOwnershipProblem(
        { ...(conf ? { conf } : {}), ...(args ? { args } : {}) },
        ctx.spark,
      );
      if (taken) ctx.issues.push(issue([...path, ...taken.segments], 'STEP_SPARK_OWNED', taken.message));
    }
    if (isStr(sp.mainApplication) && sp.mainApplication.startsWith('-'))
      ctx.issues.push(
        issue(
          [...path, 'spark', 'mainApplication'],
          'STEP_SPARK_APPLICATION',
          `expected a jar or .py path or URI, found ${JSON.stringify(sp.mainApplication)} (it would be read as an option)`,
        ),
      );
  }
}

const SPLICE_ADVICE: Record<SpliceProblem, (expr: string) => string> = {
  'not-expanded': (e) =>
    `\${${e}} is inside single quotes, a quoted here-document or after a backslash, where the shell does not expand it: the script sees the text \${MESON_V_<n>}, not the value. Put it outside the quotes ('...'"\${${e}}"'...') or pass it as data (awk -v x="\${${e}}" '...')`,
  arithmetic: (e) =>
    `\${${e}} is inside $((...)), ((...)) or [[ ... ]], where bash evaluates the value as arithmetic and a value like a[$(cmd)] runs cmd. Compute it with an expression (\${${e} + 1}) or check it is a number first`,
  reevaluated: (e) =>
    `\${${e}} is given to a command that reads it again as code (eval, let, declare, source, sh -c, an interpreter's -c/-e): a value a run starter or a step supplies could run commands`,
  command: (e) => `\${${e}} is the command word: the value chooses the program that runs`,
};

function spliceWarning(path: PathSegment[], expr: string, problem: SpliceProblem): ValidationIssue {
  return issue(path, 'SCRIPT_VALUE_SPLICE', `warning: ${SPLICE_ADVICE[problem](expr)}`);
}

/** The `${}` of a template outside an image's tag or digest (those choose which image runs). */
function imageRepositoryExpression(image: string): string | undefined {
  const first = templateBodies(image)[0];
  if (!first) return undefined;
  const before = image.slice(0, first.offset - 2);
  const afterSlash = before.slice(before.lastIndexOf('/') + 1);
  return afterSlash.includes(':') || before.includes('@') ? undefined : first.expr;
}

/**
 * Warnings (the document stays valid) about values spliced where they are not inert: shell
 * scripts (shell steps, a container's `sh -c`) where `${}` sits in single quotes, arithmetic,
 * eval and the like (see shell-lint.ts), an interpreter's program text, and fields that choose
 * the program that runs.
 */
export function workflowWarnings(spec: unknown, path: PathSegment[]): ValidationIssue[] {
  if (!isObj(spec)) return [];
  const steps: { name: string; path: PathSegment[] }[] = [];
  collectSteps(spec.definition, [...path, 'definition'], steps);
  const out: ValidationIssue[] = [];
  const script = (text: string, at: PathSegment[]) => {
    for (const w of scriptSpliceWarnings(text)) {
      const before = text.slice(0, w.offset);
      const line = before.split('\n').length;
      const column = w.offset - before.lastIndexOf('\n');
      const v = spliceWarning(at, w.expr, w.problem);
      out.push({ ...v, message: `${v.message} (script line ${line}, column ${column})` });
    }
  };
  const program = (value: unknown, at: PathSegment[], what: string) => {
    const first = isStr(value) ? templateBodies(value)[0] : undefined;
    if (first)
      out.push(issue(at, 'SCRIPT_VALUE_SPLICE', `warning: \${${first.expr}} chooses the ${what} that runs`));
  };
  for (const s of steps) {
    const body = getIn(spec, s.path.slice(path.length));
    if (!isObj(body)) continue;
    if (isObj(body.shell) && isStr(body.shell.script))
      script(body.shell.script, [...s.path, 'shell', 'script']);
    const c = body.container;
    if (isObj(c)) {
      const command = Array.isArray(c.command) ? c.command : [];
      const argv = [...command, ...(Array.isArray(c.args) ? c.args : [])];
      if (!argv.every(isStr)) continue;
      const where = (k: number): PathSegment[] =>
        k < command.length
          ? [...s.path, 'container', 'command', k]
          : [...s.path, 'container', 'args', k - command.length];
      const sh = shellScriptIndex(argv);
      if (sh >= 0) script(argv[sh] as string, where(sh));
      const code = interpreterCodeIndex(argv);
      if (code >= 0)
        for (const e of templateBodies(argv[code] as string))
          out.push(spliceWarning(where(code), e.expr, 'reevaluated'));
      if (command.length > 0) program(command[0], where(0), 'program');
      if (isStr(c.image)) {
        const e = imageRepositoryExpression(c.image);
        if (e)
          out.push(
            issue(
              [...s.path, 'container', 'image'],
              'SCRIPT_VALUE_SPLICE',
              `warning: \${${e}} chooses the image that runs`,
            ),
          );
      }
    }
    if (isObj(body.spark)) {
      program(body.spark.mainApplication, [...s.path, 'spark', 'mainApplication'], 'application');
      program(body.spark.jobClass, [...s.path, 'spark', 'jobClass'], 'class');
    }
  }
  return out;
}

/** The value at `segments` below `root`. */
function getIn(root: unknown, segments: PathSegment[]): unknown {
  let v: unknown = root;
  for (const seg of segments) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function checkSubworkflow(sub: Obj, path: PathSegment[], scope: Scope, ctx: Context): void {
  if (isStr(sub.workflow) && ctx.workflowName !== undefined && sub.workflow === ctx.workflowName)
    ctx.issues.push(
      issue(
        [...path, 'workflow'],
        'SUBWORKFLOW_SELF',
        `a workflow cannot run itself as a subworkflow ("${sub.workflow}"); use a loop instead`,
      ),
    );
  const params = sub.parameters;
  if (!Array.isArray(params)) return;
  const seen = new Set<string>();
  params.forEach((p, i) => {
    if (!isObj(p)) return;
    const at = [...path, 'parameters', i];
    if (isStr(p.name)) {
      if (seen.has(p.name))
        ctx.issues.push(issue([...at, 'name'], 'PARAM_DUPLICATE', `duplicate parameter "${p.name}"`));
      seen.add(p.name);
    }
    if ((p.value === undefined) === (p.expression === undefined))
      ctx.issues.push(issue(at, 'PARAM_VALUE', 'expected exactly one of value or expression'));
    if (isStr(p.expression)) checkExpr(p.expression, [...at, 'expression'], scope, ctx);
    if (isStr(p.value)) checkTmpl(p.value, [...at, 'value'], scope, ctx);
  });
}

function checkBranches(branches: unknown, path: PathSegment[], scope: Scope, ctx: Context): void {
  if (!Array.isArray(branches)) return;
  branches.forEach((b, i) => {
    if (!isObj(b)) return;
    const at = [...path, i];
    if (b.otherwise !== undefined && i !== branches.length - 1)
      ctx.issues.push(
        issue(
          [...at, 'otherwise'],
          'BRANCH_OTHERWISE_NOT_LAST',
          `expected "otherwise" only as the last branch (found at branch ${i} of ${branches.length})`,
        ),
      );
    checkCondition(b.when, [...at, 'when'], scope, ctx);
    walkNode(b.then, [...at, 'then'], scope, ctx);
    walkNode(b.otherwise, [...at, 'otherwise'], scope, ctx);
  });
}

function walkNode(node: unknown, path: PathSegment[], scope: Scope, ctx: Context): void {
  if (!isObj(node)) return;
  if (node.step !== undefined) checkStep(node.step, [...path, 'step'], scope, ctx);
  for (const key of ['sequence', 'parallel'] as const) {
    const list = node[key];
    if (Array.isArray(list))
      list.forEach((n, i) => {
        walkNode(n, [...path, key, i], scope, ctx);
      });
  }
  for (const key of ['or', 'xor'] as const) checkBranches(node[key], [...path, key], scope, ctx);
  if (isObj(node.loop)) {
    const at = [...path, 'loop'];
    const inner = withNames(scope, [['LOOP_INDEX', 'long']], true);
    walkNode(node.loop.do, [...at, 'do'], inner, ctx);
    checkCondition(node.loop.while, [...at, 'while'], inner, ctx);
  }
  if (isObj(node.foreach)) {
    const at = [...path, 'foreach'];
    const fe = node.foreach;
    if (isStr(fe.items)) {
      checkExpr(fe.items, [...at, 'items'], scope, ctx);
      const inferred = inferType(fe.items, { names: scope.names }, ctx.limits);
      const why =
        whyNotList(fe.items, (n) => scope.names.get(n)) ??
        (inferred !== 'any' && inferred !== 'list' ? `it yields a ${inferred}` : undefined);
      if (why)
        ctx.issues.push(
          issue([...at, 'items'], 'FOREACH_NOT_LIST', `expected an expression yielding a list, but ${why}`),
        );
    }
    let inner = scope;
    if (isStr(fe.as)) {
      if (BUILTIN_NAMES.has(fe.as))
        ctx.issues.push(
          issue([...at, 'as'], 'PARAM_RESERVED', `"${fe.as}" is a built-in name; choose another`),
        );
      else if (scope.names.has(fe.as))
        ctx.issues.push(
          issue(
            [...at, 'as'],
            'FOREACH_SHADOWS',
            `"${fe.as}" would hide the ${scope.foreachVars?.has(fe.as) ? 'variable of an enclosing foreach' : 'workflow parameter'} of the same name inside this foreach; choose another name`,
          ),
        );
      inner = withNames(scope, [[fe.as, 'any']]);
      inner.foreachVars = new Set([...(scope.foreachVars ?? []), fe.as]);
    }
    walkNode(fe.do, [...at, 'do'], inner, ctx);
  }
}

/** Every step in the tree with its path, in document order. */
function collectSteps(
  node: unknown,
  path: PathSegment[],
  out: { name: string; path: PathSegment[] }[],
): void {
  if (!isObj(node)) return;
  if (isObj(node.step) && isStr(node.step.name)) out.push({ name: node.step.name, path: [...path, 'step'] });
  for (const key of ['sequence', 'parallel'] as const) {
    const list = node[key];
    if (Array.isArray(list))
      list.forEach((n, i) => {
        collectSteps(n, [...path, key, i], out);
      });
  }
  for (const key of ['or', 'xor'] as const) {
    const list = node[key];
    if (Array.isArray(list))
      list.forEach((b, i) => {
        if (!isObj(b)) return;
        collectSteps(b.then, [...path, key, i, 'then'], out);
        collectSteps(b.otherwise, [...path, key, i, 'otherwise'], out);
      });
  }
  for (const key of ['loop', 'foreach'] as const) {
    const block = node[key];
    if (isObj(block)) collectSteps(block.do, [...path, key, 'do'], out);
  }
}

function checkTimezone(tz: unknown, path: PathSegment[], ctx: Context): boolean {
  if (!isStr(tz)) return true;
  const abbreviation = timeZoneAbbreviationProblem(tz);
  if (abbreviation) {
    ctx.issues.push(issue(path, 'TIMEZONE_INVALID', `expected an IANA time zone: ${abbreviation}`));
    return false;
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    ctx.issues.push(
      issue(
        path,
        'TIMEZONE_INVALID',
        `expected an IANA time zone such as America/Los_Angeles or UTC, found "${tz}"`,
      ),
    );
    return false;
  }
}

/** 1970 and 2070: with nextFireAfter's 100-year horizon, schedules of 1970-2170 are seen. */
const FIRE_WINDOWS = [0, Date.UTC(2070, 0, 1)];

function checkTriggers(triggers: unknown, path: PathSegment[], ctx: Context): void {
  if (!isObj(triggers) || !Array.isArray(triggers.cron)) return;
  triggers.cron.forEach((c, i) => {
    if (!isObj(c)) return;
    const at = [...path, 'cron', i];
    const tzOk = checkTimezone(c.timezone, [...at, 'timezone'], ctx);
    if (!isStr(c.schedule)) return;
    try {
      const schedule = parseSchedule(c.schedule, tzOk && isStr(c.timezone) ? c.timezone : undefined);
      // Fixed instants, not the clock (validation is pure): nextFireAfter scans 100 years each.
      if (FIRE_WINDOWS.every((from) => nextFireAfter(schedule, from) === null))
        ctx.issues.push(
          issue(
            [...at, 'schedule'],
            'CRON_NEVER_FIRES',
            `the schedule "${c.schedule}" never fires (it names a date that does not exist, such as 31 February, or 29 February of a year that is not a leap year)`,
          ),
        );
    } catch (err) {
      const e = err as { code?: string; message?: string };
      ctx.issues.push(
        issue(
          [...at, 'schedule'],
          e.code ?? 'CRON_INVALID',
          `expected a Quartz 7- or 6-field or classic 5-field cron expression: ${e.message ?? String(err)}`,
        ),
      );
    }
  });
}

/** Cron fires start runs without overrides: every parameter then needs a value or an expression. */
function checkCronParameters(spec: Obj, path: PathSegment[], ctx: Context): void {
  const cron = isObj(spec.triggers) ? spec.triggers.cron : undefined;
  if (!Array.isArray(cron) || cron.length === 0 || !Array.isArray(spec.parameters)) return;
  spec.parameters.forEach((p, i) => {
    if (isObj(p) && isStr(p.name) && p.value === undefined && p.expression === undefined)
      ctx.issues.push(
        issue(
          [...path, 'parameters', i],
          'PARAM_VALUE',
          `parameter "${p.name}" needs a value or an expression: cron triggers start runs without parameters`,
        ),
      );
  });
}

function checkNotifications(list: unknown, path: PathSegment[], ctx: Context): void {
  if (!Array.isArray(list)) return;
  list.forEach((n, i) => {
    const url = isObj(n) && isObj(n.webhook) ? n.webhook.url : undefined;
    if (!isStr(url) || !URL.canParse(url)) return;
    const protocol = new URL(url).protocol;
    if (protocol !== 'http:' && protocol !== 'https:')
      ctx.issues.push(
        issue(
          [...path, i, 'webhook', 'url'],
          'SCHEMA_FORMAT',
          `expected an http:// or https:// URL, found "${url}"`,
        ),
      );
  });
}

/** Semantic checks of a Workflow spec (also used for a WorkflowVersion's frozen spec). */
export function checkWorkflowSpec(
  spec: unknown,
  path: PathSegment[],
  workflowName?: string,
  options: SemanticOptions = {},
): ValidationIssue[] {
  const budget = new ExprBudget(options.exprBudget ?? DEFAULT_EXPR_BUDGET, 'the constant expressions');
  const ctx: Context = {
    issues: [],
    steps: new Set(),
    stepPaths: new Map(),
    limits: { budget },
    ...(workflowName ? { workflowName } : {}),
    ...(options.spark ? { spark: options.spark } : {}),
  };
  if (!isObj(spec)) return ctx.issues;
  const steps: { name: string; path: PathSegment[] }[] = [];
  collectSteps(spec.definition, [...path, 'definition'], steps);
  const firstAt = new Map<string, PathSegment[]>();
  for (const s of steps) {
    const first = firstAt.get(s.name);
    if (first)
      ctx.issues.push(
        issue(
          [...s.path, 'name'],
          'STEP_DUPLICATE',
          `duplicate step name "${s.name}" (first defined at ${issue(first, '', '').path}); step names must be unique within the workflow`,
        ),
      );
    else {
      firstAt.set(s.name, s.path);
      ctx.stepPaths.set(s.name, s.path);
    }
    ctx.steps.add(s.name);
  }
  const base: Scope = { names: new Map([['steps', 'map']]), inLoop: false };
  const scope = checkParameters(spec.parameters, [...path, 'parameters'], base, ctx, { requireValue: false });
  checkTriggers(spec.triggers, [...path, 'triggers'], ctx);
  checkCronParameters(spec, path, ctx);
  checkNotifications(spec.notifications, [...path, 'notifications'], ctx);
  walkNode(spec.definition, [...path, 'definition'], scope, ctx);
  return ctx.issues;
}

/**
 * Object-name rules (src/crds/names.ts): Workflows need a name; a name is a DNS subdomain, a
 * namespace a DNS label, a generateName the prefix of a DNS subdomain.
 */
export function checkMetadata(metadata: unknown, kind: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (!isObj(metadata)) return out;
  const name = metadata.name;
  if (name === undefined && metadata.generateName === undefined)
    out.push(
      issue(['metadata', 'name'], 'SCHEMA_REQUIRED', `missing required field "name": a ${kind} needs a name`),
    );
  if (name === undefined && kind === 'Workflow' && metadata.generateName !== undefined)
    out.push(
      issue(
        ['metadata', 'name'],
        'SCHEMA_REQUIRED',
        'a Workflow needs a fixed name (generateName is for runs)',
      ),
    );
  if (isStr(name)) out.push(...nameIssue(['metadata', 'name'], 'name', name));
  if (isStr(metadata.generateName))
    out.push(...nameIssue(['metadata', 'generateName'], 'generateName', metadata.generateName));
  if (isStr(metadata.namespace))
    out.push(...nameIssue(['metadata', 'namespace'], 'namespace', metadata.namespace));
  return out;
}

/** Semantic checks of a WorkflowRun spec: the names it refers to, parameter overrides. */
export function checkRunSpec(spec: unknown): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (!isObj(spec)) return out;
  if (isStr(spec.workflow)) out.push(...nameIssue(['spec', 'workflow'], 'name', spec.workflow));
  if (isObj(spec.restartOf) && isStr(spec.restartOf.run))
    out.push(...nameIssue(['spec', 'restartOf', 'run'], 'name', spec.restartOf.run));
  const parent = isObj(spec.initiator) && isObj(spec.initiator.parent) ? spec.initiator.parent : undefined;
  if (parent && isStr(parent.run))
    out.push(...nameIssue(['spec', 'initiator', 'parent', 'run'], 'name', parent.run));
  if (parent && isStr(parent.step))
    out.push(...nameIssue(['spec', 'initiator', 'parent', 'step'], 'stepInstance', parent.step));
  if (!Array.isArray(spec.parameters)) return out;
  const seen = new Set<string>();
  spec.parameters.forEach((p, i) => {
    if (!isObj(p) || !isStr(p.name)) return;
    if (seen.has(p.name))
      out.push(
        issue(['spec', 'parameters', i, 'name'], 'PARAM_DUPLICATE', `duplicate parameter "${p.name}"`),
      );
    seen.add(p.name);
  });
  return out;
}
