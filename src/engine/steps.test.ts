// biome-ignore-all lint/suspicious/noThenProperty: the workflow API names a branch body `then`
import { describe, expect, it } from 'vitest';
import type { DefinitionNode } from '../crds/index.ts';
import { artifactMatches, backoffMs } from './index.ts';
import { Driver, sh, shellText } from './test-driver.ts';
import type { EngineAction } from './types.ts';

const launchesOf = (d: Driver) => d.actions.filter((a) => a.type === 'LaunchStep');
const wakes = (d: Driver) =>
  d.actions.filter((a): a is Extract<EngineAction, { type: 'WakeAt' }> => a.type === 'WakeAt');

describe('parameters and interpolation', () => {
  it('resolves workflow, run override and step parameters and interpolates every string field', () => {
    const def: DefinitionNode = {
      step: {
        name: 'job',
        parameters: [{ name: 'day', type: 'long', expression: 'dayFromDateInt(dateint)' }],
        container: {
          image: 'repo/img:${country}',
          command: ['run'],
          args: ['--day', '${day}', '--run', '${RUN_ID}'],
          env: [{ name: 'C', value: '${lower(country)}' }],
        },
        inputs: [{ name: 'views', partition: { country: '${country}', dateint: '${dateint}' } }],
        outputs: [{ name: 'agg', partition: { dateint: '${dateint}' }, location: 's3://b/${dateint}' }],
        resources: { cpus: 2, memory: '8Gi' },
        priority: 5,
      },
    };
    const d = new Driver(def, {
      parameters: [
        { name: 'country', type: 'string', value: 'US' },
        { name: 'dateint', type: 'long', value: 20171107 },
      ],
      overrides: { country: 'CA' },
    });
    expect(d.status().parameters).toEqual({ country: 'CA', dateint: 20171107 });
    const wait = d.actions.find((a) => a.type === 'WaitForInputs');
    expect(wait).toEqual({
      type: 'WaitForInputs',
      instanceId: 'job',
      inputs: [{ name: 'views', partition: { country: 'CA', dateint: '20171107' } }],
    });
    d.send({
      type: 'ArtifactsAvailable',
      artifacts: [{ name: 'views', partition: { country: 'CA', dateint: 20171107 } }],
    });
    const [launch] = launchesOf(d);
    if (launch?.type !== 'LaunchStep') throw new Error('expected a launch');
    expect(launch.step.type).toBe('container');
    expect(launch.step.container).toEqual({
      image: 'repo/img:CA',
      command: ['run'],
      args: ['--day', '7', '--run', 'run-1'],
      env: [{ name: 'C', value: 'ca' }],
    });
    expect(launch.step.parameters).toMatchObject({
      country: 'CA',
      dateint: 20171107,
      day: 7,
      RUN_ID: 'run-1',
    });
    expect(launch.step.locals).toEqual({ day: 7 });
    expect(launch.step.resources).toEqual({ cpus: 2, memory: '8Gi' });
    expect(launch.step.priority).toBe(5);
    d.settle();
    expect(d.announced).toEqual([{ name: 'agg', partition: { dateint: '20171107' } }]);
    const announce = d.actions.find((a) => a.type === 'AnnounceArtifact');
    expect(announce).toMatchObject({
      artifact: { location: 's3://b/20171107' },
      producer: { workflow: 'wf', run: 'run-1', step: 'job' },
    });
  });

  it('an unresolvable step fails without retry, naming the field path', () => {
    const d = new Driver({ step: { name: 's', shell: { script: 'echo ${nope}' }, retry: { limit: 3 } } });
    expect(d.phase).toBe('Failed');
    expect(d.inst('s')).toMatchObject({ phase: 'Failed' });
    expect(d.inst('s').message).toMatch(/^spec\.definition\.step\.shell\.script: .*nope/);
    expect(d.launches).toEqual([]);
  });

  it('a bad workflow parameter fails the run at start', () => {
    const d = new Driver(sh('a'), { parameters: [{ name: 'n', type: 'long', expression: 'len(' }] });
    expect(d.phase).toBe('Failed');
    expect(d.status().message).toMatch(/^spec\.parameters: /);
  });
});

describe('retries', () => {
  const flaky = (failures: number) => ({
    script: {
      s: ({ attempt }: { attempt: number }) => (attempt <= failures ? { fail: `try ${attempt}` } : undefined),
    },
  });
  const def: DefinitionNode = {
    step: {
      name: 's',
      shell: { script: 'x' },
      retry: { limit: 3, backoff: { initialSeconds: 10, factor: 3, maxSeconds: 60 } },
    },
  };

  it('retries with exponential backoff then succeeds', () => {
    const d = new Driver(def, flaky(2));
    d.settle();
    expect(d.inst('s')).toMatchObject({ phase: 'Pending', attempts: 1, message: 'attempt 1 failed: try 1' });
    expect(d.inst('s').nextAttemptTime).toBe(new Date(d.now + 10_000).toISOString());
    d.advance(9_999);
    expect(d.launches).toEqual(['s#1']);
    d.advance(1);
    expect(d.launches).toEqual(['s#1', 's#2']);
    d.advance(29_999);
    expect(d.launches).toHaveLength(2);
    d.advance(1);
    expect(d.launches).toEqual(['s#1', 's#2', 's#3']);
    expect(d.phase).toBe('Succeeded');
    expect(d.inst('s')).toMatchObject({ phase: 'Succeeded', attempts: 3 });
    expect(d.inst('s').message).toBeUndefined();
  });

  it('fails once the retries are exhausted', () => {
    const d = new Driver(def, flaky(10)).finish();
    expect(d.launches).toEqual(['s#1', 's#2', 's#3', 's#4']);
    expect(wakes(d).map((w) => w.at - Date.parse('2026-01-01T00:00:00Z'))).toEqual([10_000, 40_000, 100_000]);
    expect(d.phase).toBe('Failed');
    expect(d.inst('s')).toMatchObject({
      phase: 'Failed',
      attempts: 4,
      message: 'failed after 4 attempts: try 4',
    });
  });

  it('ignores stale events of an earlier attempt and early timers', () => {
    const d = new Driver(def, { script: { s: 'hang' } });
    d.send({ type: 'StepFailed', instanceId: 's', attempt: 1, message: 'x' });
    expect(d.send({ type: 'StepSucceeded', instanceId: 's', attempt: 1 })).toEqual([]);
    expect(d.inst('s').phase).toBe('Pending');
    const early = d.send({ type: 'Timer', timer: { instanceId: 's', attempt: 1, kind: 'retry' } });
    expect(early).toEqual([
      { type: 'WakeAt', at: d.now + 10_000, timer: { instanceId: 's', attempt: 1, kind: 'retry' } },
    ]);
  });

  it('backoff: min(max, initial * factor^(n-1)), defaults 10s x2 up to 600s', () => {
    const step = { name: 'x', noop: {}, retry: { limit: 9 } };
    expect([1, 2, 3, 7, 8].map((n) => backoffMs(step, n))).toEqual([
      10_000, 20_000, 40_000, 600_000, 600_000,
    ]);
    expect(backoffMs({ ...step, retry: { limit: 1, backoff: { initialSeconds: 0 } } }, 1)).toBe(0);
  });

  it('zero backoff retries at once', () => {
    const d = new Driver(
      { step: { name: 's', shell: { script: 'x' }, retry: { limit: 1, backoff: { initialSeconds: 0 } } } },
      flaky(1),
    ).settle();
    expect(d.launches).toEqual(['s#1', 's#2']);
    expect(d.phase).toBe('Succeeded');
  });
});

describe('preemption', () => {
  const hang = { script: { s: 'hang' as const } };
  const preempt = (d: Driver, attempt: number) =>
    d.send({ type: 'StepPreempted', instanceId: 's', attempt, message: `evicted ${attempt}` });

  it('relaunches at once, records why, and does not use up retry.limit', () => {
    const d = new Driver({ step: { name: 's', shell: { script: 'x' }, retry: { limit: 0 } } }, hang);
    d.send({ type: 'StepRunning', instanceId: 's', attempt: 1 });
    const actions = preempt(d, 1);
    expect(actions.filter((a) => a.type === 'LaunchStep').map((a) => 'attempt' in a && a.attempt)).toEqual([
      2,
    ]);
    expect(d.inst('s')).toMatchObject({
      phase: 'Queued',
      attempts: 2,
      preemptions: 1,
      message: 'attempt 1 preempted: evicted 1',
    });
    preempt(d, 2);
    // a failure after two preemptions, with retry.limit 0, fails the step: its own first failure
    d.send({ type: 'StepFailed', instanceId: 's', attempt: 3, message: 'boom' });
    expect(d.inst('s')).toMatchObject({ phase: 'Failed', attempts: 3, preemptions: 2 });
    expect(d.phase).toBe('Failed');
  });

  it('a preempted step with retries left still gets all of them', () => {
    const d = new Driver(
      { step: { name: 's', shell: { script: 'x' }, retry: { limit: 1, backoff: { initialSeconds: 0 } } } },
      hang,
    );
    preempt(d, 1);
    d.send({ type: 'StepFailed', instanceId: 's', attempt: 2, message: 'first failure' });
    expect(d.inst('s')).toMatchObject({ phase: 'Queued', attempts: 3 });
    d.send({ type: 'StepSucceeded', instanceId: 's', attempt: 3 });
    expect(d.phase).toBe('Succeeded');
    expect(d.inst('s')).toMatchObject({ attempts: 3, preemptions: 1 });
  });

  it('ignores a preemption of an attempt that is not open, and keeps the count across a restart', () => {
    const d = new Driver({ step: { name: 's', shell: { script: 'x' } } }, hang);
    expect(preempt(d, 7)).toEqual([]);
    preempt(d, 1);
    d.restart();
    expect(d.machine.snapshot().steps?.[0]).toMatchObject({ attempts: 2, preemptions: 1 });
    d.send({ type: 'StepFailed', instanceId: 's', attempt: 2, message: 'boom' });
    expect(d.inst('s').phase).toBe('Failed');
  });
});

describe('timeout', () => {
  it('kills the attempt when it runs past timeoutSeconds and fails the step', () => {
    const d = new Driver(
      { step: { name: 's', shell: { script: 'sleep 1000' }, timeoutSeconds: 60 } },
      { script: { s: 'hang' } },
    );
    d.send({ type: 'StepRunning', instanceId: 's', attempt: 1 });
    d.advance(59_000);
    expect(d.phase).toBe('Running');
    d.advance(1_000);
    expect(d.actions).toContainEqual({
      type: 'KillStep',
      instanceId: 's',
      attempt: 1,
      reason: 'timed out after 60s',
    });
    expect(d.phase).toBe('Failed');
    expect(d.inst('s')).toMatchObject({ phase: 'Failed', message: 'timed out after 60s' });
    // The executor's late report of the killed attempt changes nothing.
    expect(d.send({ type: 'StepFailed', instanceId: 's', attempt: 1, message: 'killed' })).toEqual([]);
  });

  it('a timed-out attempt is retried when the policy allows', () => {
    const d = new Driver(
      {
        step: {
          name: 's',
          shell: { script: 'x' },
          timeoutSeconds: 5,
          retry: { limit: 1, backoff: { initialSeconds: 1 } },
        },
      },
      { script: { s: ({ attempt }) => (attempt === 1 ? 'hang' : undefined) } },
    );
    d.send({ type: 'StepLaunched', instanceId: 's', attempt: 1, placement: { source: 'local' } });
    d.advance(5_000).advance(1_000);
    expect(d.launches).toEqual(['s#1', 's#2']);
    expect(d.phase).toBe('Succeeded');
  });

  it('the clock starts when the attempt is launched, not while it is queued', () => {
    const d = new Driver(
      { step: { name: 's', shell: { script: 'x' }, timeoutSeconds: 5 } },
      { script: { s: 'hang' } },
    );
    d.advance(60_000);
    expect(d.phase).toBe('Running');
    d.send({ type: 'StepLaunched', instanceId: 's', attempt: 1 });
    d.advance(5_000);
    expect(d.phase).toBe('Failed');
  });
});

describe('inputs and outputs', () => {
  const def: DefinitionNode = {
    sequence: [
      {
        step: {
          name: 'agg',
          shell: { script: 'agg' },
          inputs: [
            { name: 'views', partition: { country: 'US', dateint: '${dateint}' } },
            { name: 'plays', partition: { dateint: '${dateint}' } },
          ],
        },
      },
      sh('after'),
    ],
  };
  const opts = { parameters: [{ name: 'dateint', type: 'long' as const, value: 20171107 }] };

  it('waits in WaitingForInputs until every input has a matching artifact', () => {
    const d = new Driver(def, opts);
    expect(d.inst('agg').phase).toBe('WaitingForInputs');
    expect(d.watching.has('agg')).toBe(true);
    d.send({
      type: 'ArtifactsAvailable',
      artifacts: [{ name: 'views', partition: { country: 'CA', dateint: '20171107' } }],
    });
    d.send({
      type: 'ArtifactsAvailable',
      artifacts: [{ name: 'views', partition: { country: 'US', dateint: '20171107', extra: 1 } }],
    });
    expect(d.inst('agg').phase).toBe('WaitingForInputs');
    expect(d.launches).toEqual([]);
    d.send({ type: 'ArtifactsAvailable', artifacts: [{ name: 'plays', partition: { dateint: 20171107 } }] });
    expect(d.launches).toEqual(['agg#1']);
    expect(d.watching.has('agg')).toBe(false);
    d.settle();
    expect(d.phase).toBe('Succeeded');
  });

  it('matching: same name, partition contains the keys with equal values (as strings)', () => {
    const sel = { name: 'v', partition: { a: '1', b: 'x' } };
    expect(artifactMatches(sel, { name: 'v', partition: { a: 1, b: 'x', c: true } })).toBe(true);
    expect(artifactMatches(sel, { name: 'v', partition: { a: 1 } })).toBe(false);
    expect(artifactMatches(sel, { name: 'w', partition: { a: 1, b: 'x' } })).toBe(false);
    expect(artifactMatches({ name: 'v', partition: {} }, { name: 'v' })).toBe(true);
  });

  it('fails a step whose inputs do not come within inputsTimeoutSeconds, naming what is missing', () => {
    const gate: DefinitionNode = {
      sequence: [
        {
          step: {
            name: 'gate',
            noop: {},
            inputsTimeoutSeconds: 60,
            inputs: [{ name: 'ready' }, { name: 'views', partition: { dateint: '${dateint}' } }],
          },
        },
        sh('work'),
      ],
    };
    const d = new Driver(gate, opts);
    const deadline = d.inst('gate').inputsDeadline!;
    expect(Date.parse(deadline)).toBe(d.now + 60_000);
    d.send({ type: 'ArtifactsAvailable', artifacts: [{ name: 'ready' }] });
    d.advance(59_000);
    expect(d.inst('gate').phase).toBe('WaitingForInputs');
    // a restored run keeps its deadline (it does not restart the clock)
    const restored = d.restart();
    expect(restored).toContainEqual({
      type: 'WakeAt',
      at: Date.parse(deadline),
      timer: { instanceId: 'gate', attempt: 0, kind: 'inputs' },
    });
    expect(d.inst('gate').inputsDeadline).toBe(deadline);
    // the shell re-delivers current matches to a restored watch (WaitForInputs)
    d.send({ type: 'ArtifactsAvailable', artifacts: [{ name: 'ready' }] });
    d.send({ type: 'Timer', timer: { instanceId: 'gate', attempt: 0, kind: 'inputs' } }); // early: ignored
    expect(d.inst('gate').phase).toBe('WaitingForInputs');
    d.advance(1_000);
    d.send({ type: 'Timer', timer: { instanceId: 'gate', attempt: 0, kind: 'inputs' } });
    d.settle();
    expect(d.inst('gate').phase).toBe('Failed');
    expect(d.inst('gate').message).toBe(
      'inputs not announced within 60s (inputsTimeoutSeconds): still waiting for views {dateint=20171107}',
    );
    expect(d.launches).toEqual([]);
    expect(d.phase).toBe('Failed');
  });

  it('an input that comes in time cancels the inputs timeout', () => {
    const d = new Driver({
      sequence: [
        { step: { name: 'gate', noop: {}, inputs: [{ name: 'ready' }], inputsTimeoutSeconds: 5 } },
        sh('work'),
      ],
    });
    d.send({ type: 'ArtifactsAvailable', artifacts: [{ name: 'ready' }], instanceId: 'gate' });
    d.finish();
    expect(d.phase).toBe('Succeeded');
    expect(d.inst('gate').phase).toBe('Succeeded');
  });

  it('a noop with inputs is a data gate', () => {
    const d = new Driver({
      sequence: [{ step: { name: 'gate', noop: {}, inputs: [{ name: 'ready' }] } }, sh('work')],
    });
    expect(d.launches).toEqual([]);
    d.send({ type: 'ArtifactsAvailable', artifacts: [{ name: 'ready' }], instanceId: 'gate' });
    expect(d.launches).toEqual(['work#1']);
  });
});

describe('subworkflow', () => {
  const def: DefinitionNode = {
    sequence: [
      {
        step: {
          name: 'child',
          subworkflow: {
            workflow: 'other-${country}',
            version: 2,
            parameters: [
              { name: 'c', value: '${country}' },
              { name: 'n', expression: 'len(country) * 2' },
            ],
          },
        },
      },
      sh('after', 'echo ${steps.child.outputs.rows}'),
    ],
  };
  const opts = { parameters: [{ name: 'country', value: 'US' }] };

  it('starts a child run with initiator subworkflow, waits, and reads its outputs', () => {
    const d = new Driver(def, {
      ...opts,
      script: { child: { childPhase: 'Succeeded', outputs: { rows: 42 } } },
    });
    expect(d.actions[0]).toEqual({
      type: 'StartChildRun',
      instanceId: 'child',
      attempt: 1,
      workflow: 'other-US',
      version: 2,
      parameters: { c: 'US', n: 4 },
      initiator: { type: 'subworkflow', parent: { run: 'run-1', step: 'child' } },
    });
    expect(d.inst('child').phase).toBe('Running');
    d.settle();
    expect(d.inst('child')).toMatchObject({
      phase: 'Succeeded',
      childRun: 'child-child-1',
      outputs: { rows: 42 },
    });
    const last = launchesOf(d).at(-1);
    expect(last?.type === 'LaunchStep' && shellText(last.step)).toBe('echo 42');
    expect(d.phase).toBe('Succeeded');
  });

  it('a failed child run fails the step and the parent run', () => {
    const d = new Driver(def, {
      ...opts,
      script: { child: { childPhase: 'Failed', message: 'step x failed' } },
    }).settle();
    expect(d.inst('child')).toMatchObject({
      phase: 'Failed',
      message: 'child run child-child-1 failed: step x failed',
    });
    expect(d.phase).toBe('Failed');
  });

  it('a child run past the step timeout is stopped and the step fails', () => {
    const d = new Driver(
      { step: { name: 'child', subworkflow: { workflow: 'slow' }, timeoutSeconds: 60 } },
      { script: { child: 'hang' } },
    );
    d.send({ type: 'StepLaunched', instanceId: 'child', attempt: 1, childRun: 'slow-1' });
    d.advance(60_000);
    expect(d.actions).toContainEqual({
      type: 'StopChildRun',
      instanceId: 'child',
      attempt: 1,
      childRun: 'slow-1',
      reason: 'timed out after 60s',
    });
    expect(d.phase).toBe('Failed');
    // The child's own report of being stopped changes nothing.
    expect(d.send({ type: 'ChildRunFinished', instanceId: 'child', attempt: 1, phase: 'Stopped' })).toEqual(
      [],
    );
  });

  it('stopping the parent stops the child', () => {
    const d = new Driver(def, { ...opts, script: { child: 'hang' } });
    d.send({ type: 'StepLaunched', instanceId: 'child', attempt: 1, childRun: 'other-us-abc' });
    d.send({ type: 'Stop', reason: 'by alice' });
    expect(d.actions).toContainEqual({
      type: 'StopChildRun',
      instanceId: 'child',
      attempt: 1,
      childRun: 'other-us-abc',
      reason: 'stopped: by alice',
    });
    expect(d.phase).toBe('Stopped');
    expect(d.inst('child').phase).toBe('Stopped');
  });
});
