// `npm run cluster:up -- --nodes N --cpu C --memory M [--scheduler]` starts a real control plane
// (etcd, kube-apiserver, kube-controller-manager, kwok; kube-scheduler on request) on loopback
// with N simulated nodes, and leaves it running; `npm run cluster:down` stops it.
// State (certificates, kubeconfig, etcd data, logs, pids) lives in $MESON_K8S_CACHE/cluster
// (default ~/.cache/meson-k8s/cluster). See docs/control-plane.md.
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ClusterState, startCluster, stopClusterDir } from '../test/cluster/index.ts';
import { groupAlive } from '../test/cluster/process.ts';

const cacheDir = process.env.MESON_K8S_CACHE ?? join(homedir(), '.cache', 'meson-k8s');
const clusterDir = join(cacheDir, 'cluster');
const USAGE = `usage: node scripts/cluster.ts up [--nodes N] [--cpu C] [--memory M] [--pods P] [--scheduler]
       node scripts/cluster.ts down
       node scripts/cluster.ts status`;

function readState(): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(join(clusterDir, 'cluster.json'), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

function isRunning(state: ClusterState): boolean {
  const apiserver = state.components.find((c) => c.name === 'kube-apiserver');
  return apiserver !== undefined && groupAlive(apiserver.pid);
}

function howToUse(state: ClusterState): string {
  return [
    `API server: ${state.server}`,
    `logs:       ${join(state.dir, 'logs')}`,
    '',
    'Use it with:',
    `  export KUBECONFIG=${state.kubeconfigPath}`,
    `  export PATH=${state.binDir}:$PATH   # kubectl, built with the control plane`,
    '  kubectl get nodes',
    '',
    'Stop it with: npm run cluster:down',
  ].join('\n');
}

async function up(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: 'string', default: '3' },
      cpu: { type: 'string', default: '8' },
      memory: { type: 'string', default: '32Gi' },
      pods: { type: 'string', default: '110' },
      scheduler: { type: 'boolean', default: false },
    },
  });
  const nodes = Number(values.nodes);
  const pods = Number(values.pods);
  if (!Number.isInteger(nodes) || nodes < 0)
    throw new Error(`--nodes: expected a count, got ${values.nodes}`);
  if (!Number.isInteger(pods) || pods < 1) throw new Error(`--pods: expected a count, got ${values.pods}`);
  const existing = readState();
  if (existing && isRunning(existing)) {
    process.stderr.write(`a cluster is already running (npm run cluster:down stops it)\n\n`);
    process.stdout.write(`${howToUse(existing)}\n`);
    return 1;
  }
  if (existsSync(clusterDir)) await rm(clusterDir, { recursive: true, force: true });
  const started = Date.now();
  const cluster = await startCluster({
    dir: clusterDir,
    persistent: true,
    nodes,
    cpu: values.cpu,
    memory: values.memory,
    pods,
    scheduler: values.scheduler,
    log: (m) => process.stderr.write(`cluster: ${m}\n`),
  });
  process.stdout.write(
    `Cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s with ${nodes} KWOK nodes ` +
      `(cpu ${values.cpu}, memory ${values.memory}, pods ${pods} each).\n${howToUse(cluster)}\n`,
  );
  return 0;
}

async function down(): Promise<number> {
  const state = await stopClusterDir(clusterDir);
  if (!state) {
    process.stdout.write(`no cluster state in ${clusterDir}: nothing to stop\n`);
    return 0;
  }
  await rm(clusterDir, { recursive: true, force: true });
  process.stdout.write(`stopped the cluster at ${state.server} and removed ${clusterDir}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'up') return up(rest);
  if (command === 'down') return down();
  if (command === 'status') {
    const state = readState();
    if (!state || !isRunning(state)) {
      process.stdout.write('no cluster running\n');
      return 1;
    }
    process.stdout.write(`${howToUse(state)}\n`);
    return 0;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
    let cause = error instanceof Error ? error.cause : undefined;
    while (cause) {
      process.stderr.write(`  caused by: ${cause instanceof Error ? cause.message : String(cause)}\n`);
      cause = cause instanceof Error ? cause.cause : undefined;
    }
    process.exit(1);
  },
);
