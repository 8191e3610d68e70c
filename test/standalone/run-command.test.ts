// `mesonctl run` as a user calls it: exit statuses of the spec's table (0 Succeeded, 1 Failed or
// Stopped, 2 invalid input), several files, subworkflows.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/commands/run.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'meson-run-cmd-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** `mesonctl run ARGS` as a real process (for signals). */
function spawnRun(cwd: string, args: string[]) {
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, [main, 'run', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, output: () => out };
}

async function run(cwd: string, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommand(args, {
    stdout: (s: string) => void out.push(s),
    stderr: (s: string) => void err.push(s),
    stdin: new PassThrough(),
    cwd,
    env: {},
  });
  return { code, out: out.join(''), err: err.join('') };
}

const TYPED = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: typed }
spec:
  parameters: [{ name: n, type: long, value: 1 }]
  definition:
    step: { name: a, shell: { script: "echo \${n}" } }
`;

const CHILD = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: child }
spec:
  parameters: [{ name: x, type: long }]
  definition:
    step: { name: c, shell: { script: "echo y=$(( \${x} * 2 )) >> $MESON_OUTPUTS" } }
`;

const PARENT = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: parent }
spec:
  definition:
    sequence:
      - step: { name: sub, subworkflow: { workflow: child, parameters: [{ name: x, value: 21 }] } }
      - step: { name: after, shell: { script: "echo got \${steps.sub.outputs.y}" } }
`;

describe('mesonctl run', () => {
  it('exits 2 naming the parameter when a --param is unknown or of the wrong type', async () => {
    const cwd = workspace({ 'typed.yaml': TYPED });
    const wrong = await run(cwd, ['typed.yaml', '--param', 'n=abc']);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toContain('typed.yaml: --param n: parameter "n": expected a long');
    const unknown = await run(cwd, ['typed.yaml', '--param', 'nosuch=1']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown parameter "nosuch"');
    expect((await run(cwd, ['typed.yaml', '--param', 'n=2'])).code).toBe(0);
  });

  it('takes several files: the first Workflow of the first runs, the others are subworkflows', async () => {
    const cwd = workspace({ 'parent.yaml': PARENT, 'child.yaml': CHILD });
    const res = await run(cwd, ['parent.yaml', 'child.yaml', '--json']);
    expect(res.err).toBe('');
    const final = JSON.parse(res.out);
    expect(final.spec.workflow).toBe('parent');
    // the child's output parameters are the subworkflow step's: `after` could read y
    const sub = final.status.steps.find((s: { id: string }) => s.id === 'sub');
    expect(sub).toMatchObject({ phase: 'Succeeded', outputs: { y: 42 } });
    expect(final.status.phase).toBe('Succeeded');
    expect(res.code).toBe(0);
  });

  it('stops the run on Ctrl-C, killing its steps, and exits 1 with the run Stopped', async () => {
    const cwd = workspace({
      'sleepy.yaml': `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: sleepy }
spec:
  definition:
    step: { name: s, shell: { script: "echo $$ > step.pid; sleep 60" } }
`,
    });
    const proc = spawnRun(cwd, ['sleepy.yaml']);
    const pidFile = join(cwd, 'step.pid');
    for (let i = 0; i < 300 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 100));
    const stepPid = Number(readFileSync(pidFile, 'utf8'));
    proc.child.kill('SIGINT');
    expect(await proc.exited, proc.output()).toBe(1);
    expect(proc.output()).toMatch(/run sleepy-\w+: Stopped/);
    // the step's shell (a detached executor's child) is gone, not orphaned
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      try {
        process.kill(stepPid, 0);
        await new Promise((r) => setTimeout(r, 50));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });

  it('says what a run that only waits for inputs is waiting for', async () => {
    const cwd = workspace({
      'waits.yaml': `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: waits }
spec:
  parameters: [{ name: country, type: string, value: US }]
  definition:
    step: { name: load, inputs: [{ name: views, partition: { country: "\${country}" } }], shell: { script: "true" } }
`,
    });
    const proc = spawnRun(cwd, ['waits.yaml']);
    for (let i = 0; i < 200 && !proc.output().includes('is waiting for'); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(proc.output()).toContain('step load is waiting for views{country=US}');
    proc.child.kill('SIGINT');
    expect(await proc.exited).toBe(1);
  });
});
