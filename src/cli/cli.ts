import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** What a command may touch: injected so that commands are testable without a process. */
export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  stdin: Readable;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/**
 * A command returns its exit status, or `undefined` when it keeps running (a server).
 */
export type Command = (args: string[], io: CliIo) => Promise<number | undefined>;

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {};

/** Registers a command; each command module lives in src/cli/commands/<name>.ts. */
export function registerCommand(name: string, summary: string, load: () => Promise<Command>): void {
  commands[name] = { summary, load };
}

registerCommand(
  'validate',
  'check manifests against the schemas and the expression checker',
  async () => (await import('./commands/validate.ts')).validateCommand,
);
registerCommand(
  'eval',
  'evaluate an expression and print its value as JSON',
  async () => (await import('./commands/eval.ts')).evalCommand,
);
registerCommand(
  'synth',
  'print the manifests that a DSL program defines, as YAML',
  async () => (await import('./commands/synth.ts')).synthCommand,
);
registerCommand(
  'run',
  'run a workflow to completion in-process with local executors',
  async () => (await import('./commands/run.ts')).runCommand,
);
const client = async () => import('./commands/client.ts');
registerCommand(
  'submit',
  'create/update workflows on a server, start a run (--watch: follow it)',
  async () => (await client()).submitCommand,
);
registerCommand(
  'get',
  'list runs newest first (get runs), or show one as a tree (get run NAME)',
  async () => (await client()).getCommand,
);
registerCommand('logs', "print (or -f follow) a run's step logs", async () => (await client()).logsCommand);
registerCommand('stop', 'stop runs on a server', async () => (await client()).stopCommand);
registerCommand(
  'restart',
  'restart a run from failed or from the beginning',
  async () => (await client()).restartCommand,
);
registerCommand('suspend', "pause a workflow's triggers", async () => (await client()).suspendCommand);
registerCommand('resume', "resume a workflow's triggers", async () => (await client()).resumeCommand);
registerCommand('backfill', 'one run per date of a range', async () => (await client()).backfillCommand);
registerCommand(
  'server',
  'the standalone server: REST API, scheduler, local executors, embedded store',
  async () => (await import('./commands/server.ts')).serverCommand,
);
registerCommand(
  'operator',
  'the Kubernetes operator (in-cluster config or KUBECONFIG)',
  async () => (await import('./commands/operator.ts')).operatorCommand,
);

export function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: mesonctl <command> [args]   (mesonctl --version; mesonctl <command> --help)\n\ncommands:\n${lines.join('\n')}\n`;
}

/** The package version, from package.json next to src/ (or next to dist/ once built). */
async function packageVersion(): Promise<string> {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(up, import.meta.url), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'meson-k8s' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

export async function runCli(argv: string[], io: CliIo): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    io.stdout(usage());
    return 0;
  }
  if (name === '--version' || name === 'version') {
    io.stdout(`mesonctl ${await packageVersion()} (API meson.dev/v1alpha1)\n`);
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    io.stderr(`mesonctl: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  let command: Command;
  try {
    command = await entry.load();
  } catch (err) {
    io.stderr(`mesonctl ${name}: not available in this build (${(err as Error).message})\n`);
    return 2;
  }
  return command(rest, io);
}
