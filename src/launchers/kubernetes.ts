// The Kubernetes launcher: every step attempt is one Pod, bound by spec.nodeName to the node our
// scheduler chose (kube-scheduler is bypassed). Writes are one create per launch (a repeated
// create of the same launch record finds its Pod: 409 is success) and one delete per kill; all
// status comes from ONE shared Pod informer over the Pods this operator manages, not a watch per
// Pod. See kubernetes-pod.ts for the Pod itself and how its status is read.
import { CoreV1Api, type KubeConfig, type ListWatch, type V1Pod } from '@kubernetes/client-node';
import type { ExecutorStatus } from '../../executors/protocol.ts';
import { sendJson } from '../kube/send-json.ts';
import { trimmedListWatch } from '../kube/trimmed-list-watch.ts';
import {
  buildPod,
  labelValue,
  launchLinks,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  PodSpecError,
  type PodTemplateOptions,
  podName,
  podOutcome,
  RUN_ANNOTATION,
  RUN_UID_LABEL,
  trimPodForStatus,
} from './kubernetes-pod.ts';
import {
  type AttemptKey,
  type AttemptUpdate,
  attemptKey,
  type Launcher,
  type LaunchRecord,
  type LaunchRequest,
} from './types.ts';

/** Pod create/delete requests in flight by default (--pod-concurrency). */
export const DEFAULT_POD_CONCURRENCY = 64;

export interface LauncherLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface KubernetesLauncherOptions extends PodTemplateOptions {
  kubeConfig: KubeConfig;
  onUpdate: (u: AttemptUpdate) => void;
  newLaunchId: () => string;
  now?: () => number;
  logger?: LauncherLogger;
  /** Grace period of the delete that kills an attempt (default: the Pod's own, 30 s). */
  killGracePeriodSeconds?: number;
  /** Concurrent create/delete requests (default 64: 16 held the operator to 43 pods/s where 64 reached 74, docs/performance.md). */
  maxInFlight?: number;
  /**
   * Namespaces whose Pods the launcher watches (one informer each); absent or empty: all. An
   * operator serving some namespaces sees only their step Pods (and its Mesos task namespace's).
   */
  namespaces?: string[];
  /**
   * Deletes each finished step Pod once its attempt is settled (its end committed), as Argo's
   * podGC OnPodCompletion / OnPodSuccess: `succeededOnly` keeps failed Pods (and their logs),
   * `delayMs` keeps every Pod that long after its end (--pod-gc-delay). Absent: Pods stay until
   * their run is deleted or its Pods are collected (pod-gc.ts).
   */
  finishedPodGc?: { succeededOnly: boolean; delayMs: number };
  /**
   * What the Pod cache keeps of each Pod besides what the launcher reads (trimPodForStatus), for
   * listeners that read more (addPodListener): the node offer source's capacity fields, when
   * it counts the step Pods from this informer instead of watching them a second time.
   */
  alsoKeep?: (pod: V1Pod) => V1Pod;
}

/** Pod GC's view of a finished attempt's Pod. */
interface FinishedPod {
  namespace: string;
  pod: string;
}

interface Watched {
  key: AttemptKey;
  record: LaunchRecord;
  req: LaunchRequest | undefined;
  reportedRunning: boolean;
  done: boolean;
  killed: boolean;
  /** The create request is in flight (a kill waits for it). */
  creating: boolean;
}

/** Receives the Pod informer's events (addPodListener). */
export interface PodListener {
  onPod(pod: V1Pod): void;
  onPodDeleted(pod: V1Pod): void;
}

const silent: LauncherLogger = { warn() {}, error() {} };

/** The API path of a namespace's Pods. */
function podsPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
}

function attemptId(k: AttemptKey): string {
  return `${k.namespace}/${k.run}/${k.instance}/${k.attempt}`;
}

/** The HTTP status of a client-node error, if any. */
export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  const c = typeof e?.code === 'number' ? e.code : e?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

/** The API server's message of a client-node error (its Status body), else the error's. */
export function errorText(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      const msg = (JSON.parse(body) as { message?: unknown }).message;
      if (typeof msg === 'string') return msg;
    } catch {
      // not JSON
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** Two trimmed copies of one Pod as one: metadata, annotations, spec and status merged. */
export function mergeTrimmed(a: V1Pod, b: V1Pod): V1Pod {
  const annotations = { ...a.metadata?.annotations, ...b.metadata?.annotations };
  const out: V1Pod = {
    metadata: {
      ...a.metadata,
      ...b.metadata,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
  };
  if (a.spec || b.spec) out.spec = { ...a.spec, ...b.spec } as V1Pod['spec'];
  if (a.status || b.status) out.status = { ...a.status, ...b.status };
  return out;
}

/** The informers map's key for one informer over all namespaces. */
const ALL_NAMESPACES = '*';

export class KubernetesLauncher implements Launcher {
  private readonly opts: KubernetesLauncherOptions;
  private readonly core: CoreV1Api;
  private readonly now: () => number;
  private readonly log: LauncherLogger;
  /** By `namespace/podName`. */
  private readonly watched = new Map<string, Watched>();
  /** By namespace (ALL_NAMESPACES: one for all). */
  private readonly informers = new Map<string, ListWatch<V1Pod>>();
  private synced: Promise<void> | undefined;
  private closed = false;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly listeners: PodListener[] = [];
  /** Finished Pods the GC policy deletes once settled, by attempt id (finishedPodGc). */
  private readonly collectable = new Map<string, FinishedPod>();
  /** Settled Pods waiting out the delay; one delay for all, so they fall due in order. */
  private readonly gcQueue: (FinishedPod & { at: number })[] = [];
  private gcTimer: NodeJS.Timeout | undefined;

  constructor(opts: KubernetesLauncherOptions) {
    this.opts = opts;
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.now = opts.now ?? Date.now;
    this.log = opts.logger ?? silent;
  }

  /**
   * Starts the Pod informers (one for all namespaces, or one per namespace in `namespaces`);
   * resolves once they have listed the existing Pods. Idempotent.
   */
  start(): Promise<void> {
    if (this.synced) return this.synced;
    const labelSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
    const scopes: (string | undefined)[] = this.opts.namespaces?.length
      ? [...new Set(this.opts.namespaces)]
      : [undefined];
    const started: Promise<void>[] = [];
    for (const namespace of scopes) {
      const informer = trimmedListWatch<V1Pod>({
        kubeConfig: this.opts.kubeConfig,
        path: namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${namespace}/pods`,
        listPage: (page) =>
          namespace === undefined
            ? this.core.listPodForAllNamespaces({ labelSelector, ...page })
            : this.core.listNamespacedPod({ namespace, labelSelector, ...page }),
        trim: this.opts.alsoKeep
          ? (p) => mergeTrimmed(trimPodForStatus(p), this.opts.alsoKeep!(p))
          : trimPodForStatus,
        labelSelector,
      });
      informer.on('add', (p) => this.onPod(p));
      informer.on('update', (p) => this.onPod(p));
      informer.on('delete', (p) => this.onPodDeleted(p));
      for (const l of this.listeners) {
        informer.on('add', (p) => l.onPod(p));
        informer.on('update', (p) => l.onPod(p));
        informer.on('delete', (p) => l.onPodDeleted(p));
      }
      let restartDelayMs = 0;
      informer.on('error', (err) => {
        if (this.closed) return;
        restartDelayMs = Math.min(Math.max(restartDelayMs * 2, 500), 30_000);
        this.log.warn(
          { err: errorText(err), retryInMs: restartDelayMs, namespace: namespace ?? 'all' },
          'pod watch failed; relisting',
        );
        setTimeout(() => {
          if (!this.closed) informer.start().catch(() => {});
        }, restartDelayMs).unref();
      });
      informer.on('connect', () => {
        restartDelayMs = 0;
      });
      this.informers.set(namespace ?? ALL_NAMESPACES, informer);
      // a failed list or watch is reported through 'error' (and retried there); start() itself
      // only fails on a configuration without a cluster
      started.push(
        informer.start().catch((err) => {
          this.log.error({ err: errorText(err) }, 'pod informer did not start');
        }),
      );
    }
    this.synced = Promise.all(started).then(() => undefined);
    return this.synced;
  }

  /** The informer that holds a namespace's Pods (undefined before start(), or not watched). */
  private informerOf(namespace: string): ListWatch<V1Pod> | undefined {
    return this.informers.get(namespace) ?? this.informers.get(ALL_NAMESPACES);
  }

  /**
   * Also hands every event of the informer (Pods labelled app.kubernetes.io/managed-by=meson) to
   * `listener`: the Mesos endpoint's task Pods share this one informer. Call before start().
   */
  addPodListener(listener: PodListener): void {
    if (this.synced) throw new Error('addPodListener: the pod informer has started already');
    this.listeners.push(listener);
  }

  /** The informer's copy of a Pod (undefined if not seen, or before start()). */
  cachedPod(namespace: string, name: string): V1Pod | undefined {
    return this.informerOf(namespace)?.get(name, namespace);
  }

  /** Runs that have step Pods in the cache, as `[namespace, run, the Pod's phase]` (once per Pod). */
  *runsWithPods(): Iterable<[string, string, string | undefined]> {
    for (const pod of [...this.informers.values()].flatMap((i) => i.list())) {
      const run = pod.metadata?.annotations?.[RUN_ANNOTATION];
      if (run && pod.metadata?.namespace) yield [pod.metadata.namespace, run, pod.status?.phase];
    }
  }

  /**
   * Deletes the step Pods of a run, by its uid (one collection delete; pod GC of a finished run):
   * all of them, or those that succeeded. Pods made before they carried the uid label are left to
   * the run's owner reference.
   */
  async deleteRunPods(namespace: string, runUid: string, which: 'all' | 'succeeded' = 'all'): Promise<void> {
    await this.core.deleteCollectionNamespacedPod({
      namespace,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY},${RUN_UID_LABEL}=${labelValue(runUid)}`,
      ...(which === 'succeeded' ? { fieldSelector: 'status.phase=Succeeded' } : {}),
    });
  }

  prepare(req: LaunchRequest): LaunchRecord {
    const launchId = this.opts.newLaunchId();
    const launchedAt = this.now();
    if (req.step.type === 'noop') return { launchId, inProcess: true, launchedAt };
    return { launchId, launchedAt, pod: podName(req, launchId) };
  }

  launch(req: LaunchRequest, record: LaunchRecord): void {
    const key = attemptKey(req);
    if (record.inProcess) {
      this.completeNoop(key, record, req);
      return;
    }
    let pod: V1Pod;
    try {
      pod = buildPod(req, record, this.opts);
    } catch (err) {
      const code = err instanceof PodSpecError ? `${err.code}: ` : '';
      this.report({
        type: 'finished',
        key,
        status: this.failed(record, req.queuedAt, `${code}${(err as Error).message}`),
      });
      return;
    }
    const name = pod.metadata!.name!;
    record.pod = name;
    const w = this.watch(key, record, req);
    if (w.done) return;
    void this.create(w, pod);
  }

  adopt(key: AttemptKey, record: LaunchRecord, req: LaunchRequest): void {
    const k = attemptKey(key);
    if (record.inProcess) {
      this.completeNoop(k, record, req);
      return;
    }
    record.pod ??= podName(k, record.launchId);
    const id = `${k.namespace}/${record.pod}`;
    if (this.watched.has(id)) return;
    const w = this.watch(k, record, req);
    void this.start().then(
      () => {
        if (w.done || this.closed) return;
        const pod = this.informerOf(k.namespace)?.get(record.pod!, k.namespace);
        if (pod) {
          this.onPod(pod);
          return;
        }
        // persisted but never created (the previous process died in between): create it now,
        // under the same name, so that a create that did land is found instead (409)
        try {
          void this.create(w, buildPod(req, record, this.opts));
        } catch (err) {
          this.report({
            type: 'finished',
            key: k,
            status: this.failed(record, req.queuedAt, (err as Error).message),
          });
          this.forget(w);
        }
      },
      (err) => this.log.error({ err: errorText(err) }, 'pod informer did not start'),
    );
  }

  kill(key: AttemptKey, record: LaunchRecord): void {
    const k = attemptKey(key);
    if (record.inProcess) {
      const w = this.findNoop(k);
      if (w && !w.done) this.finish(w, this.failed(record, undefined, 'killed'));
      return;
    }
    const name = record.pod ?? podName(k, record.launchId);
    const w =
      this.watched.get(`${k.namespace}/${name}`) ?? this.watch(k, { ...record, pod: name }, undefined);
    if (w.done) return;
    w.killed = true;
    if (!w.creating) void this.deletePod(w);
  }

  /**
   * Deletes the attempt's finished Pod when the pod GC policy covers it (now, or after the
   * delay). Its end is committed, so no leader adopts the attempt again: the Pod is only its
   * record (and its log). A delete that fails is left to the run's collection when it ends.
   */
  settled(key: AttemptKey): void {
    const id = attemptId(key);
    const pod = this.collectable.get(id);
    if (!pod) return;
    this.collectable.delete(id);
    const delayMs = this.opts.finishedPodGc?.delayMs ?? 0;
    if (delayMs <= 0) {
      void this.deleteFinishedPod(pod);
      return;
    }
    this.gcQueue.push({ ...pod, at: this.now() + delayMs });
    this.armGc();
  }

  /** Finished Pods held for a delayed delete (tests, metrics). */
  get pendingPodDeletes(): number {
    return this.gcQueue.length + this.collectable.size;
  }

  close(): void {
    this.closed = true;
    if (this.gcTimer) clearTimeout(this.gcTimer);
    this.watched.clear();
    for (const i of this.informers.values()) void i.stop();
  }

  // --- internals ------------------------------------------------------------------------------

  private watch(key: AttemptKey, record: LaunchRecord, req: LaunchRequest | undefined): Watched {
    const id = `${key.namespace}/${record.pod}`;
    let w = this.watched.get(id);
    if (!w) {
      w = { key, record, req, reportedRunning: false, done: false, killed: false, creating: false };
      this.watched.set(id, w);
    }
    void this.start();
    return w;
  }

  private noops = new Map<string, Watched>();

  private findNoop(k: AttemptKey): Watched | undefined {
    return this.noops.get(attemptId(k));
  }

  /** Noop steps have no side effect: they complete in-process, without a Pod. */
  private completeNoop(key: AttemptKey, record: LaunchRecord, req: LaunchRequest): void {
    const id = attemptId(key);
    const w: Watched = {
      key,
      record,
      req,
      reportedRunning: true,
      done: false,
      killed: false,
      creating: false,
    };
    this.noops.set(id, w);
    queueMicrotask(() => {
      this.noops.delete(id);
      if (w.done || this.closed) return;
      const t = this.now();
      w.done = true;
      this.report({
        type: 'finished',
        key,
        status: {
          launchId: record.launchId,
          pid: 0,
          phase: 'Succeeded',
          exitCode: 0,
          milestones: { queued: req.queuedAt, launched: record.launchedAt, running: t, finished: t },
        },
      });
    });
  }

  /**
   * Runs `fn` (a Pod create or delete) within the launcher's `maxInFlight` requests. The Mesos
   * endpoint's task Pods share this budget with step Pods.
   */
  async slot<T>(fn: () => Promise<T>): Promise<T> {
    const max = this.opts.maxInFlight ?? DEFAULT_POD_CONCURRENCY;
    while (this.inFlight >= max) await new Promise<void>((r) => this.waiting.push(r));
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  private async create(w: Watched, pod: V1Pod): Promise<void> {
    w.creating = true;
    const namespace = w.key.namespace;
    for (let attempt = 1; ; attempt++) {
      try {
        // raw JSON: the generated client's model walk of the Pod and of its answer cost more
        // CPU than the rest of a launch, and the answer is not read (the informer sees the Pod)
        await this.slot(() => sendJson(this.opts.kubeConfig, 'POST', podsPath(namespace), pod));
        break;
      } catch (err) {
        const code = statusCode(err);
        if (code === 409) break; // this launch's Pod exists already: that is the point
        const transient = code === undefined || code === 429 || code >= 500;
        if (transient && attempt < 5 && !this.closed && !w.done) {
          await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
          continue;
        }
        w.creating = false;
        if (w.done) return;
        this.finish(
          w,
          this.failed(
            w.record,
            w.req?.queuedAt,
            `could not create pod ${pod.metadata?.name}: ${errorText(err)}`,
          ),
        );
        return;
      }
    }
    w.creating = false;
    if (w.killed) {
      void this.deletePod(w);
      return;
    }
    // the Pod exists: its links (a Spark driver's UI) are shown while the step runs
    const links = w.req ? launchLinks(w.req, pod.metadata!.name!, this.opts) : [];
    if (links.length > 0 && !w.done) this.report({ type: 'links', key: w.key, links });
    // the informer may have seen the Pod before this create returned
    const seen = this.informerOf(namespace)?.get(pod.metadata!.name!, namespace);
    if (seen) this.onPod(seen);
  }

  /**
   * Deletes a Pod by name within the in-flight budget (a kill, a lost Pod, pod GC), as raw JSON
   * like the create; `gracePeriodSeconds` is the API's query parameter, absent: the Pod's own.
   */
  private requestPodDelete(namespace: string, name: string, gracePeriodSeconds?: number): Promise<unknown> {
    const query = gracePeriodSeconds === undefined ? '' : `?gracePeriodSeconds=${gracePeriodSeconds}`;
    return this.slot(() =>
      sendJson(
        this.opts.kubeConfig,
        'DELETE',
        `${podsPath(namespace)}/${encodeURIComponent(name)}${query}`,
        undefined,
      ),
    );
  }

  private async deletePod(w: Watched): Promise<void> {
    const name = w.record.pod!;
    try {
      await this.requestPodDelete(w.key.namespace, name, this.opts.killGracePeriodSeconds);
    } catch (err) {
      if (statusCode(err) === 404) {
        if (!w.done) this.finish(w, this.failed(w.record, w.req?.queuedAt, 'killed'));
        return;
      }
      this.log.warn({ pod: `${w.key.namespace}/${name}`, err: errorText(err) }, 'could not delete pod');
    }
  }

  private onPod(pod: V1Pod): void {
    if (this.closed) return;
    const id = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const w = this.watched.get(id);
    if (!w || w.done) return;
    const out = podOutcome(pod, w.record, w.req?.queuedAt, this.now());
    switch (out.kind) {
      case 'pending':
        return;
      case 'running':
        if (!w.reportedRunning) {
          w.reportedRunning = true;
          this.report({ type: 'running', key: w.key, status: out.status });
        }
        return;
      case 'finished':
        if (w.killed && out.status.phase === 'Failed') out.status.message = `killed (${out.status.message})`;
        this.finish(w, out.status);
        return;
      case 'lost':
        if (w.killed) {
          this.finish(w, this.failed(w.record, w.req?.queuedAt, 'killed before it started'));
          return;
        }
        this.forget(w);
        // the rejected Pod stays Failed forever: remove it (the relaunch gets a new name)
        void this.deletePod({ ...w, done: true });
        this.report({ type: 'lost', key: w.key, message: out.message });
        return;
    }
  }

  private onPodDeleted(pod: V1Pod): void {
    if (this.closed) return;
    const id = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const w = this.watched.get(id);
    if (!w || w.done) return;
    const out = podOutcome(pod, w.record, w.req?.queuedAt, this.now());
    if (out.kind === 'finished') {
      this.onPod(pod);
      return;
    }
    if (w.killed) {
      this.finish(w, this.failed(w.record, w.req?.queuedAt, 'killed'));
      return;
    }
    if (out.kind === 'lost' || !w.reportedRunning) {
      this.forget(w);
      this.report({
        type: 'lost',
        key: w.key,
        message: 'the pod was deleted before it ran; placing it again',
      });
      return;
    }
    this.finish(
      w,
      this.failed(
        w.record,
        w.req?.queuedAt,
        'the pod was deleted while it ran (by someone else, or with its node)',
      ),
    );
  }

  private failed(record: LaunchRecord, queuedAt: number | undefined, message: string): ExecutorStatus {
    return {
      launchId: record.launchId,
      pid: 0,
      phase: 'Failed',
      message,
      milestones: {
        ...(queuedAt !== undefined ? { queued: queuedAt } : {}),
        launched: record.launchedAt,
        finished: this.now(),
      },
    };
  }

  private armGc(): void {
    if (this.gcTimer || this.closed) return;
    const next = this.gcQueue[0];
    if (!next) return;
    this.gcTimer = setTimeout(
      () => {
        this.gcTimer = undefined;
        const now = this.now();
        while (this.gcQueue.length > 0 && this.gcQueue[0]!.at <= now)
          void this.deleteFinishedPod(this.gcQueue.shift()!);
        this.armGc();
      },
      Math.max(0, next.at - this.now()),
    ).unref();
  }

  private async deleteFinishedPod({ namespace, pod }: FinishedPod): Promise<void> {
    if (this.closed) return;
    try {
      // a Pod in a final phase is deleted at once, whatever its grace period: one write
      await this.requestPodDelete(namespace, pod);
    } catch (err) {
      if (statusCode(err) === 404) return;
      this.log.warn(
        { pod: `${namespace}/${pod}`, err: errorText(err) },
        'pod GC could not delete a finished pod',
      );
    }
  }

  private forget(w: Watched): void {
    w.done = true;
    this.watched.delete(`${w.key.namespace}/${w.record.pod}`);
  }

  private finish(w: Watched, status: ExecutorStatus): void {
    if (w.done) return;
    this.forget(w);
    // the step's own links replace the attempt's: keep the launch links (by name) in front
    if (status.links && w.req && w.record.pod) {
      const own = launchLinks(w.req, w.record.pod, this.opts);
      const names = new Set(own.map((l) => l.name));
      status.links = [...own, ...status.links.filter((l) => !names.has(l.name))];
    }
    const gc = this.opts.finishedPodGc;
    if (gc && w.record.pod && (!gc.succeededOnly || status.phase === 'Succeeded'))
      this.collectable.set(attemptId(w.key), { namespace: w.key.namespace, pod: w.record.pod });
    this.report({ type: 'finished', key: w.key, status });
  }

  private report(u: AttemptUpdate): void {
    if (this.closed) return;
    try {
      this.opts.onUpdate(u);
    } catch (err) {
      this.log.error({ err: errorText(err) }, 'attempt update handler failed');
    }
  }
}
