// Synthesis: DSL values -> manifest objects -> YAML. Pure and byte-stable: the same program
// always yields the same bytes (keys sorted by code unit, lists in program order, no
// anchors, no line folding, documents in program order).
import { Document, isScalar, type Scalar, visit } from 'yaml';
import { plainData } from './data.ts';
import { DslError, describe, invalidArgument } from './errors.ts';
import type { WorkflowManifest } from './manifest.ts';
import { isWorkflow, type WorkflowDefinition } from './workflow.ts';

/** The Workflow manifest of a `Workflow(...)` value, with every map's keys sorted. */
export function synth(workflow: WorkflowDefinition): WorkflowManifest {
  if (!isWorkflow(workflow)) throw invalidArgument('synth()', 'a Workflow(...) value', workflow);
  return plainData(workflow.manifest, `Workflow("${workflow.manifest.metadata.name}")`, true);
}

/** Manifests of several workflows, rejecting two with the same namespace and id. */
export function synthAll(workflows: readonly WorkflowDefinition[]): WorkflowManifest[] {
  const seen = new Set<string>();
  return workflows.map((workflow) => {
    const manifest = synth(workflow);
    const key = `${manifest.metadata.namespace ?? ''}/${manifest.metadata.name}`;
    if (seen.has(key)) {
      throw new DslError(
        'DSL_DUPLICATE_WORKFLOW',
        `two workflows are named "${manifest.metadata.name}"${manifest.metadata.namespace ? ` in namespace "${manifest.metadata.namespace}"` : ''}`,
      );
    }
    seen.add(key);
    return manifest;
  });
}

/** A list of scalars this short is written on one line, `[a, b, c]`, as people write them. */
const FLOW_LIST_MAX = 60;

const STRINGIFY = {
  aliasDuplicateObjects: false,
  lineWidth: 0,
  minContentWidth: 0,
  indentSeq: true,
  flowCollectionPadding: false,
} as const;

/**
 * Multi-document YAML: one document per object, separated by `---`, each ending in a newline.
 * Strings are never folded, so a shell script keeps its lines (as a `|` block); short lists of
 * scalars (`on: [start, failure]`, `args: [--date, "${dateint}"]`) are written on one line.
 */
export function toYaml(objects: unknown | readonly unknown[]): string {
  const docs = Array.isArray(objects) ? objects : [objects];
  return docs
    .map((doc, i) => {
      // YAML 1.1 output quotes the keys and values that 1.1 readers (kubectl, client-go) take as
      // booleans: an unquoted `on:` (notifications) reaches the API server as `true:`.
      const yaml = new Document(plainData(doc, `document ${i + 1}`, true), { ...STRINGIFY, version: '1.1' });
      visit(yaml, {
        Seq(_, seq) {
          if (
            seq.items.length > 0 &&
            seq.items.every(isShortScalar) &&
            flowLength(seq.items) <= FLOW_LIST_MAX
          ) {
            seq.flow = true;
          }
        },
      });
      return yaml.toString(STRINGIFY);
    })
    .join('---\n');
}

function isShortScalar(item: unknown): item is Scalar {
  return isScalar(item) && !(typeof item.value === 'string' && /[\n\r]/.test(item.value));
}

function flowLength(items: unknown[]): number {
  return items.reduce<number>((n, item) => n + JSON.stringify((item as Scalar).value).length + 2, 0);
}

/**
 * The workflows a DSL program's module defines: its default export (a Workflow or a list of
 * them, nested lists flattened) when it has one; otherwise every named export that is a
 * Workflow or a list of them, in export-name order. The same value exported twice counts once.
 */
export function collectWorkflows(module: Record<string, unknown>, file: string): WorkflowDefinition[] {
  const found: WorkflowDefinition[] = [];
  const add = (value: unknown, where: string, strict: boolean): void => {
    if (isWorkflow(value)) {
      if (!found.includes(value)) found.push(value);
    } else if (Array.isArray(value) && (strict || value.some(isWorkflow) || value.length === 0)) {
      for (const [i, item] of value.entries()) add(item, `${where}[${i}]`, true);
    } else if (strict) {
      throw invalidArgument(`${file}: ${where}`, 'a Workflow(...) or a list of them', value);
    }
  };
  if ('default' in module && module.default !== undefined) {
    add(module.default, 'export default', true);
  } else {
    for (const name of Object.keys(module).sort()) add(module[name], `export ${name}`, false);
  }
  if (found.length === 0) {
    throw new DslError(
      'DSL_NOTHING_EXPORTED',
      `${file}: the program exports no workflow (export default a Workflow(...) or a list of them, ` +
        `or export them by name)${'default' in module ? `; its default export is ${describe(module.default)}` : ''}`,
    );
  }
  return found;
}
