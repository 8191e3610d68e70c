// MesonClient on a cluster, through KUBECONFIG: the same verbs as against a server, done on the
// custom resources the operator reconciles (Workflow, WorkflowRun and the run's
// WorkflowRunShards) and on the step Pods' logs. Nothing here needs the operator's REST API: what
// a user may do is what their RBAC lets them do to those objects.
//
// Reads are single list/get calls (no informers: a CLI lives for one command); writes carry the
// resourceVersion they read, so a concurrent change answers a conflict instead of being lost.
import { PassThrough } from 'node:stream';
import { CoreV1Api, KubeConfig, Log, type V1Pod } from '@kubernetes/client-node';
import { attemptOf, stepPodSelector, stepPods } from '../api/pod-logs.ts';
import { runObject } from '../api/routes/runs.ts';
import { checkRunStartWith } from '../controller/run-check.ts';
import type { Workflow, WorkflowRun, WorkflowVersion } from '../crds/index.ts';
import { INITIATOR_TYPES, RUN_PHASES } from '../crds/run.ts';
import { INSTANCE_ANNOTATION, labelValue, MAIN_CONTAINER } from '../launchers/kubernetes-pod.ts';
import { httpStatus, type KubeApi, type KubeObject, type KubeResource, kubeApi } from '../store/kube-api.ts';
import { instancesOfShards, RUN_UID_LABEL, SHARD_RESOURCE } from '../store/kubernetes.ts';
import { decodeToken, encodeToken } from '../store/paging.ts';
import { WORKFLOW_LABEL } from '../versions/index.ts';
import {
  ClientError,
  type MesonClient,
  type RestartRequest,
  type RunEvent,
  type RunListQuery,
  type RunObject,
} from './client.ts';

const GROUP = 'meson.dev';
const VERSION = 'v1alpha1';
const res = (plural: string): KubeResource => ({ group: GROUP, version: VERSION, plural });
const WORKFLOWS = res('workflows');
const VERSIONS = res('workflowversions');
const RUNS = res('workflowruns');
const ENDED = new Set(['Succeeded', 'Failed', 'Stopped']);
const INITIATORS = new Set<string>(INITIATOR_TYPES);
const PHASES = new Set<string>(RUN_PHASES);

/** The error a verb prints, with a code like the REST API's so scripts see the same codes. */
function clientError(err: unknown, what: string): ClientError {
  if (err instanceof ClientError) return err;
  const status = httpStatus(err) ?? 0;
  const body = (err as { body?: unknown }).body;
  let message = err instanceof Error ? err.message : String(err);
  try {
    const parsed = typeof body === 'string' ? JSON.parse(body) : body;
    if (parsed && typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // not a Status
  }
  const code =
    status === 404
      ? 'API_NOT_FOUND'
      : status === 409
        ? 'API_CONFLICT'
        : status === 400 || status === 422
          ? 'API_INVALID'
          : status === 401 || status === 403
            ? 'API_FORBIDDEN'
            : status === 0
              ? 'CLI_UNREACHABLE'
              : `HTTP_${status}`;
  return new ClientError(code, status, `${what}: ${message}`, { cause: err });
}

/** The keyset of a page's last run; the token format is the stores' (store/paging.ts). */
function decodeRunToken(token: string): [string, string] {
  let parts: unknown[] = [];
  try {
    parts = decodeToken(token);
  } catch {
    // refused below, as every token this client did not give
  }
  if (parts.length === 2 && parts.every((x) => typeof x === 'string')) return parts as [string, string];
  throw new ClientError('API_BAD_REQUEST', 400, 'continue: not a token this client gave');
}

/** Newest first: creationTimestamp descending, then name (a stable order for keyset paging). */
function newestFirst(a: RunObject, b: RunObject): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? 1 : -1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** The MesonClient of `mesonctl ... --kube`: the operator's resources through a kubeconfig. */
export class KubeClient implements MesonClient {
  readonly where: string;
  private readonly api: KubeApi;
  private readonly core: CoreV1Api;
  private readonly kc: KubeConfig;
  private readonly now: () => number;
  private readonly versionWaitMs: number;

  constructor(kc: KubeConfig, opts: { api?: KubeApi; now?: () => number; versionWaitMs?: number } = {}) {
    this.kc = kc;
    this.api = opts.api ?? kubeApi(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.now = opts.now ?? Date.now;
    this.versionWaitMs = opts.versionWaitMs ?? 15_000;
    this.where = `cluster ${kc.getCurrentContext() || kc.getCurrentCluster()?.server || '(in-cluster)'}`;
  }

  /** From a kubeconfig file, or KUBECONFIG / ~/.kube/config / in-cluster. */
  static fromKubeconfig(file: string | undefined, context?: string): KubeClient {
    const kc = new KubeConfig();
    try {
      if (file) kc.loadFromFile(file);
      else kc.loadFromDefault();
      if (context) kc.setCurrentContext(context);
    } catch (err) {
      throw new ClientError('CLI_BAD_SERVER', 0, `kubeconfig: ${(err as Error).message}`, { cause: err });
    }
    if (!kc.getCurrentCluster()) {
      throw new ClientError(
        'CLI_BAD_SERVER',
        0,
        'kubeconfig: no current cluster (set KUBECONFIG or --kubeconfig)',
      );
    }
    return new KubeClient(kc);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw clientError(err, what);
    }
  }

  async applyWorkflow(ns: string, wf: Workflow): Promise<{ created: boolean; object: Workflow }> {
    const name = wf.metadata.name ?? '';
    const body = { ...wf, metadata: { ...wf.metadata, namespace: ns } } as unknown as KubeObject;
    let cur: KubeObject | undefined;
    try {
      cur = await this.api.get(WORKFLOWS, ns, name);
    } catch (err) {
      if (httpStatus(err) !== 404) throw clientError(err, `workflow ${ns}/${name}`);
    }
    if (!cur) {
      const created = await this.call(`create workflow ${ns}/${name}`, () =>
        this.api.create(WORKFLOWS, ns, body),
      );
      return { created: true, object: created as unknown as Workflow };
    }
    const next = {
      ...body,
      metadata: { ...cur.metadata, labels: wf.metadata.labels, annotations: wf.metadata.annotations },
    } as KubeObject;
    const replaced = await this.call(`replace workflow ${ns}/${name}`, () =>
      this.api.replace(WORKFLOWS, ns, name, next),
    );
    return { created: false, object: replaced as unknown as Workflow };
  }

  async patchWorkflowSpec(ns: string, name: string, patch: Record<string, unknown>): Promise<Workflow> {
    const cur = await this.call(`workflow ${ns}/${name}`, () => this.api.get(WORKFLOWS, ns, name));
    const next = { ...cur, spec: { ...(cur.spec as object), ...patch } };
    return (await this.call(`update workflow ${ns}/${name}`, () =>
      this.api.replace(WORKFLOWS, ns, name, next),
    )) as unknown as Workflow;
  }

  /**
   * The run a server would refuse with 422 is refused here too, before anything is created.
   * Versions are the operator's to make: after an apply, this waits (up to `versionWaitMs`) for
   * the operator to observe the Workflow's generation, so the check and the run see the new
   * version, not the one before.
   */
  private async checkStart(
    ns: string,
    workflow: string,
    req: Parameters<typeof checkRunStartWith>[2],
  ): Promise<void> {
    const deadline = this.now() + this.versionWaitMs;
    let wf: Workflow;
    let versions: WorkflowVersion[];
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      wf = (await this.call(`workflow ${ns}/${workflow}`, () =>
        this.api.get(WORKFLOWS, ns, workflow),
      )) as unknown as Workflow;
      versions = (
        await this.call(`versions of ${ns}/${workflow}`, () =>
          this.api.list(VERSIONS, ns, { labelSelector: `${WORKFLOW_LABEL}=${labelValue(workflow)}` }),
        )
      ).items as unknown as WorkflowVersion[];
      const generation = (wf.metadata as { generation?: number }).generation ?? 0;
      const observed = wf.status?.observedGeneration ?? 0;
      if ((versions.length > 0 && observed >= generation) || this.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, delay));
    }
    if (versions.length === 0) {
      throw new ClientError(
        'API_UNAVAILABLE',
        503,
        `workflow "${ns}/${workflow}" has no version after ${this.versionWaitMs / 1000} s: is \`mesonctl operator\` running and serving namespace ${ns}?`,
      );
    }
    const issues = checkRunStartWith(wf, versions, req, this.now());
    if (issues.length > 0) {
      throw new ClientError(
        'API_INVALID',
        422,
        `the run cannot start: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      );
    }
  }

  async startRun(
    ns: string,
    workflow: string,
    req: { parameters?: Record<string, unknown>; version?: number; labels?: Record<string, string> },
  ): Promise<RunObject> {
    const parameters = req.parameters
      ? Object.entries(req.parameters).map(([name, value]) => ({ name, value }))
      : undefined;
    await this.checkStart(ns, workflow, {
      ...(req.version !== undefined ? { version: req.version } : {}),
      ...(parameters ? { parameters: parameters as never } : {}),
    });
    const run = runObject(
      ns,
      workflow,
      {
        ...(req.version !== undefined ? { version: req.version } : {}),
        ...(parameters ? { parameters: parameters as never } : {}),
        initiator: { type: 'manual' },
      },
      req.labels,
    );
    return (await this.call(`create run of ${ns}/${workflow}`, () =>
      this.api.create(RUNS, ns, run as unknown as KubeObject),
    )) as unknown as RunObject;
  }

  async listRuns(ns: string, q: RunListQuery): Promise<{ items: RunObject[]; continue?: string }> {
    if (q.phase !== undefined && !PHASES.has(q.phase))
      throw new ClientError('API_BAD_REQUEST', 400, `phase: expected one of ${[...PHASES].join(', ')}`);
    if (q.initiator !== undefined && !INITIATORS.has(q.initiator))
      throw new ClientError(
        'API_BAD_REQUEST',
        400,
        `initiator: expected one of ${[...INITIATORS].join(', ')}`,
      );
    const selectors = [
      q.labelSelector,
      q.workflow ? `${WORKFLOW_LABEL}=${labelValue(q.workflow)}` : undefined,
    ]
      .filter(Boolean)
      .join(',');
    const all: RunObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(`runs in ${ns}`, () =>
        this.api.list(RUNS, ns, {
          limit: 500,
          ...(selectors ? { labelSelector: selectors } : {}),
          ...(token ? { continue: token } : {}),
        }),
      );
      all.push(...(page.items as unknown as RunObject[]));
      token = page.metadata.continue || undefined;
    } while (token);
    const after = q.createdAfter ? Date.parse(q.createdAfter) : undefined;
    const before = q.createdBefore ? Date.parse(q.createdBefore) : undefined;
    const kept = all
      .filter((r) => q.phase === undefined || (r.status?.phase ?? 'Pending') === q.phase)
      .filter((r) => q.initiator === undefined || (r.spec.initiator?.type ?? 'manual') === q.initiator)
      .filter((r) => {
        const t = Date.parse(r.metadata.creationTimestamp ?? '');
        return (after === undefined || t >= after) && (before === undefined || t < before);
      })
      .sort(newestFirst);
    let start = 0;
    if (q.continue) {
      const [ts, name] = decodeRunToken(q.continue);
      start = kept.findIndex(
        (r) => newestFirst(r, { metadata: { creationTimestamp: ts, name } } as RunObject) > 0,
      );
      if (start < 0) start = kept.length;
    }
    const limit = q.limit ?? 100;
    const items = kept.slice(start, start + limit);
    const last = items.at(-1);
    return {
      items,
      ...(start + limit < kept.length && last
        ? { continue: encodeToken([last.metadata.creationTimestamp ?? '', last.metadata.name]) }
        : {}),
    };
  }

  /** The run with every step instance: from its shards (the store's per-instance records). */
  async getRun(ns: string, name: string): Promise<RunObject> {
    const run = (await this.call(`run ${ns}/${name}`, () =>
      this.api.get(RUNS, ns, name),
    )) as unknown as RunObject;
    const uid = (run.metadata as { uid?: string }).uid;
    if (!uid) return run;
    const shards = await this.call(`shards of run ${ns}/${name}`, () =>
      this.api.list(SHARD_RESOURCE, ns, { labelSelector: `${RUN_UID_LABEL}=${uid}` }),
    );
    const steps = instancesOfShards(shards.items);
    if (steps.length === 0) return run;
    return { ...run, status: { ...(run.status ?? {}), steps } as WorkflowRun['status'] } as RunObject;
  }

  /** The Pods of a step instance's attempts, oldest first (the API's own matching: pod-logs.ts). */
  private async podsOf(ns: string, run: string, step: string): Promise<V1Pod[]> {
    const list = await this.call(`pods of ${ns}/${run}`, () =>
      this.core.listNamespacedPod({ namespace: ns, labelSelector: stepPodSelector(run) }),
    );
    return stepPods(list.items, run, step);
  }

  /**
   * A step's log from its Pod (`kubectl logs`). A Pod keeps one log, stdout and stderr
   * interleaved as the container wrote them, so every `stream` reads that one log. With
   * follow, chunks arrive until the container ends.
   */
  async *logs(
    ns: string,
    run: string,
    step: string,
    opts: { stream?: 'stdout' | 'stderr' | 'all'; follow?: boolean; attempt?: number },
  ): AsyncIterable<string> {
    const pods = await this.podsOf(ns, run, step);
    const pod =
      opts.attempt !== undefined ? pods.filter((p) => attemptOf(p) === opts.attempt).at(-1) : pods.at(-1);
    const podName = pod?.metadata?.name;
    if (!podName) {
      throw new ClientError(
        'API_NOT_FOUND',
        404,
        `no pod for step "${step}" of run ${ns}/${run}${opts.attempt ? ` attempt ${opts.attempt}` : ''} (not started, a noop or subworkflow step, or deleted by retention)`,
      );
    }
    if (!opts.follow) {
      const text = await this.call(`logs of pod ${ns}/${podName}`, () =>
        this.core.readNamespacedPodLog({ namespace: ns, name: podName, container: MAIN_CONTAINER }),
      );
      if (text) yield text;
      return;
    }
    const out = new PassThrough();
    const log = new Log(this.kc);
    const req = await this.call(`logs of pod ${ns}/${podName}`, () =>
      log.log(ns, podName, MAIN_CONTAINER, out, { follow: true }),
    );
    const decoder = new TextDecoder();
    try {
      for await (const chunk of out) yield decoder.decode(chunk as Uint8Array, { stream: true });
    } finally {
      req.abort();
    }
  }

  /**
   * The run's changes until it ends. It polls (250 ms, doubling to 2 s) the run and its shards
   * rather than watching them: a CLI follows one run, and a poll reads the steps whole.
   */
  async *watchRun(ns: string, run: string): AsyncIterable<RunEvent> {
    const seen = new Map<string, string>();
    let backoff = 250;
    for (;;) {
      let cur: RunObject;
      try {
        cur = await this.getRun(ns, run);
      } catch (err) {
        if (err instanceof ClientError && err.status === 404) {
          yield { type: 'DELETED', object: { metadata: { name: run, namespace: ns } } as RunObject };
          return;
        }
        throw err;
      }
      for (const s of (cur.status?.steps ?? []) as { id: string; phase: string }[]) {
        if (seen.get(s.id) === s.phase) continue;
        yield { type: seen.has(s.id) ? 'MODIFIED' : 'ADDED', step: s };
        seen.set(s.id, s.phase);
      }
      yield { type: 'MODIFIED', object: cur };
      if (ENDED.has(cur.status?.phase ?? '')) return;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  async stopRun(ns: string, run: string): Promise<RunObject> {
    const cur = (await this.call(`run ${ns}/${run}`, () =>
      this.api.get(RUNS, ns, run),
    )) as unknown as RunObject;
    const phase = cur.status?.phase;
    if (phase && ENDED.has(phase)) {
      throw new ClientError('API_CONFLICT', 409, `run "${run}" already ended (${phase}): nothing to stop`);
    }
    const next = { ...cur, spec: { ...cur.spec, stop: true } };
    return (await this.call(`stop run ${ns}/${run}`, () =>
      this.api.replace(RUNS, ns, run, next as unknown as KubeObject),
    )) as unknown as RunObject;
  }

  async restartRun(ns: string, run: string, req: RestartRequest): Promise<RunObject> {
    const prev = (await this.call(`run ${ns}/${run}`, () =>
      this.api.get(RUNS, ns, run),
    )) as unknown as RunObject;
    const from = req.from ?? 'failed';
    const phase = prev.status?.phase;
    if (from === 'failed' && phase !== 'Failed' && phase !== 'Stopped') {
      throw new ClientError(
        'API_CONFLICT',
        409,
        `run "${run}" is ${phase ?? 'not started'}: only a Failed or Stopped run can be restarted from failed`,
      );
    }
    if (from === 'step' && !ENDED.has(phase ?? '')) {
      throw new ClientError(
        'API_CONFLICT',
        409,
        `run "${run}" is ${phase ?? 'not started'}: only a finished run can be restarted from a step`,
      );
    }
    const parameters = req.parameters
      ? Object.entries(req.parameters).map(([name, value]) => ({ name, value }))
      : prev.spec.parameters;
    // "active": no version, so the operator takes the one a new run would take
    const version =
      req.version === 'active' ? undefined : (req.version ?? (prev.status as { version?: number })?.version);
    await this.checkStart(ns, prev.spec.workflow, {
      ...(version !== undefined ? { version } : {}),
      parameters: (req.parameters ? parameters : []) as never,
      ...(from !== 'beginning' ? { base: (prev.status?.parameters ?? {}) as Record<string, unknown> } : {}),
      ...(req.step !== undefined ? { fromStep: req.step } : {}),
    });
    const next = runObject(ns, prev.spec.workflow, {
      ...(version !== undefined ? { version } : {}),
      ...(parameters ? { parameters: parameters as never } : {}),
      initiator: { type: 'restart' },
      restartOf: { run, from, ...(req.step !== undefined ? { step: req.step } : {}) },
    });
    return (await this.call(`create restart of ${ns}/${run}`, () =>
      this.api.create(RUNS, ns, next as unknown as KubeObject),
    )) as unknown as RunObject;
  }

  backfill(): Promise<{ backfill: string; runs: string[] }> {
    return Promise.reject(
      new ClientError(
        'CLI_UNSUPPORTED',
        0,
        'backfill is made by the server (it numbers, orders and throttles the runs): use --server with the REST API, not --kube',
      ),
    );
  }

  logLocation(ns: string, run: string, step: string): string {
    return `kubectl logs -n ${ns} -l ${stepPodSelector(run)} -c ${MAIN_CONTAINER} (pod annotation ${INSTANCE_ANNOTATION}=${step})`;
  }
}
