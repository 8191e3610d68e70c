import { describe, expect, it } from 'vitest';
import { Informer, rvNewer } from './informer.ts';
import type { KubeApi, KubeObject, WatchEventType } from './kube-api.ts';

const obj = (name: string, rv: string): KubeObject => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});

type WatchFn = KubeApi['watch'];

/** A KubeApi whose list returns `items` and whose watch is `watch` (unit tests of the informer's logic). */
function stubApi(items: () => KubeObject[], watch: WatchFn): KubeApi & { lists: number } {
  const api = {
    lists: 0,
    list: async () => {
      api.lists++;
      return { items: items(), metadata: { resourceVersion: '10' } };
    },
    watch,
  };
  return api as unknown as KubeApi & { lists: number };
}

const resource = { group: 'meson.dev', version: 'v1alpha1', plural: 'workflows' };

describe('rvNewer', () => {
  it('compares etcd revisions as integers, anything else by inequality', () => {
    expect(rvNewer('10', '9')).toBe(true);
    expect(rvNewer('9', '10')).toBe(false);
    expect(rvNewer('10', '10')).toBe(false);
    expect(rvNewer('123456789012345678901', '123456789012345678900')).toBe(true);
    expect(rvNewer('a', 'b')).toBe(true);
    expect(rvNewer(undefined, '1')).toBe(false);
    expect(rvNewer('1', undefined)).toBe(true);
  });
});

describe('Informer', () => {
  it('backs off exponentially between failed watches, then resumes', async () => {
    const times: number[] = [];
    let open: ((type: WatchEventType, o: KubeObject) => void) | undefined;
    const api = stubApi(
      () => [],
      async (_r, _ns, _q, onEvent, done) => {
        times.push(performance.now());
        if (times.length <= 4) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
        open = onEvent;
        return { abort: () => done(new Error('aborted')) };
      },
    );
    const inf = new Informer({ api, resource, onChange: () => {}, backoff: { initialMs: 20, maxMs: 80 } });
    await inf.start();
    const deadline = Date.now() + 5000;
    while (!open && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(open).toBeDefined();
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // jittered between half and all of 20, 40, 80, 80 ms
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
    expect(gaps[3]).toBeGreaterThanOrEqual(39);
    expect(gaps[3]).toBeLessThan(1000);
    expect(inf.stats).toMatchObject({ errors: 4, watches: 5, relists: 0 });
    open!('ADDED', obj('a', '11'));
    expect(inf.items.has('ns/a')).toBe(true);
    expect(inf.resourceVersion).toBe('11');
    await inf.stop();
  });

  it('relists when the watch is refused with HTTP 410', async () => {
    let calls = 0;
    let items = [obj('a', '5')];
    const api = stubApi(
      () => items,
      async (_r, _ns, _q, _onEvent, done) => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('Gone'), { statusCode: 410 });
        return { abort: () => done(new Error('aborted')) };
      },
    );
    const changes: string[] = [];
    const inf = new Informer({
      api,
      resource,
      onChange: (t, o) => changes.push(`${t}:${o.metadata.name}`),
      backoff: { initialMs: 5, maxMs: 10 },
    });
    await inf.start();
    items = [obj('b', '9')];
    const deadline = Date.now() + 5000;
    while (api.lists < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(api.lists).toBe(2);
    expect(changes).toEqual(['ADDED:a', 'DELETED:a', 'ADDED:b']);
    await inf.stop();
  });

  it('never goes back to an older resourceVersion, and a tombstone keeps a deleted object gone', async () => {
    let emit: ((type: WatchEventType, o: KubeObject) => void) | undefined;
    const api = stubApi(
      () => [obj('a', '5')],
      async (_r, _ns, _q, onEvent, done) => {
        emit = onEvent;
        return { abort: () => done(new Error('aborted')) };
      },
    );
    const changes: string[] = [];
    const inf = new Informer({
      api,
      resource,
      onChange: (t, o) => changes.push(`${t}:${o.metadata.name}@${o.metadata.resourceVersion}`),
    });
    await inf.start();
    while (!emit) await new Promise((r) => setTimeout(r, 1));
    inf.applyWrite(obj('a', '7')); // our own write, seen before its watch event
    emit('MODIFIED', obj('a', '6')); // an older event arriving late
    emit('MODIFIED', obj('a', '7')); // the event of our write: already there
    expect(inf.items.get('ns/a')?.metadata.resourceVersion).toBe('7');
    inf.applyDelete('ns', 'a', obj('a', '7'));
    emit('MODIFIED', obj('a', '7')); // stale: must not resurrect it
    expect(inf.items.has('ns/a')).toBe(false);
    emit('DELETED', obj('a', '8')); // the deletion's own event: nothing more to say
    emit('ADDED', obj('a', '12')); // a new object of the same name
    expect(inf.items.get('ns/a')?.metadata.resourceVersion).toBe('12');
    expect(changes).toEqual(['ADDED:a@5', 'MODIFIED:a@7', 'DELETED:a@7', 'ADDED:a@12']);
    await inf.stop();
  });
});
