// An informer: the cache of one resource (in one namespace, or all), kept current by list+watch.
//
// - The first list is paged; the watch starts from the list's resourceVersion and, when it
//   ends (server timeout, network error), resumes from the last resourceVersion seen (events
//   and bookmarks: the watch asks for allowWatchBookmarks, so a quiet resource still advances).
// - 410 Gone (the resourceVersion was compacted away, as an ERROR event or an HTTP status):
//   relist, and turn the difference into events (objects missing from the list are DELETED).
// - Errors back off exponentially (with jitter) from `backoff.initialMs` to `backoff.maxMs`.
// - The cache is monotonic: it never replaces an object by an older resourceVersion, and a
//   delete leaves a tombstone that stale events cannot resurrect. That is what lets the store
//   write its own results through (`applyWrite`) for read-your-writes without ever being set
//   back by a late watch event. resourceVersions are compared as integers when both are
//   (etcd revisions, as every apiserver serves them today); otherwise any different value is
//   taken as newer.
import { setTimeout as sleep } from 'node:timers/promises';
import { httpStatus, type KubeApi, type KubeObject, type KubeResource } from './kube-api.ts';

export type InformerEvent = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface InformerOptions {
  api: KubeApi;
  resource: KubeResource;
  /** undefined: all namespaces. */
  namespace?: string;
  labelSelector?: string;
  /** Called for every change the cache accepts; `obj` is the new object (DELETED: the last one). */
  onChange: (type: InformerEvent, obj: KubeObject, old: KubeObject | undefined) => void;
  pageSize?: number;
  watchTimeoutSeconds?: number;
  backoff?: { initialMs: number; maxMs: number };
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface InformerStats {
  lists: number;
  relists: number;
  watches: number;
  errors: number;
  bookmarks: number;
}

/** a strictly newer than b (b undefined: yes; a undefined: no). */
export function rvNewer(a: string | undefined, b: string | undefined): boolean {
  if (b === undefined) return true;
  if (a === undefined) return false;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) > BigInt(b);
  return a !== b;
}

export function objectKey(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

function strip(obj: KubeObject): KubeObject {
  if (obj.metadata.managedFields === undefined) return obj;
  const { managedFields: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

export class Informer {
  readonly items = new Map<string, KubeObject>();
  readonly stats: InformerStats = { lists: 0, relists: 0, watches: 0, errors: 0, bookmarks: 0 };
  /** The resourceVersion to resume from. */
  resourceVersion = '';
  private readonly tombstones = new Map<string, string | undefined>();
  private stopped = false;
  private current: { abort(): void } | undefined;
  private interruptPending = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  private readonly o: InformerOptions;

  constructor(options: InformerOptions) {
    this.o = options;
  }

  /** Lists, then watches in the background; resolves once the cache holds the first list. */
  async start(): Promise<void> {
    await this.relist();
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort();
    this.wake?.();
    await this.loopDone;
  }

  /** Ends the current watch (tests: the informer must resume from its resourceVersion). */
  interruptWatch(): void {
    if (this.current) this.current.abort();
    else this.interruptPending = true; // still connecting: end it as soon as it is up
  }

  /** A write's result (or a live read): accepted only when newer than what the cache holds. */
  applyWrite(obj: KubeObject): void {
    if (obj.metadata.deletionTimestamp && !obj.metadata.finalizers?.length) return;
    this.upsert(strip(obj));
  }

  /** A delete this process made (or a live read found nothing): gone unless something newer is cached. */
  applyDelete(namespace: string, name: string, last?: KubeObject): void {
    const key = `${namespace}/${name}`;
    const cur = this.items.get(key);
    if (cur && last && rvNewer(cur.metadata.resourceVersion, last.metadata.resourceVersion)) return;
    this.tombstones.set(key, last?.metadata.resourceVersion ?? cur?.metadata.resourceVersion);
    if (!cur) return;
    this.items.delete(key);
    this.o.onChange('DELETED', cur, cur);
  }

  private upsert(obj: KubeObject): void {
    const key = objectKey(obj);
    const rv = obj.metadata.resourceVersion;
    if (this.tombstones.has(key)) {
      if (!rvNewer(rv, this.tombstones.get(key))) return;
      this.tombstones.delete(key);
    }
    const cur = this.items.get(key);
    if (cur && !rvNewer(rv, cur.metadata.resourceVersion)) return;
    this.items.set(key, obj);
    this.o.onChange(cur ? 'MODIFIED' : 'ADDED', obj, cur);
  }

  private onWatchDelete(obj: KubeObject): void {
    const key = objectKey(obj);
    const cur = this.items.get(key);
    this.tombstones.delete(key);
    // something newer than the deletion (a re-creation written through) stays
    if (!cur || rvNewer(cur.metadata.resourceVersion, obj.metadata.resourceVersion)) return;
    this.items.delete(key);
    this.o.onChange('DELETED', cur, cur);
  }

  private async relist(): Promise<void> {
    const seen = new Map<string, KubeObject>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.o.api.list(this.o.resource, this.o.namespace, {
        labelSelector: this.o.labelSelector,
        limit: this.o.pageSize ?? 500,
        continue: cont,
      });
      for (const item of page.items) seen.set(objectKey(item), strip(item));
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion ?? rv;
    } while (cont);
    if (this.stats.lists > 0) this.stats.relists++;
    this.stats.lists++;
    for (const [key, cur] of [...this.items]) {
      if (seen.has(key)) continue;
      // written through after the list's snapshot: keep it
      if (rvNewer(cur.metadata.resourceVersion, rv)) continue;
      this.items.delete(key);
      this.o.onChange('DELETED', cur, cur);
    }
    for (const [key, t] of [...this.tombstones]) if (!rvNewer(t, rv)) this.tombstones.delete(key);
    for (const item of seen.values()) this.upsert(item);
    this.resourceVersion = rv;
  }

  private watchOnce(): Promise<{ gone: boolean; error?: unknown }> {
    return new Promise((resolve) => {
      let gone = false;
      this.stats.watches++;
      this.o.api
        .watch(
          this.o.resource,
          this.o.namespace,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.o.watchTimeoutSeconds ?? 300,
            labelSelector: this.o.labelSelector,
          },
          (type, obj) => {
            if (type === 'ERROR') {
              if (obj.code === 410) gone = true;
              return;
            }
            const rv = obj.metadata?.resourceVersion;
            if (type === 'BOOKMARK') {
              this.stats.bookmarks++;
              if (rv) this.resourceVersion = rv;
              return;
            }
            if (type === 'DELETED') this.onWatchDelete(obj);
            else this.upsert(strip(obj));
            if (rv) this.resourceVersion = rv;
          },
          (err) => resolve({ gone: gone || httpStatus(err) === 410, error: err ?? undefined }),
        )
        .then(
          (handle) => {
            this.current = handle;
            if (this.stopped || this.interruptPending) {
              this.interruptPending = false;
              handle.abort();
            }
          },
          (error) => resolve({ gone: httpStatus(error) === 410, error }),
        );
    });
  }

  private async pause(ms: number): Promise<void> {
    const jittered = ms / 2 + Math.random() * (ms / 2);
    await Promise.race([
      sleep(jittered),
      new Promise<void>((r) => {
        this.wake = r;
      }),
    ]);
  }

  private async loop(): Promise<void> {
    const { initialMs, maxMs } = this.o.backoff ?? { initialMs: 200, maxMs: 30_000 };
    let backoff = initialMs;
    while (!this.stopped) {
      const r = await this.watchOnce();
      this.current = undefined;
      if (this.stopped) return;
      if (r.gone) {
        this.o.log?.('watch expired (410 Gone): relisting', { resource: this.o.resource.plural });
        try {
          await this.relist();
          backoff = initialMs;
        } catch (error) {
          this.stats.errors++;
          this.o.log?.('relist failed', { resource: this.o.resource.plural, error: String(error) });
          await this.pause(backoff);
          backoff = Math.min(maxMs, backoff * 2);
        }
        continue;
      }
      if (r.error) {
        this.stats.errors++;
        this.o.log?.('watch failed', { resource: this.o.resource.plural, error: String(r.error) });
        await this.pause(backoff);
        backoff = Math.min(maxMs, backoff * 2);
      } else backoff = initialMs;
    }
  }
}
