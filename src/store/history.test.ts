import { describe, expect, it } from 'vitest';
import { cacheHistory, cacheRunIndex } from './history.ts';
import { SqliteStore } from './sqlite.ts';
import { SqliteAsyncStore } from './sqlite-async.ts';
import type { FinishedRunQuery, RunPageQuery } from './types.ts';

/** Runs over a few seconds, workflows, initiators, versions, phases and labels. */
function fixture() {
  let t = Date.parse('2026-01-01T00:00:00.000Z');
  const sync = new SqliteStore({ dir: ':memory:', now: () => new Date(t) });
  const store = new SqliteAsyncStore(sync);
  for (let i = 0; i < 40; i++) {
    if (i % 3 === 0) t += 1000; // several runs share a creation time: the name breaks the tie
    const run = sync.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: {
        name: `r-${(i * 7) % 40}`,
        namespace: 'ns',
        labels: i % 4 === 0 ? { team: 'x' } : i % 4 === 1 ? { team: 'y', tier: '1' } : {},
      },
      spec: {
        workflow: i % 2 ? 'w' : 'v',
        initiator: { type: i % 5 ? 'api' : 'schedule' },
        ...(i % 3 ? { version: (i % 3) + 1 } : {}),
      },
    });
    if (i % 6 === 0) sync.updateStatus('WorkflowRun', { ...run, status: { phase: 'Failed', version: 2 } });
  }
  return { sync, store, history: cacheHistory(store) };
}

const QUERIES: Omit<RunPageQuery, 'limit'>[] = [
  {},
  { workflow: 'w' },
  { initiator: 'schedule' },
  { version: 2 },
  { phase: 'Pending' },
  { phase: 'Failed' },
  { labels: [{ key: 'team', op: 'eq', value: 'x' }] },
  { labels: [{ key: 'team', op: 'neq', value: 'x' }] },
  { labels: [{ key: 'tier', op: 'exists' }] },
  { labels: [{ key: 'team', op: 'absent' }], workflow: 'v' },
  { createdAfter: '2026-01-01T00:00:03.000Z', createdBefore: '2026-01-01T00:00:09.000Z' },
];

describe('cacheHistory (run history over cached reads, as the Kubernetes store has it)', () => {
  it('pages exactly as the SQLite indexes do, for every filter and page size', () => {
    const { sync, history } = fixture();
    const walk = (
      page: (q: RunPageQuery) => { items: { metadata: { name: string } }[]; continue?: string },
      q: Omit<RunPageQuery, 'limit'>,
      limit: number,
    ) => {
      const pages: string[][] = [];
      let token: string | undefined;
      do {
        const p = page({ ...q, limit, ...(token ? { continue: token } : {}) });
        pages.push(p.items.map((r) => r.metadata.name));
        token = p.continue;
      } while (token && pages.length < 100);
      return pages;
    };
    for (const q of QUERIES) {
      for (const limit of [1, 3, 7, 100]) {
        const want = walk((x) => sync.pageRuns('ns', x), q, limit);
        expect(
          walk((x) => history.pageRuns('ns', x), q, limit),
          JSON.stringify({ q, limit }),
        ).toEqual(want);
      }
    }
  });

  it('keeps its pages stable while runs are added, compares times as instants, refuses forged tokens', () => {
    const { sync, history } = fixture();
    const p1 = history.pageRuns('ns', { limit: 5 });
    const rest = history
      .pageRuns('ns', { limit: 100, continue: p1.continue! })
      .items.map((r) => r.metadata.name);
    // a run created now (newest): not on the next pages
    sync.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'zz-new', namespace: 'ns' },
      spec: { workflow: 'w' },
    });
    expect(
      history.pageRuns('ns', { limit: 100, continue: p1.continue! }).items.map((r) => r.metadata.name),
    ).toEqual(rest);
    // Kubernetes writes whole seconds: "…:03Z" is the instant "…:03.000Z"
    const sameInstant = history.pageRuns('ns', { limit: 100, createdAfter: '2026-01-01T00:00:03Z' });
    const ms = history.pageRuns('ns', { limit: 100, createdAfter: '2026-01-01T00:00:03.000Z' });
    expect(sameInstant.items.map((r) => r.metadata.name)).toEqual(ms.items.map((r) => r.metadata.name));
    for (const token of ['bm9wZQ', 'WyJ4IiwiYSJd' /* ["x","a"] */, 'WzEsMl0' /* [1,2] */, '%%%'])
      expect(() => history.pageRuns('ns', { limit: 1, continue: token })).toThrow(
        expect.objectContaining({ code: 'STORE_INVALID' }),
      );
  });

  it('answers a page with copies: a caller changing them changes no cached object', () => {
    const { store, history } = fixture();
    const [first] = history.pageRuns('ns', { limit: 1 }).items;
    first!.metadata.labels = { hacked: 'yes' };
    expect(store.get('WorkflowRun', 'ns', first!.metadata.name)?.metadata.labels?.hacked).toBeUndefined();
  });

  it('replays what a watcher missed after a resourceVersion, oldest write first', () => {
    const { sync, history } = fixture();
    const rv = Number(sync.currentResourceVersion());
    const a = sync.get('WorkflowRun', 'ns', 'r-1')!;
    sync.update('WorkflowRun', { ...a, spec: { ...(a.spec as object), stop: true } });
    const b = sync.get('WorkflowRun', 'ns', 'r-0')!;
    sync.update('WorkflowRun', { ...b, spec: { ...(b.spec as object), stop: true } });
    expect(history.changedSince('WorkflowRun', 'ns', rv).map((r) => r.metadata.name)).toEqual(['r-1', 'r-0']);
    expect(history.changedSince('WorkflowRun', 'other', rv)).toEqual([]);
  });
});

describe('cacheRunIndex (retention and admission queries over cached reads)', () => {
  it('answers as the SQLite indexes do: finished runs newest end first, children with their parent', () => {
    let t = Date.parse('2026-01-01T00:00:00.000Z');
    const sync = new SqliteStore({ dir: ':memory:', now: () => new Date(t) });
    const index = cacheRunIndex(new SqliteAsyncStore(sync));
    const phases = ['Succeeded', 'Failed', 'Stopped', 'Running', undefined];
    for (let i = 0; i < 30; i++) {
      t += 500;
      const parent =
        i % 7 === 3 ? { parent: { run: `r-${i - 1}` } } : i % 7 === 4 ? { parent: { run: 'gone' } } : {};
      const run = sync.create('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name: `r-${i}`, namespace: i % 5 === 0 ? 'other' : 'ns' },
        spec: { workflow: i % 3 ? 'w' : 'v', initiator: { type: 'api', ...parent } },
      });
      const phase = phases[i % 5];
      if (phase) {
        // some runs end at the same time: the name breaks the tie
        const endTime = new Date(
          Date.parse('2026-01-02T00:00:00.000Z') + ((i * 13) % 9) * 1000,
        ).toISOString();
        sync.updateStatus('WorkflowRun', { ...run, status: { phase, ...(i % 4 ? { endTime } : {}) } });
      }
    }
    for (const ns of ['ns', 'other'])
      for (const wf of ['w', 'v'])
        for (const q of [
          {},
          { offset: 2, limit: 3 },
          { phase: 'Failed' },
          { endedBefore: '2026-01-02T00:00:04.000Z' },
          { endedBefore: '2026-01-02T00:00:06.000Z', phase: 'Succeeded', limit: 1 },
        ] as FinishedRunQuery[]) {
          expect(index.finishedRuns(ns, wf, q), JSON.stringify({ ns, wf, q })).toEqual(
            sync.finishedRuns(ns, wf, q),
          );
          // Kubernetes writes whole seconds: the same instant gives the same answer
          if (q.endedBefore) {
            const whole = { ...q, endedBefore: q.endedBefore.replace('.000Z', 'Z') };
            expect(index.finishedRuns(ns, wf, whole)).toEqual(index.finishedRuns(ns, wf, q));
          }
        }
    expect(index.runWorkflows()).toEqual(sync.runWorkflows());
    const names = (runs: { metadata: { name: string } }[]) => runs.map((r) => r.metadata.name);
    for (const ns of ['ns', undefined])
      for (const q of [{}, { finished: false }, { finished: true, workflow: 'w' }, { parent: 'r-2' }])
        expect(names(index.listRuns(ns, q)), JSON.stringify({ ns, q })).toEqual(names(sync.listRuns(ns, q)));
  });
});
