// The helm CLI built by scripts/helm/build.sh (cached under ~/.cache/meson-k8s), run against the
// shared test cluster with its own empty helm home (no repositories, no plugins).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { spawnCollect } from '../cluster/kubectl.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHART = join(ROOT, 'charts', 'meson');

let bin: string | undefined;
let home: string | undefined;

/** The helm binary: builds it on first use (seconds when cached; CI builds it before the tests). */
export function helmBinary(): string {
  if (bin) return bin;
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'helm', 'build.sh')], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
    timeout: 1_800_000,
  });
  if (r.status !== 0) throw new Error(`scripts/helm/build.sh failed: ${r.stderr}`);
  bin = join(r.stdout.trim().split('\n').at(-1)!, 'helm');
  return bin;
}

function helmEnv(kubeconfig?: string): NodeJS.ProcessEnv {
  home ??= mkdtempSync(join(tmpdir(), 'meson-helm-home-'));
  return {
    ...process.env,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
  };
}

export interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

/** helm without blocking this process (the API server may call back into it). */
export function helm(args: string[], kubeconfig?: string): Promise<Result> {
  return spawnCollect(helmBinary(), args, { env: helmEnv(kubeconfig), timeoutMs: 300_000 });
}

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [k: string]: unknown;
};

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** `helm template` of the chart; throws with helm's message when it fails. */
export async function template(release: string, namespace: string, set: string[] = []): Promise<K8sObject[]> {
  const r = await helm([
    'template',
    release,
    CHART,
    '--namespace',
    namespace,
    ...set.flatMap((s) => ['--set', s]),
  ]);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseObjects(r.stdout);
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in ${objects.map((x) => x.kind).join(', ')}`);
  return o;
}
