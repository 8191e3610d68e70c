// The resource store port. The standalone server implements it on an embedded SQLite
// database (src/store/sqlite.ts); the Kubernetes operator will implement it on the
// Kubernetes API. The controller and the REST API only ever talk to this interface.
//
// Semantics follow the Kubernetes API so that both adapters behave alike:
// - every object has metadata.resourceVersion, an opaque string that changes on each write;
// - update/updateStatus with a resourceVersion fail with STORE_CONFLICT when the stored
//   object has moved on (optimistic concurrency); without one they overwrite;
// - create with metadata.generateName and no name picks a unique name;
// - update bumps metadata.generation when spec changes; updateStatus never touches spec.

/** The four kinds of the meson.dev API group that the store keeps. */
export type Kind = 'Workflow' | 'WorkflowVersion' | 'WorkflowRun' | 'DataArtifact';
export const KINDS: readonly Kind[] = ['Workflow', 'WorkflowVersion', 'WorkflowRun', 'DataArtifact'];

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
}

/** The shape every stored object has; the concrete kinds come from src/crds. */
export interface ResourceObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
}

/** A stored object: name, namespace, uid and resourceVersion are always set. */
export type Stored<T extends ResourceObject> = T & {
  metadata: ObjectMeta & { name: string; namespace: string; uid: string; resourceVersion: string };
};

export interface ListOptions {
  /** Only objects whose labels contain all these pairs. */
  labels?: Record<string, string>;
  /**
   * Only objects for which this returns true (in-process field selection, e.g. a run's phase;
   * an adapter for the Kubernetes API applies it client-side). It may be called on every
   * object, in any order, before paging: it must not change them.
   */
  filter?: (obj: Stored<ResourceObject>) => boolean;
  /** Page size; absent means everything. */
  limit?: number;
  /** The `continue` token of the previous page. */
  continue?: string;
}

/** Which runs Store.listRuns returns (all given conditions hold). */
export interface RunQuery {
  /** spec.workflow */
  workflow?: string;
  /** spec.initiator.parent.run: the child runs of this run. */
  parent?: string;
  /** true: Succeeded, Failed or Stopped; false: not (yet) one of them. */
  finished?: boolean;
}

/** Store.finishedRuns: which finished runs of a workflow, newest end first. */
export interface FinishedRunQuery {
  /** Skip the `offset` newest (keepLast). */
  offset?: number;
  limit?: number;
  /** Only runs that ended before this RFC 3339 time (TTLs). */
  endedBefore?: string;
  /** Only runs in this phase. */
  phase?: string;
}

/** Store.pageRuns: one page of runs, newest first (creationTimestamp desc, then name desc). */
export interface RunPageQuery {
  /** spec.workflow */
  workflow?: string;
  /** status.phase ('Pending' matches runs without one). */
  phase?: string;
  /** spec.initiator.type */
  initiator?: string;
  /** The version the run uses: status.version, or spec.version before it starts. */
  version?: number;
  /** Label requirements, all of which must hold (parsed from a Kubernetes label selector). */
  labels?: LabelRequirement[];
  /** Only runs created at or after / strictly before these RFC 3339 times (ISO 8601 UTC). */
  createdAfter?: string;
  createdBefore?: string;
  limit: number;
  /** The `continue` token of the previous page: a position, so that runs added meanwhile never shift the pages. */
  continue?: string;
}

export type LabelRequirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'exists' | 'absent' };

export interface FinishedRunRef {
  name: string;
  phase: string;
  /** status.endTime, or the creation time of a run that never started. */
  endTime: string;
}

export interface ListResult<T> {
  items: T[];
  /** Present when there are more items: pass as ListOptions.continue. */
  continue?: string;
  resourceVersion: string;
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  type: ChangeType;
  kind: Kind;
  object: Stored<ResourceObject>;
}

/**
 * One step instance of a run, stored apart from the run object so that a 10,000-way
 * foreach never makes one giant object. `data` is the instance's status as the engine
 * keeps it (src/crds StepInstanceStatus); the store only needs its id and phase.
 */
export interface StepInstanceRecord {
  namespace: string;
  run: string;
  id: string;
  phase: string;
  data: Record<string, unknown>;
}

/**
 * A task the controller must place and launch (or has launched): kept in the store so that a
 * restart neither loses a pending launch nor re-launches a running one.
 */
export interface TaskRecord {
  namespace: string;
  run: string;
  /** Step-instance id. */
  instance: string;
  attempt: number;
  /** 'queued': waiting for placement; 'launched': handed to a launcher (see `launch`). */
  state: 'queued' | 'launched';
  /** The resolved step and anything the launcher needs (engine's launch action). */
  data: Record<string, unknown>;
  /** Set when launched: where the launcher keeps this attempt's files, placement, etc. */
  launch?: Record<string, unknown>;
}

export type StoreErrorCode =
  | 'STORE_NOT_FOUND'
  | 'STORE_ALREADY_EXISTS'
  | 'STORE_CONFLICT'
  | 'STORE_INVALID'
  | 'STORE_CLOSED'
  /** A name would build a path outside the store's file root (src/store/paths.ts). */
  | 'STORE_UNSAFE_PATH'
  /** Read of a Receipt whose commit has not resolved (src/store/port.ts). */
  | 'STORE_PENDING'
  /** An object, a step instance or a state value over the adapter's size limit. */
  | 'STORE_TOO_LARGE'
  /** The backend failed or could not be reached (Kubernetes: 5xx, network, 429 after retries). */
  | 'STORE_UNAVAILABLE';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/** The writes available inside `Store.transaction`: all of them commit together or not at all. */
export interface StoreWriter {
  create<T extends ResourceObject>(kind: Kind, obj: T): Stored<T>;
  update<T extends ResourceObject>(kind: Kind, obj: T): Stored<T>;
  updateStatus<T extends ResourceObject>(kind: Kind, obj: T): Stored<T>;
  delete(kind: Kind, namespace: string, name: string): boolean;
  putStepInstances(records: StepInstanceRecord[]): void;
  deleteStepInstances(namespace: string, run: string): void;
  putTasks(records: TaskRecord[]): void;
  deleteTask(namespace: string, run: string, instance: string): void;
  setState(key: string, value: unknown): void;
  deleteState(key: string): void;
}

/**
 * The run history the REST API and the web UI read: the SQLite store answers from its indexes;
 * on the asynchronous port (./port.ts) it is a capability, which the Kubernetes store provides
 * from its informer cache (./history.ts), since the Kubernetes API cannot sort by creation time.
 * resourceVersions are compared as integers (SQLite's counter; etcd revisions).
 */
export interface RunHistory {
  /**
   * One page of runs, newest first (creationTimestamp desc, then name desc), filtered. The
   * `continue` token is a position (keyset), so runs added meanwhile never shift the pages.
   * SQLite filters in the store, indexed by creation time (and by workflow and creation time):
   * the cost follows the page, not the runs stored.
   */
  pageRuns<T extends ResourceObject>(
    namespace: string,
    query: RunPageQuery,
  ): { items: Stored<T>[]; continue?: string };
  /**
   * The objects of `kind` in `namespace` written after resourceVersion `after` (what a watcher
   * resuming from `after` missed; deletions are not kept), oldest write first.
   */
  changedSince<T extends ResourceObject>(kind: Kind, namespace: string, after: number): Stored<T>[];
  /** The latest resourceVersion a watcher may resume from without missing a change. */
  currentResourceVersion(): string;
}

/**
 * The run queries of admission and retention. SQLite answers from indexes (the cost follows
 * the runs returned, not all runs stored); on the asynchronous port (./port.ts) it is a
 * capability, which the Kubernetes store answers from its informer cache (./history.ts).
 */
export interface RunIndex {
  /**
   * WorkflowRuns matching `query`, ordered by namespace, name (admission asks for the unfinished
   * runs of one workflow at every run start; retention for the finished ones).
   */
  listRuns<T extends ResourceObject>(namespace: string | undefined, query?: RunQuery): Stored<T>[];
  /** Every (namespace, spec.workflow) that has at least one run, Workflow deleted or not. */
  runWorkflows(): { namespace: string; workflow: string }[];
  /**
   * The finished runs of one workflow as references, newest end first (ties: name), leaving
   * out subworkflow children whose parent run exists, without reading the runs: the retention
   * sweep's query.
   */
  finishedRuns(namespace: string, workflow: string, query?: FinishedRunQuery): FinishedRunRef[];
}

export interface Store extends StoreWriter, RunHistory, RunIndex {
  get<T extends ResourceObject>(kind: Kind, namespace: string, name: string): Stored<T> | undefined;
  /** namespace undefined: all namespaces. Ordered by namespace, name. */
  list<T extends ResourceObject>(
    kind: Kind,
    namespace: string | undefined,
    opts?: ListOptions,
  ): ListResult<Stored<T>>;
  /**
   * Runs `fn` in one transaction: its writes are durable together when it returns, and
   * watchers see its changes only after the commit. Nested calls join the outer transaction.
   */
  transaction<R>(fn: (w: StoreWriter) => R): R;
  /** Calls `fn` for every committed change; returns the unsubscribe function. */
  watch(fn: (change: Change) => void): () => void;
  getStepInstances(
    namespace: string,
    run: string,
    opts?: { phase?: string; limit?: number; continue?: string },
  ): { items: StepInstanceRecord[]; continue?: string };
  getStepInstance(namespace: string, run: string, id: string): StepInstanceRecord | undefined;
  countStepInstances(namespace: string, run: string): Record<string, number>;
  listTasks(filter?: { namespace?: string; run?: string }): TaskRecord[];
  getState<V>(key: string): V | undefined;
  /** Every state entry whose key starts with `prefix`, ordered by key. */
  listState<V>(prefix: string): { key: string; value: V }[];
  /**
   * Directory for one attempt's logs and executor files (see docs/executor-protocol.md).
   * Throws STORE_UNSAFE_PATH when a name would lead outside the store's file root.
   */
  attemptDir(namespace: string, run: string, instance: string, attempt: number, launchId: string): string;
  /** Directory of all of one run's attempt files (removed with the run). Same checks as attemptDir. */
  runDir(namespace: string, run: string): string;
  close(): void;
}
