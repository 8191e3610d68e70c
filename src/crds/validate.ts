// The validator behind `mesonctl validate`, the REST API and the controller: schema errors as one
// message per problem plus semantic checks, and multi-document YAML parsing with line numbers.
import { isMap, isNode, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { coerceParameter, type ExprError, type ParameterType, type Value } from '../expr/index.ts';
import { DataArtifactSchema } from './artifact.ts';
import { API_VERSION } from './common.ts';
import { fromZodIssue, issue, type PathSegment, suggest, type ValidationIssue } from './messages.ts';
import { WorkflowRunSchema } from './run.ts';
import {
  checkMetadata,
  checkRunSpec,
  checkWorkflowSpec,
  type SemanticOptions,
  workflowWarnings,
} from './semantic.ts';
import { PARAMETER_TYPES, WorkflowSchema, WorkflowVersionSchema } from './workflow.ts';

export { formatPath, type PathSegment, type ValidationIssue } from './messages.ts';

export const KIND_SCHEMAS: Record<string, z.ZodType> = {
  Workflow: WorkflowSchema,
  WorkflowVersion: WorkflowVersionSchema,
  WorkflowRun: WorkflowRunSchema,
  DataArtifact: DataArtifactSchema,
};
export const KINDS = Object.keys(KIND_SCHEMAS);

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function dedupe(issues: ValidationIssue[]): ValidationIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\0${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Every problem in one manifest: schema issues (one per problem, with the field path and what
 * was expected) followed by semantic ones. Never throws; an empty list means valid.
 */
export function validateDocument(doc: unknown, options: ValidateOptions = {}): ValidationIssue[] {
  const tooDeep = deeperThan(doc, MAX_NESTING);
  if (tooDeep)
    return [
      issue(
        tooDeep.slice(0, 12),
        'SCHEMA_TOO_DEEP',
        `expected at most ${MAX_NESTING} levels of nesting; the document nests deeper below this path`,
      ),
    ];
  try {
    return validateShaped(doc, options);
  } catch (err) {
    // A bug here must not take down the controller that validates every object it sees.
    return [issue([], 'VALIDATOR_INTERNAL', `the validator failed: ${(err as Error).message}`)];
  }
}

/**
 * What is valid but probably not meant, or not safe (values spliced into scripts where the
 * shell reads them as code): messages start with "warning:". Never throws.
 */
export function documentWarnings(doc: unknown): ValidationIssue[] {
  if (!isObj(doc) || (doc.kind !== 'Workflow' && doc.kind !== 'WorkflowVersion')) return [];
  if (deeperThan(doc, MAX_NESTING)) return [];
  try {
    return dedupe(workflowWarnings(doc.spec, ['spec']));
  } catch {
    return [];
  }
}

/**
 * Nesting bound: the schema and semantic passes recurse, so a hostile document nested thousands
 * of levels deep would overflow the stack. 256 JSON levels is about 80 nested blocks.
 */
export const MAX_NESTING = 256;

/** The path to a value nested deeper than `max` levels, found without recursion, or undefined. */
function deeperThan(doc: unknown, max: number): PathSegment[] | undefined {
  const stack: { value: unknown; path: PathSegment[] }[] = [{ value: doc, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (path.length > max) return path;
    const entries: [PathSegment, unknown][] = Array.isArray(value)
      ? [...value.entries()]
      : Object.entries(value);
    for (const [k, v] of entries)
      if (typeof v === 'object' && v !== null) stack.push({ value: v, path: [...path, k] });
  }
  return undefined;
}

/** Limits of the validation itself (see SemanticOptions). */
export type ValidateOptions = SemanticOptions;

function validateShaped(doc: unknown, options: ValidateOptions): ValidationIssue[] {
  if (!isObj(doc))
    return [issue([], 'SCHEMA_TYPE', 'expected a Kubernetes object with apiVersion, kind, metadata, spec')];
  if (doc.apiVersion !== API_VERSION)
    return [
      issue(
        ['apiVersion'],
        'SCHEMA_API_VERSION',
        `expected apiVersion "${API_VERSION}", found ${doc.apiVersion === undefined ? 'nothing' : JSON.stringify(doc.apiVersion)}`,
      ),
    ];
  const kind = doc.kind;
  const schema = typeof kind === 'string' ? KIND_SCHEMAS[kind] : undefined;
  if (!schema || typeof kind !== 'string')
    return [
      issue(
        ['kind'],
        'SCHEMA_KIND',
        `expected kind to be one of ${KINDS.join(', ')}, found ${kind === undefined ? 'nothing' : JSON.stringify(kind)}`,
      ),
    ];
  const issues: ValidationIssue[] = [];
  const parsed = schema.safeParse(doc, { reportInput: true });
  if (!parsed.success) for (const zi of parsed.error.issues) issues.push(...fromZodIssue(zi, schema));
  issues.push(...checkMetadata(doc.metadata, kind));
  const name = isObj(doc.metadata) && typeof doc.metadata.name === 'string' ? doc.metadata.name : undefined;
  if (kind === 'Workflow') issues.push(...checkWorkflowSpec(doc.spec, ['spec'], name, options));
  if (kind === 'WorkflowVersion') {
    const workflow = isObj(doc.spec) && typeof doc.spec.workflow === 'string' ? doc.spec.workflow : undefined;
    issues.push(...checkWorkflowSpec(doc.spec, ['spec'], workflow, options));
  }
  if (kind === 'WorkflowRun') issues.push(...checkRunSpec(doc.spec));
  return dedupe(issues);
}

/**
 * Checks across documents validated together: a WorkflowRun or a subworkflow step that names a
 * Workflow of the same set may only pass parameters that Workflow declares, with values of the
 * declared types, and must pass those it declares without a value. Returns issues per document.
 */
export function crossDocumentIssues(docs: unknown[]): Map<number, ValidationIssue[]> {
  /** Workflow name -> parameter name -> declared type (undefined when untyped). */
  const declared = new Map<string, Map<string, ParameterType | undefined>>();
  /** Workflow name -> parameters declared without value or expression: callers must pass them. */
  const required = new Map<string, string[]>();
  // A name declared twice in the set (e.g. two directories of manifests) is ambiguous: skip it.
  const counts = new Map<string, number>();
  for (const d of docs)
    if (isObj(d) && d.kind === 'Workflow' && isObj(d.metadata) && typeof d.metadata.name === 'string')
      counts.set(d.metadata.name, (counts.get(d.metadata.name) ?? 0) + 1);
  for (const d of docs) {
    if (!isObj(d) || d.kind !== 'Workflow' || !isObj(d.metadata) || typeof d.metadata.name !== 'string')
      continue;
    if (counts.get(d.metadata.name) !== 1) continue;
    const params = isObj(d.spec) && Array.isArray(d.spec.parameters) ? d.spec.parameters : [];
    const types = new Map<string, ParameterType | undefined>();
    for (const p of params.filter(isObj))
      if (typeof p.name === 'string')
        types.set(
          p.name,
          (PARAMETER_TYPES as readonly unknown[]).includes(p.type) ? (p.type as ParameterType) : undefined,
        );
    declared.set(d.metadata.name, types);
    required.set(
      d.metadata.name,
      params
        .filter(isObj)
        .filter((p) => typeof p.name === 'string' && p.value === undefined && p.expression === undefined)
        .map((p) => p.name as string),
    );
  }
  const out = new Map<number, ValidationIssue[]>();
  const add = (index: number, v: ValidationIssue): void => {
    const list = out.get(index) ?? [];
    list.push(v);
    out.set(index, list);
  };
  const checkNames = (index: number, workflow: unknown, params: unknown, path: PathSegment[]): void => {
    const types = typeof workflow === 'string' ? declared.get(workflow) : undefined;
    if (!types || (params !== undefined && !Array.isArray(params))) return;
    const list: unknown[] = params ?? [];
    const passed = new Set(list.filter(isObj).map((p) => p.name));
    for (const name of required.get(workflow as string) ?? [])
      if (!passed.has(name))
        add(
          index,
          issue(
            params === undefined ? path.slice(0, -1) : path,
            'PARAM_MISSING',
            `missing parameter "${name}": Workflow "${workflow as string}" declares it without a value or expression`,
          ),
        );
    list.forEach((p, i) => {
      if (!isObj(p) || typeof p.name !== 'string') return;
      if (!types.has(p.name)) {
        const known = [...types.keys()].sort().join(', ') || 'no parameters';
        const close = suggest(p.name, [...types.keys()]);
        add(
          index,
          issue(
            [...path, i, 'name'],
            'PARAM_UNKNOWN',
            `unknown parameter "${p.name}"${close ? ` (did you mean "${close}"?)` : ''}: Workflow "${workflow as string}" declares ${known}`,
          ),
        );
        return;
      }
      // A literal override must coerce to the declared type, exactly as at run start.
      const type = types.get(p.name);
      if (p.value === undefined || (typeof p.value === 'string' && p.value.includes('${'))) return;
      try {
        coerceParameter(p.name, type, p.value as Value);
      } catch (err) {
        add(
          index,
          issue([...path, i, 'value'], (err as ExprError).code ?? 'PARAM_TYPE', (err as Error).message),
        );
      }
    });
  };
  docs.forEach((d, index) => {
    if (!isObj(d) || !isObj(d.spec)) return;
    if (d.kind === 'WorkflowRun')
      checkNames(index, d.spec.workflow, d.spec.parameters, ['spec', 'parameters']);
    if (d.kind === 'Workflow') {
      const visit = (node: unknown, path: PathSegment[]): void => {
        if (Array.isArray(node))
          node.forEach((n, i) => {
            visit(n, [...path, i]);
          });
        else if (isObj(node)) {
          if (isObj(node.subworkflow) && path.at(-1) === 'step')
            checkNames(index, node.subworkflow.workflow, node.subworkflow.parameters, [
              ...path,
              'subworkflow',
              'parameters',
            ]);
          for (const [k, v] of Object.entries(node)) if (typeof v === 'object') visit(v, [...path, k]);
        }
      };
      visit(d.spec.definition, ['spec', 'definition']);
    }
  });
  return out;
}

export interface ParsedDocument {
  doc: unknown;
  /** 1-based line where the document starts. */
  line: number;
  /** 1-based line of the node at `segments` (or of its nearest existing parent). */
  lineOf: (segments: readonly PathSegment[]) => number;
  /** Portability problems that do not make the document invalid (see kubectlBooleanWarnings). */
  warnings: ManifestIssue[];
}

export interface ManifestIssue extends ValidationIssue {
  line?: number;
}

/** Plain scalars that YAML 1.2 reads as strings but YAML 1.1 (kubectl, client-go) as booleans. */
const YAML11_BOOLEAN = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;

/**
 * `kubectl apply` parses YAML 1.1, where an unquoted `on` (the Notification field) or `yes` is a
 * boolean: the API server then sees `"true": [...]` and rejects the object. mesonctl reads YAML
 * 1.2 and accepts it, so these are warnings that tell the user to quote.
 */
function kubectlBooleanWarnings(root: unknown, lineAt: (offset: number) => number): ManifestIssue[] {
  const out: ManifestIssue[] = [];
  const warn = (node: Node, segments: PathSegment[], what: string): void => {
    const text = String((node as { source?: string }).source ?? (node as { value?: unknown }).value);
    out.push({
      ...issue(
        segments,
        'YAML_KUBECTL_BOOLEAN',
        `warning: kubectl reads the unquoted ${what} ${text} as a boolean (YAML 1.1); write "${text}"`,
      ),
      line: node.range ? lineAt(node.range[0]) : undefined,
    });
  };
  const plainBoolean = (n: unknown): n is Node =>
    isScalar(n) && n.type === 'PLAIN' && typeof n.value === 'string' && YAML11_BOOLEAN.test(n.value);
  const walk = (node: unknown, segments: PathSegment[]): void => {
    if (isMap(node))
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        if (plainBoolean(pair.key)) warn(pair.key, [...segments, key], 'key');
        walk(pair.value, [...segments, key]);
      }
    else if (isSeq(node)) for (const [i, item] of node.items.entries()) walk(item, [...segments, i]);
    else if (plainBoolean(node)) warn(node, segments, 'value');
  };
  try {
    walk(root, []);
  } catch {
    // Too deep to walk: validateDocument reports the nesting itself.
  }
  return out;
}

/** The YAML parser's message, with the key named when it is a duplicate (which one?). */
function yamlErrorMessage(e: { code: string; message: string; pos: [number, number] }, text: string): string {
  const first = e.message.split('\n')[0]!;
  if (e.code !== 'DUPLICATE_KEY') return first;
  const key = /^("[^"\n]*"|'[^'\n]*'|[^:,{}[\]\n]+?)\s*:/
    .exec(text.slice(e.pos[0]))?.[1]
    ?.replace(/^["']|["']$/g, '');
  return key && key.length <= 60
    ? `duplicate key "${key}": a key may appear only once in an object (several steps go in a sequence or a parallel list)`
    : first;
}

/**
 * Parses a multi-document YAML text. Empty documents are skipped; YAML syntax errors become
 * issues with code YAML_SYNTAX and their line. Never throws.
 */
export function parseManifests(
  text: string,
  file: string,
): { docs: ParsedDocument[]; issues: ManifestIssue[] } {
  const lineCounter = new LineCounter();
  const docs: ParsedDocument[] = [];
  const issues: ManifestIssue[] = [];
  let parsed: ReturnType<typeof parseAllDocuments>;
  try {
    parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    return {
      docs,
      issues: [{ path: '(document)', code: 'YAML_SYNTAX', message: `${file}: ${String(err)}` }],
    };
  }
  const all = Array.isArray(parsed) ? parsed : [];
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  for (const d of all) {
    if (d.errors.length > 0) {
      for (const e of d.errors)
        issues.push({
          path: '(document)',
          code: 'YAML_SYNTAX',
          message: yamlErrorMessage(e, text),
          line: lineAt(e.pos[0]),
        });
      continue;
    }
    // A trailing `---` yields an empty document: nothing to validate.
    if (d.contents === null || (isScalar(d.contents) && d.contents.value === null && !d.contents.source))
      continue;
    const start = lineAt(d.contents.range?.[0] ?? 0);
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (err) {
      issues.push({ path: '(document)', code: 'YAML_SYNTAX', message: (err as Error).message, line: start });
      continue;
    }
    const lineOf = (segments: readonly PathSegment[]): number => {
      for (let n = segments.length; n >= 0; n--) {
        const node = d.getIn(segments.slice(0, n), true);
        if (isNode(node) && node.range) return lineAt(node.range[0]);
      }
      return start;
    };
    const warnings = [
      ...kubectlBooleanWarnings(d.contents, lineAt),
      ...documentWarnings(value).map((w) => ({ ...w, line: lineOf(w.segments ?? []) })),
    ];
    docs.push({ doc: value, line: start, lineOf, warnings });
  }
  return { docs, issues };
}

/** Parses and validates a YAML text: every issue with the line it refers to. */
export function validateManifests(
  text: string,
  file: string,
): { documents: number; issues: ManifestIssue[]; warnings: ManifestIssue[] } {
  const { docs, issues } = parseManifests(text, file);
  const warnings = docs.flatMap((d) => d.warnings);
  const cross = crossDocumentIssues(docs.map((d) => d.doc));
  docs.forEach((d, i) => {
    for (const v of [...validateDocument(d.doc), ...(cross.get(i) ?? [])])
      issues.push({ ...v, line: d.lineOf(v.segments ?? []) });
  });
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { documents: docs.length, issues, warnings };
}
