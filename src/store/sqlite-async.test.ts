import { describe, expect, it } from 'vitest';
import { storeContract } from '../../test/store-contract/contract.ts';
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
});
