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
import type { RunHistory, StoreReads } from './port.ts';
import type { Kind, ResourceObject, RunPageQuery, Stored } from './types.ts';
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
  const created = instant(r.metadata.creationTimestamp);
  if (q.createdAfter !== undefined && created < instant(q.createdAfter)) return false;
  if (q.createdBefore !== undefined && created >= instant(q.createdBefore)) return false;
  return labelsHold(r.metadata.labels, q.labels);
}

/** Newest first: creation instant descending, then name descending. */
function newerFirst(a: Stored<ResourceObject>, b: Stored<ResourceObject>): number {
  const d = instant(b.metadata.creationTimestamp) - instant(a.metadata.creationTimestamp);
  if (d !== 0) return d;
  return a.metadata.name < b.metadata.name ? 1 : a.metadata.name > b.metadata.name ? -1 : 0;
}

function position(token: string): { at: number; name: string } {
  const [at, name] = decodeToken(token);
  if (typeof at !== 'number' || !Number.isFinite(at) || typeof name !== 'string') {
    throw new StoreError('STORE_INVALID', `invalid continue token "${token.slice(0, 100)}"`);
  }
  return { at, name };
}

/** The cached objects of `kind` in `namespace` that `keep` accepts, without copying the others. */
function scan(
  store: StoreReads,
  kind: Kind,
  namespace: string,
  keep: (o: Stored<ResourceObject>) => boolean,
): { found: Stored<ResourceObject>[]; resourceVersion: string } {
  const found: Stored<ResourceObject>[] = [];
  // the filter sees each cached object; collecting there (and answering false) copies none
  const { resourceVersion } = store.list(kind, namespace, {
    filter: (o) => {
      if (keep(o)) found.push(o);
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
      const { found } = scan(store, 'WorkflowRun', namespace, (o) => {
        if (after) {
          const at = instant(o.metadata.creationTimestamp);
          if (at > after.at || (at === after.at && o.metadata.name >= after.name)) return false;
        }
        return runMatches(o, query);
      });
      found.sort(newerFirst);
      const page = found.slice(0, query.limit).map((o) => structuredClone(o) as Stored<T>);
      const last = page[page.length - 1];
      return found.length > query.limit && last
        ? {
            items: page,
            continue: encodeToken([instant(last.metadata.creationTimestamp), last.metadata.name]),
          }
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
