// The Mesos endpoint's phase of `npm run bench operator` (OPERATOR_BENCH_PHASES=mesos):
// `mesonctl operator --mesos-endpoint` as a child process on the bench's control plane, and one
// framework (the project's v1 scheduler client, src/offer-adapter/mesos-source.ts, which follows
// the protocol: SUBSCRIBE, ACCEPT with LAUNCH, ACKNOWLEDGE of every update) launching TASKS
// command tasks of 0.1 cpus and 32 MB on the offers it gets. Each task is a Pod that kwok runs
// for the pod duration. Measured from the first ACCEPT: tasks per second until every task is
// TASK_STARTING (its Pod created, bound to its node: what ours_pods_per_s counts for steps), the
// time until every task is TASK_RUNNING (kwok ran it, and the framework acknowledged STARTING),
// and until TASK_FINISHED; ACCEPT calls made.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { TaskInfo } from '../../src/mesos-compat/schemas.ts';
import { MesosMasterSource } from '../../src/offer-adapter/mesos-source.ts';
import { freePorts } from '../cluster/health.ts';
import { waitFor } from '../cluster/wait.ts';
import { OPERATOR_NAMESPACE, startOperator } from './operator-ours.ts';

export interface MesosEndpointResult {
  tasks: number;
  tasksPerS: number;
  allStartingS: number;
  allRunningS: number;
  allFinishedS: number;
  accepts: number;
  hosts: number;
  rssMb: number;
}

const CPUS = 0.1;
const MEM = 32;

export async function measureMesosEndpoint(opts: {
  kc: KubeConfig;
  kubeconfigPath: string;
  namespace: string;
  tasks: number;
  podDuration: string;
  logPath: string;
  timeoutMs: number;
  log: (m: string) => void;
}): Promise<MesosEndpointResult> {
  const { kc, namespace, log } = opts;
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of [OPERATOR_NAMESPACE, namespace])
    await core.createNamespace({ body: { metadata: { name } } }).catch((e: unknown) => {
      if ((e as { code?: number }).code !== 409) throw e;
    });
  const [port] = await freePorts(1);
  const operator = await startOperator({
    kubeconfigPath: opts.kubeconfigPath,
    namespace,
    logPath: opts.logPath,
    podDuration: opts.podDuration,
    args: [
      '--leader-elect=false',
      `--mesos-endpoint=127.0.0.1:${port}`,
      `--mesos-task-namespace=${namespace}`,
    ],
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the mesos endpoint', async () =>
    (await fetch(`${base}/version`).catch(() => undefined))?.ok ? true : undefined,
  );
  log(`  mesos: operator pid ${operator.pid} serving ${base} (log ${opts.logPath})`);

  const starting = new Set<string>();
  const running = new Set<string>();
  const finished = new Set<string>();
  const failed: string[] = [];
  let launched = 0;
  let accepts = 0;
  let t0: number | undefined;
  let allStarting: number | undefined;
  let allRunning: number | undefined;
  let allFinished: number | undefined;
  const usedOffers = new Set<string>();
  const hosts = new Set<string>();
  let client: MesosMasterSource;
  const onOffers = () => {
    for (const o of client.offers()) {
      if (usedOffers.has(o.id)) continue;
      usedOffers.add(o.id);
      let cpus = o.resources.cpuMillis / 1000;
      let mem = o.resources.memoryBytes / 2 ** 20;
      let pods = o.resources.scalars?.pods ?? Number.POSITIVE_INFINITY;
      const tasks: TaskInfo[] = [];
      while (launched < opts.tasks && cpus >= CPUS && mem >= MEM && pods >= 1) {
        const id = `t-${launched++}`;
        tasks.push({
          name: id,
          task_id: { value: id },
          agent_id: { value: o.agentId ?? o.hostname },
          resources: [
            { name: 'cpus', type: 'SCALAR', scalar: { value: CPUS } },
            { name: 'mem', type: 'SCALAR', scalar: { value: MEM } },
          ],
          command: { value: `echo ${id}` },
        });
        cpus -= CPUS;
        mem -= MEM;
        pods -= 1;
      }
      if (tasks.length === 0) {
        void client.decline([o.id], 3600).catch(() => {});
        continue;
      }
      t0 ??= performance.now();
      accepts++;
      hosts.add(o.hostname);
      void client.accept([o.id], tasks, 0).catch((e: unknown) => log(`  mesos: ACCEPT failed: ${String(e)}`));
    }
  };
  client = new MesosMasterSource({
    master: base,
    frameworkInfo: { user: 'bench', name: 'mesos-bench', failover_timeout: 0 },
    store: { load: async () => undefined, save: async () => {} },
    onOffers,
    onUpdate: (st) => {
      const id = st.task_id.value;
      if (st.state !== 'TASK_STAGING') starting.add(id);
      if (st.state === 'TASK_RUNNING') running.add(id);
      if (st.state === 'TASK_FINISHED') {
        running.add(id);
        finished.add(id);
      }
      if (['TASK_FAILED', 'TASK_LOST', 'TASK_ERROR', 'TASK_KILLED', 'TASK_DROPPED'].includes(st.state))
        failed.push(`${id} ${st.state} ${st.message ?? ''}`);
      const now = performance.now();
      if (allStarting === undefined && starting.size >= opts.tasks) allStarting = now;
      if (allRunning === undefined && running.size >= opts.tasks) allRunning = now;
      if (allFinished === undefined && finished.size >= opts.tasks) allFinished = now;
    },
    reconcileIntervalMs: 0,
  });
  const progress = setInterval(
    () =>
      log(
        `  mesos: launched ${launched}, starting ${starting.size}, running ${running.size}, finished ${finished.size}`,
      ),
    5000,
  );
  client.start();
  try {
    await waitFor(
      `${opts.tasks} tasks to finish`,
      async () => {
        if (failed.length > 0) throw new Error(`tasks failed: ${failed.slice(0, 5).join('; ')}`);
        return allFinished !== undefined ? true : undefined;
      },
      { timeoutMs: opts.timeoutMs, intervalMs: 100 },
    );
  } finally {
    clearInterval(progress);
    await client.stop();
  }
  const rssMb = operator.peakRss() / 2 ** 20;
  await operator.stop();
  const start = t0 ?? 0;
  const allStartingS = ((allStarting ?? 0) - start) / 1000;
  return {
    tasks: opts.tasks,
    tasksPerS: opts.tasks / allStartingS,
    allStartingS,
    allRunningS: ((allRunning ?? 0) - start) / 1000,
    allFinishedS: ((allFinished ?? 0) - start) / 1000,
    accepts,
    hosts: hosts.size,
    rssMb,
  };
}

export const MESOS_LOG = (dir: string): string => join(dir, 'logs', 'operator-mesos.log');
