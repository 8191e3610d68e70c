// `mesonctl validate FILE...`: checks manifests against the schemas and the expression checker.
// Exit 0 when every document is valid, 1 when any is invalid (each error printed as
// `FILE: PATH: message (line N)`), 2 for bad usage or a file that cannot be read.
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import {
  crossDocumentIssues,
  documentWarnings,
  type ManifestIssue,
  type ParsedDocument,
  parseManifests,
  validateDocument,
} from '../../crds/validate.ts';
import type { Command } from '../cli.ts';
import { isProgram, manifestText } from '../sources.ts';

const USAGE = `usage: mesonctl validate [--json] FILE|DIR|FILE.ts|- ...

Checks Meson manifests (YAML, several documents per file) against the schemas and the
expression checker. A directory is searched for *.yaml and *.yml files; - reads stdin; a
TypeScript DSL program (FILE.ts) is checked as the manifests it defines (as mesonctl synth prints them).
Objects of other API groups (a ConfigMap next to the Workflows) are skipped with a note; the
items of a v1 List (kubectl get -o yaml) are checked one by one.
--json prints one JSON array of {file, line, path, code, message, severity} on stdout instead.
Exit status: 0 valid, 1 invalid (each error as FILE: PATH: message), 2 unreadable input
(a missing file, a directory without YAML files).
`;

async function yamlFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

interface Input {
  file: string;
  text: string;
}

/** Plain words for the file-system errors a user meets (a typo in a path, a protected file). */
const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a path component is not a directory',
  ELOOP: 'too many symbolic links',
};

/**
 * `kubectl get mwf -o yaml` prints a v1 List: its items are the objects to check, each located
 * (path, line) under `items[i]`.
 */
function listItems(d: ParsedDocument): ParsedDocument[] | undefined {
  const doc = d.doc as { apiVersion?: unknown; kind?: unknown; items?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || doc.apiVersion !== 'v1' || doc.kind !== 'List')
    return undefined;
  if (!Array.isArray(doc.items)) return undefined;
  return doc.items.map((item, i) => ({
    doc: item,
    line: d.lineOf(['items', i]),
    lineOf: (segments) => d.lineOf(['items', i, ...segments]),
    warnings: documentWarnings(item).map((w) => ({
      ...w,
      path: `items[${i}].${w.path}`,
      line: d.lineOf(['items', i, ...(w.segments ?? [])]),
    })),
  }));
}

/**
 * A Kubernetes object of another API group (a ConfigMap next to the Workflows of a GitOps
 * folder) is not ours to judge: it is skipped with a note instead of failing the run.
 * `meson.dev/<other version>` is still an error (validateDocument names the expected one).
 */
function foreignObject(doc: unknown): string | undefined {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  return group === 'meson.dev' ? undefined : `${kind} (${apiVersion})`;
}

export const validateCommand: Command = async (args, io) => {
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout(USAGE);
    return 0;
  }
  const json = args.includes('--json');
  args = args.filter((a) => a !== '--json');
  const unknownFlag = args.find((a) => a.startsWith('-') && a !== '-');
  if (args.length === 0 || unknownFlag) {
    io.stderr(`${unknownFlag ? `mesonctl validate: unknown option ${unknownFlag}\n` : ''}${USAGE}`);
    return 2;
  }
  const inputs: Input[] = [];
  let unreadable = false;
  for (const arg of args) {
    if (arg === '-' || isProgram(arg)) {
      // stdin, or a DSL program checked as the manifests it synthesises
      try {
        inputs.push({ file: arg, text: await manifestText(arg, io) });
      } catch (err) {
        io.stderr(`${(err as Error).message}\n`);
        unreadable = true;
      }
      continue;
    }
    const path = isAbsolute(arg) ? arg : join(io.cwd, arg);
    try {
      const isDir = (await stat(path)).isDirectory();
      const files = isDir ? await yamlFilesUnder(path) : [path];
      if (isDir && files.length === 0) {
        io.stderr(`${arg}: no .yaml or .yml files in this directory\n`);
        unreadable = true;
      }
      for (const f of files) {
        const shown = f === path ? arg : join(arg, f.slice(path.length + 1));
        inputs.push({ file: shown, text: await readFile(f, 'utf8') });
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      io.stderr(`${arg}: cannot read: ${(code && READ_ERRORS[code]) ?? code ?? (err as Error).message}\n`);
      unreadable = true;
    }
  }

  // Parse everything first so that cross-document checks (a run naming a workflow of another
  // file) see the whole set.
  const problems: { file: string; issue: ManifestIssue }[] = [];
  const all: { file: string; parsed: ParsedDocument; prefix?: string }[] = [];
  const notes: { file: string; issue: ManifestIssue }[] = [];
  for (const input of inputs) {
    const { docs, issues } = parseManifests(input.text, input.file);
    for (const i of issues) problems.push({ file: input.file, issue: i });
    if (docs.length === 0 && issues.length === 0)
      notes.push({
        file: input.file,
        issue: { path: '(file)', code: 'NO_DOCUMENTS', message: 'warning: no documents in this file' },
      });
    for (const d of docs) {
      const items = listItems(d);
      if (items) {
        for (const w of d.warnings) notes.push({ file: input.file, issue: w });
        items.forEach((item, i) => {
          all.push({ file: input.file, parsed: item, prefix: `items[${i}]` });
        });
        continue;
      }
      const foreign = foreignObject(d.doc);
      if (foreign)
        notes.push({
          file: input.file,
          issue: {
            path: '(document)',
            code: 'NOT_MESON',
            message: `skipped: ${foreign} is not a Meson object`,
            line: d.line,
          },
        });
      else all.push({ file: input.file, parsed: d });
    }
  }
  const cross = crossDocumentIssues(all.map((a) => a.parsed.doc));
  all.forEach(({ file, parsed, prefix }, index) => {
    for (const v of [...validateDocument(parsed.doc), ...(cross.get(index) ?? [])]) {
      const path = prefix ? `${prefix}${v.path === '(document)' ? '' : `.${v.path}`}` : v.path;
      problems.push({ file, issue: { ...v, path, line: parsed.lineOf(v.segments ?? []) } });
    }
  });
  const warnings = [
    ...notes,
    ...all.flatMap(({ file, parsed }) => parsed.warnings.map((issue) => ({ file, issue }))),
  ];
  const order = new Map(inputs.map((i, n) => [i.file, n]));
  problems.sort(
    (a, b) =>
      (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || (a.issue.line ?? 0) - (b.issue.line ?? 0),
  );
  if (json) {
    const rows = [
      ...problems.map((p) => ({ ...p, severity: 'error' })),
      ...warnings.map((w) => ({ ...w, severity: 'warning' })),
    ].map(({ file, issue, severity }) => ({
      file,
      line: issue.line ?? null,
      path: issue.path,
      code: issue.code,
      message: issue.message,
      severity,
    }));
    io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
    return unreadable ? 2 : problems.length > 0 ? 1 : 0;
  }
  // Warnings (valid here, but not portable to kubectl) are printed and do not fail.
  for (const { file, issue: w } of warnings)
    io.stderr(`${file}: ${w.path}: ${w.message}${w.line !== undefined ? ` (line ${w.line})` : ''}\n`);
  for (const { file, issue } of problems) {
    const where = issue.line !== undefined ? ` (line ${issue.line})` : '';
    io.stderr(`${file}: ${issue.path}: ${issue.message}${where}\n`);
  }
  if (unreadable) return 2;
  if (problems.length > 0) {
    io.stderr(`${problems.length} error${problems.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  io.stdout(
    `${all.length} document${all.length === 1 ? '' : 's'} valid in ${inputs.length} file${inputs.length === 1 ? '' : 's'}\n`,
  );
  return 0;
};
