// The operator's phase of `npm run bench operator`: `mesonctl operator` as a child process (so
// its peak RSS is its own) on the bench's control plane, a wide foreach WorkflowRun, and what it
// costs: pods bound per second, run duration, first-pod latency, API writes per step, the
// largest object written, and whether any step instance got two pods.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { freePorts } from '../cluster/health.ts';
import {
  apiserverWrites,
  isControlPlaneWrite,
  type ProcessSample,
  peakRssBytes,
  processSample,
  watchPodsBound,
} from '../cluster/measure.ts';
import { waitFor } from '../cluster/wait.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GROUP = 'meson.dev';
const VERSION = 'v1alpha1';
export const OPERATOR_NAMESPACE = 'meson-system';

/** Installs deploy/crds with the cluster's kubectl (server-side) and waits until Established. */
export function installCrds(kubectlPath: string, kubeconfigPath: string): void {
  const run = (args: string[]): void => {
    const r = spawnSync(kubectlPath, args, {
      env: { ...process.env, KUBECONFIG: kubeconfigPath },
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  };
  run([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=meson-bench',
    '-f',
    join(ROOT, 'deploy', 'crds'),
  ]);
  run(['wait', '--for=condition=Established', '--timeout=120s', 'crd', '--all']);
}

export interface OperatorChild {
  pid: number;
  api: string;
  logPath: string;
  /** Peak RSS so far (bytes). */
  peakRss(): number;
  stop(): Promise<void>;
}

/** Starts `mesonctl operator` for `namespace` with the admin kubeconfig; resolves once it reconciles. */
export async function startOperator(opts: {
  kubeconfigPath: string;
  namespace: string;
  logPath: string;
  /** How long each step Pod runs under kwok. */
  podDuration: string;
  /** More operator flags (the Mesos endpoint phase's). */
  args?: string[];
}): Promise<OperatorChild> {
  const [port] = await freePorts(1);
  const api = `http://127.0.0.1:${port}`;
  const log = createWriteStream(opts.logPath);
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'src', 'cli', 'main.ts'),
      'operator',
      `--kubeconfig=${opts.kubeconfigPath}`,
      `--api-listen=127.0.0.1:${port}`,
      `--namespace=${opts.namespace}`,
      `--lease-namespace=${OPERATOR_NAMESPACE}`,
      `--state-namespace=${OPERATOR_NAMESPACE}`,
      `--pod-annotation=kwok.meson.dev/duration=${opts.podDuration}`,
      ...(opts.args ?? []),
      // extra operator flags for experiments (e.g. --pod-concurrency=64)
      ...(process.env.OPERATOR_BENCH_OPERATOR_ARGS ?? '').split(/\s+/).filter(Boolean),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        KUBECONFIG: '',
        MESON_LOG_LEVEL: 'warn',
        // the operator's own Node flags (e.g. --cpu-prof --cpu-prof-dir=DIR, --max-old-space-size=384)
        NODE_OPTIONS: process.env.OPERATOR_BENCH_NODE_OPTIONS ?? process.env.NODE_OPTIONS ?? '',
      },
    },
  );
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exit: string | undefined;
  child.on('exit', (code, signal) => {
    exit = `exited with ${code ?? signal}`;
  });
  const tail = (): string => {
    try {
      return readFileSync(opts.logPath, 'utf8').slice(-3000);
    } catch {
      return '';
    }
  };
  const pid = child.pid as number;
  const stop = async (): Promise<void> => {
    if (exit) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  };
  try {
    await waitFor(
      'the operator to reconcile',
      async () => {
        if (exit) throw new Error(`operator ${exit}: ${tail()}`);
        const res = await fetch(`${api}/readyz`).catch(() => undefined);
        if (!res) return undefined;
        const body = (await res.json()) as { informers?: string };
        return res.status === 200 && /reconciling/.test(body.informers ?? '') ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, describe: tail },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid, api, logPath: opts.logPath, peakRss: () => peakRssBytes(pid), stop };
}

export function foreachWorkflow(
  name: string,
  namespace: string,
  width: number,
  parallelism?: number,
): object {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Workflow',
    metadata: { name, namespace },
    spec: {
      definition: {
        foreach: {
          items: `range(${width})`,
          as: 'i',
          ...(parallelism ? { parallelism } : {}),
          do: { step: { name: 'work', container: { image: 'busybox', command: ['true'] } } },
        },
      },
    },
  };
}

export function oneStepWorkflow(name: string, namespace: string): object {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Workflow',
    metadata: { name, namespace },
    spec: { definition: { step: { name: 'one', container: { image: 'busybox', command: ['true'] } } } },
  };
}

interface RunStatus {
  phase?: string;
  message?: string;
  summary?: Record<string, unknown>;
}

export class MesonObjects {
  private readonly custom: CustomObjectsApi;
  readonly namespace: string;
  constructor(kc: KubeConfig, namespace: string) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.namespace = namespace;
  }

  async createWorkflow(body: object): Promise<void> {
    await this.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: 'workflows',
      body,
    });
  }

  /** Waits until the operator has made the Workflow's first version: a run created before fails. */
  async waitVersioned(workflow: string): Promise<void> {
    await waitFor(`Workflow ${workflow} to be versioned`, async () => {
      const wf = (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: 'workflows',
        name: workflow,
      })) as { status?: { latestVersion?: number } };
      return (wf.status?.latestVersion ?? 0) >= 1 ? true : undefined;
    });
  }

  async createRun(name: string, workflow: string): Promise<void> {
    await this.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: 'workflowruns',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'WorkflowRun',
        metadata: { name, namespace: this.namespace },
        spec: { workflow },
      },
    });
  }

  async runStatus(name: string): Promise<RunStatus> {
    const run = (await this.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: 'workflowruns',
      name,
    })) as { status?: RunStatus };
    return run.status ?? {};
  }

  /** Polls until the run has finished; rejects unless it Succeeded. */
  async waitSucceeded(name: string, timeoutMs: number): Promise<void> {
    let last: RunStatus = {};
    await waitFor(
      `run ${name} to finish`,
      async () => {
        last = await this.runStatus(name);
        if (last.phase === 'Failed' || last.phase === 'Stopped') {
          throw new Error(`run ${name} ${last.phase}: ${JSON.stringify(last).slice(0, 2000)}`);
        }
        return last.phase === 'Succeeded' ? true : undefined;
      },
      { timeoutMs, intervalMs: 500, describe: () => JSON.stringify(last).slice(0, 2000) },
    );
  }

  /** Every run and shard of the namespace with its size as JSON (what the API server stores). */
  async objectSizes(): Promise<{ kind: string; name: string; bytes: number }[]> {
    const out: { kind: string; name: string; bytes: number }[] = [];
    for (const plural of ['workflowruns', 'workflowrunshards', 'workflows', 'workflowversions']) {
      let _continue: string | undefined;
      do {
        const page = (await this.custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: this.namespace,
          plural,
          limit: 50,
          ...(_continue ? { _continue } : {}),
        })) as { items: { metadata: { name: string } }[]; metadata?: { continue?: string } };
        for (const item of page.items) {
          out.push({
            kind: plural,
            name: item.metadata.name,
            bytes: Buffer.byteLength(JSON.stringify(item)),
          });
        }
        _continue = page.metadata?.continue || undefined;
      } while (_continue);
    }
    return out.sort((a, b) => b.bytes - a.bytes);
  }
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Pods per step attempt key (run, instance, attempt), from a pod's annotations. */
export function attemptKey(annotations: Record<string, string>): string {
  return `${annotations['meson.dev/run']}/${annotations['meson.dev/step-instance']}#${annotations['meson.dev/attempt']}`;
}

export interface OursResult {
  width: number;
  podsPerS: number;
  /** Run created → every pod seen bound. */
  allBoundS: number;
  /** Run created → Succeeded. */
  runS: number;
  firstPodMsP50: number;
  firstPodSamples: number[];
  writes: number;
  writesPerStep: number;
  writeSeries: { what: string; count: number }[];
  rssMb: number;
  /** The operator's CPU time (user + system) per step, run created → Succeeded. */
  cpuMsPerStep: number;
  /** The same, run created → every pod bound. */
  cpuMsPerStepToBound: number;
  /** The larger V8 heap in use of two samples: when every pod was bound, and at Succeeded. */
  heapUsedPeakMb: number;
  /** V8 heap in use once the run Succeeded (garbage not yet collected included). */
  heapUsedAfterMb: number;
  maxObjectBytes: number;
  maxObject: string;
  /** Step attempts that got more than one Pod (must be 0). */
  duplicatePods: number;
  podsSeen: number;
}

/** The operator's namespace (for its Lease), then the operator for the bench's namespace. */
async function startBenchOperator(opts: {
  kc: KubeConfig;
  kubeconfigPath: string;
  namespace: string;
  podDuration: string;
  logPath: string;
  args?: string[];
}): Promise<OperatorChild> {
  await opts.kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } })
    .catch((e: unknown) => {
      if ((e as { code?: number }).code !== 409) throw e;
    });
  return startOperator({
    kubeconfigPath: opts.kubeconfigPath,
    namespace: opts.namespace,
    logPath: opts.logPath,
    podDuration: opts.podDuration,
    ...(opts.args ? { args: opts.args } : {}),
  });
}

/**
 * One operator, `samples` one-step runs one after another (first-pod latency on an idle
 * operator), then one `width`-way foreach run, timed until every pod is bound and until the run
 * Succeeded. The namespace must exist and be empty.
 */
export async function measureOurs(opts: {
  kc: KubeConfig;
  kubeconfigPath: string;
  namespace: string;
  width: number;
  samples: number;
  podDuration: string;
  logPath: string;
  timeoutMs: number;
  log: (m: string) => void;
}): Promise<OursResult> {
  const { kc, namespace, width, log } = opts;
  const operator = await startBenchOperator(opts);
  try {
    log(`  ours: operator pid ${operator.pid} reconciling (log ${opts.logPath})`);
    const meson = new MesonObjects(kc, namespace);

    await meson.createWorkflow(oneStepWorkflow('one', namespace));
    await meson.waitVersioned('one');
    const firstPod: number[] = [];
    for (let k = 0; k < opts.samples; k++) {
      const run = `one-${k}`;
      const w = await watchPodsBound(kc, {
        namespace,
        labelSelector: `meson.dev/run=${run}`,
        expected: 1,
        timeoutMs: 120_000,
      });
      const t = Date.now();
      await meson.createRun(run, 'one');
      const bound = await w.done;
      firstPod.push(([...bound.values()][0] as number) - t);
      await meson.waitSucceeded(run, 120_000);
    }
    log(`  ours: first pod after ${firstPod.join(', ')} ms`);

    const perAttempt = new Map<string, number>();
    const watch = await watchPodsBound(kc, {
      namespace,
      labelSelector: 'meson.dev/run=wide',
      expected: width,
      timeoutMs: opts.timeoutMs,
      onBound: (p) => {
        const key = attemptKey(p.annotations);
        perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
      },
    });
    await meson.createWorkflow(foreachWorkflow('wide', namespace, width));
    await meson.waitVersioned('wide');
    const writes = await apiserverWrites(kc, (s) => !isControlPlaneWrite(s));
    const progress = setInterval(() => log(`  ours: ${watch.bound()} of ${width} pods bound`), 10_000);
    // three scrapes of the operator's /metrics, not a sampler: each scrape costs the operator CPU
    // (its gauges walk the store), which would count against it
    const cpu0 = await processSample(operator.api);
    const t0 = performance.now();
    let allBoundS = 0;
    let atBound: ProcessSample;
    try {
      await meson.createRun('wide', 'wide');
      await watch.done;
      allBoundS = (performance.now() - t0) / 1000;
      atBound = await processSample(operator.api);
      log(`  ours: all ${width} pods bound after ${allBoundS.toFixed(2)} s`);
      await meson.waitSucceeded('wide', opts.timeoutMs);
    } finally {
      clearInterval(progress);
      watch.stop();
    }
    const runS = (performance.now() - t0) / 1000;
    const atEnd = await processSample(operator.api);
    const heapUsedPeak = Math.max(atBound.heapUsedBytes, atEnd.heapUsedBytes);
    const cpuMsPerStep = ((atEnd.cpuSeconds - cpu0.cpuSeconds) * 1000) / width;
    const cpuMsPerStepToBound = ((atBound.cpuSeconds - cpu0.cpuSeconds) * 1000) / width;
    // the last status write may land a moment after the phase is read
    await sleep(2_000);
    const delta = await writes.stop();
    const rss = operator.peakRss();
    log(
      `  ours: run Succeeded after ${runS.toFixed(2)} s; writes ${delta.counted}; peak RSS ${(rss / 2 ** 20).toFixed(0)} MB; operator CPU ${cpuMsPerStep.toFixed(2)} ms per step (${cpuMsPerStepToBound.toFixed(2)} until all bound); heap used max(at bound, after) ${(heapUsedPeak / 2 ** 20).toFixed(0)} MB, after ${(atEnd.heapUsedBytes / 2 ** 20).toFixed(0)} MB`,
    );
    for (const s of delta.series.slice(0, 8)) {
      log(
        `    ${s.verb} ${s.group || 'core'}/${s.resource}${s.subresource ? `/${s.subresource}` : ''}: ${s.count}`,
      );
    }
    const sizes = await meson.objectSizes();
    const biggest = sizes[0] ?? { kind: '-', name: '-', bytes: 0 };
    log(
      `  ours: largest object ${biggest.kind}/${biggest.name} ${biggest.bytes} bytes (${sizes.length} objects)`,
    );
    return {
      width,
      podsPerS: width / allBoundS,
      allBoundS,
      runS,
      firstPodMsP50: median(firstPod),
      firstPodSamples: firstPod,
      writes: delta.counted,
      writesPerStep: delta.counted / width,
      writeSeries: delta.series
        .filter((s) => !isControlPlaneWrite(s))
        .map((s) => ({
          what: `${s.verb} ${s.resource}${s.subresource ? `/${s.subresource}` : ''}`,
          count: s.count,
        })),
      rssMb: rss / 2 ** 20,
      cpuMsPerStep,
      cpuMsPerStepToBound,
      heapUsedPeakMb: heapUsedPeak / 2 ** 20,
      heapUsedAfterMb: atEnd.heapUsedBytes / 2 ** 20,
      maxObjectBytes: biggest.bytes,
      maxObject: `${biggest.kind}/${biggest.name}`,
      duplicatePods: [...perAttempt.values()].filter((n) => n > 1).length,
      podsSeen: [...perAttempt.values()].reduce((a, b) => a + b, 0),
    };
  } finally {
    await operator.stop();
  }
}

export interface WideForeachResult {
  width: number;
  parallelism: number;
  /** Run created → Succeeded. */
  runS: number;
  /** Largest run, shard, workflow or version seen, sampled during the run and after it. */
  maxObjectBytes: number;
  maxObject: string;
  rssMb: number;
  /** Step attempts that got more than one Pod (must be 0). */
  duplicatePods: number;
}

/**
 * One operator and one `width`-way foreach with `parallelism` iterations at once (the issue's
 * foreach100k: 100,000 and 2,000), timed to Succeeded. Object sizes are sampled every 30 s while
 * it runs (a shard is largest mid-run, before its instances are compacted). The namespace must
 * exist and be empty.
 */
export async function measureWideForeach(opts: {
  kc: KubeConfig;
  kubeconfigPath: string;
  namespace: string;
  width: number;
  parallelism: number;
  podDuration: string;
  logPath: string;
  timeoutMs: number;
  log: (m: string) => void;
  /** More operator flags (the phase's --pod-gc). */
  args?: string[];
}): Promise<WideForeachResult> {
  const { kc, namespace, width, parallelism, log } = opts;
  const operator = await startBenchOperator(opts);
  try {
    const meson = new MesonObjects(kc, namespace);
    await meson.createWorkflow(foreachWorkflow('huge', namespace, width, parallelism));
    await meson.waitVersioned('huge');
    const perAttempt = new Map<string, number>();
    const watch = await watchPodsBound(kc, {
      namespace,
      labelSelector: 'meson.dev/run=huge',
      expected: width,
      timeoutMs: opts.timeoutMs,
      onBound: (p) => {
        const key = attemptKey(p.annotations);
        perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
      },
    });
    let biggest = { kind: '-', name: '-', bytes: 0 };
    const sample = async () => {
      const top = (await meson.objectSizes())[0];
      if (top && top.bytes > biggest.bytes) biggest = top;
    };
    let sampling = Promise.resolve();
    const sampler = setInterval(() => {
      sampling = sampling.then(sample).catch(() => {});
      log(`  foreach: ${watch.bound()} of ${width} pods bound; largest object so far ${biggest.bytes} bytes`);
    }, 30_000);
    const t0 = performance.now();
    try {
      await meson.createRun('huge', 'huge');
      await meson.waitSucceeded('huge', opts.timeoutMs);
    } finally {
      clearInterval(sampler);
      watch.stop();
    }
    const runS = (performance.now() - t0) / 1000;
    await sampling;
    await sample();
    const rss = operator.peakRss();
    log(
      `  foreach: ${width}-way (parallelism ${parallelism}) Succeeded after ${runS.toFixed(1)} s; largest object ${biggest.kind}/${biggest.name} ${biggest.bytes} bytes; peak RSS ${(rss / 2 ** 20).toFixed(0)} MB`,
    );
    return {
      width,
      parallelism,
      runS,
      maxObjectBytes: biggest.bytes,
      maxObject: `${biggest.kind}/${biggest.name}`,
      rssMb: rss / 2 ** 20,
      duplicatePods: [...perAttempt.values()].filter((n) => n > 1).length,
    };
  } finally {
    await operator.stop();
  }
}
