// The contract of the store port (src/store/port.ts), one suite run against every adapter:
// SQLite (src/store/sqlite-async.test.ts) and Kubernetes on the real control plane
// (test/operator/kubernetes-store.test.ts). Where the port lets adapters differ (`atomic`),
// the test asserts what the adapter says of itself.
import { describe, expect, it } from 'vitest';
import { type AsyncStore, updateStatusRetrying } from '../../src/store/port.ts';
import type { Change, ResourceObject, Stored } from '../../src/store/types.ts';

export interface ContractContext {
  store: AsyncStore;
  /** The namespace the store may write in. */
  namespace: string;
}

/**
 * Registers the contract tests. `open` gives a fresh, empty store for one test (and the
 * namespace to use); `close` is called after the test.
 */
export function storeContract(name: string, open: () => Promise<ContractContext>): void {
  const withStore = (fn: (c: ContractContext) => Promise<void>) => async () => {
    const c = await open();
    try {
      await fn(c);
    } finally {
      await c.store.close();
    }
  };

  const wf = (
    namespace: string,
    name: string,
    spec: unknown = { definition: { step: { name: 'a', noop: {} } } },
  ) =>
    ({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name, namespace, labels: { app: 'x' } },
      spec,
    }) as ResourceObject;
  const run = (namespace: string, name: string) =>
    ({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name, namespace },
      spec: { workflow: 'w' },
    }) as ResourceObject;
  const codeOf = async (p: Promise<unknown>) =>
    p.then(
      () => 'resolved',
      (e: { code?: string }) => e.code,
    );

  describe(`store contract: ${name}`, () => {
    it(
      'creates, reads, updates spec and status separately, and deletes, with receipts',
      withStore(async ({ store, namespace: ns }) => {
        const created = await store.transaction((w) => w.create('Workflow', wf(ns, 'a')));
        const a = created.value;
        expect(a.metadata).toMatchObject({ name: 'a', namespace: ns, generation: 1 });
        expect(a.metadata.uid).toBeTruthy();
        expect(a.metadata.resourceVersion).toBeTruthy();
        expect(store.get('Workflow', ns, 'a')?.spec).toEqual(a.spec);

        const spec2 = { definition: { step: { name: 'b', noop: {} } } };
        const b = (await store.transaction((w) => w.updateWorkflowSpec({ ...a, spec: spec2 }))).value;
        expect(b.metadata.generation).toBe(2);
        expect(b.metadata.resourceVersion).not.toBe(a.metadata.resourceVersion);

        // the status subresource: spec in the body is ignored, generation unchanged
        const c = (
          await store.transaction((w) =>
            w.updateStatus('Workflow', {
              ...b,
              spec: { definition: { step: { name: 'zzz', noop: {} } } },
              status: { latestVersion: 3 },
            }),
          )
        ).value;
        expect(c.spec).toEqual(spec2);
        expect(c.status).toEqual({ latestVersion: 3 });
        expect(c.metadata.generation).toBe(2);
        expect(store.get('Workflow', ns, 'a')?.status).toEqual({ latestVersion: 3 });

        // an update of the main resource keeps the stored status
        const d = (
          await store.transaction((w) =>
            w.updateWorkflowSpec({
              ...c,
              metadata: { ...c.metadata, labels: { app: 'y' } },
              status: { latestVersion: 9 },
            }),
          )
        ).value;
        expect(d.status).toEqual({ latestVersion: 3 });
        expect(d.metadata.labels).toEqual({ app: 'y' });

        const gone = await store.transaction((w) => [
          w.delete('Workflow', ns, 'a'),
          w.delete('Workflow', ns, 'a'),
        ]);
        expect(gone.map((r) => r.value)).toEqual([true, false]);
        expect(store.get('Workflow', ns, 'a')).toBeUndefined();
      }),
    );

    it(
      "refuses a Workflow's spec through update (GitOps: the controller writes status only)",
      withStore(async ({ store, namespace: ns }) => {
        await store.transaction((w) => w.create('Workflow', wf(ns, 'a')));
        const a = store.get('Workflow', ns, 'a')!;
        const error = await store
          .transaction((w) =>
            (w as unknown as { update: (k: string, o: unknown) => void }).update('Workflow', {
              ...a,
              spec: {},
            }),
          )
          .catch((e: { code?: string }) => e);
        expect(error).toMatchObject({ code: 'STORE_INVALID' });
        expect(store.get('Workflow', ns, 'a')?.spec).toEqual(a.spec);
      }),
    );

    it(
      'generates names, refuses duplicates, stale resourceVersions and missing objects',
      withStore(async ({ store, namespace: ns }) => {
        const made = await store.transaction((w) => [
          w.create('WorkflowRun', { ...run(ns, ''), metadata: { generateName: 'x-', namespace: ns } }),
          w.create('WorkflowRun', { ...run(ns, ''), metadata: { generateName: 'x-', namespace: ns } }),
        ]);
        const names = made.map((r) => r.value.metadata.name);
        for (const n of names) expect(n).toMatch(/^x-[a-z0-9]{5}$/);
        expect(new Set(names).size).toBe(2);

        await store.transaction((w) => w.create('Workflow', wf(ns, 'a')));
        expect(await codeOf(store.transaction((w) => w.create('Workflow', wf(ns, 'a'))))).toBe(
          'STORE_ALREADY_EXISTS',
        );

        const a = store.get('Workflow', ns, 'a')!;
        await store.transaction((w) => w.updateStatus('Workflow', { ...a, status: { latestVersion: 1 } }));
        // a write based on the version read before is refused, for spec and for status
        expect(await codeOf(store.transaction((w) => w.updateWorkflowSpec({ ...a, spec: { x: 1 } })))).toBe(
          'STORE_CONFLICT',
        );
        expect(
          await codeOf(
            store.transaction((w) => w.updateStatus('Workflow', { ...a, status: { latestVersion: 2 } })),
          ),
        ).toBe('STORE_CONFLICT');
        expect(store.get('Workflow', ns, 'a')?.status).toEqual({ latestVersion: 1 });
        // without a resourceVersion a write overwrites
        const { resourceVersion: _, ...meta } = a.metadata;
        await store.transaction((w) =>
          w.updateStatus('Workflow', { ...a, metadata: meta, status: { latestVersion: 5 } }),
        );
        expect(store.get('Workflow', ns, 'a')?.status).toEqual({ latestVersion: 5 });
        expect(
          await codeOf(
            store.transaction((w) => w.updateStatus('Workflow', { ...wf(ns, 'nope'), status: {} })),
          ),
        ).toBe('STORE_NOT_FOUND');
      }),
    );

    it(
      'retries a status write after a conflict by re-reading (updateStatusRetrying)',
      withStore(async ({ store, namespace: ns }) => {
        await store.transaction((w) => w.create('Workflow', wf(ns, 'a')));
        const seen: string[] = [];
        const out = await updateStatusRetrying<ResourceObject>(store, 'Workflow', ns, 'a', (cur) => {
          seen.push(cur.metadata.resourceVersion);
          if (seen.length === 1) {
            // a concurrent writer gets in between this read and the helper's write
            void store.transaction((w) =>
              w.updateStatus('Workflow', { ...cur, status: { latestVersion: 7 } }),
            );
          }
          return { ...(cur.status as object), activeVersion: seen.length };
        });
        // the first write conflicted; the second was computed from the re-read object
        expect(seen).toHaveLength(2);
        expect(seen[1]).not.toBe(seen[0]);
        expect(out?.status).toEqual({ latestVersion: 7, activeVersion: 2 });
        expect(store.get('Workflow', ns, 'a')?.status).toEqual({ latestVersion: 7, activeVersion: 2 });
        // nothing to write: no write at all; a missing object: undefined
        const rv = store.get('Workflow', ns, 'a')?.metadata.resourceVersion;
        await updateStatusRetrying(store, 'Workflow', ns, 'a', () => undefined);
        expect(store.get('Workflow', ns, 'a')?.metadata.resourceVersion).toBe(rv);
        expect(await updateStatusRetrying(store, 'Workflow', ns, 'nope', () => ({}))).toBeUndefined();
      }),
    );

    it(
      'records writes without showing them to reads in the same transaction; read-your-writes after',
      withStore(async ({ store, namespace: ns }) => {
        const seen: Change[] = [];
        store.watch((c) => {
          if (c.object.metadata.namespace === ns) seen.push(c);
        });
        let receipt: { value: unknown; done: boolean } | undefined;
        const p = store.transaction((w) => {
          receipt = w.create('Workflow', wf(ns, 'a'));
          expect(store.get('Workflow', ns, 'a')).toBeUndefined();
          w.create('Workflow', wf(ns, 'b'));
        });
        expect(receipt?.done).toBe(false);
        expect(() => receipt?.value).toThrow(expect.objectContaining({ code: 'STORE_PENDING' }));
        await p;
        expect(receipt?.done).toBe(true);
        expect(store.get('Workflow', ns, 'a')).toBeDefined();
        expect(store.list('Workflow', ns).items.map((o) => o.metadata.name)).toEqual(['a', 'b']);
        // listeners were called before the commit resolved, in order
        expect(seen.map((c) => `${c.type}:${c.object.metadata.name}`)).toEqual(['ADDED:a', 'ADDED:b']);
        await store.transaction((w) => w.delete('Workflow', ns, 'a'));
        expect(seen.map((c) => `${c.type}:${c.object.metadata.name}`).slice(2)).toEqual(['DELETED:a']);
      }),
    );

    it(
      'a failing write fails the commit with its code; atomic stores apply nothing',
      withStore(async ({ store, namespace: ns }) => {
        await store.transaction((w) => w.create('Workflow', wf(ns, 'a')));
        const error = await store
          .transaction((w) => {
            w.create('Workflow', wf(ns, 'b'));
            w.create('Workflow', wf(ns, 'a'));
            w.create('Workflow', wf(ns, 'c'));
          })
          .catch((e: { code?: string; applied?: number }) => e);
        expect(error).toMatchObject({ code: 'STORE_ALREADY_EXISTS' });
        expect(store.get('Workflow', ns, 'c')).toBeUndefined();
        if (store.atomic) {
          expect(error).toMatchObject({ applied: 0 });
          expect(store.get('Workflow', ns, 'b')).toBeUndefined();
        } else {
          expect(error).toMatchObject({ applied: 1 });
          expect(store.get('Workflow', ns, 'b')).toBeDefined();
        }
      }),
    );

    it(
      'lists in namespace/name order, by label, in pages',
      withStore(async ({ store, namespace: ns }) => {
        await store.transaction((w) => {
          for (let i = 0; i < 7; i++) {
            w.create('Workflow', {
              ...wf(ns, `w${i}`),
              metadata: { name: `w${i}`, namespace: ns, labels: { odd: String(i % 2) } },
            });
          }
          w.create('Workflow', wf(ns, 'other'));
        });
        const p1 = store.list('Workflow', ns, { limit: 3 });
        expect(p1.items.map((o) => o.metadata.name)).toEqual(['other', 'w0', 'w1']);
        const p2 = store.list('Workflow', ns, { limit: 3, continue: p1.continue });
        expect(p2.items.map((o) => o.metadata.name)).toEqual(['w2', 'w3', 'w4']);
        const p3 = store.list('Workflow', ns, { limit: 3, continue: p2.continue });
        expect(p3.items.map((o) => o.metadata.name)).toEqual(['w5', 'w6']);
        expect(p3.continue).toBeUndefined();
        expect(store.list('Workflow', ns, { labels: { odd: '1' } }).items).toHaveLength(3);
        expect(
          store.list('Workflow', undefined, { filter: (o) => o.metadata.namespace === ns }).items,
        ).toHaveLength(8);
      }),
    );

    it(
      'keeps a status given at create (DataArtifact announcedAt)',
      withStore(async ({ store, namespace: ns }) => {
        const art = {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'DataArtifact',
          metadata: { name: 'views-1', namespace: ns },
          spec: { name: 'views' },
          status: { announcedAt: '2026-01-02T03:04:05Z' },
        };
        const made = (await store.transaction((w) => w.create('DataArtifact', art))).value;
        expect(made.status).toEqual(art.status);
        expect(store.get('DataArtifact', ns, 'views-1')?.status).toEqual(art.status);
      }),
    );

    it(
      'keeps step instances and tasks of a run apart from it: ordered, updated in place, paged, counted, deleted with it',
      withStore(async ({ store, namespace: ns }) => {
        await store.transaction((w) => w.create('WorkflowRun', run(ns, 'r')));
        const recs = Array.from({ length: 12 }, (_, i) => ({
          namespace: ns,
          run: 'r',
          id: `s[${i}]`,
          phase: i < 5 ? 'Succeeded' : 'Running',
          data: { id: `s[${i}]`, i },
        }));
        await store.transaction((w) => {
          w.putStepInstances(recs);
          w.putTasks([
            { namespace: ns, run: 'r', instance: 's[7]', attempt: 1, state: 'queued', data: { q: 1 } },
          ]);
          w.putTasks([
            {
              namespace: ns,
              run: 'r',
              instance: 's[8]',
              attempt: 2,
              state: 'launched',
              data: {},
              launch: { node: 'n' },
            },
          ]);
          w.setState('cron/x', { last: 5 });
        });
        await store.transaction((w) => {
          w.putStepInstances([{ ...recs[0]!, phase: 'Failed', data: { id: 's[0]', i: 0, failed: true } }]);
          w.deleteTask(ns, 'r', 's[7]');
        });
        const p1 = store.getStepInstances(ns, 'r', { limit: 5 });
        expect(p1.items.map((r) => r.id)).toEqual(['s[0]', 's[1]', 's[2]', 's[3]', 's[4]']);
        expect(p1.items[0]?.data).toEqual({ id: 's[0]', i: 0, failed: true });
        const p2 = store.getStepInstances(ns, 'r', { limit: 5, continue: p1.continue });
        expect(p2.items[0]?.id).toBe('s[5]');
        const p3 = store.getStepInstances(ns, 'r', { limit: 5, continue: p2.continue });
        expect(p3.items.map((r) => r.id)).toEqual(['s[10]', 's[11]']);
        expect(p3.continue).toBeUndefined();
        expect(store.getStepInstances(ns, 'r', { phase: 'Succeeded' }).items).toHaveLength(4);
        expect(store.countStepInstances(ns, 'r')).toEqual({ Failed: 1, Succeeded: 4, Running: 7 });
        expect(store.getStepInstance(ns, 'r', 's[3]')?.phase).toBe('Succeeded');
        expect(store.getStepInstance(ns, 'r', 'nope')).toBeUndefined();
        expect(store.listTasks({ namespace: ns, run: 'r' })).toEqual([
          {
            namespace: ns,
            run: 'r',
            instance: 's[8]',
            attempt: 2,
            state: 'launched',
            data: {},
            launch: { node: 'n' },
          },
        ]);
        expect(store.getState('cron/x')).toEqual({ last: 5 });
        expect(store.getState('cron/none')).toBeUndefined();

        await store.transaction((w) => w.deleteStepInstances(ns, 'r'));
        expect(store.getStepInstances(ns, 'r').items).toEqual([]);
        expect(store.listTasks({ namespace: ns, run: 'r' })).toHaveLength(1);

        await store.transaction((w) => w.putStepInstances([recs[1]!]));
        await store.transaction((w) => w.delete('WorkflowRun', ns, 'r'));
        expect(store.getStepInstances(ns, 'r').items).toEqual([]);
        expect(store.listTasks({ namespace: ns, run: 'r' })).toEqual([]);
        // a new run of the same name starts empty
        await store.transaction((w) => w.create('WorkflowRun', run(ns, 'r')));
        expect(store.countStepInstances(ns, 'r')).toEqual({});
      }),
    );

    it(
      'keeps state entries: set, listed by prefix in key order, deleted (a missing one is no error)',
      withStore(async ({ store }) => {
        await store.transaction((w) => {
          w.setState('hook/b', { n: 2 });
          w.setState('hook/a', { n: 1 });
          w.setState('other/a', 3);
        });
        expect(store.listState('hook/')).toEqual([
          { key: 'hook/a', value: { n: 1 } },
          { key: 'hook/b', value: { n: 2 } },
        ]);
        await store.transaction((w) => {
          w.deleteState('hook/a');
          w.deleteState('hook/none');
        });
        expect(store.listState('hook/')).toEqual([{ key: 'hook/b', value: { n: 2 } }]);
        expect(store.getState('hook/a')).toBeUndefined();
        expect(store.getState('other/a')).toBe(3);
        // set then deleted in one commit: the last write wins
        await store.transaction((w) => {
          w.setState('hook/c', 1);
          w.deleteState('hook/c');
        });
        expect(store.getState('hook/c')).toBeUndefined();
        expect(() => store.listState('')).toThrow(expect.objectContaining({ code: 'STORE_INVALID' }));
        expect(await codeOf(store.transaction((w) => w.deleteState('__rv')))).toBe('STORE_INVALID');
      }),
    );

    it(
      'a transaction whose function throws (a reserved state key) writes nothing and rejects',
      withStore(async ({ store, namespace: ns }) => {
        const error = await store
          .transaction((w) => {
            w.create('Workflow', wf(ns, 'a'));
            w.setState('__rv', 1);
          })
          .catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'STORE_INVALID' });
        expect(store.get('Workflow', ns, 'a')).toBeUndefined();
      }),
    );
  });
}

export type { Stored };
