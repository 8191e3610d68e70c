// `mesonctl synth FILE.ts...`: runs DSL programs and prints the manifests they define as
// multi-document YAML, checked by the same validator as `mesonctl validate`. All or nothing:
// nothing is printed to stdout unless every program ran and every manifest is valid, so
// `mesonctl synth wf.ts | kubectl apply -f -` never applies half a change.
import { stat } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { crossDocumentIssues, validateDocument } from '../../crds/validate.ts';
import { collectWorkflows, DslError, synthAll, toYaml } from '../../dsl/index.ts';
import type { WorkflowManifest } from '../../dsl/manifest.ts';
import type { Command } from '../cli.ts';

const USAGE = `usage: mesonctl synth FILE.ts... [--annotation KEY=VALUE]...

Runs each TypeScript DSL program and prints the manifests it defines, as multi-document
YAML. A program's default export (a Workflow(...) or a list of them) is used; without a
default export, every named export that is a Workflow or a list of them, by export name.
The manifests are checked as by \`mesonctl validate\`; nothing is printed unless all are valid.

  --annotation KEY=VALUE   add an annotation to every workflow (e.g. the SCM commit the
                           program was built from: meson.dev/scm-commit=$(git rev-parse HEAD));
                           it is copied onto each version the workflow gets

Exit status: 0 printed; 2 on a missing file, a program that throws, a workflow defined
twice, or an invalid manifest.
`;

interface Options {
  files: string[];
  annotations: Record<string, string>;
}

function parseOptions(args: string[]): Options | { error: string } {
  const options: Options = { files: [], annotations: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--annotation' || arg.startsWith('--annotation=')) {
      const pair = arg === '--annotation' ? args[++i] : arg.slice('--annotation='.length);
      const eq = pair?.indexOf('=') ?? -1;
      if (pair === undefined || eq <= 0)
        return { error: `--annotation expects KEY=VALUE, got ${pair ?? 'nothing'}` };
      options.annotations[pair.slice(0, eq)] = pair.slice(eq + 1);
    } else if (arg.startsWith('-')) {
      return { error: `unknown option ${arg}` };
    } else {
      options.files.push(arg);
    }
  }
  return options.files.length > 0 ? options : { error: 'no program given' };
}

export const synthCommand: Command = async (args, io) => {
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout(USAGE);
    return 0;
  }
  const options = parseOptions(args);
  if ('error' in options) {
    io.stderr(`mesonctl synth: ${options.error}\n${USAGE}`);
    return 2;
  }

  const manifests: { file: string; manifest: WorkflowManifest }[] = [];
  for (const file of options.files) {
    const loaded = await loadProgram(file, io.cwd);
    if ('error' in loaded) {
      io.stderr(`${loaded.error}\n`);
      return 2;
    }
    for (const manifest of loaded.manifests)
      manifests.push({ file, manifest: annotate(manifest, options.annotations) });
  }

  const duplicate = firstDuplicate(manifests);
  if (duplicate) {
    io.stderr(`${duplicate}\n`);
    return 2;
  }
  const problems = issuesOf(manifests);
  if (problems.length > 0) {
    io.stderr(
      `${problems.join('\n')}\nmesonctl synth: the program defines invalid manifests; nothing printed\n`,
    );
    return 2;
  }
  io.stdout(toYaml(manifests.map((m) => m.manifest)));
  return 0;
};

/** Runs one DSL program and collects its workflows (never throws: an error names the file). */
export async function loadProgram(
  file: string,
  cwd: string,
): Promise<{ manifests: WorkflowManifest[] } | { error: string }> {
  const path = isAbsolute(file) ? file : join(cwd, file);
  try {
    if (!(await stat(path)).isFile()) return { error: `${file}: not a file` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: `${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}` };
  }
  if (/\.(ya?ml|json)$/i.test(file))
    return {
      error: `${file}: synth runs TypeScript DSL programs (FILE.ts); to check a manifest, use mesonctl validate ${file}`,
    };
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(path).href);
  } catch (err) {
    return { error: `${file}: the program failed while loading: ${describeError(err, path, cwd)}` };
  }
  try {
    return { manifests: synthAll(collectWorkflows(module, file)) };
  } catch (err) {
    return {
      error:
        err instanceof DslError
          ? `${err.message.startsWith(`${file}:`) ? '' : `${file}: `}${err.message} [${err.code}]`
          : `${file}: ${describeError(err, path, cwd)}`,
    };
  }
}

/** The error's message, its code, and where in the user's program it was thrown. */
function describeError(err: unknown, path: string, cwd: string): string {
  if (!(err instanceof Error)) return String(err);
  const errorCode: unknown = (err as Error & { code?: unknown }).code;
  const code = typeof errorCode === 'string' ? ` [${errorCode}]` : '';
  const url = pathToFileURL(path).href;
  const frame = err.stack?.split('\n').find((line) => line.includes(url) || line.includes(path));
  const at = frame?.match(/(?:file:\/\/)?(\/[^\s()]+):(\d+):(\d+)/);
  // A syntax error has no frame in the program: Node puts "FILE:LINE" on the stack's first line.
  const syntaxLine = err.stack?.split('\n')[0]?.match(/^(\/.+):(\d+)$/);
  const where = at
    ? ` (at ${relative(cwd, at[1]!)}:${at[2]}:${at[3]})`
    : syntaxLine
      ? ` (at ${relative(cwd, syntaxLine[1]!)}:${syntaxLine[2]})`
      : '';
  return `${err.message}${code}${where}`;
}

/** The manifest with `annotations` added (they win over the program's own). */
function annotate(manifest: WorkflowManifest, annotations: Record<string, string>): WorkflowManifest {
  if (Object.keys(annotations).length === 0) return manifest;
  const merged = { ...manifest.metadata.annotations, ...annotations };
  return { ...manifest, metadata: { ...manifest.metadata, annotations: merged } };
}

/** Two programs (or one program twice) defining the same workflow would apply one over the other. */
function firstDuplicate(manifests: { file: string; manifest: WorkflowManifest }[]): string | undefined {
  const seen = new Map<string, string>();
  for (const { file, manifest } of manifests) {
    const { name, namespace } = manifest.metadata;
    const key = `${namespace ?? ''}/${name}`;
    const other = seen.get(key);
    if (other !== undefined) {
      return `${file}: workflow "${name}" is also defined by ${other}; each workflow must be defined once [DSL_DUPLICATE_WORKFLOW]`;
    }
    seen.set(key, file);
  }
  return undefined;
}

/** Validator issues of the synthesised manifests, as `FILE: workflow NAME: PATH: message`. */
function issuesOf(manifests: { file: string; manifest: WorkflowManifest }[]): string[] {
  const cross = crossDocumentIssues(manifests.map((m) => m.manifest));
  return manifests.flatMap(({ file, manifest }, i) =>
    [...validateDocument(manifest), ...(cross.get(i) ?? [])].map(
      (issue) =>
        `${file}: workflow "${manifest.metadata.name}": ${issue.path}: ${issue.message} [${issue.code}]`,
    ),
  );
}
