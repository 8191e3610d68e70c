import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';

// One discovery cache per test process, so runs never read a stale cache of an earlier cluster.
let cacheDir: string | undefined;

/** Runs the kubectl built with the control plane against the shared test cluster. */
export function kubectl(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  cacheDir ??= mkdtempSync(join(tmpdir(), 'meson-kubectl-cache-'));
  const result = spawnSync(join(inject('clusterBinDir'), 'kubectl'), [`--cache-dir=${cacheDir}`, ...args], {
    env: { ...process.env, KUBECONFIG: inject('kubeconfigPath') },
    encoding: 'utf8',
    input,
    timeout: 60_000,
  });
  return { status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/**
 * kubectl without blocking this process: needed when the API server calls back into a server
 * running in this test process (an admission webhook), which spawnSync would starve.
 */
export function kubectlAsync(
  args: string[],
  input?: string,
): Promise<{ status: number; stdout: string; stderr: string }> {
  cacheDir ??= mkdtempSync(join(tmpdir(), 'meson-kubectl-cache-'));
  return spawnCollect(join(inject('clusterBinDir'), 'kubectl'), [`--cache-dir=${cacheDir}`, ...args], {
    env: { ...process.env, KUBECONFIG: inject('kubeconfigPath') },
    input,
  });
}

/** Runs `cmd` without blocking this process and collects its output (60 s timeout by default). */
export function spawnCollect(
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; input?: string | undefined; timeoutMs?: number },
): Promise<{ status: number; stdout: string; stderr: string }> {
  const child = spawn(cmd, args, { env: opts.env, timeout: opts.timeoutMs ?? 60_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}
