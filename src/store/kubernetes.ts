// The operator's store: the AsyncStore port (./port.ts) on a kube-apiserver. See
// docs/operator.md, "Kubernetes store".
//
// Reads come from informers (./informer.ts): one per kind of the meson.dev group (all
// namespaces, or each of `namespaces`), one for WorkflowRunShards and one for the state
// ConfigMaps. Writes are plain API calls made by `transaction`, serialised (one commit at a
// time, in order) and written through to the cache.
//
// Where things live:
// - Workflow, WorkflowVersion, WorkflowRun, DataArtifact: their custom resources. Status goes
//   through the status subresource (never touches spec); updates carry resourceVersion
//   (optimistic concurrency, a conflict is STORE_CONFLICT). A write without resourceVersion
//   ("overwrite") takes the cached one and, on a conflict, re-reads and tries again.
// - Step instances and tasks: WorkflowRunShard objects owned by their run (ownerReference,
//   garbage-collected with it; deleting a run through the store also deletes them at once).
//   A shard holds at most `shardInstances` ids (default 100) and about `shardBytes` (default
//   512 KiB); an instance and its task share a shard, so a commit that changes N instances of
//   a run makes one write per changed shard, not N.
// - The run's own status stays small: the summary (counts by phase) the controller writes,
//   plus, when the controller lists no steps, the first `runStatusFailures` failed instances
//   (default 20) so that `kubectl describe mwfr` shows what failed; `status.steps` is cut to
//   fit `runStatusBytes` (default 256 KiB) with `summary.truncated: true`.
// - State (trigger cursors): one ConfigMap per key in `stateNamespace`, named
//   meson-state-<sha256(key)>, labelled meson.dev/state=true, holding {key, value (JSON)}.
// - No object is written above `maxObjectBytes` (default 768 KiB, under etcd's 1.5 MiB request
//   limit and the 1 MiB objects we promise): such a write fails with STORE_TOO_LARGE before it
//   is sent.
//
// Ownership: WorkflowVersions and WorkflowRuns are NOT owned by their Workflow. Deleting a
// Workflow keeps its versions (docs/rest-api.md: "delete (its versions stay)") and its runs:
// a pinned run (a restart) still runs from a version whose Workflow is gone (controller's
// loadVersion). Shards are owned by their run. No finalizers: nothing has to happen before a
// run or a Workflow is gone (pods and shards are collected through their owner references).
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION } from '../crds/common.ts';
import { cacheHistory, cacheRunIndex } from './history.ts';
import { Informer, type InformerOptions, rvNewer } from './informer.ts';
import { type KubeApi, type KubeObject, type KubeResource, kubeApi, toStoreError } from './kube-api.ts';
import { decodeToken, encodeToken, labelsMatch } from './paging.ts';
import {
  type AsyncStore,
  BatchRecorder,
  CommitError,
  type ObjectOp,
  type RecordOp,
  type RunHistory,
  type RunIndex,
  rejectFrom,
  type WriteBatch,
} from './port.ts';
import {
  type Change,
  KINDS,
  type Kind,
  type ListOptions,
  type ListResult,
  type ResourceObject,
  type StepInstanceRecord,
  type Stored,
  StoreError,
  type TaskRecord,
} from './types.ts';

const VERSION = 'v1alpha1';
const PLURALS: Record<Kind, string> = {
  Workflow: 'workflows',
  WorkflowVersion: 'workflowversions',
  WorkflowRun: 'workflowruns',
  DataArtifact: 'dataartifacts',
};
const resourceOf = (kind: Kind): KubeResource => ({
  group: API_GROUP,
  version: VERSION,
  plural: PLURALS[kind],
});
export const SHARD_RESOURCE: KubeResource = {
  group: API_GROUP,
  version: VERSION,
  plural: 'workflowrunshards',
};
const CONFIGMAPS: KubeResource = { group: '', version: 'v1', plural: 'configmaps' };
/** On shards: the run's name (for people: `kubectl get mwfrs -l meson.dev/run=NAME`), when it fits a label value (63). */
export const RUN_LABEL = 'meson.dev/run';
/** On shards: the run's uid (always fits; what the store selects by). */
export const RUN_UID_LABEL = 'meson.dev/run-uid';
export const STATE_LABEL = 'meson.dev/state';

export interface KubernetesStoreLimits {
  /** Largest object the store writes, as JSON bytes. Default 768 KiB. */
  maxObjectBytes: number;
  /** Step-instance ids per shard. Default 500. */
  shardInstances: number;
  /** A shard takes no new id past this many JSON bytes. Default 512 KiB. */
  shardBytes: number;
  /** Failed instances listed in a run's status when the controller lists none. Default 20. */
  runStatusFailures: number;
  /** `status.steps` of a run is cut to fit this many JSON bytes. Default 256 KiB. */
  runStatusBytes: number;
  /** Largest state value (JSON bytes). Default 256 KiB. */
  stateValueBytes: number;
  /** Parallel shard writes in one commit. Default 8. */
  writeConcurrency: number;
}

export const DEFAULT_LIMITS: KubernetesStoreLimits = {
  maxObjectBytes: 768 * 1024,
  // Every commit rewrites each shard it changes whole, so the bytes the operator serialises
  // and the apiserver decodes, stores and sends to every watcher per pass grow with the shard.
  // In two runs of a 2,000-step foreach at the same load, shards of 500 cost the operator 19 ms
  // of CPU per step (profiled), shards of 100 6 ms, for 1.66 writes per step instead of 1.46
  // (docs/performance.md).
  shardInstances: 100,
  shardBytes: 512 * 1024,
  runStatusFailures: 20,
  runStatusBytes: 256 * 1024,
  stateValueBytes: 256 * 1024,
  writeConcurrency: 8,
};

/** Environment variables that override the limits (the operator reads them at start). */
export const LIMIT_ENV: Record<keyof KubernetesStoreLimits, string> = {
  maxObjectBytes: 'MESON_STORE_MAX_OBJECT_BYTES',
  shardInstances: 'MESON_STORE_SHARD_INSTANCES',
  shardBytes: 'MESON_STORE_SHARD_BYTES',
  runStatusFailures: 'MESON_STORE_RUN_STATUS_FAILURES',
  runStatusBytes: 'MESON_STORE_RUN_STATUS_BYTES',
  stateValueBytes: 'MESON_STORE_STATE_VALUE_BYTES',
  writeConcurrency: 'MESON_STORE_WRITE_CONCURRENCY',
};

/** Hard ceiling of maxObjectBytes: the apiserver refuses requests over 1.5 MiB and we promise objects under 1 MiB. */
export const MAX_OBJECT_BYTES_CEILING = 1024 * 1024 - 64 * 1024;

/**
 * The limits from `env` (see LIMIT_ENV), over the defaults. A value that is not a positive
 * integer, or a maxObjectBytes above MAX_OBJECT_BYTES_CEILING, or a shardBytes or
 * runStatusBytes above maxObjectBytes, is an error naming the variable and what was expected.
 */
export function limitsFromEnv(env: Record<string, string | undefined>): KubernetesStoreLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [key, name] of Object.entries(LIMIT_ENV) as [keyof KubernetesStoreLimits, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) <= 0 || !Number.isSafeInteger(Number(raw))) {
      throw new StoreError('STORE_INVALID', `${name}: expected a positive integer, got "${raw}"`);
    }
    out[key] = Number(raw);
  }
  checkLimits(out);
  return out;
}

function checkLimits(l: KubernetesStoreLimits): void {
  const fail = (field: keyof KubernetesStoreLimits, expected: string) => {
    throw new StoreError(
      'STORE_INVALID',
      `${LIMIT_ENV[field]} (${field}): expected ${expected}, got ${l[field]}`,
    );
  };
  if (l.maxObjectBytes > MAX_OBJECT_BYTES_CEILING)
    fail('maxObjectBytes', `at most ${MAX_OBJECT_BYTES_CEILING}`);
  if (l.shardBytes > l.maxObjectBytes) fail('shardBytes', `at most maxObjectBytes (${l.maxObjectBytes})`);
  if (l.runStatusBytes > l.maxObjectBytes)
    fail('runStatusBytes', `at most maxObjectBytes (${l.maxObjectBytes})`);
  if (l.stateValueBytes > l.maxObjectBytes)
    fail('stateValueBytes', `at most maxObjectBytes (${l.maxObjectBytes})`);
  for (const k of Object.keys(LIMIT_ENV) as (keyof KubernetesStoreLimits)[]) {
    if (!Number.isSafeInteger(l[k]) || l[k] < (k === 'runStatusFailures' ? 0 : 1))
      fail(k, 'a positive integer');
  }
}

export interface KubernetesStoreOptions {
  /** The API (a counting wrapper in tests); default kubeApi(kubeConfig). */
  api?: KubeApi;
  kubeConfig?: KubeConfig;
  /** Namespaces to watch; default all. */
  namespaces?: string[];
  /** Where state ConfigMaps live (the operator's namespace). */
  stateNamespace: string;
  limits?: Partial<KubernetesStoreLimits>;
  watchTimeoutSeconds?: number;
  backoff?: { initialMs: number; maxMs: number };
  pageSize?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

interface ShardEntryInstance {
  id: string;
  phase: string;
  data: Record<string, unknown>;
}
interface ShardEntryTask {
  instance: string;
  attempt: number;
  state: 'queued' | 'launched';
  data: Record<string, unknown>;
  launch?: Record<string, unknown>;
}
interface ShardSpec {
  run: string;
  index: number;
  instances?: ShardEntryInstance[];
  tasks?: ShardEntryTask[];
}

/**
 * On the wire a shard's entries are one JSON string (`entries`), next to their counts: the
 * apiserver then validates and tracks (managedFields) three small fields instead of every field
 * of 500 entries of free-form data. Typed entries made a shard write about 8 times slower than
 * a ConfigMap of the same bytes, per-entry JSON strings still 4 times.
 */
interface WireShardSpec {
  run: string;
  index: number;
  instances: number;
  tasks: number;
  entries: string;
}

function decodeShard(wire: WireShardSpec): ShardSpec {
  let parsed: { instances?: ShardEntryInstance[]; tasks?: ShardEntryTask[] } = {};
  try {
    parsed = JSON.parse(wire.entries ?? '{}') as typeof parsed;
  } catch {
    // a shard not written by this store: nothing in it
  }
  return {
    run: wire.run,
    index: wire.index,
    ...(parsed.instances?.length ? { instances: parsed.instances } : {}),
    ...(parsed.tasks?.length ? { tasks: parsed.tasks } : {}),
  };
}

function encodeShard(spec: ShardSpec): WireShardSpec {
  return {
    run: spec.run,
    index: spec.index,
    instances: spec.instances?.length ?? 0,
    tasks: spec.tasks?.length ?? 0,
    entries: JSON.stringify({ instances: spec.instances ?? [], tasks: spec.tasks ?? [] }),
  };
}

/**
 * The step instances' records (`data`) of a run's shards as listed from the apiserver, in the
 * store's order (shard index, then position): what a reader without the store (the CLI) shows.
 */
export function instancesOfShards(shards: readonly { spec?: unknown }[]): Record<string, unknown>[] {
  return shards
    .map((s) => decodeShard((s.spec ?? {}) as WireShardSpec))
    .sort((a, b) => a.index - b.index)
    .flatMap((s) => (s.instances ?? []).map((i) => i.data));
}

/** The shards of one incarnation (uid) of one run (spec decoded). */
interface RunShards {
  namespace: string;
  run: string;
  uid: string;
  /** index -> the shard object, with its spec decoded */
  shards: Map<number, KubeObject & { spec: ShardSpec }>;
  /** instance id -> shard index */
  where: Map<string, number>;
}

function bytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
}

function shardName(run: string, uid: string, index: number): string {
  const base =
    run.length > 200
      ? `${run.slice(0, 190)}-${createHash('sha256').update(run).digest('hex').slice(0, 10)}`
      : run;
  return `${base}-${uid.slice(0, 8)}-${index}`;
}

/** A deleteState recorded in a commit's state writes. */
const DELETE_STATE = Symbol('deleteState');

export function stateObjectName(key: string): string {
  return `meson-state-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** Runs `tasks` with at most `n` in flight; resolves when all are done, rejects with the first error. */
async function pool<T>(items: T[], n: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/** Counters of what the store sent, by kind of write (benchmarks and tests). */
export interface StoreWriteStats {
  commits: number;
  objectWrites: number;
  shardWrites: number;
  stateWrites: number;
}

export class KubernetesStore implements AsyncStore {
  readonly atomic = false;
  /**
   * Run history from the informer cache. The current resourceVersion is the oldest position of
   * the run informers: a watcher resuming from it misses no other writer's change.
   */
  readonly history: RunHistory = {
    ...cacheHistory(this),
    currentResourceVersion: () =>
      (this.informers.get('WorkflowRun') ?? [])
        .map((i) => i.resourceVersion)
        .reduce((a, b) => (a === '' || rvNewer(a, b) ? b : a), ''),
  };
  /** Retention's and admission's run queries, from the informer cache. */
  readonly runIndex: RunIndex = cacheRunIndex(this);
  readonly limits: KubernetesStoreLimits;
  readonly stats: StoreWriteStats = { commits: 0, objectWrites: 0, shardWrites: 0, stateWrites: 0 };
  private readonly api: KubeApi;
  private readonly informers = new Map<Kind, Informer[]>();
  private shardInformers: Informer[] = [];
  private stateInformer!: Informer;
  private readonly runShards = new Map<string, RunShards>();
  private readonly listeners = new Set<(c: Change) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private readonly o: KubernetesStoreOptions;

  private constructor(o: KubernetesStoreOptions) {
    this.o = o;
    if (!o.api && !o.kubeConfig)
      throw new StoreError('STORE_INVALID', 'KubernetesStore: api or kubeConfig is required');
    this.api = o.api ?? kubeApi(o.kubeConfig!);
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    checkLimits(this.limits);
  }

  /** Starts the informers and resolves once every cache holds its first list. */
  static async open(options: KubernetesStoreOptions): Promise<KubernetesStore> {
    const store = new KubernetesStore(options);
    await store.start();
    return store;
  }

  private informer(
    resource: KubeResource,
    namespace: string | undefined,
    onChange: InformerOptions['onChange'],
    labelSelector?: string,
  ): Informer {
    return new Informer({
      api: this.api,
      resource,
      namespace,
      labelSelector,
      onChange,
      pageSize: this.o.pageSize,
      watchTimeoutSeconds: this.o.watchTimeoutSeconds,
      backoff: this.o.backoff,
      log: this.o.log,
    });
  }

  private async start(): Promise<void> {
    const namespaces = this.o.namespaces ?? [undefined];
    const all: Informer[] = [];
    for (const kind of KINDS) {
      const list = namespaces.map((ns) =>
        this.informer(resourceOf(kind), ns, (type, obj) =>
          this.emit({ type, kind, object: obj as Stored<ResourceObject> }),
        ),
      );
      this.informers.set(kind, list);
      all.push(...list);
    }
    this.shardInformers = namespaces.map((ns) =>
      this.informer(SHARD_RESOURCE, ns, (type, obj) => this.onShard(type, obj)),
    );
    this.stateInformer = this.informer(CONFIGMAPS, this.o.stateNamespace, () => {}, `${STATE_LABEL}=true`);
    all.push(...this.shardInformers, this.stateInformer);
    try {
      await Promise.all(all.map((i) => i.start()));
    } catch (err) {
      await Promise.all(all.map((i) => i.stop()));
      throw toStoreError(err, 'starting the Kubernetes store');
    }
  }

  /** The informers (tests: interrupt a watch, read the statistics). */
  informersOf(kind: Kind | 'WorkflowRunShard' | 'state'): Informer[] {
    if (kind === 'WorkflowRunShard') return this.shardInformers;
    if (kind === 'state') return [this.stateInformer];
    return this.informers.get(kind) ?? [];
  }

  private informerFor(kind: Kind, namespace: string): Informer {
    const list = this.informers.get(kind);
    if (!list) throw new StoreError('STORE_INVALID', `unknown kind "${kind}"`);
    if (!this.o.namespaces) return list[0]!;
    const i = this.o.namespaces.indexOf(namespace);
    if (i < 0) throw new StoreError('STORE_INVALID', `namespace "${namespace}" is not watched by this store`);
    return list[i]!;
  }

  private shardInformerFor(namespace: string): Informer {
    if (!this.o.namespaces) return this.shardInformers[0]!;
    return this.shardInformers[this.o.namespaces.indexOf(namespace)]!;
  }

  private emit(change: Change): void {
    for (const l of this.listeners) {
      try {
        l({ ...change, object: structuredClone(change.object) });
      } catch {
        // a failing watcher must not break the writer nor the other watchers
      }
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
  }

  // --- reads --------------------------------------------------------------------------------

  get<T extends ResourceObject>(kind: Kind, namespace: string, name: string): Stored<T> | undefined {
    this.ensureOpen();
    const obj = this.informerFor(kind, namespace).items.get(`${namespace}/${name}`);
    return obj ? (structuredClone(obj) as Stored<T>) : undefined;
  }

  list<T extends ResourceObject>(
    kind: Kind,
    namespace: string | undefined,
    opts: ListOptions = {},
  ): ListResult<Stored<T>> {
    this.ensureOpen();
    const informers =
      namespace === undefined ? (this.informers.get(kind) ?? []) : [this.informerFor(kind, namespace)];
    if (!this.informers.has(kind)) throw new StoreError('STORE_INVALID', `unknown kind "${kind}"`);
    let after: [string, string] | undefined;
    if (opts.continue) {
      const [ns, name] = decodeToken(opts.continue);
      after = [String(ns), String(name)];
    }
    // select first, then sort only what matched (a filtered read of a large cache, such as a
    // history page, sorts its matches, not every cached object)
    const matched: KubeObject[] = [];
    for (const inf of informers) {
      for (const obj of inf.items.values()) {
        const ns = obj.metadata.namespace ?? '';
        const name = obj.metadata.name ?? '';
        if (namespace !== undefined && ns !== namespace) continue;
        if (after && (ns < after[0] || (ns === after[0] && name <= after[1]))) continue;
        const o = obj as Stored<ResourceObject>;
        if (!labelsMatch(o, opts.labels)) continue;
        if (opts.filter && !opts.filter(o)) continue;
        matched.push(obj);
      }
    }
    const cmp = (a: KubeObject, b: KubeObject) =>
      (a.metadata.namespace ?? '') < (b.metadata.namespace ?? '')
        ? -1
        : (a.metadata.namespace ?? '') > (b.metadata.namespace ?? '')
          ? 1
          : (a.metadata.name ?? '') < (b.metadata.name ?? '')
            ? -1
            : (a.metadata.name ?? '') > (b.metadata.name ?? '')
              ? 1
              : 0;
    matched.sort(cmp);
    const more = opts.limit !== undefined && matched.length > opts.limit;
    const items = (more ? matched.slice(0, opts.limit) : matched).map(
      (obj) => structuredClone(obj) as Stored<T>,
    );
    const last = items[items.length - 1];
    const rv = informers.map((i) => i.resourceVersion).reduce((a, b) => (rvNewer(b, a) ? b : a), '');
    return {
      items,
      resourceVersion: rv,
      ...(more && last ? { continue: encodeToken([last.metadata.namespace, last.metadata.name]) } : {}),
    };
  }

  async getLive<T extends ResourceObject>(
    kind: Kind,
    namespace: string,
    name: string,
  ): Promise<Stored<T> | undefined> {
    this.ensureOpen();
    const inf = this.informerFor(kind, namespace);
    try {
      const obj = await this.api.get(resourceOf(kind), namespace, name);
      inf.applyWrite(obj);
    } catch (err) {
      const e = toStoreError(err, `get ${kind} "${namespace}/${name}"`);
      if (e.code !== 'STORE_NOT_FOUND') throw e;
      inf.applyDelete(namespace, name);
    }
    return this.get<T>(kind, namespace, name);
  }

  watch(fn: (change: Change) => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /** The shards of the current incarnation of a run (its uid from the run cache). */
  private shardsOf(namespace: string, run: string): RunShards | undefined {
    const obj = this.informers.get('WorkflowRun') && this.maybeRun(namespace, run);
    if (!obj?.metadata.uid) return undefined;
    return this.runShards.get(`${namespace}/${run}/${obj.metadata.uid}`);
  }

  private maybeRun(namespace: string, run: string): KubeObject | undefined {
    try {
      return this.informerFor('WorkflowRun', namespace).items.get(`${namespace}/${run}`);
    } catch {
      return undefined;
    }
  }

  private *instancesOf(rs: RunShards | undefined): Generator<[number, number, ShardEntryInstance]> {
    if (!rs) return;
    for (const index of [...rs.shards.keys()].sort((a, b) => a - b)) {
      const spec = rs.shards.get(index)!.spec;
      const list = spec.instances ?? [];
      for (let pos = 0; pos < list.length; pos++) yield [index, pos, list[pos]!];
    }
  }

  getStepInstances(
    namespace: string,
    run: string,
    opts: { phase?: string; limit?: number; continue?: string } = {},
  ): { items: StepInstanceRecord[]; continue?: string } {
    this.ensureOpen();
    let after: [number, number] = [-1, -1];
    if (opts.continue) {
      const [i, p] = decodeToken(opts.continue);
      after = [Number(i), Number(p)];
    }
    const items: StepInstanceRecord[] = [];
    let last: [number, number] | undefined;
    for (const [index, pos, e] of this.instancesOf(this.shardsOf(namespace, run))) {
      if (index < after[0] || (index === after[0] && pos <= after[1])) continue;
      if (opts.phase !== undefined && e.phase !== opts.phase) continue;
      if (opts.limit !== undefined && items.length >= opts.limit) {
        return { items, ...(last ? { continue: encodeToken(last) } : {}) };
      }
      items.push({ namespace, run, id: e.id, phase: e.phase, data: structuredClone(e.data) });
      last = [index, pos];
    }
    return { items };
  }

  getStepInstance(namespace: string, run: string, id: string): StepInstanceRecord | undefined {
    this.ensureOpen();
    const rs = this.shardsOf(namespace, run);
    const index = rs?.where.get(id);
    if (!rs || index === undefined) return undefined;
    const spec = rs.shards.get(index)?.spec;
    const e = (spec?.instances ?? []).find((i) => i.id === id);
    return e ? { namespace, run, id, phase: e.phase, data: structuredClone(e.data) } : undefined;
  }

  countStepInstances(namespace: string, run: string): Record<string, number> {
    this.ensureOpen();
    const out: Record<string, number> = {};
    for (const [, , e] of this.instancesOf(this.shardsOf(namespace, run)))
      out[e.phase] = (out[e.phase] ?? 0) + 1;
    return out;
  }

  listTasks(filter: { namespace?: string; run?: string } = {}): TaskRecord[] {
    this.ensureOpen();
    const out: TaskRecord[] = [];
    for (const rs of this.runShards.values()) {
      if (filter.namespace !== undefined && rs.namespace !== filter.namespace) continue;
      if (filter.run !== undefined && rs.run !== filter.run) continue;
      if (this.maybeRun(rs.namespace, rs.run)?.metadata.uid !== rs.uid) continue;
      for (const index of [...rs.shards.keys()].sort((a, b) => a - b)) {
        for (const t of rs.shards.get(index)!.spec.tasks ?? []) {
          out.push({
            namespace: rs.namespace,
            run: rs.run,
            instance: t.instance,
            attempt: t.attempt,
            state: t.state,
            data: structuredClone(t.data),
            ...(t.launch === undefined ? {} : { launch: structuredClone(t.launch) }),
          });
        }
      }
    }
    return out;
  }

  getState<V>(key: string): V | undefined {
    this.ensureOpen();
    const obj = this.stateInformer.items.get(`${this.o.stateNamespace}/${stateObjectName(key)}`);
    const raw = obj?.data?.value;
    return raw === undefined ? undefined : (JSON.parse(raw) as V);
  }

  /** Every state entry whose key starts with `prefix`, ordered by key (its ConfigMap keeps the key). */
  listState<V>(prefix: string): { key: string; value: V }[] {
    this.ensureOpen();
    if (prefix === '') throw new StoreError('STORE_INVALID', 'listState needs a non-empty prefix');
    const out: { key: string; value: V }[] = [];
    for (const obj of this.stateInformer.items.values()) {
      const key = obj.data?.key;
      const raw = obj.data?.value;
      if (typeof key !== 'string' || !key.startsWith(prefix) || raw === undefined) continue;
      out.push({ key, value: JSON.parse(raw) as V });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private onShard(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject): void {
    const owner = obj.metadata.ownerReferences?.find((r) => r.kind === 'WorkflowRun');
    const wire = obj.spec as WireShardSpec | undefined;
    if (!owner || !wire) return;
    const ns = obj.metadata.namespace ?? '';
    const key = `${ns}/${wire.run}/${owner.uid}`;
    let rs = this.runShards.get(key);
    if (!rs) {
      if (type === 'DELETED') return;
      rs = { namespace: ns, run: wire.run, uid: owner.uid, shards: new Map(), where: new Map() };
      this.runShards.set(key, rs);
    }
    const ids = (s: ShardSpec | undefined) => [
      ...(s?.instances ?? []).map((i) => i.id),
      ...(s?.tasks ?? []).map((t) => t.instance),
    ];
    for (const id of ids(rs.shards.get(wire.index)?.spec)) {
      if (rs.where.get(id) === wire.index) rs.where.delete(id);
    }
    if (type === 'DELETED') {
      rs.shards.delete(wire.index);
      if (rs.shards.size === 0) this.runShards.delete(key);
      return;
    }
    const spec = decodeShard(wire);
    rs.shards.set(wire.index, { ...obj, spec });
    for (const id of ids(spec)) rs.where.set(id, wire.index);
  }

  // --- writes -------------------------------------------------------------------------------

  transaction<R>(fn: (w: WriteBatch) => R): Promise<R> {
    const batch = new BatchRecorder();
    let result: R;
    try {
      this.ensureOpen();
      result = fn(batch);
    } catch (err) {
      return Promise.reject(err);
    }
    const { segments } = batch;
    if (segments.length === 0) return Promise.resolve(result);
    const run = async (): Promise<R> => {
      this.stats.commits++;
      for (let i = 0; i < segments.length; i++) {
        const s = segments[i]!;
        try {
          if (s.type === 'object') s.receipt.resolve(await this.writeObject(s.op));
          else await this.writeRecords(s.ops);
        } catch (err) {
          const e = toStoreError(err, 'commit');
          const error = new CommitError(e.code, e.message, i, { cause: err });
          rejectFrom(segments, i, error);
          throw error;
        }
      }
      return result;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  private checkSize(what: string, body: unknown): void {
    const n = bytes(body);
    if (n > this.limits.maxObjectBytes) {
      throw new StoreError(
        'STORE_TOO_LARGE',
        `${what} would be ${n} bytes; the limit is ${this.limits.maxObjectBytes} (maxObjectBytes)`,
      );
    }
  }

  private async writeObject(op: ObjectOp): Promise<unknown> {
    if (!KINDS.includes(op.kind)) throw new StoreError('STORE_INVALID', `unknown kind "${op.kind}"`);
    const res = resourceOf(op.kind);
    if (op.op === 'delete') return this.deleteObject(op.kind, op.namespace, op.name);
    const obj = op.obj as KubeObject;
    const ns = obj.metadata?.namespace || 'default';
    const inf = this.informerFor(op.kind, ns);
    const body: KubeObject = {
      ...obj,
      apiVersion: obj.apiVersion ?? API_VERSION,
      kind: op.kind,
      metadata: { ...obj.metadata, namespace: ns },
    };
    const what = `${op.kind} "${ns}/${obj.metadata?.name ?? obj.metadata?.generateName ?? ''}"`;
    if (op.op === 'create') {
      if (!body.metadata.name && !body.metadata.generateName) {
        throw new StoreError('STORE_INVALID', 'metadata.name or metadata.generateName is required');
      }
      for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'generation'] as const)
        delete body.metadata[k];
      this.checkSize(what, body);
      this.stats.objectWrites++;
      let created = await this.api.create(res, ns, body).catch((err) => {
        throw toStoreError(err, `create ${what}`);
      });
      inf.applyWrite(created);
      // the apiserver drops status on create (status subresource): write it as the caller asked
      if (obj.status !== undefined) {
        this.stats.objectWrites++;
        created = await this.api
          .replaceStatus(res, ns, created.metadata.name!, { ...created, status: obj.status })
          .catch((err) => {
            throw toStoreError(err, `status of ${what}`);
          });
        inf.applyWrite(created);
      }
      return structuredClone(created);
    }
    const name = obj.metadata?.name;
    if (!name) throw new StoreError('STORE_INVALID', 'metadata.name is required');
    const status = op.op === 'updateStatus';
    if (status && op.kind === 'WorkflowRun' && body.status !== undefined) {
      body.status = this.boundRunStatus(ns, name, body.status as Record<string, unknown>);
    }
    this.checkSize(what, body);
    const unconditional = obj.metadata.resourceVersion === undefined;
    for (let attempt = 0; ; attempt++) {
      if (unconditional) {
        const cur = inf.items.get(`${ns}/${name}`);
        if (!cur) {
          const live = await this.getLive(op.kind, ns, name);
          if (!live) throw new StoreError('STORE_NOT_FOUND', `${what} not found`);
          body.metadata.resourceVersion = live.metadata.resourceVersion;
        } else body.metadata.resourceVersion = cur.metadata.resourceVersion;
      }
      try {
        this.stats.objectWrites++;
        const out = status
          ? await this.api.replaceStatus(res, ns, name, body)
          : await this.api.replace(res, ns, name, body);
        inf.applyWrite(out);
        return structuredClone(out);
      } catch (err) {
        const e = toStoreError(err, `${status ? 'status of ' : 'update '}${what}`);
        if (e.code === 'STORE_CONFLICT' && unconditional && attempt < 5) {
          await this.getLive(op.kind, ns, name);
          continue;
        }
        if (e.code === 'STORE_NOT_FOUND') inf.applyDelete(ns, name);
        throw e;
      }
    }
  }

  private async deleteObject(kind: Kind, namespace: string, name: string): Promise<boolean> {
    const inf = this.informerFor(kind, namespace);
    const cached = inf.items.get(`${namespace}/${name}`);
    let last: KubeObject | undefined;
    try {
      this.stats.objectWrites++;
      last = await this.api.delete(resourceOf(kind), namespace, name);
    } catch (err) {
      const e = toStoreError(err, `delete ${kind} "${namespace}/${name}"`);
      if (e.code !== 'STORE_NOT_FOUND') throw e;
      inf.applyDelete(namespace, name);
      return false;
    }
    // the response is the deleted object, or a Status (no resourceVersion): then the cached one
    inf.applyDelete(namespace, name, last?.metadata?.resourceVersion ? last : cached);
    const uid = last?.metadata?.uid ?? cached?.metadata.uid;
    if (kind === 'WorkflowRun' && uid) {
      // the garbage collector would remove them too, later; the port says they go with the run
      this.stats.shardWrites++;
      await this.api.deleteCollection(SHARD_RESOURCE, namespace, `${RUN_UID_LABEL}=${uid}`).catch((err) => {
        throw toStoreError(err, `delete the shards of run "${namespace}/${name}"`);
      });
      const shardInf = this.shardInformerFor(namespace);
      const rs = uid ? this.runShards.get(`${namespace}/${name}/${uid}`) : undefined;
      for (const s of [...(rs?.shards.values() ?? [])]) shardInf.applyDelete(namespace, s.metadata.name!, s);
    }
    return true;
  }

  /**
   * What a run's status keeps inside the run object: the controller's summary, the first
   * failed instances when it lists no steps, and `steps` cut to `runStatusBytes`.
   */
  private boundRunStatus(
    namespace: string,
    run: string,
    input: Record<string, unknown>,
  ): Record<string, unknown> {
    const status = { ...input };
    let steps = status.steps as Record<string, unknown>[] | undefined;
    let truncated = false;
    if (steps === undefined && this.limits.runStatusFailures > 0) {
      const failed = this.getStepInstances(namespace, run, {
        phase: 'Failed',
        limit: this.limits.runStatusFailures,
      }).items.map((r) => r.data);
      if (failed.length > 0) {
        steps = failed;
        truncated = true;
      }
    }
    if (steps !== undefined) {
      let used = 2;
      const kept: Record<string, unknown>[] = [];
      for (const s of steps) {
        const n = bytes(s) + 1;
        if (used + n > this.limits.runStatusBytes) {
          truncated = true;
          break;
        }
        used += n;
        kept.push(s);
      }
      status.steps = kept;
    }
    if (truncated && status.summary && typeof status.summary === 'object') {
      status.summary = { ...(status.summary as Record<string, unknown>), truncated: true };
    }
    return status;
  }

  private async writeRecords(ops: RecordOp[]): Promise<void> {
    const plans = new Map<string, ShardPlan>();
    /** key -> the value to write, or DELETE_STATE */
    const state = new Map<string, unknown>();
    const plan = (namespace: string, run: string): ShardPlan => {
      const key = `${namespace}/${run}`;
      let p = plans.get(key);
      if (!p) {
        const runObj = this.maybeRun(namespace, run);
        if (!runObj?.metadata.uid) {
          throw new StoreError(
            'STORE_NOT_FOUND',
            `WorkflowRun "${namespace}/${run}" not found: step instances and tasks belong to a stored run`,
          );
        }
        p = new ShardPlan(
          namespace,
          run,
          runObj.metadata.uid,
          this.runShards.get(`${key}/${runObj.metadata.uid}`),
          this.limits,
        );
        plans.set(key, p);
      }
      return p;
    };
    for (const op of ops) {
      switch (op.op) {
        case 'putStepInstances':
          for (const r of op.records) plan(r.namespace, r.run).putInstance(r);
          break;
        case 'putTasks':
          for (const t of op.records) plan(t.namespace, t.run).putTask(t);
          break;
        case 'deleteTask':
          if (this.maybeRun(op.namespace, op.run)) plan(op.namespace, op.run).deleteTask(op.instance);
          break;
        case 'deleteStepInstances':
          if (this.maybeRun(op.namespace, op.run)) plan(op.namespace, op.run).deleteInstances();
          break;
        case 'setState':
          state.set(op.key, op.value);
          break;
        case 'deleteState':
          state.set(op.key, DELETE_STATE);
          break;
      }
    }
    const writes: (() => Promise<void>)[] = [];
    for (const p of plans.values()) {
      for (const w of p.writes()) {
        if (w.spec) this.checkSize(`WorkflowRunShard of run "${p.namespace}/${p.run}"`, w.spec);
        writes.push(() => this.writeShard(p, w));
      }
    }
    for (const [key, value] of state) {
      if (value === DELETE_STATE) {
        writes.push(() => this.deleteState(key));
        continue;
      }
      const json = JSON.stringify(value) ?? 'null';
      if (Buffer.byteLength(json) > this.limits.stateValueBytes) {
        throw new StoreError(
          'STORE_TOO_LARGE',
          `state "${key}" would be ${Buffer.byteLength(json)} bytes; the limit is ${this.limits.stateValueBytes} (stateValueBytes)`,
        );
      }
      writes.push(() => this.writeState(key, json));
    }
    await pool(writes, this.limits.writeConcurrency, (w) => w());
  }

  private async writeShard(
    p: ShardPlan,
    w: { index: number; spec: WireShardSpec | null; current?: KubeObject },
  ): Promise<void> {
    const inf = this.shardInformerFor(p.namespace);
    const name = w.current?.metadata.name ?? shardName(p.run, p.uid, w.index);
    this.stats.shardWrites++;
    try {
      if (w.spec === null) {
        if (!w.current) return;
        await this.api.delete(SHARD_RESOURCE, p.namespace, name);
        inf.applyDelete(p.namespace, name, w.current);
        return;
      }
      const body: KubeObject = {
        apiVersion: API_VERSION,
        kind: 'WorkflowRunShard',
        metadata: {
          name,
          namespace: p.namespace,
          labels: { [RUN_UID_LABEL]: p.uid, ...(p.run.length <= 63 ? { [RUN_LABEL]: p.run } : {}) },
          ownerReferences: [
            {
              apiVersion: API_VERSION,
              kind: 'WorkflowRun',
              name: p.run,
              uid: p.uid,
              controller: true,
              blockOwnerDeletion: false,
            },
          ],
          ...(w.current ? { resourceVersion: w.current.metadata.resourceVersion } : {}),
        },
        spec: w.spec,
      };
      const out = w.current
        ? await this.api.replace(SHARD_RESOURCE, p.namespace, name, body)
        : await this.api.create(SHARD_RESOURCE, p.namespace, body);
      inf.applyWrite(out);
    } catch (err) {
      const e = toStoreError(err, `shard ${w.index} of run "${p.namespace}/${p.run}"`);
      // another writer moved it (a second controller?): refresh the cache, the next pass recomputes
      if (e.code === 'STORE_CONFLICT' || e.code === 'STORE_ALREADY_EXISTS') {
        await this.api.get(SHARD_RESOURCE, p.namespace, name).then(
          (o) => inf.applyWrite(o),
          () => {},
        );
      }
      throw e;
    }
  }

  private async writeState(key: string, json: string): Promise<void> {
    const ns = this.o.stateNamespace;
    const name = stateObjectName(key);
    const cur = this.stateInformer.items.get(`${ns}/${name}`);
    const body: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        namespace: ns,
        labels: { [STATE_LABEL]: 'true' },
        ...(cur ? { resourceVersion: cur.metadata.resourceVersion } : {}),
      },
      data: { key, value: json },
    };
    this.stats.stateWrites++;
    try {
      const out = cur
        ? await this.api.replace(CONFIGMAPS, ns, name, body)
        : await this.api.create(CONFIGMAPS, ns, body);
      this.stateInformer.applyWrite(out);
    } catch (err) {
      const e = toStoreError(err, `state "${key}"`);
      if (e.code === 'STORE_CONFLICT' || e.code === 'STORE_ALREADY_EXISTS') {
        await this.api.get(CONFIGMAPS, ns, name).then(
          (o) => this.stateInformer.applyWrite(o),
          () => {},
        );
      }
      throw e;
    }
  }

  private async deleteState(key: string): Promise<void> {
    const ns = this.o.stateNamespace;
    const name = stateObjectName(key);
    const cur = this.stateInformer.items.get(`${ns}/${name}`);
    if (!cur) return;
    this.stats.stateWrites++;
    try {
      await this.api.delete(CONFIGMAPS, ns, name);
    } catch (err) {
      const e = toStoreError(err, `state "${key}"`);
      if (e.code !== 'STORE_NOT_FOUND') throw e;
    }
    this.stateInformer.applyDelete(ns, name, cur);
  }

  /** Waits for the commits in flight, then stops the informers. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    const all = [...[...this.informers.values()].flat(), ...this.shardInformers, this.stateInformer];
    await Promise.all(all.map((i) => i.stop()));
  }
}

/**
 * The changes one commit makes to one run's shards: copy-on-write of the touched shards, new
 * ids appended to the last shard while it has room (count and bytes), else to a new one.
 */
class ShardPlan {
  private readonly specs = new Map<number, ShardSpec>();
  private readonly sizes = new Map<number, number>();
  private readonly counts = new Map<number, number>();
  /**
   * Where this plan put or removed ids (undefined: removed), over the cache's `where`: a copy of
   * that map cost a commit as much as the run has steps (10,000 entries for each of hundreds of
   * commits in a 10,000-way foreach).
   */
  private readonly moved = new Map<string, number | undefined>();
  /** Shards whose entries this plan changed: only these are written. */
  private readonly changed = new Set<number>();
  private maxIndex: number;

  readonly namespace: string;
  readonly run: string;
  readonly uid: string;
  private readonly existing: RunShards | undefined;
  private readonly limits: KubernetesStoreLimits;

  constructor(
    namespace: string,
    run: string,
    uid: string,
    existing: RunShards | undefined,
    limits: KubernetesStoreLimits,
  ) {
    this.namespace = namespace;
    this.run = run;
    this.uid = uid;
    this.existing = existing;
    this.limits = limits;
    this.maxIndex = existing ? Math.max(-1, ...existing.shards.keys()) : -1;
  }

  private whereIs(id: string): number | undefined {
    return this.moved.has(id) ? this.moved.get(id) : this.existing?.where.get(id);
  }

  /** The working copy of a shard (copied from the cache on first use). */
  private load(index: number): ShardSpec {
    let s = this.specs.get(index);
    if (!s) {
      const cur = this.existing?.shards.get(index)?.spec;
      s = cur
        ? { run: this.run, index, instances: [...(cur.instances ?? [])], tasks: [...(cur.tasks ?? [])] }
        : { run: this.run, index, instances: [], tasks: [] };
      this.specs.set(index, s);
      this.sizes.set(index, bytes(s));
      this.counts.set(
        index,
        new Set([...s.instances!.map((i) => i.id), ...s.tasks!.map((t) => t.instance)]).size,
      );
    }
    return s;
  }

  private slot(id: string, size: number): number {
    const known = this.whereIs(id);
    if (known !== undefined) return known;
    let index = this.maxIndex;
    if (index >= 0) this.load(index);
    if (
      index < 0 ||
      this.counts.get(index)! >= this.limits.shardInstances ||
      (this.sizes.get(index)! + size > this.limits.shardBytes && this.counts.get(index)! > 0)
    ) {
      index = ++this.maxIndex;
      this.load(index);
    }
    this.moved.set(id, index);
    this.counts.set(index, this.counts.get(index)! + 1);
    return index;
  }

  /** Puts `entry` under `id` in one of the shard's lists: in place when there, else appended. */
  private upsert<E>(id: string, entry: E, list: (s: ShardSpec) => E[], same: (e: E) => boolean): void {
    const json = JSON.stringify(entry);
    const size = Buffer.byteLength(json) + 1;
    const index = this.slot(id, size);
    const items = list(this.load(index));
    const at = items.findIndex(same);
    if (at >= 0) {
      const old = JSON.stringify(items[at]);
      // the same entry again (a pass that rewrites what is there): nothing to write
      if (old === json) return;
      items[at] = entry;
      this.sizes.set(index, this.sizes.get(index)! - Buffer.byteLength(old) - 1 + size);
    } else {
      items.push(entry);
      this.sizes.set(index, this.sizes.get(index)! + size);
    }
    this.changed.add(index);
  }

  putInstance(r: StepInstanceRecord): void {
    this.upsert<ShardEntryInstance>(
      r.id,
      { id: r.id, phase: r.phase, data: r.data },
      (s) => s.instances!,
      (e) => e.id === r.id,
    );
  }

  putTask(t: TaskRecord): void {
    const entry: ShardEntryTask = {
      instance: t.instance,
      attempt: t.attempt,
      state: t.state,
      data: t.data,
      ...(t.launch === undefined ? {} : { launch: t.launch }),
    };
    this.upsert(
      t.instance,
      entry,
      (s) => s.tasks!,
      (e) => e.instance === t.instance,
    );
  }

  deleteTask(instance: string): void {
    const index = this.whereIs(instance);
    if (index === undefined) return;
    const s = this.load(index);
    // the removed entries' sizes, not the whole shard's again: a shard holds hundreds of entries,
    // and a pass deletes a task for every step that finished
    let removed = 0;
    s.tasks = s.tasks!.filter((t) => {
      if (t.instance !== instance) return true;
      removed += bytes(t) + 1;
      return false;
    });
    if (removed === 0) return;
    this.sizes.set(index, this.sizes.get(index)! - removed);
    this.changed.add(index);
    if (!s.instances!.some((i) => i.id === instance)) this.moved.set(instance, undefined);
  }

  deleteInstances(): void {
    // the shards there are (never a loop up to the highest index: a shard's index is data)
    for (const index of new Set([...(this.existing?.shards.keys() ?? []), ...this.specs.keys()])) {
      const s = this.load(index);
      if (s.instances!.length === 0) continue;
      for (const i of s.instances!) {
        if (!s.tasks!.some((t) => t.instance === i.id)) this.moved.set(i.id, undefined);
      }
      s.instances = [];
      this.sizes.set(index, bytes(s));
      this.changed.add(index);
    }
  }

  /**
   * One write per changed shard: its new content, encoded for the wire, or null to delete an
   * emptied one. A shard is compared with what is stored by the changes made to it (an entry
   * put again as it was is no change), not by serialising both: that cost two copies of a
   * shard of hundreds of entries per write.
   */
  *writes(): Generator<{ index: number; spec: WireShardSpec | null; current?: KubeObject }> {
    for (const index of [...this.changed].sort((a, b) => a - b)) {
      const s = this.specs.get(index)!;
      const current = this.existing?.shards.get(index);
      const empty = s.instances!.length === 0 && s.tasks!.length === 0;
      if (!current && empty) continue;
      yield { index, spec: empty ? null : encodeShard(s), ...(current ? { current } : {}) };
    }
  }
}
