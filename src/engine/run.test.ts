// biome-ignore-all lint/suspicious/noThenProperty: the workflow API names a branch body `then`
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DefinitionNode } from '../crds/index.ts';
import { WorkflowRunStatusSchema } from '../crds/index.ts';
import { applyEvent, createRun, restoreRun, startRun } from './index.ts';
import { Driver, noop, sh, shellText } from './test-driver.ts';
import type { EngineAction, EngineEvent } from './types.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const subject = (definition: DefinitionNode) => ({ runId: 'r', workflow: 'wf', version: 3, definition });

describe('stop', () => {
  it('stops mid-foreach: running attempts killed, waiting ones Stopped, nothing new starts', () => {
    const def: DefinitionNode = {
      sequence: [{ foreach: { items: 'range(6)', as: 'i', parallelism: 2, do: sh('w') } }, sh('after')],
    };
    const d = new Driver(def, { script: { w: 'hang' } });
    d.send({ type: 'StepSucceeded', instanceId: 'w[0]', attempt: 1 });
    expect(d.hanging()).toEqual(['w[1]#1', 'w[2]#1']);
    const actions = d.send({ type: 'Stop', reason: 'user' });
    expect(actions).toEqual([
      { type: 'KillStep', instanceId: 'w[1]', attempt: 1, reason: 'stopped: user' },
      { type: 'KillStep', instanceId: 'w[2]', attempt: 1, reason: 'stopped: user' },
      { type: 'RunFinished', phase: 'Stopped', message: 'stopped: user' },
    ]);
    expect(d.phase).toBe('Stopped');
    expect(d.phases()).toEqual({ 'w[0]': 'Succeeded', 'w[1]': 'Stopped', 'w[2]': 'Stopped' });
    // Late reports change nothing; nothing else starts.
    expect(d.send({ type: 'StepSucceeded', instanceId: 'w[1]', attempt: 1 })).toEqual([]);
    expect(d.launches).toHaveLength(3);
    const status = d.status();
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Running', 'False', 'Stopped'],
      ['Succeeded', 'False', 'Stopped'],
      ['Failed', 'False', 'Stopped'],
    ]);
    expect(status.endTime).toBeDefined();
  });

  it('stops instances waiting for inputs or a retry', () => {
    const def: DefinitionNode = {
      parallel: [
        { step: { name: 'in', shell: { script: 'x' }, inputs: [{ name: 'never' }] } },
        { step: { name: 'flaky', shell: { script: 'x' }, retry: { limit: 2 } } },
      ],
    };
    const d = new Driver(def, { script: { flaky: { fail: 'no' } } }).settle();
    expect(d.phases()).toEqual({ in: 'WaitingForInputs', flaky: 'Pending' });
    const actions = d.send({ type: 'Stop' });
    expect(actions).toContainEqual({ type: 'CancelWaitForInputs', instanceId: 'in' });
    expect(d.phases()).toEqual({ in: 'Stopped', flaky: 'Stopped' });
    d.advance(3600_000);
    expect(d.launches).toEqual(['flaky#1']);
  });
});

describe('restart from failed', () => {
  const def: DefinitionNode = {
    sequence: [
      sh('prep'),
      { foreach: { items: 'steps.prep.outputs.parts', as: 'p', do: sh('work', 'work ${p}') } },
      sh('report', 'report ${join(steps.work.outputs.n, ",")}'),
    ],
  };

  it('re-runs only the instances that did not succeed, reusing the outputs of those that did', () => {
    const first = new Driver(def, {
      runId: 'run-a',
      script: {
        prep: { succeed: { parts: ['x', 'y', 'z'] } },
        work: ({ instanceId }) =>
          instanceId === 'work[1]' ? { fail: 'oom' } : { succeed: { n: instanceId } },
      },
    }).settle();
    expect(first.phase).toBe('Failed');
    expect(first.phases()).toEqual({
      prep: 'Succeeded',
      'work[0]': 'Succeeded',
      'work[1]': 'Failed',
      'work[2]': 'Succeeded',
    });

    const second = new Driver(def, {
      runId: 'run-b',
      initiator: { type: 'restart' },
      restartOf: { run: 'run-a', status: first.status() },
      script: { work: ({ instanceId }) => ({ succeed: { n: `${instanceId}-again` } }) },
    }).settle();
    expect(second.launches).toEqual(['work[1]#1', 'report#1']);
    expect(second.phase).toBe('Succeeded');
    expect(second.inst('prep')).toMatchObject({ phase: 'Succeeded', outputs: { parts: ['x', 'y', 'z'] } });
    expect(second.inst('prep').message).toBe('reused from run run-a');
    const report = second.actions.find((a) => a.type === 'LaunchStep' && a.instanceId === 'report');
    expect(report?.type === 'LaunchStep' && shellText(report.step)).toBe(
      'report work[0],work[1]-again,work[2]',
    );
    expect(second.status().engineState).toMatchObject({ initiator: { type: 'restart' }, restartOf: 'run-a' });
  });

  it('reuses the previous run resolved parameters (same dateint) unless overridden', () => {
    const params = [{ name: 'dateint', type: 'long' as const, expression: 'tsToDateInt(RUN_TS)' }];
    const a = startRun({ ...subject(sh('s', 'echo ${dateint}')), parameters: params, now: T0 });
    const b = startRun({
      ...subject(sh('s', 'echo ${dateint}')),
      parameters: params,
      now: T0 + 3 * 86400_000,
      restartOf: { run: 'r', status: a.status },
    });
    expect(b.status.parameters).toEqual({ dateint: 20260101 });
  });
});

describe('restart from a step', () => {
  const def: DefinitionNode = {
    sequence: [
      sh('extract'),
      {
        parallel: [sh('transform', 'transform'), sh('audit', 'audit')],
      },
      sh('load', 'load'),
      sh('notify', 'notify ${steps.audit.outputs.n}'),
    ],
  };
  const succeeded = () =>
    new Driver(def, {
      runId: 'run-a',
      script: {
        extract: { succeed: { n: 1 } },
        transform: { succeed: { n: 2 } },
        audit: { succeed: { n: 3 } },
      },
    }).settle();

  it('runs the step and what follows it again, reusing what came before or beside it', () => {
    const first = succeeded();
    expect(first.phase).toBe('Succeeded');
    const second = new Driver(def, {
      runId: 'run-b',
      initiator: { type: 'restart' },
      restartOf: { run: 'run-a', status: first.status(), fromStep: 'transform' },
    }).settle();
    expect(second.launches.sort()).toEqual(['load#1', 'notify#1', 'transform#1']);
    expect(second.inst('audit').message).toBe('reused from run run-a');
    expect(second.inst('extract').message).toBe('reused from run run-a');
    expect(second.phase).toBe('Succeeded');
  });

  it('also runs again a later step that reads the restarted one, even beside it', () => {
    const first = succeeded();
    const second = new Driver(def, {
      runId: 'run-b',
      restartOf: { run: 'run-a', status: first.status(), fromStep: 'audit' },
      script: { audit: { succeed: { n: 4 } } },
    }).settle();
    expect(second.launches.sort()).toEqual(['audit#1', 'load#1', 'notify#1']);
  });

  it('runs a whole loop body again when the step is inside the loop', () => {
    const loopDef: DefinitionNode = {
      sequence: [
        sh('before'),
        { loop: { while: 'false', maxIterations: 3, do: { sequence: [sh('l1'), sh('l2')] } } },
        sh('after'),
      ],
    };
    const first = new Driver(loopDef, { runId: 'run-a' }).settle();
    expect(first.phase).toBe('Succeeded');
    const second = new Driver(loopDef, {
      runId: 'run-b',
      restartOf: { run: 'run-a', status: first.status(), fromStep: 'l2' },
    }).settle();
    expect(second.launches.map((l) => l.replace(/\[\d+\]/, '')).sort()).toEqual(['after#1', 'l1#1', 'l2#1']);
  });

  it('fails the new run, naming the field, when the step is not in the version', () => {
    const first = succeeded();
    const second = new Driver(def, {
      runId: 'run-b',
      restartOf: { run: 'run-a', status: first.status(), fromStep: 'nope' },
    }).settle();
    expect(second.phase).toBe('Failed');
    expect(second.status().message).toContain('spec.restartOf.step: no step named "nope"');
    expect(second.launches).toEqual([]);
  });
});

describe('restore (controller restart)', () => {
  const def: DefinitionNode = {
    sequence: [
      sh('a'),
      {
        parallel: [
          { foreach: { items: 'range(4)', as: 'i', parallelism: 2, do: sh('w', 'w ${i}') } },
          { step: { name: 'gate', shell: { script: 'g' }, inputs: [{ name: 'ready' }] } },
          { step: { name: 'flaky', shell: { script: 'f' }, retry: { limit: 1 }, timeoutSeconds: 100 } },
        ],
      },
      sh('z'),
    ],
  };

  it('rebuilds from the snapshot, re-emits what must hold, and continues exactly once', () => {
    const d = new Driver(def, { script: { w: 'hang', flaky: { fail: 'x' } } });
    d.settle();
    d.send({ type: 'StepRunning', instanceId: 'w[0]', attempt: 1 });
    d.now += 1000;
    const before = d.status();
    const ensure = d.restart();
    expect(d.status()).toEqual(before);
    expect(ensure).toEqual([
      {
        type: 'LaunchStep',
        instanceId: 'w[0]',
        attempt: 1,
        recovered: true,
        step: expect.objectContaining({
          name: 'w',
          shell: { script: 'w ${MESON_V_0}', env: { MESON_V_0: '0' } },
        }),
      },
      {
        type: 'LaunchStep',
        instanceId: 'w[1]',
        attempt: 1,
        recovered: true,
        step: expect.objectContaining({ name: 'w' }),
      },
      { type: 'WaitForInputs', instanceId: 'gate', inputs: [{ name: 'ready', partition: {} }] },
      {
        type: 'WakeAt',
        at: Date.parse(before.steps?.find((s) => s.id === 'flaky')?.nextAttemptTime ?? ''),
        timer: { instanceId: 'flaky', attempt: 1, kind: 'retry' },
      },
    ]);
    // The restored machine continues the same run.
    d.send({ type: 'StepSucceeded', instanceId: 'w[0]', attempt: 1 });
    d.send({ type: 'StepSucceeded', instanceId: 'w[1]', attempt: 1 });
    expect(d.launches.filter((l) => l.startsWith('w['))).toEqual(['w[0]#1', 'w[1]#1', 'w[2]#1', 'w[3]#1']);
    d.send({ type: 'StepSucceeded', instanceId: 'w[2]', attempt: 1 });
    d.send({ type: 'StepSucceeded', instanceId: 'w[3]', attempt: 1 });
    d.send({ type: 'ArtifactsAvailable', artifacts: [{ name: 'ready' }] });
    d.send({ type: 'StepSucceeded', instanceId: 'gate', attempt: 1 });
    d.send({ type: 'Timer', timer: { instanceId: 'flaky', attempt: 1, kind: 'retry' } });
    expect(d.phase).toBe('Running');
    d.now += 10_000;
    d.send({ type: 'Timer', timer: { instanceId: 'flaky', attempt: 1, kind: 'retry' } });
    d.send({ type: 'StepSucceeded', instanceId: 'flaky', attempt: 2 });
    d.send({ type: 'StepSucceeded', instanceId: 'z', attempt: 1 });
    expect(d.phase).toBe('Succeeded');
    expect(d.launches.filter((l) => l === 'a#1')).toHaveLength(1);
  });

  it('a restored timeout keeps its original deadline', () => {
    const one: DefinitionNode = { step: { name: 's', shell: { script: 'x' }, timeoutSeconds: 60 } };
    const d = new Driver(one, { script: { s: 'hang' } });
    d.send({ type: 'StepRunning', instanceId: 's', attempt: 1 });
    const start = d.now;
    d.now += 30_000;
    expect(d.restart()).toContainEqual({
      type: 'WakeAt',
      at: start + 60_000,
      timer: { instanceId: 's', attempt: 1, kind: 'timeout' },
    });
  });

  it('a failing run stays failing after a restore and fails when the last attempt ends', () => {
    const d = new Driver(
      { parallel: [sh('bad'), sh('slow')] },
      { script: { bad: { fail: 'x' }, slow: 'hang' } },
    ).settle();
    expect(d.phase).toBe('Running');
    d.restart();
    d.send({ type: 'StepSucceeded', instanceId: 'slow', attempt: 1 });
    expect(d.phase).toBe('Failed');
    expect(d.status().message).toBe('step bad failed: x');
  });

  it('a restore after a failure re-attaches what was started before it, and starts nothing new', () => {
    // w[2] started after w[1] succeeded and before w[0] failed; the replay sees w[0]'s failure
    // first in definition order but must still find w[2] running.
    const def: DefinitionNode = {
      parallel: [
        { foreach: { items: 'range(4)', as: 'i', parallelism: 2, do: sh('w') } },
        { sequence: [sh('a'), sh('b')] },
      ],
    };
    const d = new Driver(def, { script: { w: 'hang', a: 'hang' } });
    d.send({ type: 'StepSucceeded', instanceId: 'w[1]', attempt: 1 });
    d.send({ type: 'StepFailed', instanceId: 'w[0]', attempt: 1, message: 'x' });
    d.send({ type: 'StepSucceeded', instanceId: 'a', attempt: 1 });
    const before = d.status();
    expect(Object.keys(d.phases())).toEqual(['w[0]', 'w[1]', 'a', 'w[2]']);
    const ensure = d.restart();
    expect(d.status()).toEqual(before);
    expect(ensure.map((a) => a.type === 'LaunchStep' && a.instanceId)).toEqual(['w[2]']);
    d.send({ type: 'StepSucceeded', instanceId: 'w[2]', attempt: 1 });
    expect(d.phase).toBe('Failed');
    expect(d.launches).not.toContain('b#1');
  });

  it('fan-in lists keep index order after a restore from instances listed by id', () => {
    const def: DefinitionNode = {
      sequence: [
        { foreach: { items: 'range(12)', as: 'i', do: sh('produce') } },
        sh('wait'),
        sh('fanin', '${join(steps.produce.outputs.v, ",")}'),
      ],
    };
    const d = new Driver(def, {
      script: { produce: ({ step }) => ({ succeed: { v: step.parameters.i as number } }), wait: 'hang' },
    }).settle();
    const status = d.machine.snapshot({ steps: 'none' });
    const byId = (d.status().steps ?? []).slice().sort((a, b) => a.id.localeCompare(b.id));
    expect(byId.map((s) => s.id).slice(0, 4)).toEqual([
      'produce[0]',
      'produce[1]',
      'produce[10]',
      'produce[11]',
    ]);
    const { machine } = restoreRun({ ...subject(def), status, instances: byId, now: T0 });
    const actions = machine.apply({ type: 'StepSucceeded', instanceId: 'wait', attempt: 1 }, T0);
    const fanin = actions.find((a) => a.type === 'LaunchStep');
    expect(fanin?.type === 'LaunchStep' && shellText(fanin.step)).toBe('0,1,2,3,4,5,6,7,8,9,10,11');
  });

  it('a terminal run restores as is and ignores events', () => {
    const d = new Driver(sh('a')).settle();
    const status = d.status();
    const { machine, actions } = restoreRun({ ...subject(sh('a')), status, now: T0 });
    expect(actions).toEqual([]);
    expect(machine.apply({ type: 'Stop' }, T0)).toEqual([]);
    expect(machine.snapshot().steps).toEqual(status.steps);
  });
});

describe('status, change tracking, functional form', () => {
  it('snapshots validate against the WorkflowRun status schema', () => {
    const def: DefinitionNode = {
      sequence: [
        sh('a'),
        { foreach: { items: 'range(2)', as: 'i', do: sh('b') } },
        { step: { name: 'r', shell: { script: 'x' }, retry: { limit: 1 } } },
      ],
    };
    const d = new Driver(def, { script: { r: { fail: 'no' } }, initiator: { type: 'cron' } });
    d.settle();
    const status = d.status();
    expect(WorkflowRunStatusSchema.safeParse(status).error).toBeUndefined();
    expect(status.version).toBe(1);
    expect(status.summary).toEqual({ total: 4, phases: { Succeeded: 3, Pending: 1 } });
    expect(status.engineState).toMatchObject({ initiator: { type: 'cron' } });
    d.finish();
    expect(WorkflowRunStatusSchema.safeParse(d.status()).error).toBeUndefined();
  });

  it('reports only the instances an event changed', () => {
    const def: DefinitionNode = { foreach: { items: 'range(100)', as: 'i', do: sh('w') } };
    const d = new Driver(def, { script: { w: 'hang' } });
    expect(d.machine.changedInstances()).toHaveLength(100);
    d.send({ type: 'StepRunning', instanceId: 'w[7]', attempt: 1 });
    d.send({ type: 'StepSucceeded', instanceId: 'w[7]', attempt: 1 });
    expect(d.machine.changedInstances().map((s) => [s.id, s.phase])).toEqual([['w[7]', 'Succeeded']]);
    expect(d.machine.changedInstances()).toEqual([]);
    expect(d.machine.snapshot({ steps: 'none' }).steps).toBeUndefined();
    expect(d.machine.summary()).toEqual({ total: 100, phases: { Queued: 99, Succeeded: 1 } });
  });

  it("a 'relevant' snapshot of a large run keeps failed, in-flight and recent instances under a limit", () => {
    const def: DefinitionNode = { foreach: { items: 'range(1000)', as: 'i', parallelism: 10, do: sh('w') } };
    const d = new Driver(def, { script: { w: 'hang' } });
    for (let i = 0; i < 9; i++)
      if (i !== 3) d.send({ type: 'StepSucceeded', instanceId: `w[${i}]`, attempt: 1 });
    d.send({ type: 'StepFailed', instanceId: 'w[3]', attempt: 1, message: 'x' });
    expect(d.machine.snapshot({ steps: 'relevant' }).steps).toHaveLength(18);
    const ids = (limit: number) => {
      const status = d.machine.snapshot({ steps: 'relevant', limit });
      expect(status.summary).toEqual({
        total: 18,
        phases: { Succeeded: 8, Failed: 1, Queued: 9 },
        truncated: true,
      });
      expect(WorkflowRunStatusSchema.safeParse(status).error).toBeUndefined();
      return status.steps?.map((s) => s.id);
    };
    expect(ids(4)).toEqual(['w[3]', 'w[9]', 'w[10]', 'w[11]']);
    const w = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => `w[${from + k}]`);
    expect(ids(12)).toEqual(['w[3]', 'w[7]', 'w[8]', ...w(9, 17)]);
  });

  it('bad input fails the run with a message instead of throwing', () => {
    const bad = (definition: unknown, now = T0) =>
      startRun({ ...subject(definition as DefinitionNode), now }).status;
    expect(bad({})).toMatchObject({
      phase: 'Failed',
      message: 'spec.definition: expected exactly one block key; found none',
    });
    expect(
      bad({ sequence: [{ step: { name: 'a', shell: { script: 'x' } } }, { step: { name: 'a', noop: {} } }] })
        .message,
    ).toBe('spec.definition.sequence[1].step.name: duplicate step name "a"');
    expect(bad({ step: { name: 'a' } })).toMatchObject({ phase: 'Failed' });
    // A bad clock is the caller's bug: refused before anything changes.
    expect(() => bad(sh('a'), Number.NaN)).toThrow('now must be epoch milliseconds, got NaN');
    const { machine } = createRun({ ...subject(sh('a')), now: T0 });
    for (const e of [
      null,
      {},
      { type: 'Nope' },
      { type: 'Timer' },
      { type: 'StepSucceeded' },
      { type: 'ArtifactsAvailable' },
    ])
      expect(machine.apply(e as unknown as EngineEvent, T0)).toEqual([]);
    expect(machine.phase).toBe('Running');
  });

  it('applyEvent (restore + apply + snapshot) gives the same status as the incremental machine', () => {
    const def: DefinitionNode = {
      sequence: [sh('a'), { xor: [{ when: 'steps.a.outputs.ok', then: sh('b') }, { otherwise: noop('c') }] }],
    };
    const { machine, actions } = createRun({ ...subject(def), now: T0 });
    let status = machine.snapshot();
    expect(actions.map((a) => a.type)).toEqual(['LaunchStep']);
    const events: EngineEvent[] = [
      { type: 'StepRunning', instanceId: 'a', attempt: 1 },
      { type: 'StepSucceeded', instanceId: 'a', attempt: 1, outputs: { ok: true } },
      { type: 'StepSucceeded', instanceId: 'b', attempt: 1 },
    ];
    let t = T0;
    for (const e of events) {
      t += 1000;
      const a1 = machine.apply(e, t);
      const r = applyEvent(subject(def), status, e, t);
      expect(r.actions).toEqual(a1);
      expect(r.status).toEqual(machine.snapshot());
      status = r.status;
    }
    expect(status.phase).toBe('Succeeded');
  });

  it('is deterministic: the same events give the same status and actions', () => {
    const def: DefinitionNode = {
      parallel: [
        {
          foreach: {
            items: 'range(5)',
            as: 'i',
            parallelism: 2,
            do: {
              step: {
                name: 'w',
                shell: { script: 'w' },
                retry: { limit: 2, backoff: { initialSeconds: 1 } },
              },
            },
          },
        },
        { loop: { do: sh('l'), while: 'LOOP_INDEX < 3', maxIterations: 10 } },
      ],
    };
    fc.assert(
      fc.property(fc.array(fc.nat(1000), { minLength: 5, maxLength: 60 }), (choices) => {
        const play = () => {
          const { machine, actions: first } = createRun({ ...subject(def), now: T0 });
          const log: EngineAction[] = [...first];
          const open: { id: string; attempt: number }[] = [];
          const timers: EngineEvent[] = [];
          const take = (acts: EngineAction[]) => {
            for (const a of acts) {
              if (a.type === 'LaunchStep') open.push({ id: a.instanceId, attempt: a.attempt });
              if (a.type === 'WakeAt') timers.push({ type: 'Timer', timer: a.timer });
            }
          };
          take(first);
          let t = T0;
          for (const c of choices) {
            t += 500;
            let acts: EngineAction[];
            if (timers.length > 0 && c % 5 === 0)
              acts = machine.apply(timers.shift() as EngineEvent, t + 10_000);
            else {
              if (open.length === 0) break;
              const [o] = open.splice(c % open.length, 1) as [{ id: string; attempt: number }];
              acts = machine.apply(
                c % 3 === 0
                  ? { type: 'StepFailed', instanceId: o.id, attempt: o.attempt, message: 'x' }
                  : { type: 'StepSucceeded', instanceId: o.id, attempt: o.attempt },
                t,
              );
            }
            log.push(...acts);
            take(acts);
          }
          return { status: machine.snapshot(), log };
        };
        expect(play()).toEqual(play());
      }),
      { numRuns: 50 },
    );
  });
});

describe('links at launch', () => {
  it('records the links of a launched attempt before it runs, and keeps them while it runs', () => {
    const d = new Driver(sh('s'), { script: { s: 'hang' } });
    d.settle();
    const ui = { name: 'Spark UI', url: 'http://127.0.0.1:8001/api/v1/namespaces/a/pods/p:4040/proxy/' };
    d.send({ type: 'StepLaunched', instanceId: 's', attempt: 1, links: [ui] });
    expect(d.inst('s').links).toEqual([ui]);
    expect(d.inst('s').phase).not.toBe('Running');
    d.send({ type: 'StepRunning', instanceId: 's', attempt: 1 });
    expect(d.inst('s')).toMatchObject({ phase: 'Running', links: [ui] });
    // an old attempt's links are ignored
    d.send({ type: 'StepLaunched', instanceId: 's', attempt: 7, links: [{ name: 'x', url: 'http://x' }] });
    expect(d.inst('s').links).toEqual([ui]);
  });
});
