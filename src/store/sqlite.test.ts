import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite.ts';
import type { Change, ResourceObject } from './types.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meson-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function wf(name: string, spec: unknown = { a: 1 }): ResourceObject {
  return { apiVersion: 'meson.dev/v1alpha1', kind: 'Workflow', metadata: { name, namespace: 'ns' }, spec };
}

describe('SqliteStore', () => {
  it('creates, gets, updates with optimistic concurrency, and deletes', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const a = store.create('Workflow', wf('a'));
    expect(a.metadata.uid).toBeTruthy();
    expect(a.metadata.generation).toBe(1);
    expect(store.get('Workflow', 'ns', 'a')?.spec).toEqual({ a: 1 });
    expect(() => store.create('Workflow', wf('a'))).toThrow(
      expect.objectContaining({ code: 'STORE_ALREADY_EXISTS' }),
    );

    const b = store.update('Workflow', { ...a, spec: { a: 2 } });
    expect(b.metadata.generation).toBe(2);
    expect(Number(b.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    // a write based on the stale version is refused
    expect(() => store.update('Workflow', { ...a, spec: { a: 3 } })).toThrow(
      expect.objectContaining({ code: 'STORE_CONFLICT' }),
    );
    const c = store.updateStatus('Workflow', { ...b, spec: { ignored: true }, status: { ok: true } });
    expect(c.spec).toEqual({ a: 2 });
    expect(c.status).toEqual({ ok: true });
    expect(c.metadata.generation).toBe(2);
    // an update of the main resource keeps the status
    const d = store.update('Workflow', { ...c, status: { ok: false } });
    expect(d.status).toEqual({ ok: true });
    expect(store.delete('Workflow', 'ns', 'a')).toBe(true);
    expect(store.get('Workflow', 'ns', 'a')).toBeUndefined();
    expect(store.delete('Workflow', 'ns', 'a')).toBe(false);
  });

  it('generates names and pages lists with a continue token and label filter', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const made = store.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { generateName: 'x-', namespace: 'ns' },
    });
    expect(made.metadata.name).toMatch(/^x-[a-z0-9]{5}$/);
    for (let i = 0; i < 7; i++) {
      store.create('Workflow', {
        ...wf(`w${i}`),
        metadata: { name: `w${i}`, namespace: 'ns', labels: { odd: String(i % 2) } },
      });
    }
    store.create('Workflow', wf('other'));
    const p1 = store.list('Workflow', 'ns', { limit: 3 });
    expect(p1.items.map((o) => o.metadata.name)).toEqual(['other', 'w0', 'w1']);
    const p2 = store.list('Workflow', 'ns', { limit: 3, continue: p1.continue });
    expect(p2.items.map((o) => o.metadata.name)).toEqual(['w2', 'w3', 'w4']);
    const p3 = store.list('Workflow', 'ns', { limit: 3, continue: p2.continue });
    expect(p3.items.map((o) => o.metadata.name)).toEqual(['w5', 'w6']);
    expect(p3.continue).toBeUndefined();
    expect(store.list('Workflow', 'ns', { labels: { odd: '1' } }).items).toHaveLength(3);
    expect(store.list('Workflow', undefined).items).toHaveLength(8);
    expect(store.list('Workflow', 'elsewhere').items).toHaveLength(0);
  });

  it('notifies watchers only after commit, and not at all on rollback', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const seen: Change[] = [];
    store.watch((c) => seen.push(c));
    store.transaction((w) => {
      w.create('Workflow', wf('a'));
      w.create('Workflow', wf('b'));
      expect(seen).toHaveLength(0);
    });
    expect(seen.map((c) => `${c.type}:${c.object.metadata.name}`)).toEqual(['ADDED:a', 'ADDED:b']);
    expect(() =>
      store.transaction((w) => {
        w.create('Workflow', wf('c'));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(store.get('Workflow', 'ns', 'c')).toBeUndefined();
    expect(seen).toHaveLength(2);
  });

  it('keeps step instances apart from the run, in insertion order, paged and counted', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const recs = Array.from({ length: 12 }, (_, i) => ({
      namespace: 'ns',
      run: 'r',
      id: `s[${i}]`,
      phase: i < 5 ? 'Succeeded' : 'Running',
      data: { id: `s[${i}]`, i },
    }));
    store.putStepInstances(recs);
    store.putStepInstances([{ ...recs[0]!, phase: 'Failed', data: { id: 's[0]', i: 0, failed: true } }]);
    const p1 = store.getStepInstances('ns', 'r', { limit: 5 });
    expect(p1.items.map((r) => r.id)).toEqual(['s[0]', 's[1]', 's[2]', 's[3]', 's[4]']);
    expect(p1.items[0]?.data).toEqual({ id: 's[0]', i: 0, failed: true });
    const p2 = store.getStepInstances('ns', 'r', { limit: 5, continue: p1.continue });
    expect(p2.items[0]?.id).toBe('s[5]');
    expect(store.getStepInstances('ns', 'r', { phase: 'Succeeded' }).items).toHaveLength(4);
    expect(store.countStepInstances('ns', 'r')).toEqual({ Failed: 1, Succeeded: 4, Running: 7 });
    expect(store.getStepInstance('ns', 'r', 's[3]')?.phase).toBe('Succeeded');
  });

  it('persists objects, tasks, state and the resourceVersion counter across reopen', () => {
    const dir = tempDir();
    let store = new SqliteStore({ dir });
    const a = store.create('Workflow', wf('a'));
    store.putTasks([
      { namespace: 'ns', run: 'r', instance: 's', attempt: 1, state: 'queued', data: { x: 1 } },
    ]);
    store.setState('cron/ns/a', { last: 5 });
    store.close();
    store = new SqliteStore({ dir });
    expect(store.get('Workflow', 'ns', 'a')?.metadata.uid).toBe(a.metadata.uid);
    expect(store.listTasks()).toEqual([
      { namespace: 'ns', run: 'r', instance: 's', attempt: 1, state: 'queued', data: { x: 1 } },
    ]);
    expect(store.getState('cron/ns/a')).toEqual({ last: 5 });
    const b = store.create('Workflow', wf('b'));
    expect(Number(b.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    store.close();
  });

  it('deleting a run deletes its step instances and tasks', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    store.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'r', namespace: 'ns' },
    });
    store.putStepInstances([{ namespace: 'ns', run: 'r', id: 'a', phase: 'Running', data: {} }]);
    store.putTasks([{ namespace: 'ns', run: 'r', instance: 'a', attempt: 1, state: 'queued', data: {} }]);
    store.delete('WorkflowRun', 'ns', 'r');
    expect(store.getStepInstances('ns', 'r').items).toHaveLength(0);
    expect(store.listTasks()).toHaveLength(0);
  });

  it('lists the runs of one workflow by finished state and the children of a run, through indexes', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const run = (name: string, workflow: string, phase?: string, parent?: string) =>
      store.create('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name, namespace: 'ns' },
        spec: {
          workflow,
          ...(parent ? { initiator: { type: 'subworkflow', parent: { run: parent } } } : {}),
        },
        ...(phase ? { status: { phase } } : {}),
      });
    run('a1', 'a');
    run('a2', 'a', 'Pending');
    run('a3', 'a', 'Running');
    run('a4', 'a', 'Succeeded');
    run('a5', 'a', 'Failed');
    run('a6', 'a', 'Stopped');
    run('b1', 'b', 'Running');
    run('c1', 'c', 'Running', 'a3');
    store.create('WorkflowRun', {
      ...(store.get('WorkflowRun', 'ns', 'a1') as ResourceObject),
      metadata: { name: 'a1', namespace: 'other' },
    });
    const names = (xs: { metadata: { name: string } }[]) => xs.map((x) => x.metadata.name);
    expect(names(store.listRuns('ns', { workflow: 'a', finished: false }))).toEqual(['a1', 'a2', 'a3']);
    expect(names(store.listRuns('ns', { workflow: 'a', finished: true }))).toEqual(['a4', 'a5', 'a6']);
    expect(names(store.listRuns('ns', { workflow: 'a' }))).toHaveLength(6);
    expect(names(store.listRuns('ns', { parent: 'a3' }))).toEqual(['c1']);
    expect(names(store.listRuns(undefined, { finished: false }))).toEqual([
      'a1',
      'a2',
      'a3',
      'b1',
      'c1',
      'a1',
    ]);
    // a run that finishes leaves the unfinished index; one that is deleted leaves every index
    const a3 = store.get('WorkflowRun', 'ns', 'a3')!;
    store.updateStatus('WorkflowRun', { ...a3, status: { phase: 'Succeeded' } });
    store.delete('WorkflowRun', 'ns', 'a1');
    expect(names(store.listRuns('ns', { workflow: 'a', finished: false }))).toEqual(['a2']);
    expect(store.runWorkflows()).toEqual([
      { namespace: 'ns', workflow: 'a' },
      { namespace: 'ns', workflow: 'b' },
      { namespace: 'ns', workflow: 'c' },
      { namespace: 'other', workflow: 'a' },
    ]);
    // the plans: an index search, never a scan of the namespace's runs
    expect(store.runQueryPlan('ns', { workflow: 'a', finished: false })).toMatch(
      /SEARCH objects USING INDEX runs_unfinished/,
    );
    expect(store.runQueryPlan(undefined, { finished: false })).toMatch(/USING INDEX runs_unfinished/);
    expect(store.runQueryPlan('ns', { workflow: 'a', finished: true })).toMatch(
      /SEARCH objects USING INDEX runs_by_workflow/,
    );
    expect(store.runQueryPlan('ns', { parent: 'a3' })).toMatch(/SEARCH objects USING INDEX runs_by_parent/);
  });

  it('lists state entries by key prefix and deletes them', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    store.setState('notify/pending/a', { n: 1 });
    store.setState('notify/pending/b', { n: 2 });
    store.setState('notify/pendingX', 3);
    store.setState('other', 4);
    expect(store.listState('notify/pending/')).toEqual([
      { key: 'notify/pending/a', value: { n: 1 } },
      { key: 'notify/pending/b', value: { n: 2 } },
    ]);
    store.transaction((w) => w.deleteState('notify/pending/a'));
    expect(store.listState('notify/pending/').map((e) => e.key)).toEqual(['notify/pending/b']);
    expect(() => store.deleteState('__rv')).toThrow(expect.objectContaining({ code: 'STORE_INVALID' }));
    expect(() => store.listState('')).toThrow(expect.objectContaining({ code: 'STORE_INVALID' }));
  });

  it('finishedRuns: newest end first, offset/phase/endedBefore, children of an existing parent left out', () => {
    const store = new SqliteStore({ dir: ':memory:' });
    const run = (name: string, phase: string, end: string | undefined, parent?: string) =>
      store.create('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name, namespace: 'ns' },
        spec: {
          workflow: 'w',
          ...(parent ? { initiator: { type: 'subworkflow', parent: { run: parent } } } : {}),
        },
        status: { phase, ...(end ? { endTime: end } : {}) },
      });
    run('a', 'Succeeded', '2026-01-01T00:00:01.000Z');
    run('b', 'Failed', '2026-01-01T00:00:03.000Z');
    run('c', 'Succeeded', '2026-01-01T00:00:02.000Z');
    run('d', 'Running', undefined);
    run('child', 'Succeeded', '2026-01-01T00:00:05.000Z', 'b');
    run('orphan', 'Stopped', '2026-01-01T00:00:04.000Z', 'gone');
    const names = (q = {}) => store.finishedRuns('ns', 'w', q).map((r) => r.name);
    expect(names()).toEqual(['orphan', 'b', 'c', 'a']);
    expect(names({ offset: 2 })).toEqual(['c', 'a']);
    expect(names({ offset: 1, limit: 1 })).toEqual(['b']);
    expect(names({ phase: 'Succeeded', endedBefore: '2026-01-01T00:00:02.000Z' })).toEqual(['a']);
    expect(store.finishedRuns('ns', 'w', { phase: 'Stopped' })).toEqual([
      { name: 'orphan', phase: 'Stopped', endTime: '2026-01-01T00:00:04.000Z' },
    ]);
    store.delete('WorkflowRun', 'ns', 'b'); // its child is now on its own
    expect(names()).toEqual(['child', 'orphan', 'c', 'a']);
  });

  it('pageRuns: newest first, name as tie-break, filters in SQL, pages stable while runs are added', () => {
    let t = Date.parse('2026-01-01T00:00:00.000Z');
    const store = new SqliteStore({ dir: ':memory:', now: () => new Date(t) });
    const run = (name: string, workflow: string, extra: Record<string, unknown> = {}, labels = {}) =>
      store.create('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name, namespace: 'ns', labels },
        spec: { workflow, initiator: { type: 'api' }, ...extra },
      });
    run('a', 'w', {}, { team: 'x' });
    t += 1000;
    run('b', 'w', { initiator: { type: 'schedule' }, version: 2 });
    run('c', 'v', {}, { team: 'y', tier: '1' }); // same time as b: the name breaks the tie
    t += 1000;
    run('d', 'w');
    const names = (q: Partial<Parameters<typeof store.pageRuns>[1]> = {}) =>
      store.pageRuns('ns', { limit: 100, ...q }).items.map((r) => r.metadata.name);
    expect(names()).toEqual(['d', 'c', 'b', 'a']);
    expect(names({ workflow: 'w' })).toEqual(['d', 'b', 'a']);
    expect(names({ initiator: 'schedule' })).toEqual(['b']);
    expect(names({ version: 2 })).toEqual(['b']);
    expect(names({ phase: 'Pending' })).toEqual(['d', 'c', 'b', 'a']);
    expect(names({ labels: [{ key: 'team', op: 'eq', value: 'x' }] })).toEqual(['a']);
    expect(names({ labels: [{ key: 'team', op: 'neq', value: 'x' }] })).toEqual(['d', 'c', 'b']);
    expect(names({ labels: [{ key: 'tier', op: 'exists' }] })).toEqual(['c']);
    expect(names({ labels: [{ key: 'team', op: 'absent' }] })).toEqual(['d', 'b']);
    expect(
      names({ createdAfter: '2026-01-01T00:00:01.000Z', createdBefore: '2026-01-01T00:00:02.000Z' }),
    ).toEqual(['c', 'b']);
    // page 1, then runs arrive, then page 2: nothing repeated, nothing skipped
    const p1 = store.pageRuns('ns', { limit: 2 });
    expect(p1.items.map((r) => r.metadata.name)).toEqual(['d', 'c']);
    t += 1000;
    run('e', 'w');
    run('0', 'w');
    const p2 = store.pageRuns('ns', { limit: 2, continue: p1.continue! });
    expect(p2.items.map((r) => r.metadata.name)).toEqual(['b', 'a']);
    expect(p2.continue).toBeUndefined();
    expect(() => store.pageRuns('ns', { limit: 1, continue: 'bm9wZQ' })).toThrow(
      expect.objectContaining({ code: 'STORE_INVALID' }),
    );
    expect(() => store.pageRuns('ns', { limit: 1, labels: [{ key: 'a"', op: 'exists' }] })).toThrow(
      expect.objectContaining({ code: 'STORE_INVALID' }),
    );
    // an ordered walk of an index, never a scan and a sort of the namespace's runs
    expect(store.pageQueryPlan('ns', { limit: 10 })).toMatch(/USING INDEX runs_by_created/);
    expect(store.pageQueryPlan('ns', { limit: 10 })).not.toMatch(/TEMP B-TREE/);
    expect(store.pageQueryPlan('ns', { limit: 10, workflow: 'w', phase: 'Failed' })).toMatch(
      /USING INDEX runs_by_workflow_created/,
    );
    expect(store.pageQueryPlan('ns', { limit: 10, workflow: 'w' })).not.toMatch(/TEMP B-TREE/);
    // a watcher resuming from a resourceVersion gets what was written after it, oldest first
    const rv = Number(store.get('WorkflowRun', 'ns', 'e')!.metadata.resourceVersion);
    expect(store.changedSince('WorkflowRun', 'ns', rv - 1).map((r) => r.metadata.name)).toEqual(['e', '0']);
    expect(store.currentResourceVersion()).toBe(String(rv + 1));
  });

  it('keeps its schema migrations idempotent (reopening an existing database)', () => {
    const dir = tempDir();
    new SqliteStore({ dir }).close();
    const again = new SqliteStore({ dir });
    expect(again.pageQueryPlan('ns', { limit: 1 })).toMatch(/runs_by_created/);
    again.close();
  });
});
