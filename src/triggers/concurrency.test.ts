import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ActiveRunRef, admitRun, runsToDequeue } from './concurrency.ts';

const active = (...ids: string[]): ActiveRunRef[] => ids.map((id, i) => ({ id, startedMs: 100 + i }));

describe('admitRun', () => {
  it('without a limit every run starts', () => {
    expect(admitRun(undefined, active('a', 'b', 'c'), [])).toEqual({ decision: 'start' });
    expect(admitRun({ policy: 'skip' }, active('a', 'b'), [])).toEqual({ decision: 'start' });
  });

  it('queue (default): starts below the limit, queues at it, and keeps FIFO behind queued runs', () => {
    expect(admitRun({ maxActiveRuns: 2 }, active('a'), [])).toEqual({ decision: 'start' });
    expect(admitRun({ maxActiveRuns: 1 }, active('a'), [])).toEqual({ decision: 'queue' });
    expect(admitRun({ maxActiveRuns: 2, policy: 'queue' }, active('a'), [{ id: 'q', queuedMs: 1 }])).toEqual({
      decision: 'queue',
    });
  });

  it('skip: the new run is not started at the limit, with a reason', () => {
    const r = admitRun({ maxActiveRuns: 1, policy: 'skip' }, active('a'), []);
    expect(r.decision).toBe('skip');
    expect(r.decision === 'skip' && r.reason).toMatch(/maxActiveRuns is 1/);
  });

  it('replace: stops the oldest active runs to make room', () => {
    const runs: ActiveRunRef[] = [
      { id: 'new', startedMs: 300 },
      { id: 'old', startedMs: 100 },
      { id: 'mid', startedMs: 200 },
    ];
    expect(admitRun({ maxActiveRuns: 3, policy: 'replace' }, runs, [])).toEqual({
      decision: 'replace',
      stop: ['old'],
    });
    expect(admitRun({ maxActiveRuns: 1, policy: 'replace' }, runs, [])).toEqual({
      decision: 'replace',
      stop: ['old', 'mid', 'new'],
    });
    expect(admitRun({ maxActiveRuns: 4, policy: 'replace' }, runs, [])).toEqual({ decision: 'start' });
  });

  it('runs already stopping do not count and are not stopped again', () => {
    const runs: ActiveRunRef[] = [
      { id: 'a', startedMs: 1, stopping: true },
      { id: 'b', startedMs: 2 },
    ];
    expect(admitRun({ maxActiveRuns: 1, policy: 'replace' }, runs, [])).toEqual({
      decision: 'replace',
      stop: ['b'],
    });
    expect(admitRun({ maxActiveRuns: 2, policy: 'skip' }, runs, [])).toEqual({ decision: 'start' });
  });

  it('treats a limit below 1 as 1', () => {
    expect(admitRun({ maxActiveRuns: 0 }, [], [])).toEqual({ decision: 'start' });
    expect(admitRun({ maxActiveRuns: 0 }, active('a'), [])).toEqual({ decision: 'queue' });
  });
});

describe('runsToDequeue', () => {
  it('starts the oldest queued runs up to the free slots', () => {
    const queued = [
      { id: 'q3', queuedMs: 30 },
      { id: 'q1', queuedMs: 10 },
      { id: 'q2', queuedMs: 20 },
    ];
    expect(runsToDequeue({ maxActiveRuns: 3 }, active('a'), queued)).toEqual(['q1', 'q2']);
    expect(runsToDequeue({ maxActiveRuns: 1 }, active('a'), queued)).toEqual([]);
    expect(runsToDequeue(undefined, active('a'), queued)).toEqual(['q1', 'q2', 'q3']);
  });

  it('property: simulated admissions never exceed maxActiveRuns and serve the queue FIFO', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }),
        (max, events) => {
          const running: ActiveRunRef[] = [];
          const queue: { id: string; queuedMs: number }[] = [];
          const startOrder: number[] = [];
          let n = 0;
          for (const arrive of events) {
            if (arrive) {
              const id = String(n);
              const d = admitRun({ maxActiveRuns: max }, running, queue);
              if (d.decision === 'start') {
                running.push({ id, startedMs: n });
                startOrder.push(n);
              } else queue.push({ id, queuedMs: n });
              n++;
            } else if (running.length > 0) {
              running.shift();
            }
            for (const id of runsToDequeue({ maxActiveRuns: max }, running, queue)) {
              queue.splice(
                queue.findIndex((q) => q.id === id),
                1,
              );
              running.push({ id, startedMs: n });
              startOrder.push(Number(id));
            }
            expect(running.length).toBeLessThanOrEqual(max);
          }
          expect(startOrder).toEqual([...startOrder].sort((a, b) => a - b));
        },
      ),
    );
  });
});
