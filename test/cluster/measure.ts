// Measuring tools for benchmarks and scale tests on the test control plane: the API server's
// write count (from its own /metrics), a child process's peak memory, and a watch that times
// pods until each is bound to a node.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { type KubeConfig, Watch } from '@kubernetes/client-node';

/** Verbs of `apiserver_request_total` that change state (server-side apply is `APPLY`). */
export const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'APPLY', 'DELETE', 'DELETECOLLECTION']);

/** One series of `apiserver_request_total`, summed over response codes. */
export interface RequestCount {
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  count: number;
}

function labelsOf(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] as string] = m[2] as string;
  return labels;
}

/**
 * The write requests in a Prometheus text exposition of kube-apiserver, summed over codes,
 * one entry per verb/group/resource/subresource. Other metrics and read verbs are ignored.
 */
export function parseWriteRequests(exposition: string): RequestCount[] {
  const byKey = new Map<string, RequestCount>();
  for (const line of exposition.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const close = line.lastIndexOf('}');
    const value = Number(
      line
        .slice(close + 1)
        .trim()
        .split(' ')[0],
    );
    const l = labelsOf(line.slice('apiserver_request_total{'.length, close));
    const verb = l.verb ?? '';
    if (!WRITE_VERBS.has(verb) || !Number.isFinite(value)) continue;
    const entry = {
      verb,
      group: l.group ?? '',
      resource: l.resource ?? '',
      subresource: l.subresource ?? '',
    };
    const key = `${entry.verb} ${entry.group}/${entry.resource}/${entry.subresource}`;
    const seen = byKey.get(key);
    if (seen) seen.count += value;
    else byKey.set(key, { ...entry, count: value });
  }
  return [...byKey.values()];
}

/** GET a path of the API server with the kubeconfig's credentials; rejects on non-200. */
export async function apiserverGet(kc: KubeConfig, path: string): Promise<string> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const opts: import('node:https').RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, cluster.server), { ...opts, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(body)
          : reject(new Error(`GET ${path}: HTTP ${res.statusCode}: ${body.slice(0, 300)}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** What `apiserverWrites` measured between `start()` and `stop()`. */
export interface WriteDelta {
  /** Every write request, all resources. */
  total: number;
  /** Writes that `include` kept. */
  counted: number;
  /** Non-zero series, biggest first (what was written, for the report). */
  series: RequestCount[];
}

/**
 * Counts the API server's write requests between two scrapes of its /metrics
 * (`apiserver_request_total`, verbs in WRITE_VERBS). The metric has no user label, so
 * `include` picks the writes that belong to the component measured (for example: not the
 * pod status patches kwok makes, not node leases). Usage:
 *   const w = await apiserverWrites(kc); ...; const delta = await w.stop();
 */
export async function apiserverWrites(
  kc: KubeConfig,
  include: (s: RequestCount) => boolean = () => true,
): Promise<{ stop(): Promise<WriteDelta> }> {
  const scrape = async () => parseWriteRequests(await apiserverGet(kc, '/metrics'));
  const before = new Map(
    (await scrape()).map((s) => [`${s.verb} ${s.group}/${s.resource}/${s.subresource}`, s]),
  );
  return {
    async stop() {
      const series: RequestCount[] = [];
      for (const s of await scrape()) {
        const b = before.get(`${s.verb} ${s.group}/${s.resource}/${s.subresource}`)?.count ?? 0;
        if (s.count - b > 0) series.push({ ...s, count: s.count - b });
      }
      series.sort((a, b) => b.count - a.count);
      return {
        total: series.reduce((n, s) => n + s.count, 0),
        counted: series.filter(include).reduce((n, s) => n + s.count, 0),
        series,
      };
    },
  };
}

/** Writes made by others on the test control plane: kwok (pod and node status, node leases),
 * kube-controller-manager and kube-scheduler (pod bindings). */
export function isControlPlaneWrite(s: RequestCount): boolean {
  if (s.resource === 'nodes' || s.resource === 'leases') return true;
  if (s.resource === 'pods' && (s.subresource === 'status' || s.subresource === 'binding')) return true;
  return false;
}

/** Peak resident set size (VmHWM) in a /proc/<pid>/status text, in bytes. */
export function parseVmHwm(status: string): number {
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error('no VmHWM line in the process status');
  return Number(m[1]) * 1024;
}

/** Peak resident set size of a live process so far, in bytes (Linux /proc; read before it exits). */
export function peakRssBytes(pid: number): number {
  return parseVmHwm(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** The first sample of metric `name` (no labels, or any labels) in a Prometheus text exposition. */
export function parseMetric(exposition: string, name: string): number {
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`not a metric name: ${name}`);
  const sample = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm').exec(exposition);
  const value = Number(sample?.[1]);
  if (!sample || !Number.isFinite(value)) throw new Error(`no sample of ${name} in the exposition`);
  return value;
}

/** CPU time and memory of a meson process, read from its own /metrics (prom-client's process metrics). */
export interface ProcessSample {
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  /** V8 heap in use, bytes. */
  heapUsedBytes: number;
  /** Resident set now, bytes. */
  rssBytes: number;
}

/** Scrapes a meson process's /metrics (`api` is its base URL) for its CPU time and memory. */
export async function processSample(api: string): Promise<ProcessSample> {
  const res = await fetch(`${api}/metrics`);
  if (!res.ok) throw new Error(`GET ${api}/metrics: HTTP ${res.status}`);
  const text = await res.text();
  return {
    cpuSeconds: parseMetric(text, 'meson_process_cpu_seconds_total'),
    heapUsedBytes: parseMetric(text, 'meson_nodejs_heap_size_used_bytes'),
    rssBytes: parseMetric(text, 'meson_process_resident_memory_bytes'),
  };
}

export interface PodBindWatch {
  /** Resolves once `expected` distinct pods were seen with spec.nodeName; times per pod (ms since epoch). */
  done: Promise<Map<string, number>>;
  /** Bound pods seen so far. */
  bound(): number;
  /** Ends the watch (done then never settles). */
  stop(): void;
}

/**
 * Watches pods (of a namespace, or all with `namespace` undefined; optionally a label selector)
 * from now on and records when each is first seen with `spec.nodeName` (created bound, or bound
 * later by a scheduler). Start it before creating the pods. `onBound` sees every bound pod once.
 */
export async function watchPodsBound(
  kc: KubeConfig,
  options: {
    namespace?: string;
    labelSelector?: string;
    expected: number;
    timeoutMs: number;
    onBound?: (pod: {
      name: string;
      namespace: string;
      nodeName: string;
      annotations: Record<string, string>;
    }) => void;
  },
): Promise<PodBindWatch> {
  const bound = new Map<string, number>();
  const path = options.namespace ? `/api/v1/namespaces/${options.namespace}/pods` : '/api/v1/pods';
  let resolveDone!: (v: Map<string, number>) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<Map<string, number>>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  let stopped = false;
  let request: { abort(): void } | undefined;
  let resourceVersion: string | undefined;
  const timer = setTimeout(() => {
    finish();
    rejectDone(
      new Error(`only ${bound.size} of ${options.expected} pods bound after ${options.timeoutMs} ms`),
    );
  }, options.timeoutMs);
  const finish = (): void => {
    stopped = true;
    clearTimeout(timer);
    request?.abort();
  };
  const watch = new Watch(kc);
  const start = async (): Promise<void> => {
    const query: Record<string, string | boolean> = { allowWatchBookmarks: true };
    if (options.labelSelector) query.labelSelector = options.labelSelector;
    if (resourceVersion) query.resourceVersion = resourceVersion;
    request = await watch.watch(
      path,
      query,
      (type: string, obj: { metadata?: Record<string, unknown>; spec?: { nodeName?: string } }) => {
        const meta = (obj.metadata ?? {}) as {
          name?: string;
          namespace?: string;
          resourceVersion?: string;
          annotations?: Record<string, string>;
        };
        if (meta.resourceVersion) resourceVersion = meta.resourceVersion;
        if (type === 'BOOKMARK' || type === 'DELETED' || type === 'ERROR') return;
        const nodeName = obj.spec?.nodeName;
        const key = `${meta.namespace}/${meta.name}`;
        if (!nodeName || bound.has(key)) return;
        bound.set(key, Date.now());
        options.onBound?.({
          name: meta.name ?? '',
          namespace: meta.namespace ?? '',
          nodeName,
          annotations: meta.annotations ?? {},
        });
        if (bound.size >= options.expected) {
          finish();
          resolveDone(bound);
        }
      },
      (error?: unknown) => {
        // Watches end (server timeout, 410 is not expected within one measurement): resume.
        if (stopped) return;
        if (error) process.stderr.write(`pod watch ended: ${String(error)}; resuming\n`);
        setTimeout(() => void start().catch((e: unknown) => rejectDone(e as Error)), 100);
      },
    );
  };
  await start();
  return { done, bound: () => bound.size, stop: finish };
}
