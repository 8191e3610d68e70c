// The pymesos framework (test/mesos/pymesos_framework.py) as a child process, and where its venv is.
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const PYMESOS_VENV =
  process.env.MESON_PYMESOS_VENV ?? join(homedir(), '.cache/meson-k8s/venv-pymesos');
export const PYTHON = join(PYMESOS_VENV, 'bin/python');
export const FRAMEWORK_SCRIPT = join(import.meta.dirname, 'pymesos_framework.py');

/** Runs `cmd`, collecting stdout and stderr; SIGKILL after `timeoutMs`. */
export function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
