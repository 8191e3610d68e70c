/**
 * Admission and retention benchmark (`npm run bench admission`), with 2,500 and 25,000 finished
 * runs of one workflow kept in the store:
 * - the maxActiveRuns check of one new run (WorkflowServices.admit), against the former query
 *   (list every run of the namespace, filter in JS);
 * - a retention sweep that finds nothing to delete, and one that deletes 500 runs.
 * Prints figures, then, as its last line, one JSON object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../../src/controller/controller.ts';
import { WorkflowServices } from '../../src/controller/workflows.ts';
import type { Workflow, WorkflowRun } from '../../src/crds/index.ts';
import { RetentionSweeper } from '../../src/retention/index.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { SqliteAsyncStore } from '../../src/store/sqlite-async.ts';
import type { Stored } from '../../src/store/types.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const round = (x: number) => Math.round(x * 100) / 100;

function finishedRun(i: number): WorkflowRun {
  const t = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString();
  return {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { name: `w-${i}`, namespace: 'default', labels: { 'meson.dev/workflow': 'w' } },
    spec: { workflow: 'w', initiator: { type: 'cron' } },
    status: {
      phase: i % 10 === 0 ? 'Failed' : 'Succeeded',
      version: 1,
      startTime: t,
      endTime: t,
      summary: { total: 20, phases: { Succeeded: 20 } },
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Done', lastTransitionTime: t }],
    },
  } as WorkflowRun;
}

function measure(n: number) {
  const dir = mkdtempSync(join(tmpdir(), 'meson-bench-admission-'));
  const store = new SqliteStore({ dir });
  try {
    store.transaction((w) => {
      w.create<Workflow>('Workflow', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'Workflow',
        metadata: { name: 'w', namespace: 'default' },
        spec: { concurrency: { maxActiveRuns: 2 }, definition: { step: { name: 'a', noop: {} } } },
      } as Workflow);
      for (let i = 0; i < n; i++) w.create('WorkflowRun', finishedRun(i));
    });
    const fresh = store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'w-new', namespace: 'default' },
      spec: { workflow: 'w' },
    } as WorkflowRun);
    const services = new WorkflowServices({
      store: new SqliteAsyncStore(store),
      logger: silentLogger,
      triggers: false,
    });
    const after: number[] = [];
    const before: number[] = [];
    for (let i = 0; i < 15; i++) {
      let t = performance.now();
      if (services.admit(fresh as Stored<WorkflowRun>) !== 'start') throw new Error('not admitted');
      after.push(performance.now() - t);
      t = performance.now();
      // the former query: every run of the namespace, parsed, filtered in JS
      store
        .list<WorkflowRun>('WorkflowRun', 'default')
        .items.filter((r) => r.spec.workflow === 'w' && r.spec.initiator?.type !== 'subworkflow');
      before.push(performance.now() - t);
    }
    const quiet = { info() {}, warn() {}, error() {} };
    let t = performance.now();
    new RetentionSweeper({ store, logger: quiet, defaults: { keepLast: n + 10 }, intervalMs: 0 }).sweep();
    const sweepIdle = performance.now() - t;
    t = performance.now();
    const swept = new RetentionSweeper({
      store,
      logger: quiet,
      defaults: { keepLast: n - 500 },
      intervalMs: 0,
    }).sweep();
    const sweep500 = performance.now() - t;
    if (swept.deleted.length !== 500) throw new Error(`swept ${swept.deleted.length}`);
    return {
      runs: n,
      before_ms: round(median(before)),
      after_ms: round(median(after)),
      sweep_idle_ms: round(sweepIdle),
      sweep_500_ms: round(sweep500),
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = [2_500, 25_000].map(measure);
for (const r of results) {
  console.log(
    `${r.runs} finished runs kept: admission ${r.after_ms} ms (listing every run of the namespace: ${r.before_ms} ms); ` +
      `retention sweep ${r.sweep_idle_ms} ms with nothing to delete, ${r.sweep_500_ms} ms deleting 500 runs`,
  );
}
console.log(
  JSON.stringify(
    Object.fromEntries(
      results.flatMap((r) => [
        [`admit_${r.runs}_ms`, r.after_ms],
        [`list_all_${r.runs}_ms`, r.before_ms],
        [`sweep_idle_${r.runs}_ms`, r.sweep_idle_ms],
        [`sweep_500_${r.runs}_ms`, r.sweep_500_ms],
      ]),
    ),
  ),
);
