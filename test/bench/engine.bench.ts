// Engine benchmark, standalone end to end: store (SQLite, synchronous=FULL) + controller +
// engine + scheduler + launcher.
//
//   foreach10k_s        a 10,000-way foreach of noop steps: run created -> run Succeeded
//   sequence1k_s        1,000 sequential noop steps: run created -> run Succeeded
//     (the engine completes a noop step itself, without a launch: these two measure the
//     engine, the controller and the store: instances persisted in batched transactions)
//   dispatched_*        the same shapes with shell steps that DO go through the scheduler
//     (local offer, 100m CPU each), the persisted launch records and the launcher, whose
//     executor is replaced by an instantaneous in-process one: orchestration overhead only
//   transition_*_ms     in the dispatched sequence: step i's result received -> step i+1's
//     executor started (one reconcile pass, including one committed transaction)
//   shell_*             20 sequential real shell steps (a detached executor process each)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyManifests } from '../../src/controller/manifests.ts';
import { createStandalone } from '../../src/controller/standalone.ts';
import type { DefinitionNode, WorkflowRun } from '../../src/crds/index.ts';
import type { LocalLauncher } from '../../src/launchers/local.ts';
import type { AttemptUpdate, Launcher } from '../../src/launchers/types.ts';
import type { Stored } from '../../src/store/types.ts';

interface Measured {
  seconds: number;
  transitions: number[];
  instances: number;
}

/** A launcher whose executors finish instantly and successfully, in-process. */
function instantLauncher(real: LocalLauncher, report: (u: AttemptUpdate) => void): Launcher {
  return {
    prepare: (req) => real.prepare(req),
    launch: (req, rec) => {
      queueMicrotask(() => {
        const t = Date.now();
        report({
          type: 'finished',
          key: { namespace: req.namespace, run: req.run, instance: req.instance, attempt: req.attempt },
          status: {
            launchId: rec.launchId,
            pid: process.pid,
            phase: 'Succeeded',
            exitCode: 0,
            milestones: { launched: t, running: t, finished: t },
          },
        });
      });
    },
    adopt: () => {},
    kill: () => {},
    close: () => real.close(),
  };
}

async function measure(name: string, definition: DefinitionNode, instant = false): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'meson-bench-'));
  const s = createStandalone({
    dataDir: dir,
    cwd: dir,
    pollMs: 20,
    ...(instant ? { wrapLauncher: (local, onUpdate) => instantLauncher(local, (u) => onUpdate(u)) } : {}),
  });
  const finishedAt = new Map<string, number>();
  const launchedAt = new Map<string, number>();
  const onUpdate = s.controller.onAttemptUpdate.bind(s.controller);
  s.controller.onAttemptUpdate = (u: AttemptUpdate) => {
    if (u.type === 'finished') finishedAt.set(u.key.instance, performance.now());
    onUpdate(u);
  };
  const launcher = s.controllerLauncher;
  const launch = launcher.launch.bind(launcher);
  launcher.launch = (req, rec) => {
    launchedAt.set(req.instance, performance.now());
    launch(req, rec);
  };
  const keepAlive = setInterval(() => {}, 1000);
  try {
    applyManifests(
      s.store,
      {
        workflows: [
          { apiVersion: 'meson.dev/v1alpha1', kind: 'Workflow', metadata: { name }, spec: { definition } },
        ],
        artifacts: [],
        runs: [],
        errors: [],
      },
      Date.now(),
    );
    s.start();
    let runName = '';
    const done = new Promise<Stored<WorkflowRun>>((resolve) => {
      s.store.watch((c) => {
        const r = c.object as Stored<WorkflowRun>;
        if (
          c.kind === 'WorkflowRun' &&
          r.metadata.name === runName &&
          ['Succeeded', 'Failed', 'Stopped'].includes(r.status?.phase ?? '')
        ) {
          resolve(r);
        }
      });
    });
    const t0 = performance.now();
    runName = s.store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { generateName: `${name}-`, namespace: 'default' },
      spec: { workflow: name },
    }).metadata.name;
    const final = await done;
    const seconds = (performance.now() - t0) / 1000;
    if (final.status?.phase !== 'Succeeded')
      throw new Error(`${name}: run ${final.status?.phase}: ${final.status?.message}`);
    const transitions: number[] = [];
    const ids = s.store.getStepInstances('default', runName).items.map((r) => r.id);
    for (let i = 1; i < ids.length; i++) {
      const f = finishedAt.get(ids[i - 1]!);
      const l = launchedAt.get(ids[i]!);
      if (f !== undefined && l !== undefined && l >= f) transitions.push(l - f);
    }
    return { seconds, transitions, instances: ids.length };
  } finally {
    clearInterval(keepAlive);
    s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function pct(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

const noop = (n: string) => ({ step: { name: n, noop: {} } });
const shellStep = (n: string) => ({ step: { name: n, shell: { script: 'true' } } });
const foreach = await measure('foreach10k', { foreach: { items: 'range(10000)', as: 'i', do: noop('n') } });
console.log(
  `foreach 10,000 noops:            ${foreach.seconds.toFixed(2)} s (${foreach.instances} instances)`,
);
const sequence = await measure('sequence1k', {
  sequence: Array.from({ length: 1000 }, (_, i) => noop(`s${i}`)),
});
console.log(`sequence 1,000 noops:            ${sequence.seconds.toFixed(2)} s`);
const dForeach = await measure(
  'dforeach10k',
  { foreach: { items: 'range(10000)', as: 'i', do: shellStep('n') } },
  true,
);
console.log(
  `dispatched foreach 10,000:       ${dForeach.seconds.toFixed(2)} s (${dForeach.instances} instances)`,
);
const dSequence = await measure(
  'dsequence1k',
  { sequence: Array.from({ length: 1000 }, (_, i) => shellStep(`s${i}`)) },
  true,
);
console.log(`dispatched sequence 1,000:       ${dSequence.seconds.toFixed(2)} s`);
const t = dSequence.transitions;
console.log(
  `transition (dispatched):         p50 ${pct(t, 50).toFixed(2)} ms, p99 ${pct(t, 99).toFixed(2)} ms, max ${pct(t, 100).toFixed(2)} ms (${t.length} samples)`,
);
const shell = await measure('shell20', {
  sequence: Array.from({ length: 20 }, (_, i) => shellStep(`s${i}`)),
});
console.log(
  `shell sequence of 20:   ${shell.seconds.toFixed(2)} s; transition p50 ${pct(shell.transitions, 50).toFixed(2)} ms, p99 ${pct(shell.transitions, 99).toFixed(2)} ms`,
);
console.log(
  JSON.stringify({
    foreach10k_s: round(foreach.seconds),
    sequence1k_s: round(sequence.seconds),
    dispatched_foreach10k_s: round(dForeach.seconds),
    dispatched_sequence1k_s: round(dSequence.seconds),
    transition_p50_ms: round(pct(t, 50)),
    transition_p99_ms: round(pct(t, 99)),
    shell20_s: round(shell.seconds),
    shell_transition_p50_ms: round(pct(shell.transitions, 50)),
    shell_transition_p99_ms: round(pct(shell.transitions, 99)),
  }),
);
