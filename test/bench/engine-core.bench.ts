// The pure engine alone (no store, no executors): what the standalone end-to-end benchmark
// can be compared with. Prints figures, then one JSON object as the last line.
//
//   foreach10k_noop_s   a 10,000-way foreach of noop steps, start to Succeeded (noops complete inline)
//   foreach10k_shell_s  the same with shell steps: 10,000 launches and 20,000 executor events
//   sequence1k_s        1,000 sequential shell steps, each event answered by the next launch
//   transition_p50_ms / transition_p99_ms   StepSucceeded -> next LaunchStep inside the engine
//   inputs10k_s         10,000 iterations each waiting for its own partition; 10,000 artifacts
//   restore10k_ms       rebuilding the machine of a half-done 10,000-way foreach from its status
//   snapshot10k_ms      a full status snapshot of 10,000 instances
//   heap10k_mb          heap held by the machine of that half-done 10,000-instance run
import { performance } from 'node:perf_hooks';
import type { DefinitionNode } from '../../src/crds/index.ts';
import { createRun, restoreRun } from '../../src/engine/index.ts';
import type { EngineAction, RunMachine } from '../../src/engine/types.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const subject = (definition: DefinitionNode) => ({
  runId: 'bench',
  workflow: 'bench',
  version: 1,
  definition,
});

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Plays a perfect executor: every launch is answered by Running then Succeeded, FIFO. */
function drive(machine: RunMachine, first: EngineAction[], transitions?: number[]): void {
  const queue: { id: string; attempt: number }[] = [];
  const take = (acts: EngineAction[]) => {
    for (const a of acts) if (a.type === 'LaunchStep') queue.push({ id: a.instanceId, attempt: a.attempt });
  };
  take(first);
  let t = T0;
  for (let i = 0; i < queue.length; i++) {
    const { id, attempt } = queue[i] as { id: string; attempt: number };
    t += 1;
    take(machine.apply({ type: 'StepRunning', instanceId: id, attempt }, t));
    const start = performance.now();
    const acts = machine.apply({ type: 'StepSucceeded', instanceId: id, attempt }, t);
    if (transitions) transitions.push(performance.now() - start);
    take(acts);
  }
}

function foreach(kind: 'noop' | 'shell', n: number): DefinitionNode {
  const step = kind === 'noop' ? { name: 'w', noop: {} } : { name: 'w', shell: { script: 'echo ${item}' } };
  return { foreach: { items: `range(${n})`, as: 'item', do: { step } } };
}

function timed<T>(f: () => T): [T, number] {
  const start = performance.now();
  const v = f();
  return [v, performance.now() - start];
}

function best(runs: number, f: () => number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) min = Math.min(min, f());
  return min;
}

// Warm up the JIT on a small run of each shape.
for (let i = 0; i < 3; i++) {
  createRun({ ...subject(foreach('noop', 500)), now: T0 });
  const { machine, actions } = createRun({ ...subject(foreach('shell', 500)), now: T0 });
  drive(machine, actions);
}

const foreachNoop = best(3, () => {
  const [{ machine }, ms] = timed(() => createRun({ ...subject(foreach('noop', 10_000)), now: T0 }));
  if (machine.phase !== 'Succeeded') throw new Error(`noop foreach ended ${machine.phase}`);
  return ms;
});

const foreachShell = best(3, () => {
  const [machine, ms] = timed(() => {
    const { machine, actions } = createRun({ ...subject(foreach('shell', 10_000)), now: T0 });
    drive(machine, actions);
    return machine;
  });
  if (machine.phase !== 'Succeeded') throw new Error(`shell foreach ended ${machine.phase}`);
  return ms;
});

const sequenceDef: DefinitionNode = {
  sequence: Array.from({ length: 1000 }, (_, i) => ({
    step: { name: `s${i}`, shell: { script: `echo ${i}` } },
  })),
};
const transitions: number[] = [];
const sequence = best(3, () => {
  transitions.length = 0;
  const [machine, ms] = timed(() => {
    const { machine, actions } = createRun({ ...subject(sequenceDef), now: T0 });
    drive(machine, actions, transitions);
    return machine;
  });
  if (machine.phase !== 'Succeeded') throw new Error(`sequence ended ${machine.phase}`);
  return ms;
});
transitions.sort((a, b) => a - b);

// A 10,000-way foreach whose iterations each wait for their own partition, then the 10,000
// artifacts announced one event at a time (matching must not scan every waiter).
const gated: DefinitionNode = {
  foreach: {
    items: 'range(10000)',
    as: 'i',
    do: {
      step: { name: 'g', noop: {}, inputs: [{ name: 'part', partition: { i: '${i}', kind: 'daily' } }] },
    },
  },
};
const inputs = best(3, () => {
  const [machine, ms] = timed(() => {
    const { machine } = createRun({ ...subject(gated), now: T0 });
    for (let i = 0; i < 10_000; i++)
      machine.apply(
        { type: 'ArtifactsAvailable', artifacts: [{ name: 'part', partition: { i, kind: 'daily', v: 2 } }] },
        T0,
      );
    return machine;
  });
  if (machine.phase !== 'Succeeded') throw new Error(`gated foreach ended ${machine.phase}`);
  return ms;
});

// Restore and snapshot of a 10k run with half of the instances done; its heap footprint.
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const half = createRun({ ...subject(foreach('shell', 10_000)), now: T0 });
for (let i = 0; i < 5000; i++)
  half.machine.apply({ type: 'StepSucceeded', instanceId: `w[${i}]`, attempt: 1 }, T0 + 1);
gc?.();
const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
const snapshot = best(5, () => timed(() => half.machine.snapshot())[1]);
const status = half.machine.snapshot();
const restore = best(3, () => {
  const [r, ms] = timed(() => restoreRun({ ...subject(foreach('shell', 10_000)), status, now: T0 + 2 }));
  if (r.actions.length !== 5000) throw new Error(`restore re-emitted ${r.actions.length} actions`);
  return ms;
});

const result = {
  foreach10k_noop_s: +(foreachNoop / 1000).toFixed(4),
  foreach10k_shell_s: +(foreachShell / 1000).toFixed(4),
  sequence1k_s: +(sequence / 1000).toFixed(4),
  transition_p50_ms: +quantile(transitions, 0.5).toFixed(4),
  transition_p99_ms: +quantile(transitions, 0.99).toFixed(4),
  inputs10k_s: +(inputs / 1000).toFixed(4),
  restore10k_ms: +restore.toFixed(2),
  snapshot10k_ms: +snapshot.toFixed(2),
  heap10k_mb: gc ? +heapMb.toFixed(1) : null,
};
console.log(`10,000-way foreach of noops (inline):        ${result.foreach10k_noop_s} s`);
console.log(`10,000-way foreach of shell steps (driven):  ${result.foreach10k_shell_s} s`);
console.log(`1,000-step sequence (driven):                ${result.sequence1k_s} s`);
console.log(
  `step finished -> next launched, p50 / p99:   ${result.transition_p50_ms} / ${result.transition_p99_ms} ms`,
);
console.log(`10k waiting instances, 10k artifacts one by one: ${result.inputs10k_s} s`);
console.log(`restore of a half-done 10k foreach:          ${result.restore10k_ms} ms`);
console.log(`snapshot of 10k instances:                   ${result.snapshot10k_ms} ms`);
console.log(
  `heap held by a half-done 10k run:            ${result.heap10k_mb ?? 'n/a (run with --expose-gc)'} MiB`,
);
console.log(JSON.stringify(result));
