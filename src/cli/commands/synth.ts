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

const USAGE = `usage: mesonctl synth FILE.ts...

Runs each TypeScript DSL program and prints the manifests it defines, as multi-document
YAML. A program's default export (a Workflow(...) or a list of them) is used; without a
default export, every named export that is a Workflow or a list of them, by export name.
The manifests are checked as by \`mesonctl validate\`; nothing is printed unless all are valid.
Exit status: 0 printed; 2 on a missing file, a program that throws, or an invalid manifest.
`;

export const synthCommand: Command = async (args, io) => {
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout(USAGE);
    return 0;
  }
  const unknownFlag = args.find((a) => a.startsWith('-'));
  if (args.length === 0 || unknownFlag !== undefined) {
    io.stderr(`${unknownFlag ? `mesonctl synth: unknown option ${unknownFlag}\n` : ''}${USAGE}`);
    return 2;
  }

  const manifests: { file: string; manifest: WorkflowManifest }[] = [];
  for (const file of args) {
    const loaded = await loadProgram(file, io.cwd);
    if ('error' in loaded) {
      io.stderr(`${loaded.error}\n`);
      return 2;
    }
    for (const manifest of loaded.manifests) manifests.push({ file, manifest });
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

async function loadProgram(
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
          ? `${err.message} [${err.code}]`
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
  const where = at ? ` (at ${relative(cwd, at[1]!)}:${at[2]}:${at[3]})` : '';
  return `${err.message}${code}${where}`;
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
