import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Workflow, WorkflowRun } from '../crds/index.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { RetentionSweeper } from './sweeper.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanups.splice(0).reverse()) f();
});

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

function setup(
  opts: { defaults?: ConstructorParameters<typeof RetentionSweeper>[0]['defaults']; max?: number } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'meson-retention-'));
  const store = new SqliteStore({ dir });
  let now = T0 + 1000 * MIN;
  const logs: string[] = [];
  const logger = { info: (_: object, m?: string) => logs.push(m ?? ''), warn: () => {}, error: () => {} };
  const sweeper = new RetentionSweeper({
    store,
    logger,
    now: () => now,
    defaults: opts.defaults ?? {},
    intervalMs: 0,
    fileGraceMs: 0,
    filesRoot: store.attemptsRoot,
    ...(opts.max ? { maxDeletesPerSweep: opts.max } : {}),
  });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  cleanups.push(() => sweeper.stop());
  const workflow = (name: string, retention?: Workflow['spec']['retention']) =>
    store.create<Workflow>('Workflow', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name, namespace: 'ns' },
      spec: { ...(retention ? { retention } : {}), definition: { step: { name: 'a', noop: {} } } },
    } as Workflow);
  /** A run ended `endMin` minutes after T0, with a step instance, a log file and (optionally) a task. */
  const run = (
    name: string,
    endMin: number | undefined,
    phase: string | null = 'Succeeded',
    spec: Partial<WorkflowRun['spec']> = {},
    workflowName = 'w',
  ) => {
    store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name, namespace: 'ns' },
      spec: { workflow: workflowName, ...spec },
      ...(phase
        ? {
            status: {
              phase,
              ...(endMin !== undefined ? { endTime: new Date(T0 + endMin * MIN).toISOString() } : {}),
            },
          }
        : {}),
    } as WorkflowRun);
    store.putStepInstances([{ namespace: 'ns', run: name, id: 'a', phase: 'Succeeded', data: {} }]);
    const attempt = store.attemptDir('ns', name, 'a', 1, 'l1');
    mkdirSync(attempt, { recursive: true });
    writeFileSync(join(attempt, 'stdout.log'), 'hello\n');
    return attempt;
  };
  const exists = (name: string) => store.get('WorkflowRun', 'ns', name) !== undefined;
  return { store, sweeper, workflow, run, exists, logs, setNow: (t: number) => (now = t) };
}

describe('retention sweep', () => {
  it('deletes runs beyond keepLast with their step instances, task records, attempt dirs and logs', async () => {
    const s = setup({ defaults: { keepLast: 2 } });
    s.sweeper.start();
    const dirs = [1, 2, 3, 4].map((i) => s.run(`r${i}`, i));
    const r = await s.sweeper.sweep();
    expect(r.deleted.map((d) => d.run)).toEqual(['r1', 'r2']);
    await s.sweeper.settled();
    expect(['r1', 'r2', 'r3', 'r4'].map(s.exists)).toEqual([false, false, true, true]);
    expect(s.store.getStepInstances('ns', 'r1').items).toEqual([]);
    expect(existsSync(s.store.runDir('ns', 'r1'))).toBe(false);
    expect(existsSync(dirs[0]!)).toBe(false);
    expect(existsSync(dirs[3]!)).toBe(true);
    // a second sweep has nothing left to do
    expect((await s.sweeper.sweep()).deleted).toEqual([]);
  });

  it("applies TTLs per phase against the injected clock, the workflow's spec.retention over the defaults", async () => {
    const s = setup({ defaults: { ttlSecondsAfterFinished: { succeeded: 3600 } } });
    s.workflow('strict', { ttlSecondsAfterFinished: { failed: 60 } });
    s.sweeper.start();
    s.run('ok', 0); // ended at T0
    s.run('bad', 0, 'Failed');
    s.run('strict-bad', 0, 'Failed', {}, 'strict');
    s.setNow(T0 + 30 * MIN);
    expect((await s.sweeper.sweep()).deleted.map((d) => d.run)).toEqual(['strict-bad']);
    s.setNow(T0 + 61 * MIN);
    expect((await s.sweeper.sweep()).deleted.map((d) => d.run)).toEqual(['ok']);
    expect(s.exists('bad')).toBe(true); // no TTL for failures by default
  });

  it('never deletes an unfinished run, a run a pending restart reads, or a run with task records', async () => {
    const s = setup({ defaults: { keepLast: 0 } });
    s.run('pending', undefined, 'Pending');
    s.run('queued', undefined, null);
    s.run('running', undefined, 'Running');
    s.run('failed', 1, 'Failed');
    s.run('restart', undefined, null, { restartOf: { run: 'failed', from: 'failed' } });
    s.run('tasked', 2, 'Stopped');
    s.store.putTasks([
      { namespace: 'ns', run: 'tasked', instance: 'a', attempt: 1, state: 'launched', data: {} },
    ]);
    s.run('done', 3);
    expect((await s.sweeper.sweep()).deleted.map((d) => d.run)).toEqual(['done']);
    for (const n of ['pending', 'queued', 'running', 'failed', 'restart', 'tasked'])
      expect(s.exists(n), n).toBe(true);
    // once the restart has started... it finishes: the failed run is no longer needed
    const restart = s.store.get<WorkflowRun>('WorkflowRun', 'ns', 'restart')!;
    s.store.updateStatus('WorkflowRun', {
      ...restart,
      status: { phase: 'Succeeded', endTime: new Date(T0).toISOString() },
    });
    expect((await s.sweeper.sweep()).deleted.map((d) => d.run)).toEqual(['restart', 'failed']);
  });

  it('deletes subworkflow children only with their parent, and not while one of them runs', async () => {
    const s = setup({ defaults: { keepLast: 0 } });
    s.sweeper.start();
    const child = (name: string, parent: string, phase: string) =>
      s.run(
        name,
        1,
        phase,
        { initiator: { type: 'subworkflow', parent: { run: parent, step: 'sub' } } },
        'child-wf',
      );
    s.run('parent', 5);
    child('c1', 'parent', 'Succeeded');
    const c2dir = child('c2', 'parent', 'Running');
    child('g1', 'c1', 'Succeeded'); // a grandchild
    let r = await s.sweeper.sweep();
    expect(r.deleted).toEqual([]);
    expect(r.kept).toEqual([
      { namespace: 'ns', run: 'parent', reason: 'its child run "c2" has not finished' },
    ]);
    const c2 = s.store.get<WorkflowRun>('WorkflowRun', 'ns', 'c2')!;
    s.store.updateStatus('WorkflowRun', {
      ...c2,
      status: { phase: 'Failed', endTime: new Date(T0).toISOString() },
    });
    r = await s.sweeper.sweep();
    expect(r.deleted.map((d) => d.run)).toEqual(['parent']);
    await s.sweeper.settled();
    for (const n of ['parent', 'c1', 'c2', 'g1']) expect(s.exists(n), n).toBe(false);
    expect(existsSync(c2dir)).toBe(false);
    // a child whose parent is gone is an ordinary run of its workflow
    child('orphan', 'gone', 'Succeeded');
    expect((await s.sweeper.sweep()).deleted.map((d) => d.run)).toEqual(['orphan']);
  });

  it('bounds the deletions of one sweep; the next sweep continues', async () => {
    const s = setup({ defaults: { keepLast: 0 }, max: 3 });
    for (let i = 0; i < 7; i++) s.run(`r${i}`, i);
    expect((await s.sweeper.sweep()).deleted).toHaveLength(3);
    expect((await s.sweeper.sweep()).deleted).toHaveLength(3);
    expect((await s.sweeper.sweep()).deleted).toHaveLength(1);
  });

  it('removes the files of a run deleted by anyone (the REST API calls store.delete), and orphans at start', async () => {
    const s = setup();
    const kept = s.run('kept', 1);
    const orphan = s.run('orphan', 1);
    // the run went while the server was down: its files stayed
    s.store.delete('WorkflowRun', 'ns', 'orphan');
    expect(existsSync(orphan)).toBe(true);
    s.sweeper.start();
    await s.sweeper.settled();
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(kept)).toBe(true);
    const api = s.run('api', 2);
    s.store.delete('WorkflowRun', 'ns', 'api');
    await s.sweeper.settled();
    expect(existsSync(api)).toBe(false);
    expect(existsSync(kept)).toBe(true);
  });

  it('selects exactly what the policy says, on random histories (model: rank by end time, TTL per phase)', async () => {
    const phases = ['Succeeded', 'Failed', 'Stopped'] as const;
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 15; round++) {
      const keepLast = rand(3) === 0 ? undefined : rand(8);
      const ttl = {
        succeeded: rand(2) ? rand(600) * 60 : undefined,
        failed: rand(2) ? rand(600) * 60 : undefined,
      };
      const policy = {
        ...(keepLast !== undefined ? { keepLast } : {}),
        ttlSecondsAfterFinished: Object.fromEntries(Object.entries(ttl).filter(([, v]) => v !== undefined)),
      };
      const s = setup({ defaults: policy });
      const runs = Array.from({ length: 5 + rand(15) }, (_, i) => ({
        name: `r${i}`,
        end: rand(1000),
        phase: phases[rand(3)]!,
      }));
      for (const r of runs) s.run(r.name, r.end, r.phase);
      const now = T0 + 1000 * MIN;
      // the model
      const ranked = [...runs].sort((a, b) => b.end - a.end || (a.name < b.name ? 1 : -1));
      const want = ranked
        .filter((r, rank) => {
          if (keepLast !== undefined && rank >= keepLast) return true;
          const t = r.phase === 'Succeeded' ? ttl.succeeded : r.phase === 'Failed' ? ttl.failed : undefined;
          return t !== undefined && now - (T0 + r.end * MIN) >= t * 1000;
        })
        .map((r) => r.name)
        .sort();
      const got = (await s.sweeper.sweep()).deleted.map((d) => d.run).sort();
      expect(got, JSON.stringify({ policy, runs })).toEqual(want);
    }
  });
});
