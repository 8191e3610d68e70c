// Where the manifests of a command come from: a YAML file, `-` (stdin), or a TypeScript DSL
// program (FILE.ts), synthesised in-process as `mesonctl synth` would print it.
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Readable } from 'node:stream';
import { toYaml } from '../dsl/index.ts';
import type { CliIo } from './cli.ts';
import { loadProgram } from './commands/synth.ts';

/** A DSL program (run in-process, not parsed as YAML). */
export function isProgram(file: string): boolean {
  return /\.(c|m)?ts$/i.test(file);
}

export async function readStream(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The YAML text of `arg`: stdin for `-`, the synthesised manifests of a `.ts` program, else the
 * file. Throws an Error whose message names the file.
 */
export async function manifestText(arg: string, io: Pick<CliIo, 'stdin' | 'cwd'>): Promise<string> {
  if (arg === '-') return readStream(io.stdin);
  if (isProgram(arg)) {
    const loaded = await loadProgram(arg, io.cwd);
    if ('error' in loaded) throw new Error(loaded.error);
    return toYaml(loaded.manifests);
  }
  const path = isAbsolute(arg) ? arg : join(io.cwd, arg);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${arg}: cannot read: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`, {
      cause: err,
    });
  }
}
