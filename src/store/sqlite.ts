// The embedded store of the standalone server: one SQLite database (Node's built-in
// node:sqlite, no native build) in WAL mode.
//
// Durability: `synchronous=FULL`. In WAL mode NORMAL survives a crash of this process but
// may lose the last committed transactions on power loss or an OS crash; FULL fsyncs the
// WAL on every commit, so anything acknowledged (a REST 201, a persisted run status) is on
// disk. The cost is one fsync per transaction, which is why the controller batches its
// writes (one transaction per reconcile pass, whatever the number of step instances).
//
// resourceVersion is a store-wide counter (like etcd's revision): each write takes the next
// value, so versions of different objects are comparable and a watcher can resume.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { decodeToken, encodeToken, labelsMatch } from './paging.ts';
import { checkSegment, instanceSegment, pathInside } from './paths.ts';
import {
  type Change,
  type FinishedRunQuery,
  type FinishedRunRef,
  KINDS,
  type Kind,
  type ListOptions,
  type ListResult,
  type ResourceObject,
  type RunPageQuery,
  type RunQuery,
  type StepInstanceRecord,
  type Store,
  type Stored,
  StoreError,
  type StoreWriter,
  type TaskRecord,
} from './types.ts';

export interface SqliteStoreOptions {
  /** Directory of the database and of the attempts' files; ':memory:' keeps the database in memory. */
  dir: string;
  /** Where attempt directories go when dir is ':memory:'. */
  attemptsDir?: string;
  now?: () => Date;
  uid?: () => string;
  /** Random suffix for generateName (5 chars of [a-z0-9] by default). */
  suffix?: () => string;
}

// Run queries (admission, retention) go through expression indexes on the run's JSON, so that
// their cost follows the runs they return, not every run stored. The query terms must be
// written exactly as in the index definitions for SQLite to use them (see sqlite.test.ts,
// which checks the query plans).
const RUN_WORKFLOW = `json_extract(data, '$.spec.workflow')`;
const RUN_PARENT = `json_extract(data, '$.spec.initiator.parent.run')`;
const RUN_UNFINISHED = `coalesce(json_extract(data, '$.status.phase'), '') NOT IN ('Succeeded', 'Failed', 'Stopped')`;
const RUN_FINISHED = `coalesce(json_extract(data, '$.status.phase'), '') IN ('Succeeded', 'Failed', 'Stopped')`;
const RUN_PHASE = `json_extract(data, '$.status.phase')`;
const RUN_CREATED = `json_extract(data, '$.metadata.creationTimestamp')`;
const RUN_END = `coalesce(json_extract(data, '$.status.endTime'), json_extract(data, '$.metadata.creationTimestamp'))`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS objects (
  kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  rv INTEGER NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_instances (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL, run TEXT NOT NULL, id TEXT NOT NULL,
  phase TEXT NOT NULL, data TEXT NOT NULL,
  UNIQUE (namespace, run, id)
);
CREATE TABLE IF NOT EXISTS tasks (
  namespace TEXT NOT NULL, run TEXT NOT NULL, instance TEXT NOT NULL,
  attempt INTEGER NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL, launch TEXT,
  PRIMARY KEY (namespace, run, instance)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_workflow ON objects (namespace, ${RUN_WORKFLOW})
  WHERE kind = 'WorkflowRun';
CREATE INDEX IF NOT EXISTS runs_unfinished ON objects (namespace, ${RUN_WORKFLOW})
  WHERE kind = 'WorkflowRun' AND ${RUN_UNFINISHED};
CREATE INDEX IF NOT EXISTS runs_finished ON objects
  (namespace, ${RUN_WORKFLOW}, ${RUN_END}, name, ${RUN_PHASE}, ${RUN_PARENT})
  WHERE kind = 'WorkflowRun' AND ${RUN_FINISHED};
CREATE INDEX IF NOT EXISTS runs_by_created ON objects (namespace, ${RUN_CREATED}, name)
  WHERE kind = 'WorkflowRun';
CREATE INDEX IF NOT EXISTS runs_by_workflow_created ON objects (namespace, ${RUN_WORKFLOW}, ${RUN_CREATED}, name)
  WHERE kind = 'WorkflowRun';
CREATE INDEX IF NOT EXISTS objects_by_rv ON objects (kind, namespace, rv);
CREATE INDEX IF NOT EXISTS runs_by_parent ON objects (namespace, ${RUN_PARENT})
  WHERE kind = 'WorkflowRun' AND ${RUN_PARENT} IS NOT NULL;
`;

const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function defaultSuffix(): string {
  const bytes = randomBytes(5);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % ALPHABET.length];
  return s;
}

function checkKind(kind: Kind): void {
  if (!KINDS.includes(kind)) throw new StoreError('STORE_INVALID', `unknown kind "${kind}"`);
}

export class SqliteStore implements Store {
  private readonly db: DatabaseSync;
  private readonly opts: Required<Omit<SqliteStoreOptions, 'attemptsDir'>> & { attemptsDir: string };
  private readonly listeners = new Set<(c: Change) => void>();
  private pending: Change[] = [];
  private depth = 0;
  private rv: number;
  private closed = false;
  private readonly stmts: Record<string, StatementSync> = {};

  constructor(options: SqliteStoreOptions) {
    const memory = options.dir === ':memory:';
    if (!memory) mkdirSync(options.dir, { recursive: true });
    this.opts = {
      dir: options.dir,
      attemptsDir:
        options.attemptsDir ??
        (memory ? join(process.cwd(), '.meson', 'attempts') : join(options.dir, 'attempts')),
      now: options.now ?? (() => new Date()),
      uid: options.uid ?? randomUUID,
      suffix: options.suffix ?? defaultSuffix,
    };
    this.db = new DatabaseSync(memory ? ':memory:' : join(options.dir, 'meson.db'));
    this.db.exec('PRAGMA journal_mode=WAL');
    this.db.exec('PRAGMA synchronous=FULL');
    this.db.exec('PRAGMA busy_timeout=5000');
    this.db.exec(SCHEMA);
    const row = this.db.prepare(`SELECT value FROM state WHERE key = '__rv'`).get() as
      | { value: string }
      | undefined;
    this.rv = row ? Number(JSON.parse(row.value)) : 0;
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmts[sql];
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts[sql] = s;
    }
    return s;
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
  }

  transaction<R>(fn: (w: StoreWriter) => R): R {
    this.ensureOpen();
    if (this.depth > 0) {
      this.depth++;
      try {
        return fn(this);
      } finally {
        this.depth--;
      }
    }
    this.depth = 1;
    const startRv = this.rv;
    this.db.exec('BEGIN IMMEDIATE');
    let result: R;
    try {
      result = fn(this);
      if (this.rv !== startRv) {
        this.stmt(
          `INSERT INTO state (key, value) VALUES ('__rv', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
        ).run(JSON.stringify(this.rv));
      }
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      this.rv = startRv;
      this.pending = [];
      throw err;
    } finally {
      this.depth = 0;
    }
    const changes = this.pending;
    this.pending = [];
    for (const c of changes) {
      for (const l of this.listeners) {
        try {
          l(c);
        } catch {
          // a failing watcher must not break the writer nor the other watchers
        }
      }
    }
    return result;
  }

  /** Runs a single write in its own transaction unless one is open. */
  private write<R>(fn: () => R): R {
    return this.depth > 0 ? fn() : this.transaction(() => fn());
  }

  private readRow(kind: Kind, namespace: string, name: string): Stored<ResourceObject> | undefined {
    const row = this.stmt('SELECT data FROM objects WHERE kind = ? AND namespace = ? AND name = ?').get(
      kind,
      namespace,
      name,
    ) as { data: string } | undefined;
    return row ? JSON.parse(row.data) : undefined;
  }

  private writeRow(kind: Kind, obj: Stored<ResourceObject>, type: Change['type']): Stored<ResourceObject> {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const data = JSON.stringify(obj);
    this.stmt(
      'INSERT INTO objects (kind, namespace, name, rv, data) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT(kind, namespace, name) DO UPDATE SET rv = excluded.rv, data = excluded.data',
    ).run(kind, obj.metadata.namespace, obj.metadata.name, this.rv, data);
    this.pending.push({ type, kind, object: JSON.parse(data) });
    return obj;
  }

  get<T extends ResourceObject>(kind: Kind, namespace: string, name: string): Stored<T> | undefined {
    this.ensureOpen();
    checkKind(kind);
    return this.readRow(kind, namespace, name) as Stored<T> | undefined;
  }

  list<T extends ResourceObject>(
    kind: Kind,
    namespace: string | undefined,
    opts: ListOptions = {},
  ): ListResult<Stored<T>> {
    this.ensureOpen();
    checkKind(kind);
    let after: [string, string] = ['', ''];
    if (opts.continue) {
      const [ns, name] = decodeToken(opts.continue);
      after = [String(ns), String(name)];
    }
    const rows = (
      namespace === undefined
        ? this.stmt(
            'SELECT data FROM objects WHERE kind = ? AND (namespace > ? OR (namespace = ? AND name > ?)) ORDER BY namespace, name',
          ).all(kind, after[0], after[0], after[1])
        : this.stmt(
            'SELECT data FROM objects WHERE kind = ? AND namespace = ? AND name > ? ORDER BY name',
          ).all(kind, namespace, namespace === after[0] ? after[1] : '')
    ) as { data: string }[];
    const items: Stored<T>[] = [];
    let more = false;
    for (const row of rows) {
      const obj = JSON.parse(row.data) as Stored<T>;
      if (!labelsMatch(obj, opts.labels)) continue;
      if (opts.filter && !opts.filter(obj)) continue;
      if (opts.limit !== undefined && items.length >= opts.limit) {
        more = true;
        break;
      }
      items.push(obj);
    }
    const last = items[items.length - 1];
    return {
      items,
      resourceVersion: String(this.rv),
      ...(more && last ? { continue: encodeToken([last.metadata.namespace, last.metadata.name]) } : {}),
    };
  }

  /** The SQL of listRuns (exported to tests through runQueryPlan). */
  private runSql(namespace: string | undefined, query: RunQuery): { sql: string; args: string[] } {
    const where = [`kind = 'WorkflowRun'`];
    const args: string[] = [];
    if (namespace !== undefined) {
      where.push('namespace = ?');
      args.push(namespace);
    }
    if (query.workflow !== undefined) {
      where.push(`${RUN_WORKFLOW} = ?`);
      args.push(query.workflow);
    }
    if (query.parent !== undefined) {
      where.push(`${RUN_PARENT} IS NOT NULL`, `${RUN_PARENT} = ?`);
      args.push(query.parent);
    }
    if (query.finished === false) where.push(RUN_UNFINISHED);
    if (query.finished === true) where.push(RUN_FINISHED);
    // without statistics the planner may prefer the primary key (every run of the namespace)
    const index =
      query.finished === false
        ? 'runs_unfinished'
        : query.parent !== undefined
          ? 'runs_by_parent'
          : query.workflow !== undefined
            ? 'runs_by_workflow'
            : undefined;
    const from = index ? `objects INDEXED BY ${index}` : 'objects';
    return { sql: `SELECT data FROM ${from} WHERE ${where.join(' AND ')} ORDER BY namespace, name`, args };
  }

  listRuns<T extends ResourceObject>(namespace: string | undefined, query: RunQuery = {}): Stored<T>[] {
    this.ensureOpen();
    const { sql, args } = this.runSql(namespace, query);
    const rows = this.stmt(sql).all(...args) as { data: string }[];
    return rows.map((r) => JSON.parse(r.data) as Stored<T>);
  }

  private pageSql(namespace: string, q: RunPageQuery): { sql: string; args: (string | number)[] } {
    const where = [`kind = 'WorkflowRun'`, 'namespace = ?'];
    const args: (string | number)[] = [namespace];
    if (q.workflow !== undefined) {
      where.push(`${RUN_WORKFLOW} = ?`);
      args.push(q.workflow);
    }
    if (q.continue !== undefined) {
      const [ts, name] = decodeToken(q.continue);
      if (typeof ts !== 'string' || typeof name !== 'string') {
        throw new StoreError('STORE_INVALID', `invalid continue token "${q.continue}"`);
      }
      where.push(`(${RUN_CREATED} < ? OR (${RUN_CREATED} = ? AND name < ?))`);
      args.push(ts, ts, name);
    }
    if (q.createdAfter !== undefined) {
      where.push(`${RUN_CREATED} >= ?`);
      args.push(q.createdAfter);
    }
    if (q.createdBefore !== undefined) {
      where.push(`${RUN_CREATED} < ?`);
      args.push(q.createdBefore);
    }
    if (q.phase !== undefined) {
      where.push(`coalesce(${RUN_PHASE}, 'Pending') = ?`);
      args.push(q.phase);
    }
    if (q.initiator !== undefined) {
      where.push(`json_extract(data, '$.spec.initiator.type') = ?`);
      args.push(q.initiator);
    }
    if (q.version !== undefined) {
      where.push(
        `coalesce(json_extract(data, '$.status.version'), json_extract(data, '$.spec.version')) = ?`,
      );
      args.push(q.version);
    }
    for (const r of q.labels ?? []) {
      // the key is bound as a JSON path; label keys never hold a double quote (checked by the caller too)
      if (r.key.includes('"') || r.key.includes('\\')) {
        throw new StoreError('STORE_INVALID', `invalid label key ${JSON.stringify(r.key)}`);
      }
      const path = `$.metadata.labels."${r.key}"`;
      if (r.op === 'eq' || r.op === 'neq') {
        where.push(
          `coalesce(json_extract(data, ?) ${r.op === 'eq' ? '=' : '!='} ?, ${r.op === 'eq' ? 0 : 1})`,
        );
        args.push(path, r.value);
      } else {
        where.push(`json_extract(data, ?) IS ${r.op === 'exists' ? 'NOT ' : ''}NULL`);
        args.push(path);
      }
    }
    const index = q.workflow !== undefined ? 'runs_by_workflow_created' : 'runs_by_created';
    args.push(q.limit + 1);
    return {
      sql: `SELECT name, ${RUN_CREATED} AS created, data FROM objects INDEXED BY ${index} WHERE ${where.join(' AND ')}
        ORDER BY ${RUN_CREATED} DESC, name DESC LIMIT ?`,
      args,
    };
  }

  pageRuns<T extends ResourceObject>(
    namespace: string,
    query: RunPageQuery,
  ): { items: Stored<T>[]; continue?: string } {
    this.ensureOpen();
    const { sql, args } = this.pageSql(namespace, query);
    const rows = this.stmt(sql).all(...args) as { name: string; created: string; data: string }[];
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const items = page.map((r) => JSON.parse(r.data) as Stored<T>);
    const last = page[page.length - 1];
    return more && last ? { items, continue: encodeToken([last.created, last.name]) } : { items };
  }

  /** SQLite's plan for a pageRuns query (tests check that it walks an index in order). */
  pageQueryPlan(namespace: string, query: RunPageQuery): string {
    const { sql, args } = this.pageSql(namespace, query);
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[];
    return rows.map((r) => r.detail).join('; ');
  }

  changedSince<T extends ResourceObject>(kind: Kind, namespace: string, after: number): Stored<T>[] {
    this.ensureOpen();
    checkKind(kind);
    const rows = this.stmt(
      'SELECT data FROM objects WHERE kind = ? AND namespace = ? AND rv > ? ORDER BY rv',
    ).all(kind, namespace, after) as { data: string }[];
    return rows.map((r) => JSON.parse(r.data) as Stored<T>);
  }

  currentResourceVersion(): string {
    return String(this.rv);
  }

  /** SQLite's plan for a listRuns query (tests check that it uses an index). */
  runQueryPlan(namespace: string | undefined, query: RunQuery = {}): string {
    const { sql, args } = this.runSql(namespace, query);
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[];
    return rows.map((r) => r.detail).join('; ');
  }

  runWorkflows(): { namespace: string; workflow: string }[] {
    this.ensureOpen();
    // a skip scan of the index: one or two seeks per distinct pair, however many runs each has
    const select = `SELECT namespace, ${RUN_WORKFLOW} AS workflow FROM objects INDEXED BY runs_by_workflow
       WHERE kind = 'WorkflowRun' AND ${RUN_WORKFLOW} IS NOT NULL`;
    const sameNamespace = this.stmt(
      `${select} AND namespace = ? AND ${RUN_WORKFLOW} > ? ORDER BY ${RUN_WORKFLOW} LIMIT 1`,
    );
    const nextNamespace = this.stmt(
      `${select} AND namespace > ? ORDER BY namespace, ${RUN_WORKFLOW} LIMIT 1`,
    );
    type Row = { namespace: string; workflow: unknown } | undefined;
    const out: { namespace: string; workflow: string }[] = [];
    let row = nextNamespace.get('') as Row;
    while (row) {
      const at = { namespace: row.namespace, workflow: String(row.workflow) };
      out.push(at);
      row = (sameNamespace.get(at.namespace, at.workflow) ?? nextNamespace.get(at.namespace)) as Row;
    }
    return out;
  }

  finishedRuns(namespace: string, workflow: string, query: FinishedRunQuery = {}): FinishedRunRef[] {
    this.ensureOpen();
    const where = [
      `kind = 'WorkflowRun'`,
      'namespace = ?',
      `${RUN_WORKFLOW} = ?`,
      RUN_FINISHED,
      // a child whose parent run exists goes with its parent, not on its own
      `(${RUN_PARENT} IS NULL OR NOT EXISTS (SELECT 1 FROM objects p WHERE p.kind = 'WorkflowRun' AND p.namespace = objects.namespace AND p.name = ${RUN_PARENT.replace('(data', '(objects.data')}))`,
    ];
    const args: (string | number)[] = [namespace, workflow];
    if (query.phase !== undefined) {
      where.push(`${RUN_PHASE} = ?`);
      args.push(query.phase);
    }
    if (query.endedBefore !== undefined) {
      where.push(`${RUN_END} < ?`);
      args.push(query.endedBefore);
    }
    args.push(query.limit ?? -1, query.offset ?? 0);
    const rows = this.stmt(
      `SELECT name, ${RUN_PHASE} AS phase, ${RUN_END} AS endTime FROM objects INDEXED BY runs_finished
       WHERE ${where.join(' AND ')} ORDER BY ${RUN_END} DESC, name DESC LIMIT ? OFFSET ?`,
    ).all(...args) as { name: string; phase: string; endTime: string | null }[];
    return rows.map((r) => ({ name: r.name, phase: r.phase, endTime: r.endTime ?? '' }));
  }

  create<T extends ResourceObject>(kind: Kind, input: T): Stored<T> {
    this.ensureOpen();
    checkKind(kind);
    return this.write(() => {
      const obj = structuredClone(input) as Stored<T>;
      const meta = obj.metadata ?? {};
      obj.metadata = meta as Stored<T>['metadata'];
      if (!meta.namespace) meta.namespace = 'default';
      if (!meta.name) {
        if (!meta.generateName) {
          throw new StoreError('STORE_INVALID', 'metadata.name or metadata.generateName is required');
        }
        let name = '';
        for (let i = 0; i < 20; i++) {
          name = `${meta.generateName}${this.opts.suffix()}`;
          if (!this.readRow(kind, meta.namespace, name)) break;
        }
        meta.name = name;
      }
      if (this.readRow(kind, meta.namespace, meta.name)) {
        throw new StoreError(
          'STORE_ALREADY_EXISTS',
          `${kind} "${meta.namespace}/${meta.name}" already exists`,
        );
      }
      meta.uid = this.opts.uid();
      meta.generation = 1;
      meta.creationTimestamp = this.opts.now().toISOString();
      return this.writeRow(kind, obj, 'ADDED') as Stored<T>;
    });
  }

  private current(kind: Kind, obj: ResourceObject): Stored<ResourceObject> {
    const ns = obj.metadata?.namespace ?? 'default';
    const name = obj.metadata?.name;
    if (!name) throw new StoreError('STORE_INVALID', 'metadata.name is required');
    const cur = this.readRow(kind, ns, name);
    if (!cur) throw new StoreError('STORE_NOT_FOUND', `${kind} "${ns}/${name}" not found`);
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== cur.metadata.resourceVersion) {
      throw new StoreError(
        'STORE_CONFLICT',
        `${kind} "${ns}/${name}" was modified (resourceVersion ${rv} is not the current ${cur.metadata.resourceVersion})`,
      );
    }
    return cur;
  }

  update<T extends ResourceObject>(kind: Kind, input: T): Stored<T> {
    this.ensureOpen();
    checkKind(kind);
    return this.write(() => {
      const cur = this.current(kind, input);
      const obj = structuredClone(input) as Stored<T>;
      // identity and bookkeeping fields belong to the store
      obj.metadata = {
        ...obj.metadata,
        namespace: cur.metadata.namespace,
        name: cur.metadata.name,
        uid: cur.metadata.uid,
        creationTimestamp: cur.metadata.creationTimestamp,
        resourceVersion: cur.metadata.resourceVersion,
        generation:
          (cur.metadata.generation ?? 1) + (JSON.stringify(obj.spec) === JSON.stringify(cur.spec) ? 0 : 1),
      };
      // like the status subresource: a main-resource update keeps the stored status
      if (cur.status === undefined) delete obj.status;
      else obj.status = cur.status;
      return this.writeRow(kind, obj, 'MODIFIED') as Stored<T>;
    });
  }

  updateStatus<T extends ResourceObject>(kind: Kind, input: T): Stored<T> {
    this.ensureOpen();
    checkKind(kind);
    return this.write(() => {
      const cur = this.current(kind, input);
      cur.status = structuredClone(input.status);
      return this.writeRow(kind, cur, 'MODIFIED') as Stored<T>;
    });
  }

  delete(kind: Kind, namespace: string, name: string): boolean {
    this.ensureOpen();
    checkKind(kind);
    return this.write(() => {
      const cur = this.readRow(kind, namespace, name);
      if (!cur) return false;
      this.stmt('DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?').run(
        kind,
        namespace,
        name,
      );
      if (kind === 'WorkflowRun') {
        this.deleteStepInstances(namespace, name);
        this.stmt('DELETE FROM tasks WHERE namespace = ? AND run = ?').run(namespace, name);
      }
      this.rv++;
      cur.metadata.resourceVersion = String(this.rv);
      this.pending.push({ type: 'DELETED', kind, object: cur });
      return true;
    });
  }

  watch(fn: (change: Change) => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  putStepInstances(records: StepInstanceRecord[]): void {
    this.ensureOpen();
    if (records.length === 0) return;
    this.write(() => {
      const s = this.stmt(
        'INSERT INTO step_instances (namespace, run, id, phase, data) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT(namespace, run, id) DO UPDATE SET phase = excluded.phase, data = excluded.data',
      );
      for (const r of records) s.run(r.namespace, r.run, r.id, r.phase, JSON.stringify(r.data));
    });
  }

  deleteStepInstances(namespace: string, run: string): void {
    this.ensureOpen();
    this.write(() => {
      this.stmt('DELETE FROM step_instances WHERE namespace = ? AND run = ?').run(namespace, run);
    });
  }

  getStepInstances(
    namespace: string,
    run: string,
    opts: { phase?: string; limit?: number; continue?: string } = {},
  ): { items: StepInstanceRecord[]; continue?: string } {
    this.ensureOpen();
    const after = opts.continue ? Number(decodeToken(opts.continue)[0]) : 0;
    const limit = opts.limit ?? -1;
    const fetch = limit < 0 ? -1 : limit + 1;
    const rows = (
      opts.phase === undefined
        ? this.stmt(
            'SELECT seq, id, phase, data FROM step_instances WHERE namespace = ? AND run = ? AND seq > ? ORDER BY seq LIMIT ?',
          ).all(namespace, run, after, fetch)
        : this.stmt(
            'SELECT seq, id, phase, data FROM step_instances WHERE namespace = ? AND run = ? AND phase = ? AND seq > ? ORDER BY seq LIMIT ?',
          ).all(namespace, run, opts.phase, after, fetch)
    ) as { seq: number; id: string; phase: string; data: string }[];
    const more = limit >= 0 && rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const items = page.map((r) => ({ namespace, run, id: r.id, phase: r.phase, data: JSON.parse(r.data) }));
    const last = page[page.length - 1];
    return more && last ? { items, continue: encodeToken([last.seq]) } : { items };
  }

  getStepInstance(namespace: string, run: string, id: string): StepInstanceRecord | undefined {
    this.ensureOpen();
    const r = this.stmt(
      'SELECT phase, data FROM step_instances WHERE namespace = ? AND run = ? AND id = ?',
    ).get(namespace, run, id) as { phase: string; data: string } | undefined;
    return r ? { namespace, run, id, phase: r.phase, data: JSON.parse(r.data) } : undefined;
  }

  countStepInstances(namespace: string, run: string): Record<string, number> {
    this.ensureOpen();
    const rows = this.stmt(
      'SELECT phase, COUNT(*) AS n FROM step_instances WHERE namespace = ? AND run = ? GROUP BY phase',
    ).all(namespace, run) as { phase: string; n: number }[];
    const out: Record<string, number> = {};
    for (const r of rows) out[r.phase] = Number(r.n);
    return out;
  }

  putTasks(records: TaskRecord[]): void {
    this.ensureOpen();
    if (records.length === 0) return;
    this.write(() => {
      const s = this.stmt(
        'INSERT INTO tasks (namespace, run, instance, attempt, state, data, launch) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT(namespace, run, instance) DO UPDATE SET attempt = excluded.attempt, state = excluded.state, ' +
          'data = excluded.data, launch = excluded.launch',
      );
      for (const t of records) {
        s.run(
          t.namespace,
          t.run,
          t.instance,
          t.attempt,
          t.state,
          JSON.stringify(t.data),
          t.launch === undefined ? null : JSON.stringify(t.launch),
        );
      }
    });
  }

  deleteTask(namespace: string, run: string, instance: string): void {
    this.ensureOpen();
    this.write(() => {
      this.stmt('DELETE FROM tasks WHERE namespace = ? AND run = ? AND instance = ?').run(
        namespace,
        run,
        instance,
      );
    });
  }

  listTasks(filter: { namespace?: string; run?: string } = {}): TaskRecord[] {
    this.ensureOpen();
    const rows = (
      filter.namespace !== undefined && filter.run !== undefined
        ? this.stmt('SELECT * FROM tasks WHERE namespace = ? AND run = ?').all(filter.namespace, filter.run)
        : this.stmt('SELECT * FROM tasks').all()
    ) as {
      namespace: string;
      run: string;
      instance: string;
      attempt: number;
      state: string;
      data: string;
      launch: string | null;
    }[];
    return rows
      .filter((r) => filter.namespace === undefined || r.namespace === filter.namespace)
      .map((r) => ({
        namespace: r.namespace,
        run: r.run,
        instance: r.instance,
        attempt: Number(r.attempt),
        state: r.state as TaskRecord['state'],
        data: JSON.parse(r.data),
        ...(r.launch === null ? {} : { launch: JSON.parse(r.launch) }),
      }));
  }

  setState(key: string, value: unknown): void {
    this.ensureOpen();
    if (key.startsWith('__')) throw new StoreError('STORE_INVALID', `state key "${key}" is reserved`);
    this.write(() => {
      this.stmt(
        'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ).run(key, JSON.stringify(value));
    });
  }

  deleteState(key: string): void {
    this.ensureOpen();
    if (key.startsWith('__')) throw new StoreError('STORE_INVALID', `state key "${key}" is reserved`);
    this.write(() => {
      this.stmt('DELETE FROM state WHERE key = ?').run(key);
    });
  }

  listState<V>(prefix: string): { key: string; value: V }[] {
    this.ensureOpen();
    if (prefix === '') throw new StoreError('STORE_INVALID', 'listState needs a non-empty prefix');
    // keys in [prefix, prefix + U+10FFFF): a range scan of the primary key, no LIKE escaping
    const rows = this.stmt('SELECT key, value FROM state WHERE key >= ? AND key < ? ORDER BY key').all(
      prefix,
      `${prefix}\u{10ffff}`,
    ) as { key: string; value: string }[];
    return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as V }));
  }

  getState<V>(key: string): V | undefined {
    this.ensureOpen();
    const r = this.stmt('SELECT value FROM state WHERE key = ?').get(key) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as V) : undefined;
  }

  attemptDir(namespace: string, run: string, instance: string, attempt: number, launchId: string): string {
    if (!Number.isSafeInteger(attempt) || attempt < 0) {
      throw new StoreError(
        'STORE_UNSAFE_PATH',
        `attempt ${JSON.stringify(attempt)} is not a non-negative integer`,
      );
    }
    // instance ids contain brackets and dots; keep them readable but path-safe
    return pathInside(this.opts.attemptsDir, [
      { what: 'namespace', value: namespace },
      { what: 'run', value: run },
      { what: 'step instance', value: instanceSegment(instance) },
      { what: 'attempt directory', value: `${attempt}-${checkSegment('launch id', launchId)}` },
    ]);
  }

  runDir(namespace: string, run: string): string {
    return pathInside(this.opts.attemptsDir, [
      { what: 'namespace', value: namespace },
      { what: 'run', value: run },
    ]);
  }

  /** The directory holding every run's files (`<root>/<namespace>/<run>/...`). */
  get attemptsRoot(): string {
    return this.opts.attemptsDir;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
