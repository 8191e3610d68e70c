// biome-ignore-all lint/suspicious/noThenProperty: the workflow API names a branch body `then`
// Properties over random definitions, random executor behaviour and random controller
// restarts: a restore at any point changes nothing and re-emits exactly the open work; no
// attempt is launched twice; every run ends; a Succeeded run has nothing left unfinished.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DefinitionNode } from '../crds/index.ts';
import { createRun, restoreRun } from './index.ts';
import type { EngineAction, EngineEvent, RunMachine, TimerRef } from './types.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');

/** Random definition trees (depth-bounded); step names are made unique afterwards. */
const nodeArb: fc.Memo<DefinitionNode> = fc.memo((depth) => {
  const step = fc
    .record({
      kind: fc.constantFrom('shell', 'shell', 'noop', 'sub'),
      retry: fc.nat(2),
      backoff: fc.constantFrom(0, 1),
      inputs: fc.nat(9),
      timeout: fc.nat(4),
    })
    .map(
      ({ kind, retry, backoff, inputs, timeout }): DefinitionNode => ({
        step: {
          name: 's',
          ...(kind === 'shell'
            ? { shell: { script: 'x' } }
            : kind === 'noop'
              ? { noop: {} }
              : { subworkflow: { workflow: 'child' } }),
          ...(retry > 0 ? { retry: { limit: retry, backoff: { initialSeconds: backoff } } } : {}),
          ...(inputs === 0 ? { inputs: [{ name: 'data' }] } : {}),
          ...(timeout === 0 ? { timeoutSeconds: 30 } : {}),
        },
      }),
    );
  if (depth <= 1) return step;
  const child = nodeArb(depth - 1);
  const kids = fc.array(child, { minLength: 1, maxLength: 3, size: 'medium' });
  return fc.oneof(
    { weight: 2, arbitrary: step },
    kids.map((c): DefinitionNode => ({ sequence: c })),
    kids.map((c): DefinitionNode => ({ parallel: c })),
    fc
      .record({ kind: fc.constantFrom('or', 'xor'), c: kids, x: fc.nat(3), otherwise: fc.option(child) })
      .map(({ kind, c, x, otherwise }): DefinitionNode => {
        const branches = [
          ...c.map((n, i) => ({ when: `x ${i % 2 ? '<' : '>='} ${x}`, then: n })),
          ...(otherwise ? [{ otherwise }] : []),
        ];
        return kind === 'or' ? { or: branches } : { xor: branches };
      }),
    fc.record({ c: child, n: fc.nat(2), extra: fc.nat(1) }).map(
      ({ c, n, extra }): DefinitionNode => ({
        loop: { do: c, while: `LOOP_INDEX < ${n}`, maxIterations: n + extra },
      }),
    ),
    fc.record({ c: child, n: fc.nat(4), p: fc.option(fc.integer({ min: 1, max: 3 })) }).map(
      ({ c, n, p }): DefinitionNode => ({
        foreach: { items: `range(${n})`, as: 'it', ...(p ? { parallelism: p } : {}), do: c },
      }),
    ),
  );
});

function uniqueNames(def: DefinitionNode): DefinitionNode {
  let n = 0;
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const o = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
      if (k(o, 'name') && (k(o, 'shell') || k(o, 'noop') || k(o, 'subworkflow'))) o.name = `s${n++}`;
      return o;
    }
    return v;
  };
  const k = (o: object, key: string) => Object.hasOwn(o, key);
  return walk(def) as DefinitionNode;
}

interface Open {
  id: string;
  attempt: number;
  child: boolean;
}

describe('engine properties', () => {
  it('restores are invisible, attempts launch once, runs end, Succeeded means done', () => {
    fc.assert(
      fc.property(
        fc
          .array(nodeArb(4), { minLength: 2, maxLength: 4 })
          .map((c): DefinitionNode => ({ parallel: c }))
          .map(uniqueNames),
        fc.nat(3),
        fc.array(fc.nat(1_000_000), { minLength: 200, maxLength: 200 }),
        (definition, x, dice) => {
          const subject = { runId: 'r', workflow: 'wf', version: 1, definition };
          let now = T0;
          const created = createRun({ ...subject, parameters: [{ name: 'x', value: x }], now });
          let machine: RunMachine = created.machine;
          const open: Open[] = [];
          const timers: TimerRef[] = [];
          const launched = new Set<string>();
          const take = (actions: EngineAction[], recovering = false) => {
            for (const a of actions) {
              if (a.type === 'LaunchStep' || a.type === 'StartChildRun') {
                const key = `${a.instanceId}#${a.attempt}`;
                if (recovering) {
                  expect(a.recovered).toBe(true);
                  expect(open.some((o) => o.id === a.instanceId && o.attempt === a.attempt)).toBe(true);
                  continue;
                }
                expect(launched.has(key), `${key} launched twice`).toBe(false);
                launched.add(key);
                open.push({ id: a.instanceId, attempt: a.attempt, child: a.type === 'StartChildRun' });
                // The executor starts at once (arms timeouts).
                if (a.type === 'LaunchStep')
                  take(
                    machine.apply(
                      { type: 'StepLaunched', instanceId: a.instanceId, attempt: a.attempt },
                      now,
                    ),
                  );
              }
              if (a.type === 'KillStep' || a.type === 'StopChildRun') {
                const k = open.findIndex((o) => o.id === a.instanceId && o.attempt === a.attempt);
                expect(k, `kill of ${a.instanceId}#${a.attempt} that is not running`).toBeGreaterThanOrEqual(
                  0,
                );
                open.splice(k, 1);
              }
              if (a.type === 'WakeAt' && !recovering) timers.push(a.timer);
            }
          };
          const data: EngineEvent = { type: 'ArtifactsAvailable', artifacts: [{ name: 'data' }] };
          take(created.actions);
          let i = 0;
          while (machine.phase === 'Running' && i < dice.length) {
            const d = dice[i++] as number;
            now += 1000;
            if (d % 7 === 0) {
              // Controller restart: the restored machine must be indistinguishable.
              const before = machine.snapshot();
              const restored = restoreRun({ ...subject, status: before, now });
              machine = restored.machine;
              expect(machine.snapshot()).toEqual(before);
              const relaunch = restored.actions.filter(
                (a) => a.type === 'LaunchStep' || a.type === 'StartChildRun',
              );
              expect(relaunch.length).toBe(open.length);
              take(restored.actions, true);
              continue;
            }
            let event: EngineEvent;
            if (d % 101 === 0) event = { type: 'Stop' };
            else if (d % 13 === 0) event = data;
            else if (open.length > 0 && (timers.length === 0 || d % 3 !== 0)) {
              const [o] = open.splice(d % open.length, 1) as [Open];
              const fail = d % 11 === 0;
              event = o.child
                ? {
                    type: 'ChildRunFinished',
                    instanceId: o.id,
                    attempt: o.attempt,
                    phase: fail ? 'Failed' : 'Succeeded',
                  }
                : fail
                  ? { type: 'StepFailed', instanceId: o.id, attempt: o.attempt, message: 'x' }
                  : { type: 'StepSucceeded', instanceId: o.id, attempt: o.attempt };
            } else if (timers.length > 0) {
              now += 60_000;
              event = { type: 'Timer', timer: timers.shift() as TimerRef };
            } else break;
            take(machine.apply(event, now));
          }
          // With a responsive executor (and the data arriving) the run always ends.
          for (let guard = 0; machine.phase === 'Running' && guard < 10_000; guard++) {
            now += 60_000;
            const o = open.shift();
            const event: EngineEvent = o
              ? o.child
                ? { type: 'ChildRunFinished', instanceId: o.id, attempt: o.attempt, phase: 'Succeeded' }
                : { type: 'StepSucceeded', instanceId: o.id, attempt: o.attempt }
              : timers.length > 0
                ? { type: 'Timer', timer: timers.shift() as TimerRef }
                : data;
            take(machine.apply(event, now));
          }
          expect(machine.phase).not.toBe('Running');
          const status = machine.snapshot();
          if (status.phase === 'Succeeded')
            for (const s of status.steps ?? []) expect(['Succeeded', 'Skipped']).toContain(s.phase);
          if (status.phase === 'Failed') expect(status.message).toBeTruthy();
          if (status.phase === 'Stopped')
            for (const s of status.steps ?? [])
              expect(['Succeeded', 'Failed', 'Skipped', 'Stopped'], `${s.id} ${s.phase}`).toContain(s.phase);
          if (status.phase !== 'Failed' || !status.message?.startsWith('step ')) return;
          // Restart from failed with an executor that always succeeds: nothing that succeeded
          // runs again, and the run succeeds...
          const succeeded = new Set(
            (status.steps ?? []).filter((s) => s.phase === 'Succeeded').map((s) => s.id),
          );
          const restart = createRun({
            ...subject,
            runId: 'r2',
            parameters: [{ name: 'x', value: x }],
            now,
            restartOf: { run: 'r', status },
          });
          const queue = [...restart.actions];
          for (let k = 0; k < queue.length && restart.machine.phase === 'Running'; k++) {
            const a = queue[k] as EngineAction;
            now += 1000;
            if (a.type === 'WaitForInputs')
              queue.push(...restart.machine.apply({ ...data, instanceId: a.instanceId } as EngineEvent, now));
            if (a.type === 'LaunchStep' || a.type === 'StartChildRun') {
              expect(succeeded.has(a.instanceId), `${a.instanceId} re-run`).toBe(false);
              queue.push(
                ...restart.machine.apply(
                  a.type === 'LaunchStep'
                    ? { type: 'StepSucceeded', instanceId: a.instanceId, attempt: a.attempt }
                    : {
                        type: 'ChildRunFinished',
                        instanceId: a.instanceId,
                        attempt: a.attempt,
                        phase: 'Succeeded',
                      },
                  now,
                ),
              );
            }
          }
          // ... unless a loop of the definition always exceeds its maxIterations.
          const end = restart.machine.snapshot();
          if (end.phase !== 'Succeeded') expect(end.message).toMatch(/loop exceeded maxIterations/);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never throws on arbitrary events, and ignores those that name nothing in flight', () => {
    const def: DefinitionNode = {
      parallel: [
        {
          foreach: {
            items: 'range(3)',
            as: 'i',
            do: { step: { name: 'w', shell: { script: 'x' }, timeoutSeconds: 5 } },
          },
        },
        { step: { name: 'in', noop: {}, inputs: [{ name: 'd', partition: { k: '1' } }] } },
        { step: { name: 'sub', subworkflow: { workflow: 'c' }, retry: { limit: 1 } } },
      ],
    };
    const ids = fc.constantFrom('w[0]', 'w[1]', 'w[9]', 'in', 'sub', 'nope', '');
    const event = fc.oneof(
      fc.record({
        type: fc.constantFrom(
          'StepLaunched',
          'StepRunning',
          'StepSucceeded',
          'StepFailed',
          'ChildRunFinished',
        ),
        instanceId: ids,
        attempt: fc.integer({ min: -1, max: 3 }),
        message: fc.string(),
        phase: fc.constantFrom('Succeeded', 'Failed', 'Stopped', 'Weird'),
        outputs: fc.option(fc.dictionary(fc.string(), fc.jsonValue())),
      }),
      fc.record({
        type: fc.constant('Timer'),
        timer: fc.record({
          instanceId: ids,
          attempt: fc.nat(3),
          kind: fc.constantFrom('retry', 'timeout', 'x'),
        }),
      }),
      fc.record({
        type: fc.constant('ArtifactsAvailable'),
        artifacts: fc.array(
          fc.record({
            name: fc.constantFrom('d', 'e'),
            partition: fc.option(fc.dictionary(fc.string(), fc.string())),
          }),
        ),
      }),
      fc.anything(),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (events) => {
        const { machine } = createRun({ runId: 'r', workflow: 'wf', version: 1, definition: def, now: T0 });
        let now = T0;
        for (const e of events) {
          now += 3000;
          machine.apply(e as EngineEvent, now);
        }
        const status = machine.snapshot();
        expect(status.summary?.total).toBe(status.steps?.length);
        const restored = restoreRun({ runId: 'r', workflow: 'wf', version: 1, definition: def, status, now });
        expect(restored.machine.snapshot()).toEqual(status);
      }),
      { numRuns: 500 },
    );
  });

  it('preemptions never use up retries: a step fails exactly at its (limit+1)-th own failure', () => {
    const T0 = Date.parse('2026-01-01T00:00:00Z');
    fc.assert(
      fc.property(
        fc.nat(3),
        fc.array(fc.constantFrom('preempt', 'fail'), { maxLength: 12 }),
        fc.boolean(),
        (limit, ends, restart) => {
          const def: DefinitionNode = {
            step: { name: 's', shell: { script: 'x' }, retry: { limit, backoff: { initialSeconds: 0 } } },
          };
          let { machine } = createRun({ runId: 'r', workflow: 'wf', version: 1, definition: def, now: T0 });
          let failures = 0;
          let preemptions = 0;
          for (const [i, end] of ends.entries()) {
            if (machine.phase === 'Failed') break;
            const attempt = i + 1;
            if (restart) {
              const status = machine.snapshot();
              machine = restoreRun({
                runId: 'r',
                workflow: 'wf',
                version: 1,
                definition: def,
                status,
                now: T0,
              }).machine;
            }
            const event: EngineEvent =
              end === 'preempt'
                ? { type: 'StepPreempted', instanceId: 's', attempt, message: 'evicted' }
                : { type: 'StepFailed', instanceId: 's', attempt, message: 'boom' };
            machine.apply(event, T0);
            if (end === 'preempt') preemptions++;
            else failures++;
            const st = machine.snapshot().steps![0]!;
            expect(st.attempts).toBe(failures > limit ? attempt : attempt + 1);
            expect(st.preemptions ?? 0).toBe(preemptions);
            expect(machine.phase).toBe(failures > limit ? 'Failed' : 'Running');
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
