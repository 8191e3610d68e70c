import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import { FRAMEWORK_ID_STATE_KEY, StateFrameworkIdStore } from './mesos-master.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function store(): SqliteAsyncStore {
  const dir = mkdtempSync(join(tmpdir(), 'meson-fwid-state-'));
  const s = new SqliteStore({ dir });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => s.close());
  return new SqliteAsyncStore(s);
}

describe('StateFrameworkIdStore', () => {
  it('keeps the framework id in a state entry, with the master it was given for', async () => {
    const s = store();
    const ids = new StateFrameworkIdStore(s, { master: 'http://m:5050', name: 'meson' });
    expect(await ids.load()).toBeUndefined();
    await ids.save('5f1c-0001');
    expect(s.getState(FRAMEWORK_ID_STATE_KEY)).toEqual({
      id: '5f1c-0001',
      master: 'http://m:5050',
      name: 'meson',
    });
    // another leader's store object over the same state reads it back
    expect(await new StateFrameworkIdStore(s).load()).toBe('5f1c-0001');
  });

  it('writes nothing when the id did not change (every resubscription saves it)', async () => {
    const s = store();
    const ids = new StateFrameworkIdStore(s);
    let commits = 0;
    const counting = {
      getState: s.getState.bind(s),
      transaction: ((fn: Parameters<typeof s.transaction>[0]) => {
        commits++;
        return s.transaction(fn);
      }) as typeof s.transaction,
    };
    const watched = new StateFrameworkIdStore(counting);
    await ids.save('fw-1');
    await watched.save('fw-1');
    await watched.save('fw-1');
    expect(commits).toBe(0);
    await watched.save('fw-2');
    expect(commits).toBe(1);
    expect(await ids.load()).toBe('fw-2');
  });

  it('ignores a state value that is not a framework id (a fresh framework, not a refused one)', async () => {
    const s = store();
    for (const bad of [
      'fw-1',
      null,
      42,
      [],
      {},
      { id: '' },
      { id: 'two words' },
      { id: 'a\nb' },
      { id: 'x'.repeat(257) },
      { id: 'é' },
      { id: 7 },
      { id: ['fw-1'] },
      JSON.parse('{"__proto__":{"id":"fw-1"}}'),
    ]) {
      await s.transaction((w) => w.setState(FRAMEWORK_ID_STATE_KEY, bad));
      expect(await new StateFrameworkIdStore(s).load(), JSON.stringify(bad)).toBeUndefined();
    }
  });
});
