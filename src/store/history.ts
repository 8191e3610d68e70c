// Run history over a store's cached reads (the RunHistory capability of ./port.ts) for an
// adapter without indexes of its own: the Kubernetes store, whose API cannot list newest first.
// One page costs a scan of the namespace's cached runs (no copies but the page's own), which is
// what kubectl's client-side sorting costs too; SQLite answers the same queries from indexes.
//
// Same semantics as SqliteStore.pageRuns: newest first by creationTimestamp, then name (both
// descending); `continue` is the position of the last run returned (keyset), so runs created
// meanwhile never shift the next pages. Times are compared as instants, since Kubernetes writes
// whole seconds ("…:05Z") and the query gives milliseconds ("…:05.000Z").

import { decodeToken, encodeToken, labelsHold } from './paging.ts';
import type { RunHistory, RunIndex, StoreReads } from './port.ts';
import type {
  FinishedRunQuery,
  FinishedRunRef,
  Kind,
  ResourceObject,
  RunPageQuery,
  RunQuery,
  Stored,
} from './types.ts';
import { StoreError } from './types.ts';

interface RunFields {
  spec?: { workflow?: string; version?: number; initiator?: { type?: string } };
  status?: { phase?: string; version?: number };
}

function instant(ts: string | undefined): number {
  const ms = ts === undefined ? Number.NaN : Date.parse(ts);
  return Number.isNaN(ms) ? 0 : ms;
}

/** Whether `run` passes the filters of `q` (not the position). */
export function runMatches(
  run: Stored<ResourceObject>,
  q: Omit<RunPageQuery, 'limit' | 'continue'>,
): boolean {
  const r = run as Stored<ResourceObject> & RunFields;
  if (q.workflow !== undefined && r.spec?.workflow !== q.workflow) return false;
  if (q.phase !== undefined && (r.status?.phase ?? 'Pending') !== q.phase) return false;
  if (q.initiator !== undefined && r.spec?.initiator?.type !== q.initiator) return false;
  if (q.version !== undefined && (r.status?.version ?? r.spec?.version) !== q.version) return false;
  if (q.createdAfter !== undefined || q.createdBefore !== undefined) {
    const at = instant(r.metadata.creationTimestamp);
    if (q.createdAfter !== undefined && at < instant(q.createdAfter)) return false;
    if (q.createdBefore !== undefined && at >= instant(q.createdBefore)) return false;
  }
  return labelsHold(r.metadata.labels, q.labels);
}

/** A run with its sort key: creation instant, then name. */
interface Keyed {
  at: number;
  name: string;
  obj: Stored<ResourceObject>;
}

/** Whether `a` comes before `b` newest first (creation instant descending, then name descending). */
function newer(a: Keyed, b: Keyed): boolean {
  return a.at > b.at || (a.at === b.at && a.name > b.name);
}

function position(token: string): { at: number; name: string } {
  const [at, name] = decodeToken(token);
  if (typeof at !== 'number' || !Number.isFinite(at) || typeof name !== 'string') {
    throw new StoreError('STORE_INVALID', `invalid continue token "${token.slice(0, 100)}"`);
  }
  return { at, name };
}

/** The cached objects of `kind` in `namespace` (all: undefined) that `keep` accepts, uncopied. */
function scan<T extends Stored<ResourceObject>>(
  store: StoreReads,
  kind: Kind,
  namespace: string | undefined,
  keep: (o: T) => boolean,
): { found: T[]; resourceVersion: string } {
  const found: T[] = [];
  // the filter sees each cached object (in no particular order); collecting there, and
  // answering false, copies none
  const { resourceVersion } = store.list(kind, namespace, {
    filter: (o) => {
      if (keep(o as T)) found.push(o as T);
      return false;
    },
  });
  return { found, resourceVersion };
}

/** RunHistory over `store`'s cached reads (see the comment at the top of this file). */
export function cacheHistory(store: StoreReads): RunHistory {
  return {
    pageRuns<T extends ResourceObject>(namespace: string, query: RunPageQuery) {
      const after = query.continue === undefined ? undefined : position(query.continue);
      // the newest limit+1 matches, kept sorted while scanning (never a sort of every match)
      const top: Keyed[] = [];
      const keep = query.limit + 1;
      scan(store, 'WorkflowRun', namespace, (o) => {
        if (!runMatches(o, query)) return false;
        const k: Keyed = { at: instant(o.metadata.creationTimestamp), name: o.metadata.name, obj: o };
        if (after && (k.at > after.at || (k.at === after.at && k.name >= after.name))) return false;
        if (top.length >= keep && !newer(k, top[top.length - 1]!)) return false;
        let lo = 0;
        let hi = top.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (newer(top[mid]!, k)) lo = mid + 1;
          else hi = mid;
        }
        top.splice(lo, 0, k);
        if (top.length > keep) top.pop();
        return false;
      });
      const page = top.slice(0, query.limit).map((k) => structuredClone(k.obj) as Stored<T>);
      const last = top[query.limit - 1];
      return top.length > query.limit && last
        ? { items: page, continue: encodeToken([last.at, last.name]) }
        : { items: page };
    },
    changedSince<T extends ResourceObject>(kind: Kind, namespace: string, after: number) {
      const { found } = scan(store, kind, namespace, (o) => Number(o.metadata.resourceVersion) > after);
      found.sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
      return found.map((o) => structuredClone(o) as Stored<T>);
    },
    currentResourceVersion() {
      // the informers' position (what they have seen of every writer), never a later own write:
      // a watcher resuming from it misses nothing
      return store.list('WorkflowRun', undefined, { filter: () => false }).resourceVersion;
    },
  };
}

const FINISHED = new Set(['Succeeded', 'Failed', 'Stopped']);

function byNamespaceName(a: Stored<ResourceObject>, b: Stored<ResourceObject>): number {
  const x = [a.metadata.namespace, a.metadata.name];
  const y = [b.metadata.namespace, b.metadata.name];
  return x[0]! < y[0]! ? -1 : x[0]! > y[0]! ? 1 : x[1]! < y[1]! ? -1 : x[1]! > y[1]! ? 1 : 0;
}

interface IndexedRun {
  spec?: { workflow?: string; initiator?: { parent?: { run?: string } } };
  status?: { phase?: string; endTime?: string };
}

/**
 * RunIndex over `store`'s cached reads, with SqliteStore's semantics: each query scans the
 * cached runs (of one namespace where it has one) and copies only what it returns. Times are
 * compared as instants (whole seconds from Kubernetes, milliseconds from the controller).
 */
export function cacheRunIndex(store: StoreReads): RunIndex {
  type Run = Stored<ResourceObject> & IndexedRun;
  const runs = (namespace: string | undefined, keep: (r: Run) => boolean) =>
    scan<Run>(store, 'WorkflowRun', namespace, keep).found;
  return {
    listRuns<T extends ResourceObject>(namespace: string | undefined, query: RunQuery = {}) {
      return runs(namespace, (r) => {
        if (query.workflow !== undefined && r.spec?.workflow !== query.workflow) return false;
        if (query.parent !== undefined && r.spec?.initiator?.parent?.run !== query.parent) return false;
        const finished = FINISHED.has(r.status?.phase ?? '');
        return query.finished === undefined || query.finished === finished;
      })
        .sort(byNamespaceName)
        .map((r) => structuredClone(r) as Stored<T>);
    },
    runWorkflows() {
      const seen = new Map<string, { namespace: string; workflow: string }>();
      runs(undefined, (r) => {
        const workflow = r.spec?.workflow;
        if (typeof workflow === 'string')
          seen.set(JSON.stringify([r.metadata.namespace, workflow]), {
            namespace: r.metadata.namespace,
            workflow,
          });
        return false;
      });
      return [...seen.values()].sort((a, b) =>
        a.namespace !== b.namespace ? (a.namespace < b.namespace ? -1 : 1) : a.workflow < b.workflow ? -1 : 1,
      );
    },
    finishedRuns(namespace: string, workflow: string, query: FinishedRunQuery = {}): FinishedRunRef[] {
      const before = query.endedBefore === undefined ? undefined : instant(query.endedBefore);
      const endOf = (r: IndexedRun & Stored<ResourceObject>) =>
        r.status?.endTime ?? r.metadata.creationTimestamp ?? '';
      const found = runs(namespace, (r) => {
        if (r.spec?.workflow !== workflow) return false;
        const phase = r.status?.phase ?? '';
        if (!FINISHED.has(phase) || (query.phase !== undefined && phase !== query.phase)) return false;
        if (before !== undefined && !(instant(endOf(r)) < before)) return false;
        // a child whose parent run exists goes with its parent, not on its own
        const parent = r.spec?.initiator?.parent?.run;
        return parent === undefined || store.get('WorkflowRun', namespace, parent) === undefined;
      });
      found.sort((a, b) => {
        const d = instant(endOf(b)) - instant(endOf(a));
        if (d !== 0) return d;
        return a.metadata.name < b.metadata.name ? 1 : a.metadata.name > b.metadata.name ? -1 : 0;
      });
      const offset = query.offset ?? 0;
      const page =
        query.limit === undefined ? found.slice(offset) : found.slice(offset, offset + query.limit);
      return page.map((r) => ({ name: r.metadata.name, phase: r.status?.phase ?? '', endTime: endOf(r) }));
    },
  };
}
