import { describe, expect, it } from 'vitest';
import type { WorkflowRun } from '../crds/index.ts';
import type { Stored } from '../store/types.ts';
import { MAX_EVENT_MESSAGE_CHARS, runEvent } from './events.ts';

function run(status: WorkflowRun['status'], name = 'r-1'): Stored<WorkflowRun> {
  return {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { name, namespace: 'team', uid: 'u-1', resourceVersion: '7' },
    spec: { workflow: 'wf' },
    status,
  } as Stored<WorkflowRun>;
}

const at = new Date('2026-01-01T00:00:00Z');

describe('runEvent', () => {
  it('says a run started (Normal) and how it ended (Warning unless it succeeded), on the run', () => {
    const started = runEvent(run({ phase: 'Running', version: 3 }), 'started', at, 'op-a');
    expect(started).toMatchObject({
      reason: 'RunStarted',
      type: 'Normal',
      message: 'started version 3 of workflow wf',
      involvedObject: { kind: 'WorkflowRun', name: 'r-1', namespace: 'team', uid: 'u-1' },
      metadata: { generateName: 'r-1.', namespace: 'team' },
      reportingInstance: 'op-a',
    });
    expect(runEvent(run({ phase: 'Succeeded', duration: '5s' }), 'finished', at, 'a')).toMatchObject({
      reason: 'RunSucceeded',
      type: 'Normal',
      message: 'succeeded after 5s',
    });
    expect(
      runEvent(run({ phase: 'Failed', message: 'step load failed: exit code 3' }), 'finished', at, 'a'),
    ).toMatchObject({
      reason: 'RunFailed',
      type: 'Warning',
      message: 'failed: step load failed: exit code 3',
    });
    expect(runEvent(run({ phase: 'Stopped' }), 'finished', at, 'a')).toMatchObject({
      reason: 'RunStopped',
      type: 'Warning',
    });
  });

  it('says which step was preempted and why (Warning), bounded like the others', () => {
    const message =
      "SCHEDULER_PREEMPTED: evicted for prod/etl/load (tier 0) on node n1; this step's tier is 5";
    expect(
      runEvent(run({ phase: 'Running' }), { step: 'work[2]', attempt: 1, message }, at, 'a'),
    ).toMatchObject({
      reason: 'StepPreempted',
      type: 'Warning',
      message: `step work[2] attempt 1: ${message}`,
      involvedObject: { kind: 'WorkflowRun', name: 'r-1', namespace: 'team' },
    });
    const long = runEvent(
      run({ phase: 'Running' }),
      { step: 's', attempt: 1, message: 'x'.repeat(5000) },
      at,
      'a',
    );
    expect(long.message).toHaveLength(MAX_EVENT_MESSAGE_CHARS);
  });

  it('bounds what a run (its message, its name) or the identity put into the Event', () => {
    for (const message of [
      'x'.repeat(100_000),
      '\u{1F600}'.repeat(50_000),
      `${'a'.repeat(990)}\n${'b'.repeat(5000)}`,
    ]) {
      const e = runEvent(run({ phase: 'Failed', message }), 'finished', at, 'a');
      expect(e.message!.length).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_CHARS);
      expect(e.message).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no half of a surrogate pair
    }
    const long = runEvent(run({ phase: 'Running' }, 'n'.repeat(253)), 'started', at, 'i'.repeat(1000));
    expect(long.metadata?.generateName?.length).toBeLessThanOrEqual(201);
    expect(long.reportingInstance?.length).toBe(128);
  });
});
