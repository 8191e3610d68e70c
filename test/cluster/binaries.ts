import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const COMPONENTS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
] as const;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BUILD_SCRIPT = join(repoRoot, 'scripts/control-plane/build.sh');

/**
 * The directory holding the control-plane binaries. `MESON_K8S_BIN_DIR` wins; otherwise
 * scripts/control-plane/build.sh is run, which answers in a second when the versioned cache
 * is complete and builds from Go modules (tens of minutes, cold) when it is not.
 */
export function ensureBinaries(): string {
  const fromEnv = process.env.MESON_K8S_BIN_DIR;
  if (fromEnv) {
    checkBinDir(fromEnv);
    return fromEnv;
  }
  const result = spawnSync('bash', [BUILD_SCRIPT], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(`${BUILD_SCRIPT} failed with exit code ${result.status}`);
  }
  const lines = result.stdout.trim().split('\n');
  const binDir = lines[lines.length - 1] ?? '';
  checkBinDir(binDir);
  return binDir;
}

function checkBinDir(binDir: string): void {
  const missing = COMPONENTS.filter((c) => !existsSync(join(binDir, c)));
  if (missing.length > 0) {
    throw new Error(`control-plane binaries missing in ${binDir}: ${missing.join(', ')}`);
  }
}
