// The store port that both shells can implement: reads are synchronous, from a cache that the
// adapter keeps current; writes are asynchronous and batched.
//
// Why the port changes. The first port (./types.ts) is synchronous: `get`, `list` and
// `transaction` return values. SQLite can do that; the Kubernetes API cannot (every write is an
// HTTP request). Following the team rule "if a port does not fit, change it for both sides",
// this is the port both adapters implement (src/store/sqlite-async.ts wraps the SQLite store,
// src/store/kubernetes.ts talks to a kube-apiserver), proven by one contract suite
// (test/store-contract/contract.ts) run against both. The run controller and the workflow
// services use this port (src/controller); the REST API still uses ./types.ts.
//
// The shape is controller-runtime's:
//
// Reads (`get`, `list`, the step-instance and task reads, `getState`) are synchronous and come
// from the adapter's cache: SQLite reads its database; Kubernetes reads informers (list+watch
// per kind, resumed from the last resourceVersion, relisted on 410 Gone). During one
// synchronous stretch of code the cache does not change, so a reconcile pass sees one
// consistent snapshot. `getLive` reads through to the source of truth and refreshes the cache:
// what a writer uses after a conflict.
//
// Writes are collected and committed: `transaction(fn)` calls `fn` synchronously with a
// WriteBatch that only *records* writes (reads inside `fn` do not see them), then persists them
// and resolves with `fn`'s result. After the promise resolves:
// - every write is durable (SQLite: fsynced; Kubernetes: acknowledged by the apiserver);
// - reads return what was written (read-your-writes: the adapter writes its results through
//   to its cache, and never replaces a cached object by an older resourceVersion);
// - every `watch` listener has been called for the changes.
// Each create/update/updateStatus/delete returns a Receipt whose `value` is the stored object
// once the commit has resolved.
//
// Atomicity differs, and the port says so (`atomic`): SQLite applies a batch all or nothing;
// the Kubernetes API has no multi-object transaction, so there a batch is applied in order and
// a failure stops it, leaving the writes before it applied (CommitError.applied says how many).
// Callers must therefore be level-triggered: write in an order that is safe to interrupt
// (step instances and tasks before the run status that summarises them) and recompute from the
// store after a failure. Order: object writes happen in the order recorded; consecutive
// record writes (putStepInstances, deleteStepInstances, putTasks, deleteTask, setState) are
// coalesced into one write per changed storage object (Kubernetes: one per changed shard),
// placed where the first of them was recorded.
//
// Optimistic concurrency as in Kubernetes: update/updateStatus carrying
// metadata.resourceVersion fail with STORE_CONFLICT when the object has moved on; without one
// they overwrite. `retryStatus` (./retry.ts) re-reads and retries a status write.
//
// GitOps (a Workflow's spec belongs to its author, or to Argo CD / Flux): `update` cannot take
// a Workflow; a Workflow's spec changes only through `updateWorkflowSpec`, which the
// ControllerWriteBatch given to the controller does not have. The controller writes a
// Workflow's status only (`updateStatus`, which never touches spec).
import type {
  Kind,
  ResourceObject,
  StepInstanceRecord,
  Store,
  Stored,
  StoreErrorCode,
  TaskRecord,
} from './types.ts';
import { StoreError } from './types.ts';

/** Kinds whose spec the controller may write (a WorkflowRun's `spec.stop`, for example). */
export type SpecWritableKind = Exclude<Kind, 'Workflow'>;

/** The outcome of one recorded write, readable once its commit resolved. */
export interface Receipt<T> {
  /** True once the commit that carried this write resolved (or failed past this write). */
  readonly done: boolean;
  /** The stored result; throws STORE_PENDING before the commit resolved. */
  readonly value: T;
}

/** Writes the controller may record: everything but a Workflow's spec. */
export interface ControllerWriteBatch {
  create<T extends ResourceObject>(kind: Kind, obj: T): Receipt<Stored<T>>;
  /** The main resource (spec, labels, annotations, ownerReferences); never status. */
  update<T extends ResourceObject>(kind: SpecWritableKind, obj: T): Receipt<Stored<T>>;
  /** The status subresource: never touches spec, labels or generation. */
  updateStatus<T extends ResourceObject>(kind: Kind, obj: T): Receipt<Stored<T>>;
  /** Receipt value: false when there was nothing to delete. */
  delete(kind: Kind, namespace: string, name: string): Receipt<boolean>;
  putStepInstances(records: StepInstanceRecord[]): void;
  deleteStepInstances(namespace: string, run: string): void;
  putTasks(records: TaskRecord[]): void;
  deleteTask(namespace: string, run: string, instance: string): void;
  setState(key: string, value: unknown): void;
}

/** Every write, including a user's change of a Workflow's spec (REST API, manifest loading). */
export interface WriteBatch extends ControllerWriteBatch {
  updateWorkflowSpec<T extends ResourceObject>(obj: T): Receipt<Stored<T>>;
}

/**
 * The reads of the first port, unchanged (synchronous, from the adapter's cache), plus
 * `getLive`. `watch` calls `fn` for every change: own commits and, for Kubernetes, other
 * writers' (kubectl, a GitOps tool); `getStepInstances` lists in insertion order.
 */
export interface StoreReads
  extends Pick<
    Store,
    | 'get'
    | 'list'
    | 'watch'
    | 'getStepInstances'
    | 'getStepInstance'
    | 'countStepInstances'
    | 'listTasks'
    | 'getState'
  > {
  /** Reads the source of truth (not the cache) and refreshes the cache with what it found. */
  getLive<T extends ResourceObject>(
    kind: Kind,
    namespace: string,
    name: string,
  ): Promise<Stored<T> | undefined>;
}

/** The store port of both shells (see the comment at the top of this file). */
export interface AsyncStore extends StoreReads {
  /** True when a commit is all or nothing (SQLite); false when it is applied in order (Kubernetes). */
  readonly atomic: boolean;
  transaction<R>(fn: (w: WriteBatch) => R): Promise<R>;
  close(): Promise<void>;
}

/** What the controller gets: the same store, without a way to write a Workflow's spec. */
export interface ControllerStore extends StoreReads {
  readonly atomic: boolean;
  transaction<R>(fn: (w: ControllerWriteBatch) => R): Promise<R>;
}

/**
 * A commit failed. `applied` counts the recorded writes that took effect before the failure
 * (always 0 for an atomic store); the failing write's own code is `code`, its error `cause`.
 */
export class CommitError extends StoreError {
  readonly applied: number;
  constructor(code: StoreErrorCode, message: string, applied: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CommitError';
    this.applied = applied;
  }
}

// --- the recorded batch (shared by both adapters) --------------------------------------------

export type ObjectOp =
  | { op: 'create'; kind: Kind; obj: ResourceObject }
  | { op: 'update'; kind: Kind; obj: ResourceObject }
  | { op: 'updateStatus'; kind: Kind; obj: ResourceObject }
  | { op: 'delete'; kind: Kind; namespace: string; name: string };

export type RecordOp =
  | { op: 'putStepInstances'; records: StepInstanceRecord[] }
  | { op: 'deleteStepInstances'; namespace: string; run: string }
  | { op: 'putTasks'; records: TaskRecord[] }
  | { op: 'deleteTask'; namespace: string; run: string; instance: string }
  | { op: 'setState'; key: string; value: unknown };

/** A commit's writes: object writes one by one, runs of record writes as one segment each. */
export type Segment =
  | { type: 'object'; op: ObjectOp; receipt: PendingReceipt<unknown> }
  | { type: 'records'; ops: RecordOp[] };

export class PendingReceipt<T> implements Receipt<T> {
  private state: { done: false } | { done: true; value: T } | { done: true; error: unknown } = {
    done: false,
  };
  get done(): boolean {
    return this.state.done;
  }
  get value(): T {
    const s = this.state;
    if (!s.done)
      throw new StoreError('STORE_PENDING', 'the write is not committed yet (await the transaction)');
    if ('error' in s) throw s.error;
    return s.value;
  }
  resolve(value: T): void {
    this.state = { done: true, value };
  }
  reject(error: unknown): void {
    this.state = { done: true, error };
  }
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

/**
 * Records the writes of one transaction. Arguments are copied when recorded, so a caller may
 * go on mutating its objects. Reserved state keys and a Workflow through `update` are refused
 * when recorded (STORE_INVALID), before anything is written.
 */
export class BatchRecorder implements WriteBatch {
  readonly segments: Segment[] = [];

  private object<T>(op: ObjectOp): PendingReceipt<T> {
    const receipt = new PendingReceipt<T>();
    this.segments.push({ type: 'object', op, receipt: receipt as PendingReceipt<unknown> });
    return receipt;
  }

  private record(op: RecordOp): void {
    const last = this.segments[this.segments.length - 1];
    if (last?.type === 'records') last.ops.push(op);
    else this.segments.push({ type: 'records', ops: [op] });
  }

  create<T extends ResourceObject>(kind: Kind, obj: T): Receipt<Stored<T>> {
    return this.object({ op: 'create', kind, obj: clone(obj) });
  }
  update<T extends ResourceObject>(kind: SpecWritableKind, obj: T): Receipt<Stored<T>> {
    if ((kind as Kind) === 'Workflow') {
      throw new StoreError(
        'STORE_INVALID',
        "update: a Workflow's spec is written only by its author (updateWorkflowSpec); the controller writes its status",
      );
    }
    return this.object({ op: 'update', kind, obj: clone(obj) });
  }
  updateWorkflowSpec<T extends ResourceObject>(obj: T): Receipt<Stored<T>> {
    return this.object({ op: 'update', kind: 'Workflow', obj: clone(obj) });
  }
  updateStatus<T extends ResourceObject>(kind: Kind, obj: T): Receipt<Stored<T>> {
    return this.object({ op: 'updateStatus', kind, obj: clone(obj) });
  }
  delete(kind: Kind, namespace: string, name: string): Receipt<boolean> {
    return this.object({ op: 'delete', kind, namespace, name });
  }
  putStepInstances(records: StepInstanceRecord[]): void {
    if (records.length > 0) this.record({ op: 'putStepInstances', records: clone(records) });
  }
  deleteStepInstances(namespace: string, run: string): void {
    this.record({ op: 'deleteStepInstances', namespace, run });
  }
  putTasks(records: TaskRecord[]): void {
    if (records.length > 0) this.record({ op: 'putTasks', records: clone(records) });
  }
  deleteTask(namespace: string, run: string, instance: string): void {
    this.record({ op: 'deleteTask', namespace, run, instance });
  }
  setState(key: string, value: unknown): void {
    if (key.startsWith('__')) throw new StoreError('STORE_INVALID', `state key "${key}" is reserved`);
    this.record({ op: 'setState', key, value: clone(value) });
  }
}

/** Marks every receipt from segment `from` on as failed with `error` (nothing was written there). */
export function rejectFrom(segments: Segment[], from: number, error: unknown): void {
  for (const s of segments.slice(from)) if (s.type === 'object' && !s.receipt.done) s.receipt.reject(error);
}

/**
 * Writes a status computed from the current object, re-reading it (getLive) and computing again
 * after each STORE_CONFLICT, at most `attempts` times (default 5): for the controller's status
 * writes, which must not be lost to a concurrent writer (a user's `kubectl edit`, a second
 * replica before it lost its lease). `compute` returns undefined when there is nothing to write.
 * Resolves with the stored object, or undefined when the object is gone.
 */
export async function updateStatusRetrying<T extends ResourceObject>(
  store: ControllerStore,
  kind: Kind,
  namespace: string,
  name: string,
  compute: (current: Stored<T>) => T['status'] | undefined,
  attempts = 5,
): Promise<Stored<T> | undefined> {
  let current = store.get<T>(kind, namespace, name);
  for (let attempt = 1; ; attempt++) {
    if (!current) return undefined;
    const status = compute(current);
    if (status === undefined) return current;
    const base = current;
    try {
      const receipt = await store.transaction((w) => w.updateStatus<T>(kind, { ...base, status }));
      return receipt.value;
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'STORE_CONFLICT' || attempt >= attempts) throw err;
      current = await store.getLive<T>(kind, namespace, name);
    }
  }
}
