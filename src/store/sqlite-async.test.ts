import { describe, expect, it } from 'vitest';
import { storeContract } from '../../test/store-contract/contract.ts';
import { SqliteStore } from './sqlite.ts';
import { SqliteAsyncStore } from './sqlite-async.ts';

storeContract('SQLite', async () => ({ store: new SqliteAsyncStore({ dir: ':memory:' }), namespace: 'ns' }));

describe('SqliteAsyncStore', () => {
  it('applies a commit in one SQLite transaction: a failing write rolls back the others', async () => {
    const store = new SqliteAsyncStore({ dir: ':memory:' });
    const wf = (name: string) => ({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name, namespace: 'ns' },
      spec: {},
    });
    await store.transaction((w) => w.create('Workflow', wf('a')));
    const receipts: { value: unknown }[] = [];
    const error = await store
      .transaction((w) => {
        receipts.push(w.create('Workflow', wf('b')), w.create('Workflow', wf('a')));
        w.setState('k', 1);
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'CommitError', code: 'STORE_ALREADY_EXISTS', applied: 0 });
    expect(store.get('Workflow', 'ns', 'b')).toBeUndefined();
    expect(store.getState('k')).toBeUndefined();
    for (const r of receipts)
      expect(() => r.value).toThrow(expect.objectContaining({ code: 'STORE_ALREADY_EXISTS' }));
    await store.close();
  });

  it('shares one database and one watch with the SqliteStore it wraps (the API and the controller)', async () => {
    const sync = new SqliteStore({ dir: ':memory:' });
    const store = new SqliteAsyncStore(sync);
    const seenAsync: string[] = [];
    const seenSync: string[] = [];
    store.watch((c) => seenAsync.push(`${c.type} ${c.object.metadata.name}`));
    sync.watch((c) => seenSync.push(`${c.type} ${c.object.metadata.name}`));
    const run = (name: string) => ({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name, namespace: 'ns' },
      spec: { workflow: 'w' },
    });
    // a write through the synchronous store (the standalone controller)...
    const a = sync.create('WorkflowRun', run('a'));
    // ...is read and watched through the port (the API), and the other way round
    expect(store.get('WorkflowRun', 'ns', 'a')?.metadata.resourceVersion).toBe(a.metadata.resourceVersion);
    await store.transaction((w) => w.create('WorkflowRun', run('b')));
    expect(sync.get('WorkflowRun', 'ns', 'b')).toBeDefined();
    sync.updateStatus('WorkflowRun', { ...a, status: { phase: 'Running' } });
    expect(seenAsync).toEqual(['ADDED a', 'ADDED b', 'MODIFIED a']);
    expect(seenSync).toEqual(seenAsync);
    expect(store.history.currentResourceVersion()).toBe(sync.currentResourceVersion());
    await store.close();
  });
});
