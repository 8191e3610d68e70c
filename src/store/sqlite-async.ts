// The SQLite store behind the asynchronous port (./port.ts): a thin wrapper, so the standalone
// server and the operator can share one interface. A commit is the SQLite store's single
// transaction, as today: all or nothing, fsynced when the promise resolves.
import type { AsyncStore, Segment, WriteBatch } from './port.ts';
import { BatchRecorder, CommitError, rejectFrom } from './port.ts';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.ts';
import type {
  Change,
  Kind,
  ListOptions,
  ListResult,
  ResourceObject,
  RunQuery,
  StepInstanceRecord,
  Stored,
  StoreWriter,
  TaskRecord,
} from './types.ts';
import { StoreError } from './types.ts';

function applySegment(w: StoreWriter, s: Segment): unknown {
  if (s.type === 'object') {
    const op = s.op;
    switch (op.op) {
      case 'create':
        return w.create(op.kind, op.obj);
      case 'update':
        return w.update(op.kind, op.obj);
      case 'updateStatus':
        return w.updateStatus(op.kind, op.obj);
      case 'delete':
        return w.delete(op.kind, op.namespace, op.name);
    }
  }
  for (const op of s.ops) {
    switch (op.op) {
      case 'putStepInstances':
        w.putStepInstances(op.records);
        break;
      case 'deleteStepInstances':
        w.deleteStepInstances(op.namespace, op.run);
        break;
      case 'putTasks':
        w.putTasks(op.records);
        break;
      case 'deleteTask':
        w.deleteTask(op.namespace, op.run, op.instance);
        break;
      case 'setState':
        w.setState(op.key, op.value);
        break;
    }
  }
  return undefined;
}

export class SqliteAsyncStore implements AsyncStore {
  readonly atomic = true;
  /** The wrapped synchronous store (the standalone wiring still needs `attemptDir`). */
  readonly sync: SqliteStore;

  constructor(store: SqliteStore | SqliteStoreOptions) {
    this.sync = store instanceof SqliteStore ? store : new SqliteStore(store);
  }

  get<T extends ResourceObject>(kind: Kind, namespace: string, name: string): Stored<T> | undefined {
    return this.sync.get<T>(kind, namespace, name);
  }
  list<T extends ResourceObject>(
    kind: Kind,
    namespace: string | undefined,
    opts?: ListOptions,
  ): ListResult<Stored<T>> {
    return this.sync.list<T>(kind, namespace, opts);
  }
  async getLive<T extends ResourceObject>(
    kind: Kind,
    namespace: string,
    name: string,
  ): Promise<Stored<T> | undefined> {
    return this.sync.get<T>(kind, namespace, name);
  }
  watch(fn: (change: Change) => void): () => void {
    return this.sync.watch(fn);
  }
  getStepInstances(
    namespace: string,
    run: string,
    opts?: { phase?: string; limit?: number; continue?: string },
  ): { items: StepInstanceRecord[]; continue?: string } {
    return this.sync.getStepInstances(namespace, run, opts);
  }
  getStepInstance(namespace: string, run: string, id: string): StepInstanceRecord | undefined {
    return this.sync.getStepInstance(namespace, run, id);
  }
  countStepInstances(namespace: string, run: string): Record<string, number> {
    return this.sync.countStepInstances(namespace, run);
  }
  listTasks(filter?: { namespace?: string; run?: string }): TaskRecord[] {
    return this.sync.listTasks(filter);
  }
  getState<V>(key: string): V | undefined {
    return this.sync.getState<V>(key);
  }
  /** SQLite's indexed query of runs (not in the port: the informer cache has no index). */
  listRuns<T extends ResourceObject>(namespace: string | undefined, query?: RunQuery): Stored<T>[] {
    return this.sync.listRuns<T>(namespace, query);
  }

  async transaction<R>(fn: (w: WriteBatch) => R): Promise<R> {
    const batch = new BatchRecorder();
    const result = fn(batch);
    const { segments } = batch;
    if (segments.length === 0) return result;
    // like the Kubernetes store, commit after `transaction` has returned (never during the call)
    await null;
    const values: unknown[] = [];
    let at = 0;
    try {
      this.sync.transaction((w) => {
        for (at = 0; at < segments.length; at++) values.push(applySegment(w, segments[at]!));
      });
    } catch (err) {
      const code = err instanceof StoreError ? err.code : 'STORE_UNAVAILABLE';
      const error = new CommitError(code, (err as Error).message, 0, { cause: err });
      rejectFrom(segments, 0, error);
      throw error;
    }
    segments.forEach((s, i) => {
      if (s.type === 'object') s.receipt.resolve(values[i]);
    });
    return result;
  }

  async close(): Promise<void> {
    this.sync.close();
  }
}
