import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureBinaries } from './binaries.ts';
import { adminKubeconfig, createCerts } from './certs.ts';
import { freePorts, waitHealthy } from './health.ts';
import { createKwokNodes, type KwokNodeOptions, waitNodesReady } from './nodes.ts';
import { type Component, startComponent, stopGroup } from './process.ts';

export { ensureBinaries } from './binaries.ts';
export { countKwokNodes, createKwokNodes, KWOK_NODE_LABEL, waitNodesReady } from './nodes.ts';

export interface ClusterOptions {
  /** Simulated (KWOK) nodes to create and wait Ready for. Default 0. */
  nodes?: number;
  /** Capacity of each node (Kubernetes quantities). Defaults: cpu 8, memory 32Gi, pods 110. */
  cpu?: string | number;
  memory?: string;
  pods?: number;
  /** Taint nodes with kwok.x-k8s.io/node=fake:NoSchedule. Default false. */
  taint?: boolean;
  /** Also run kube-scheduler (KWOK does not bind pods). Default false. */
  scheduler?: boolean;
  /** kube-scheduler's client rate limits. Default qps 500, burst 1000 (its own defaults: 50, 100). */
  schedulerClient?: { qps: number; burst: number };
  /** Run kube-controller-manager (garbage collection, namespace deletion). Default true. */
  controllerManager?: boolean;
  /** kube-controller-manager --controllers. */
  controllers?: string[];
  /** Lease duration of KWOK nodes; kwok renews every quarter of it. Default 40. */
  nodeLeaseDurationSeconds?: number;
  /** Directory for certificates, kubeconfig, etcd data and logs. Default: a new temp dir,
   * removed by stop(). A given directory is kept. */
  dir?: string;
  /** Where the binaries are. Default: ensureBinaries() (builds them when not cached). */
  binDir?: string;
  /** Leave the processes running when this Node process exits (`cluster:up`). */
  persistent?: boolean;
  /** Progress messages. Default: none. */
  log?: (message: string) => void;
}

export interface ClusterComponentInfo {
  name: string;
  pid: number;
  logPath: string;
}

/** What `cluster.json` in the cluster directory holds (read by `cluster:down`). */
export interface ClusterState {
  server: string;
  kubeconfigPath: string;
  binDir: string;
  dir: string;
  components: ClusterComponentInfo[];
}

export interface Cluster extends ClusterState {
  /** kubectl next to the other binaries. */
  kubectlPath: string;
  /** A fresh client configuration for the admin user. */
  kubeConfig(): KubeConfig;
  /** Adds KWOK nodes (names continue after the existing ones) and waits until they are Ready. */
  addNodes(options: Omit<KwokNodeOptions, 'start'>): Promise<string[]>;
  /** Stops kube-scheduler and starts it again with these client limits (a cluster with `scheduler`). */
  restartScheduler(client: { qps: number; burst: number }): Promise<void>;
  /** Stops every component (SIGTERM, then SIGKILL) and removes a temp dir. Idempotent. */
  stop(): Promise<void>;
}

export const DEFAULT_CONTROLLERS = [
  'garbage-collector-controller',
  'namespace-controller',
  'node-lifecycle-controller',
];

const STAGES_FILE = join(dirname(fileURLToPath(import.meta.url)), 'kwok-stages.yaml');
const START_TIMEOUT_MS = 120_000;

const START_ATTEMPTS = 3;

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const binDir = options.binDir ?? ensureBinaries();
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'meson-k8s-cluster-')));
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterIn(dir, binDir, options);
    } catch (error) {
      // The free ports were free when asked for; another process may have taken one since.
      if (attempt < START_ATTEMPTS && /address already in use/.test(String(error))) {
        options.log?.(`a port was taken meanwhile; starting again (attempt ${attempt + 1})`);
        await rm(join(dir, 'etcd'), { recursive: true, force: true });
        await rm(join(dir, 'logs'), { recursive: true, force: true });
        continue;
      }
      throw new Error(`could not start the test control plane (state and logs kept in ${dir})`, {
        cause: error,
      });
    }
  }
}

async function startClusterIn(dir: string, binDir: string, options: ClusterOptions): Promise<Cluster> {
  const log = options.log ?? (() => {});
  const ownsDir = options.dir === undefined;
  await mkdir(join(dir, 'logs'), { recursive: true });
  await mkdir(join(dir, 'pki'), { recursive: true });
  const components: Component[] = [];
  const stopAll = async (): Promise<void> => {
    // Reverse start order: clients first, etcd last.
    for (const c of [...components].reverse()) await c.stop();
    components.length = 0;
  };
  const start = (name: string, args: string[]): Component => {
    const component = startComponent({
      name,
      command: join(binDir, name),
      args,
      logPath: join(dir, 'logs', `${name}.log`),
      persistent: options.persistent,
    });
    components.push(component);
    return component;
  };

  try {
    const [etcdPort, etcdPeerPort, apiPort, kcmPort, schedulerPort, kwokPort] = await freePorts(6);
    const certs = createCerts(join(dir, 'pki'));
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const server = `https://127.0.0.1:${apiPort}`;

    log(`starting etcd on ${etcdUrl}`);
    const etcd = start('etcd', [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      '--unsafe-no-fsync=true', // test data: durability is not wanted, speed is
      '--log-level=warn',
    ]);
    await waitHealthy(etcd, `${etcdUrl}/health`, { timeoutMs: START_TIMEOUT_MS });

    log(`starting kube-apiserver on ${server}`);
    const apiserver = start('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'pki', 'apiserver-generated')}`,
      `--tls-cert-file=${certs.servingCert}`,
      `--tls-private-key-file=${certs.servingKey}`,
      `--client-ca-file=${certs.clientCa}`,
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${certs.saPub}`,
      `--service-account-signing-key-file=${certs.saKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      // No controller creates the `default` ServiceAccount in fresh namespaces (as in envtest).
      '--disable-admission-plugins=ServiceAccount',
      // A loopback address is not a valid Endpoints address; nothing in-cluster dials it.
      '--endpoint-reconciler-type=none',
      // Room for 1,000 KWOK nodes' leases plus benchmark clients on 2 cores.
      '--max-requests-inflight=1600',
      '--max-mutating-requests-inflight=800',
      // CLUSTER_APISERVER_PROFILING=1 serves /debug/pprof (`kubectl get --raw
      // '/debug/pprof/profile?seconds=30'`): where the API server's CPU goes in a benchmark
      `--profiling=${process.env.CLUSTER_APISERVER_PROFILING === '1'}`,
    ]);
    const tls = {
      ca: readFileSync(certs.servingCa),
      cert: readFileSync(certs.adminCert),
      key: readFileSync(certs.adminKey),
    };
    await waitHealthy(apiserver, `${server}/readyz`, { tls, timeoutMs: START_TIMEOUT_MS });

    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, adminKubeconfig(certs, server), { mode: 0o600 });
    const waits: Promise<void>[] = [];

    if (options.controllerManager ?? true) {
      log('starting kube-controller-manager');
      const kcm = start('kube-controller-manager', [
        `--kubeconfig=${kubeconfigPath}`,
        `--authentication-kubeconfig=${kubeconfigPath}`,
        `--authorization-kubeconfig=${kubeconfigPath}`,
        '--leader-elect=false',
        `--controllers=${(options.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, 'pki', 'kcm-generated')}`,
        '--kube-api-qps=200',
        '--kube-api-burst=400',
      ]);
      waits.push(waitHealthy(kcm, `https://127.0.0.1:${kcmPort}/healthz`));
    }

    let schedulerComponent: Component | undefined;
    const startScheduler = async (client: { qps: number; burst: number } | undefined): Promise<void> => {
      log(`starting kube-scheduler (client qps ${client?.qps ?? 500}, burst ${client?.burst ?? 1000})`);
      const configPath = join(dir, 'kube-scheduler.yaml');
      writeFileSync(
        configPath,
        [
          'apiVersion: kubescheduler.config.k8s.io/v1',
          'kind: KubeSchedulerConfiguration',
          'clientConnection:',
          `  kubeconfig: ${kubeconfigPath}`,
          `  qps: ${client?.qps ?? 500}`,
          `  burst: ${client?.burst ?? 1000}`,
          'leaderElection:',
          '  leaderElect: false',
          '',
        ].join('\n'),
      );
      schedulerComponent = start('kube-scheduler', [
        `--config=${configPath}`,
        `--authentication-kubeconfig=${kubeconfigPath}`,
        `--authorization-kubeconfig=${kubeconfigPath}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${schedulerPort}`,
        `--cert-dir=${join(dir, 'pki', 'scheduler-generated')}`,
      ]);
      await waitHealthy(schedulerComponent, `https://127.0.0.1:${schedulerPort}/healthz`);
    };
    if (options.scheduler) waits.push(startScheduler(options.schedulerClient));

    log('starting kwok');
    const kwok = start('kwok', [
      `--kubeconfig=${kubeconfigPath}`,
      `--config=${STAGES_FILE}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      // Pod IPs are only strings here; a wide range so 10,000s of pods never run out.
      '--cidr=10.128.0.0/9',
      '--node-ip=10.0.0.1',
      `--node-lease-duration-seconds=${options.nodeLeaseDurationSeconds ?? 40}`,
      `--server-address=127.0.0.1:${kwokPort}`,
    ]);
    waits.push(waitHealthy(kwok, `http://127.0.0.1:${kwokPort}/healthz`));
    await Promise.all(waits);

    const state: ClusterState = {
      server,
      kubeconfigPath,
      binDir,
      dir,
      components: components.map(({ name, pid, logPath }) => ({ name, pid, logPath })),
    };
    writeFileSync(join(dir, 'cluster.json'), `${JSON.stringify(state, null, 2)}\n`);

    const kubeConfig = (): KubeConfig => {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    };
    let nodeCount = 0;
    const addNodes = async (nodeOptions: Omit<KwokNodeOptions, 'start'>): Promise<string[]> => {
      const kc = kubeConfig();
      const names = await createKwokNodes(kc, { ...nodeOptions, start: nodeCount });
      nodeCount += names.length;
      await waitNodesReady(kc, nodeCount, Math.max(60_000, nodeCount * 200));
      return names;
    };
    let stopped = false;
    const cluster: Cluster = {
      ...state,
      kubectlPath: join(binDir, 'kubectl'),
      kubeConfig,
      addNodes,
      restartScheduler: async (client) => {
        if (!schedulerComponent) throw new Error('this cluster was started without kube-scheduler');
        const old = schedulerComponent;
        await old.stop();
        components.splice(components.indexOf(old), 1);
        await startScheduler(client);
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopAll();
        if (ownsDir) await rm(dir, { recursive: true, force: true });
      },
    };
    if (options.nodes) {
      log(`creating ${options.nodes} KWOK nodes`);
      await addNodes({
        count: options.nodes,
        cpu: options.cpu,
        memory: options.memory,
        pods: options.pods,
        taint: options.taint,
      });
    }
    return cluster;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
  } catch {
    return undefined;
  }
}

/** Stops the components recorded in `<dir>/cluster.json` (a cluster started elsewhere). */
export async function stopClusterDir(dir: string): Promise<ClusterState | undefined> {
  let state: ClusterState;
  try {
    state = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
  for (const c of [...state.components].reverse()) {
    // A pid recorded long ago may belong to another process by now: check it is ours.
    if (commandOf(c.pid) === join(state.binDir, c.name)) await stopGroup(c.pid);
  }
  return state;
}
