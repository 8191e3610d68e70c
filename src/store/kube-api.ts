// The few Kubernetes API calls the operator's store makes, behind one small interface so that a
// test can count them (every write is one call here) and the store stays independent of the
// generated client's shapes. `kubeApi(kc)` implements it on @kubernetes/client-node.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node';
import { type ObjectMeta, StoreError, type StoreErrorCode } from './types.ts';

export interface KubeResource {
  /** '' for the core group (ConfigMaps). */
  group: string;
  version: string;
  plural: string;
}

/** ObjectMeta as the apiserver returns it (the store's ObjectMeta plus what only Kubernetes has). */
export interface KubeObjectMeta extends ObjectMeta {
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
  finalizers?: string[];
  managedFields?: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObjectMeta;
  spec?: unknown;
  status?: unknown;
  data?: Record<string, string>;
}

export interface KubeList {
  items: KubeObject[];
  metadata: { resourceVersion?: string; continue?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface ListQuery {
  labelSelector?: string;
  limit?: number;
  continue?: string;
}

export interface WatchQuery {
  resourceVersion: string;
  allowWatchBookmarks: boolean;
  timeoutSeconds: number;
  labelSelector?: string;
}

export interface KubeApi {
  list(res: KubeResource, namespace: string | undefined, query: ListQuery): Promise<KubeList>;
  get(res: KubeResource, namespace: string, name: string): Promise<KubeObject>;
  create(res: KubeResource, namespace: string, body: KubeObject): Promise<KubeObject>;
  replace(res: KubeResource, namespace: string, name: string, body: KubeObject): Promise<KubeObject>;
  replaceStatus(res: KubeResource, namespace: string, name: string, body: KubeObject): Promise<KubeObject>;
  delete(res: KubeResource, namespace: string, name: string): Promise<KubeObject | undefined>;
  deleteCollection(res: KubeResource, namespace: string, labelSelector: string): Promise<void>;
  /**
   * Starts a watch; `done` is called once when it ends (error, server timeout, abort). An
   * `ERROR` event carries a Status (code 410: the resourceVersion is too old).
   */
  watch(
    res: KubeResource,
    namespace: string | undefined,
    query: WatchQuery,
    onEvent: (type: WatchEventType, obj: KubeObject & { code?: number }) => void,
    done: (err: unknown) => void,
  ): Promise<{ abort(): void }>;
}

/** The HTTP status of a failed client-node call (ApiException.code, Watch's statusCode). */
export function httpStatus(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

function statusBody(err: unknown): { reason?: string; message?: string } {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as { reason?: string; message?: string };
    } catch {
      return { message: body };
    }
  }
  return (body as { reason?: string; message?: string }) ?? {};
}

/** A StoreError with the code a caller acts on, the apiserver's message and the original as cause. */
export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const status = httpStatus(err);
  const body = statusBody(err);
  const message = body.message ?? (err instanceof Error ? err.message : String(err));
  let code: StoreErrorCode = 'STORE_UNAVAILABLE';
  if (status === 404) code = 'STORE_NOT_FOUND';
  else if (status === 409) code = body.reason === 'AlreadyExists' ? 'STORE_ALREADY_EXISTS' : 'STORE_CONFLICT';
  else if (status === 413 || /too large/i.test(message)) code = 'STORE_TOO_LARGE';
  else if (status === 400 || status === 422) code = 'STORE_INVALID';
  return new StoreError(code, `${what}: ${message}`, { cause: err });
}

function collectionPath(res: KubeResource, namespace: string | undefined): string {
  const base = res.group === '' ? `/api/${res.version}` : `/apis/${res.group}/${res.version}`;
  return `${base}${namespace === undefined ? '' : `/namespaces/${namespace}`}/${res.plural}`;
}

/** KubeApi on @kubernetes/client-node (custom objects, and ConfigMaps for the core group). */
export function kubeApi(kc: KubeConfig): KubeApi {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const isCore = (res: KubeResource) => res.group === '';
  const plain = <T>(v: T): KubeObject => JSON.parse(JSON.stringify(v)) as KubeObject;
  // ConfigMaps go through the typed client, whose metadata types dates as Date: same JSON.
  const cm = (body: KubeObject) => body as unknown as V1ConfigMap;
  return {
    async list(res, namespace, query) {
      const q = {
        labelSelector: query.labelSelector,
        limit: query.limit,
        _continue: query.continue,
      };
      if (isCore(res)) {
        const out =
          namespace === undefined
            ? await core.listConfigMapForAllNamespaces(q)
            : await core.listNamespacedConfigMap({ namespace, ...q });
        return JSON.parse(JSON.stringify(out)) as KubeList;
      }
      const g = { group: res.group, version: res.version, plural: res.plural };
      return (
        namespace === undefined
          ? await custom.listCustomObjectForAllNamespaces({
              group: res.group,
              version: res.version,
              resourcePlural: res.plural,
              ...q,
            })
          : await custom.listNamespacedCustomObject({ ...g, namespace, ...q })
      ) as KubeList;
    },
    async get(res, namespace, name) {
      if (isCore(res)) return plain(await core.readNamespacedConfigMap({ name, namespace }));
      return (await custom.getNamespacedCustomObject({ ...res, namespace, name })) as KubeObject;
    },
    async create(res, namespace, body) {
      if (isCore(res)) return plain(await core.createNamespacedConfigMap({ namespace, body: cm(body) }));
      return (await custom.createNamespacedCustomObject({ ...res, namespace, body })) as KubeObject;
    },
    async replace(res, namespace, name, body) {
      if (isCore(res))
        return plain(await core.replaceNamespacedConfigMap({ name, namespace, body: cm(body) }));
      return (await custom.replaceNamespacedCustomObject({ ...res, namespace, name, body })) as KubeObject;
    },
    async replaceStatus(res, namespace, name, body) {
      return (await custom.replaceNamespacedCustomObjectStatus({
        ...res,
        namespace,
        name,
        body,
      })) as KubeObject;
    },
    async delete(res, namespace, name) {
      if (isCore(res)) {
        await core.deleteNamespacedConfigMap({ name, namespace });
        return undefined;
      }
      return (await custom.deleteNamespacedCustomObject({ ...res, namespace, name })) as KubeObject;
    },
    async deleteCollection(res, namespace, labelSelector) {
      if (isCore(res)) await core.deleteCollectionNamespacedConfigMap({ namespace, labelSelector });
      else await custom.deleteCollectionNamespacedCustomObject({ ...res, namespace, labelSelector });
    },
    async watch(res, namespace, query, onEvent, done) {
      const w = new Watch(kc);
      // client-node's inactivity timeout (30 s) would cut quiet watches: the server ends them.
      (w as unknown as { requestTimeoutMs: number }).requestTimeoutMs = (query.timeoutSeconds + 30) * 1000;
      const controller = await w.watch(
        collectionPath(res, namespace),
        { ...query },
        (type: string, obj: unknown) => onEvent(type as WatchEventType, obj as KubeObject),
        done,
      );
      return { abort: () => controller.abort() };
    },
  };
}

/**
 * Wraps a KubeApi to count its calls by method, and the milliseconds they took (tests and
 * benchmarks: writes per commit, latency per write).
 */
export function countingKubeApi(api: KubeApi): {
  api: KubeApi;
  counts: Record<string, number>;
  ms: Record<string, number>;
  reset(): void;
} {
  const counts: Record<string, number> = {};
  const ms: Record<string, number> = {};
  const wrapped = {} as Record<string, unknown>;
  for (const key of Object.keys(api) as (keyof KubeApi)[]) {
    const fn = api[key] as (...args: unknown[]) => Promise<unknown>;
    wrapped[key] = async (...args: unknown[]) => {
      counts[key] = (counts[key] ?? 0) + 1;
      const t = performance.now();
      try {
        return await fn(...args);
      } finally {
        ms[key] = (ms[key] ?? 0) + performance.now() - t;
      }
    };
  }
  return {
    api: wrapped as unknown as KubeApi,
    counts,
    ms,
    reset: () => {
      for (const k of Object.keys(counts)) delete counts[k];
      for (const k of Object.keys(ms)) delete ms[k];
    },
  };
}
