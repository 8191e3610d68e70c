/**
 * Operator at scale (`npm run bench operator`). Starts its own control plane (etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler, kwok; a temp dir and free ports, so
 * it never touches a test cluster), makes KWOK nodes, then measures in one run:
 *
 * - raw_create_pods_per_s: a plain @kubernetes/client-node client creating PODS pods with
 *   spec.nodeName set, CONCURRENCY requests in flight, no client-side QPS limit;
 * - kube_scheduler_pods_per_s: the same pods without nodeName, from the first create until a
 *   watch has seen every pod bound by kube-scheduler at its own default client limits (qps 50,
 *   burst 100, unless OPERATOR_BENCH_SCHEDULER_QPS says otherwise);
 * - raw_eq and sched_eq: the same two baselines given the operator's client limits (its
 *   --kube-qps/--kube-burst: a token bucket in front of the raw client; kube-scheduler restarted
 *   with them), for the ratios at equal QPS;
 * - for each phase, the API server's write requests (from its /metrics);
 * - ours (test/bench/operator-ours.ts): `mesonctl operator` as a child process and a PODS-way
 *   foreach WorkflowRun: pods bound per second, run duration, first-pod latency (one-step runs),
 *   writes per step, the operator's peak RSS, the largest run or shard object, duplicate pods;
 * - mesos (test/bench/mesos-endpoint.ts): `mesonctl operator --mesos-endpoint` and one framework
 *   launching OPERATOR_BENCH_MESOS_TASKS (1000) command tasks as Pods:
 *   mesos_endpoint_tasks_per_s from the first ACCEPT until every task's Pod is created on its
 *   node (TASK_STARTING; comparable to ours_pods_per_s), then the time until all are running.
 *
 * Every pod, ours included, runs POD_DURATION under kwok and then succeeds (two status patches
 * by kwok), so each phase puts the same per-pod load on the control plane. Finished pods stay:
 * deleting 10,000 pods takes the API server longer than making them (deletecollection works one
 * pod at a time and outlasts the request timeout), and the operator's informers skip finished
 * pods. After each phase the bench waits until kwok has finished every pod, so the next phase
 * does not pay for this one's backlog. OPERATOR_BENCH_CLEANUP=1 deletes each phase's namespace.
 *
 * Environment: OPERATOR_BENCH_NODES (default 1000), OPERATOR_BENCH_PODS (10000),
 * OPERATOR_BENCH_CONCURRENCY (64), OPERATOR_BENCH_PHASES (raw,raw_eq,sched,sched_eq,ours,mesos), OPERATOR_BENCH_MESOS_TASKS (1000),
 * OPERATOR_BENCH_REPEAT (1: how many times raw and ours run, alternately, after the other baselines;
 * the raw and ours figures are then medians, with each repeat's in `*_runs` fields),
 * OPERATOR_BENCH_POD_DURATION (how long every pod runs under kwok, 5s), OPERATOR_BENCH_CLEANUP,
 * OPERATOR_BENCH_FIRST_POD_SAMPLES (7), phase foreach100k (not in the default phases: about an hour
 * here) with OPERATOR_BENCH_FOREACH_WIDTH (100000), OPERATOR_BENCH_FOREACH_PARALLELISM (2000) and
 * OPERATOR_BENCH_FOREACH_POD_GC (the operator's --pod-gc in that phase, default OnPodCompletion),
 * OPERATOR_BENCH_NODE_OPTIONS (the operator child's NODE_OPTIONS, e.g. --cpu-prof), OPERATOR_BENCH_SCHEDULER_QPS (kube-scheduler's client
 * QPS/burst, default 50/100: its own defaults), OPERATOR_BENCH_DIR (keep the cluster's data and logs there;
 * default a temp dir removed at the end). Prints figures, then one JSON object as the last line.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { reuseConnections } from '../../src/kube/reuse-connections.ts';
import { CLIENT_RATE_DEFAULTS, TokenBucket } from '../../src/operator/rate-limit.ts';
import { startCluster } from '../cluster/index.ts';
import { apiserverWrites, isControlPlaneWrite, watchPodsBound } from '../cluster/measure.ts';
import { waitFor } from '../cluster/wait.ts';
import { MESOS_LOG, type MesosEndpointResult, measureMesosEndpoint } from './mesos-endpoint.ts';
import {
  installCrds,
  measureOurs,
  measureWideForeach,
  median,
  type OursResult,
  type WideForeachResult,
} from './operator-ours.ts';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

const NODES = envInt('OPERATOR_BENCH_NODES', 1000);
const PODS = envInt('OPERATOR_BENCH_PODS', 10_000);
const CONCURRENCY = envInt('OPERATOR_BENCH_CONCURRENCY', 64);
/** Which phases to run (comma-separated): raw, sched, ours, mesos. */
const PHASES = new Set(
  (process.env.OPERATOR_BENCH_PHASES || 'raw,raw_eq,sched,sched_eq,ours,mesos').split(','),
);
/** How many times the raw and ours phases run, alternately (medians are reported). */
const REPEAT = envInt('OPERATOR_BENCH_REPEAT', 1);
const MESOS_TASKS = envInt('OPERATOR_BENCH_MESOS_TASKS', 1000);
const FIRST_POD_SAMPLES = envInt('OPERATOR_BENCH_FIRST_POD_SAMPLES', 7);
const POD_DURATION = process.env.OPERATOR_BENCH_POD_DURATION || '5s';
const CLEANUP = process.env.OPERATOR_BENCH_CLEANUP === '1';
const FOREACH_WIDTH = Number(process.env.OPERATOR_BENCH_FOREACH_WIDTH ?? 100_000);
const FOREACH_PARALLELISM = Number(process.env.OPERATOR_BENCH_FOREACH_PARALLELISM ?? 2_000);
const FOREACH_POD_GC = process.env.OPERATOR_BENCH_FOREACH_POD_GC ?? 'OnPodCompletion';
const SCHEDULER_CLIENT = (() => {
  const m = /^(\d+(?:\.\d+)?)\/(\d+)$/.exec(process.env.OPERATOR_BENCH_SCHEDULER_QPS ?? '50/100');
  if (!m) throw new Error('OPERATOR_BENCH_SCHEDULER_QPS: expected QPS/BURST, e.g. 50/100');
  return { qps: Number(m[1]), burst: Number(m[2]) };
})();
/** The operator's client limits in this bench: its flags if OPERATOR_BENCH_OPERATOR_ARGS sets them, else its defaults. */
const OURS_CLIENT = (() => {
  const args = process.env.OPERATOR_BENCH_OPERATOR_ARGS ?? '';
  const flag = (name: string) => new RegExp(`--${name}[= ](\\S+)`).exec(args)?.[1];
  return {
    qps: Number(flag('kube-qps') ?? CLIENT_RATE_DEFAULTS.qps),
    burst: Number(flag('kube-burst') ?? CLIENT_RATE_DEFAULTS.burst),
  };
})();
const log = (m: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
};
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

function benchPod(i: number, nodeName: string | undefined): V1Pod {
  return {
    metadata: {
      name: `p-${i}`,
      labels: { 'meson.dev/bench': 'true' },
      annotations: { 'kwok.meson.dev/duration': POD_DURATION },
    },
    spec: {
      ...(nodeName ? { nodeName } : {}),
      restartPolicy: 'Never',
      containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '100m', memory: '64Mi' } } }],
    },
  };
}

/**
 * Creates `count` pods with `concurrency` requests in flight, each request after a token of
 * `bucket` when given (the equal-QPS baseline); returns first/last times (ms).
 */
async function createPods(
  core: CoreV1Api,
  namespace: string,
  count: number,
  nodeOf: (i: number) => string | undefined,
  bucket?: TokenBucket,
): Promise<{ firstMs: number; lastMs: number }> {
  let next = 0;
  const firstMs = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        if (bucket) await bucket.acquire();
        try {
          await core.createNamespacedPod({ namespace, body: benchPod(i, nodeOf(i)) });
          break;
        } catch (error) {
          const code = (error as { code?: number }).code;
          if (code === 409) break; // created by a retried request
          if (attempt < 5 && (code === 429 || (code ?? 0) >= 500 || code === undefined)) continue;
          throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { firstMs, lastMs: performance.now() };
}

async function freshNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
}

/**
 * Deletes the namespace's pods without grace (kwok has no kubelet to wait for), then the
 * namespace, and waits until it is gone. A deletecollection of 10,000 pods can outlast the API
 * server's request timeout: it is repeated until no pod is left.
 */
async function deleteNamespace(core: CoreV1Api, name: string): Promise<number> {
  const t = performance.now();
  await waitFor(
    `the pods of ${name} deleted`,
    async () => {
      await core
        .deleteCollectionNamespacedPod({ namespace: name, gracePeriodSeconds: 0 })
        .catch((e: unknown) => log(`  deletecollection pods: ${String(e).slice(0, 200)}; again`));
      const left = await core.listNamespacedPod({ namespace: name, limit: 1 });
      return left.items.length === 0 ? true : undefined;
    },
    { timeoutMs: 900_000, intervalMs: 1_000 },
  );
  await core.deleteNamespace({ name });
  await waitFor(
    `namespace ${name} deleted`,
    async () => {
      try {
        await core.readNamespace({ name });
        return undefined;
      } catch (error) {
        if ((error as { code?: number }).code === 404) return true;
        throw error;
      }
    },
    { timeoutMs: 900_000, intervalMs: 1_000 },
  );
  return performance.now() - t;
}

/**
 * Waits until every pod of the namespace has succeeded: kwok works through its status patches
 * well after the pods were created, and the next phase must not pay for this one's backlog.
 */
async function settled(core: CoreV1Api, namespace: string): Promise<number> {
  const t = performance.now();
  await waitFor(
    `kwok to finish the pods of ${namespace}`,
    async () => {
      const left = await core.listNamespacedPod({
        namespace,
        fieldSelector: 'status.phase!=Succeeded',
        limit: 1,
      });
      return left.items.length === 0 ? true : undefined;
    },
    { timeoutMs: 1_800_000, intervalMs: 2_000 },
  );
  return performance.now() - t;
}

interface PhaseResult {
  podsPerS: number;
  seconds: number;
  writes: number;
  otherWrites: number;
}

async function phase(
  kc: KubeConfig,
  name: string,
  nodeOf: (i: number) => string | undefined,
  bucket?: TokenBucket,
): Promise<PhaseResult> {
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `bench-${name}`;
  await freshNamespace(core, namespace);
  const watch = await watchPodsBound(kc, { namespace, expected: PODS, timeoutMs: 1_800_000 });
  const writes = await apiserverWrites(kc, (s) => !isControlPlaneWrite(s));
  const progress = setInterval(() => log(`  ${name}: ${watch.bound()} of ${PODS} pods bound`), 10_000);
  try {
    const { firstMs, lastMs } = await createPods(core, namespace, PODS, nodeOf, bucket);
    log(`  ${name}: ${PODS} creates answered in ${round((lastMs - firstMs) / 1000, 2)} s`);
    await watch.done;
    const boundMs = performance.now();
    const delta = await writes.stop();
    const seconds = (boundMs - firstMs) / 1000;
    log(
      `  ${name}: all bound after ${round(seconds, 2)} s; writes ${delta.counted} (control plane: ${delta.total - delta.counted})`,
    );
    for (const s of delta.series.slice(0, 6)) {
      log(
        `    ${s.verb} ${s.group || 'core'}/${s.resource}${s.subresource ? `/${s.subresource}` : ''}: ${s.count}`,
      );
    }
    return {
      podsPerS: PODS / seconds,
      seconds,
      writes: delta.counted,
      otherWrites: delta.total - delta.counted,
    };
  } finally {
    clearInterval(progress);
    watch.stop();
    const ms = await settled(core, namespace);
    log(`  ${name}: kwok finished every pod ${round(ms / 1000, 1)} s later`);
    if (CLEANUP) {
      const ms = await deleteNamespace(core, namespace);
      log(`  ${name}: namespace deleted in ${round(ms / 1000, 1)} s`);
    }
  }
}

/** The raw phase's figures over its repeats: the median of each. */
function medianPhase(runs: readonly PhaseResult[]): PhaseResult | undefined {
  if (runs.length === 0) return undefined;
  const of = (f: (r: PhaseResult) => number) => median(runs.map(f));
  return {
    podsPerS: of((r) => r.podsPerS),
    seconds: of((r) => r.seconds),
    writes: of((r) => r.writes),
    otherWrites: of((r) => r.otherWrites),
  };
}

/**
 * The ours phase's figures over its repeats: rates, times, writes and CPU are medians; peak
 * memory and the largest object the largest of any repeat; duplicate Pods the sum; the write
 * breakdown by verb and resource (`ours_writes`) is the first repeat's.
 */
function medianOurs(runs: readonly OursResult[]): OursResult | undefined {
  const first = runs[0];
  if (!first) return undefined;
  const of = (f: (r: OursResult) => number) => median(runs.map(f));
  const biggest = runs.reduce((a, b) => (b.maxObjectBytes > a.maxObjectBytes ? b : a));
  return {
    ...first,
    podsPerS: of((r) => r.podsPerS),
    allBoundS: of((r) => r.allBoundS),
    runS: of((r) => r.runS),
    firstPodMsP50: of((r) => r.firstPodMsP50),
    firstPodSamples: runs.flatMap((r) => r.firstPodSamples),
    writes: of((r) => r.writes),
    writesPerStep: of((r) => r.writesPerStep),
    rssMb: Math.max(...runs.map((r) => r.rssMb)),
    cpuMsPerStep: of((r) => r.cpuMsPerStep),
    cpuMsPerStepToBound: of((r) => r.cpuMsPerStepToBound),
    heapUsedPeakMb: Math.max(...runs.map((r) => r.heapUsedPeakMb)),
    heapUsedAfterMb: of((r) => r.heapUsedAfterMb),
    maxObjectBytes: biggest.maxObjectBytes,
    maxObject: biggest.maxObject,
    duplicatePods: runs.reduce((n, r) => n + r.duplicatePods, 0),
  };
}

async function main(): Promise<void> {
  const load = [loadavg()[0] ?? 0];
  log(
    `operator bench: ${NODES} nodes, ${PODS} pods, ${CONCURRENCY} requests in flight (load ${round(load[0] ?? 0, 2)})`,
  );
  const started = performance.now();
  const cluster = await startCluster({
    nodes: NODES,
    cpu: 32,
    memory: '128Gi',
    pods: 110,
    scheduler: true,
    schedulerClient: SCHEDULER_CLIENT,
    dir: process.env.OPERATOR_BENCH_DIR || undefined,
    log: (m) => log(`cluster: ${m}`),
  });
  try {
    log(`cluster with ${NODES} Ready nodes in ${round((performance.now() - started) / 1000, 1)} s`);
    // the plain client keeps its connections, as the operator's does (src/kube/reuse-connections.ts):
    // client-node alone opens a TLS connection per request, which would slow the raw baseline
    const kc = reuseConnections(cluster.kubeConfig());
    const nodeName = (i: number): string => `kwok-node-${i % NODES}`;

    let rawEq: PhaseResult | undefined;
    let sched: PhaseResult | undefined;
    let schedEq: PhaseResult | undefined;
    let mesos: MesosEndpointResult | undefined;
    if (PHASES.has('raw_eq')) {
      log(
        `raw at the operator's QPS: pods created with spec.nodeName, ${OURS_CLIENT.qps}/${OURS_CLIENT.burst}`,
      );
      rawEq = await phase(kc, 'raw-eq', nodeName, new TokenBucket(OURS_CLIENT.qps, OURS_CLIENT.burst));
      load.push(loadavg()[0] ?? 0);
    }
    if (PHASES.has('sched')) {
      log('kube-scheduler: pods created without nodeName, bound by kube-scheduler');
      sched = await phase(kc, 'sched', () => undefined);
      load.push(loadavg()[0] ?? 0);
    }
    // kube-scheduler's client takes 0 as "its default" (5), not "no limit": no such phase then
    if (PHASES.has('sched_eq') && OURS_CLIENT.qps > 0) {
      log(`kube-scheduler at the operator's QPS, ${OURS_CLIENT.qps}/${OURS_CLIENT.burst}`);
      await cluster.restartScheduler(OURS_CLIENT);
      schedEq = await phase(kc, 'sched-eq', () => undefined);
      await cluster.restartScheduler(SCHEDULER_CLIENT);
      load.push(loadavg()[0] ?? 0);
    }
    // raw and ours side by side, REPEAT times (raw, ours, raw, ours, ...): the figures are the
    // medians, and ours_vs_raw_runs the ratio of each pair
    const rawRuns: PhaseResult[] = [];
    const oursRuns: OursResult[] = [];
    for (let r = 1; r <= REPEAT; r++) {
      const suffix = r === 1 ? '' : `-${r}`;
      const of = REPEAT > 1 ? ` (${r} of ${REPEAT})` : '';
      if (PHASES.has('raw')) {
        log(`raw: pods created with spec.nodeName${of}`);
        rawRuns.push(await phase(kc, `raw${suffix}`, nodeName));
        load.push(loadavg()[0] ?? 0);
      }
      if (PHASES.has('ours')) {
        log(`ours: mesonctl operator, a ${PODS}-way foreach WorkflowRun (pods run ${POD_DURATION})${of}`);
        installCrds(cluster.kubectlPath, cluster.kubeconfigPath);
        const namespace = `bench-ours${suffix}`;
        const core = kc.makeApiClient(CoreV1Api);
        await freshNamespace(core, namespace);
        try {
          oursRuns.push(
            await measureOurs({
              kc,
              kubeconfigPath: cluster.kubeconfigPath,
              namespace,
              width: PODS,
              samples: FIRST_POD_SAMPLES,
              podDuration: POD_DURATION,
              logPath: join(cluster.dir, 'logs', `operator${suffix}.log`),
              timeoutMs: 3_600_000,
              log,
            }),
          );
        } finally {
          if (CLEANUP) {
            const ms = await deleteNamespace(core, namespace);
            log(`  ours: namespace deleted in ${round(ms / 1000, 1)} s`);
          }
        }
        load.push(loadavg()[0] ?? 0);
      }
    }
    const raw = medianPhase(rawRuns);
    const ours = medianOurs(oursRuns);
    let wide: WideForeachResult | undefined;
    if (PHASES.has('foreach100k')) {
      log(
        `foreach100k: a ${FOREACH_WIDTH}-way foreach, parallelism ${FOREACH_PARALLELISM} (pods run ${POD_DURATION})`,
      );
      installCrds(cluster.kubectlPath, cluster.kubeconfigPath);
      const namespace = 'bench-foreach';
      await freshNamespace(kc.makeApiClient(CoreV1Api), namespace);
      wide = await measureWideForeach({
        kc,
        kubeconfigPath: cluster.kubeconfigPath,
        namespace,
        width: FOREACH_WIDTH,
        parallelism: FOREACH_PARALLELISM,
        podDuration: POD_DURATION,
        logPath: join(cluster.dir, 'logs', 'operator-foreach.log'),
        // a finished Pod is deleted as its end is recorded: 100,000 finished Pods held by the
        // API server slowed it from 50 to 16 pods/s (docs/performance.md)
        args: [`--pod-gc=${FOREACH_POD_GC}`],
        timeoutMs: 4 * 3_600_000,
        log,
      });
      load.push(loadavg()[0] ?? 0);
    }

    if (PHASES.has('mesos')) {
      log(
        `mesos: mesonctl operator --mesos-endpoint, one framework launching ${MESOS_TASKS} tasks (pods run ${POD_DURATION})`,
      );
      installCrds(cluster.kubectlPath, cluster.kubeconfigPath);
      const namespace = 'bench-mesos';
      try {
        mesos = await measureMesosEndpoint({
          kc,
          kubeconfigPath: cluster.kubeconfigPath,
          namespace,
          tasks: MESOS_TASKS,
          podDuration: POD_DURATION,
          logPath: MESOS_LOG(cluster.dir),
          timeoutMs: 1_800_000,
          log,
        });
        log(
          `  mesos: ${MESOS_TASKS} task pods created in ${round(mesos.allStartingS, 2)} s (${round(mesos.tasksPerS)} tasks/s), running in ${round(mesos.allRunningS, 2)} s, finished in ${round(mesos.allFinishedS, 2)} s, ${mesos.accepts} ACCEPTs on ${mesos.hosts} hosts`,
        );
      } finally {
        if (CLEANUP) await deleteNamespace(kc.makeApiClient(CoreV1Api), namespace);
      }
      load.push(loadavg()[0] ?? 0);
    }

    const ratio = (a: number | undefined, b: number | undefined) =>
      a !== undefined && b !== undefined ? round(a / b, 2) : null;
    const result = {
      bench: 'operator',
      nodes: NODES,
      pods: PODS,
      client_concurrency: CONCURRENCY,
      raw_create_pods_per_s: raw ? round(raw.podsPerS) : null,
      raw_create_s: raw ? round(raw.seconds, 2) : null,
      raw_apiserver_writes: raw?.writes ?? null,
      kube_scheduler_pods_per_s: sched ? round(sched.podsPerS) : null,
      kube_scheduler_s: sched ? round(sched.seconds, 2) : null,
      kube_scheduler_apiserver_writes: sched?.writes ?? null,
      kube_scheduler_control_plane_writes: sched?.otherWrites ?? null,
      ours_pods_per_s: ours ? round(ours.podsPerS) : null,
      mesos_endpoint_tasks_per_s: mesos ? round(mesos.tasksPerS) : null,
      mesos_endpoint_tasks: mesos ? mesos.tasks : null,
      mesos_endpoint_all_starting_s: mesos ? round(mesos.allStartingS, 2) : null,
      mesos_endpoint_all_running_s: mesos ? round(mesos.allRunningS, 2) : null,
      mesos_endpoint_all_finished_s: mesos ? round(mesos.allFinishedS, 2) : null,
      mesos_endpoint_rss_mb: mesos ? Math.round(mesos.rssMb) : null,
      ours_all_bound_s: ours ? round(ours.allBoundS, 2) : null,
      ours_run_s: ours ? round(ours.runS, 2) : null,
      first_pod_ms_p50: ours ? Math.round(ours.firstPodMsP50) : null,
      first_pod_ms: ours?.firstPodSamples ?? null,
      apiserver_writes_per_step: ours ? round(ours.writesPerStep, 2) : null,
      ours_writes: ours?.writeSeries ?? null,
      rss_mb: ours ? Math.round(ours.rssMb) : null,
      ours_cpu_ms_per_step: ours ? round(ours.cpuMsPerStep, 2) : null,
      ours_cpu_ms_per_step_to_bound: ours ? round(ours.cpuMsPerStepToBound, 2) : null,
      ours_heap_used_peak_mb: ours ? Math.round(ours.heapUsedPeakMb) : null,
      ours_heap_used_after_mb: ours ? Math.round(ours.heapUsedAfterMb) : null,
      ours_vs_raw: ratio(ours?.podsPerS, raw?.podsPerS),
      // with OPERATOR_BENCH_REPEAT > 1: each repeat's figures, and the ratio within each pair
      repeats: REPEAT,
      raw_create_pods_per_s_runs: rawRuns.map((r) => round(r.podsPerS)),
      ours_pods_per_s_runs: oursRuns.map((r) => round(r.podsPerS)),
      ours_vs_raw_runs: oursRuns.flatMap((o, i) => {
        const r = rawRuns[i];
        return r ? [round(o.podsPerS / r.podsPerS, 2)] : [];
      }),
      ours_run_s_runs: oursRuns.map((r) => round(r.runS, 2)),
      ours_vs_kube_scheduler: ratio(ours?.podsPerS, sched?.podsPerS),
      // the same baselines given the operator's client limits (phases raw_eq, sched_eq)
      equal_qps: OURS_CLIENT.qps === 0 ? 'unlimited' : OURS_CLIENT.qps,
      equal_burst: OURS_CLIENT.burst,
      raw_equal_qps_pods_per_s: rawEq ? round(rawEq.podsPerS) : null,
      kube_scheduler_equal_qps_pods_per_s: schedEq ? round(schedEq.podsPerS) : null,
      ours_vs_raw_equal_qps: ratio(ours?.podsPerS, rawEq?.podsPerS),
      ours_vs_kube_scheduler_equal_qps: ratio(ours?.podsPerS, schedEq?.podsPerS),
      // each client's rate limits (raw: none, CONCURRENCY requests in flight)
      raw_qps: 'unlimited',
      kube_scheduler_qps: SCHEDULER_CLIENT.qps,
      kube_scheduler_burst: SCHEDULER_CLIENT.burst,
      ours_qps: OURS_CLIENT.qps === 0 ? 'unlimited' : OURS_CLIENT.qps,
      ours_burst: OURS_CLIENT.burst,
      max_object_bytes: ours?.maxObjectBytes ?? null,
      max_object: ours?.maxObject ?? null,
      duplicate_pods: ours?.duplicatePods ?? null,
      foreach100k_width: wide?.width ?? null,
      foreach100k_parallelism: wide?.parallelism ?? null,
      foreach100k_pod_gc: wide ? FOREACH_POD_GC : null,
      foreach100k_run_s: wide ? round(wide.runS, 1) : null,
      foreach100k_max_object_bytes: wide?.maxObjectBytes ?? null,
      foreach100k_max_object: wide?.maxObject ?? null,
      foreach100k_rss_mb: wide ? Math.round(wide.rssMb) : null,
      foreach100k_duplicate_pods: wide?.duplicatePods ?? null,
      pod_duration: POD_DURATION,
      load_avg_1m: load.map((l) => round(l, 2)),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await cluster.stop();
  }
}

await main();
