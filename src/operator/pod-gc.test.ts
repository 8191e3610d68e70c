import { describe, expect, it } from 'vitest';
import type { WorkflowRun } from '../crds/index.ts';
import type { Stored } from '../store/types.ts';
import { collects, PodGarbageCollector, type PodGcPolicy } from './pod-gc.ts';

const run = (name: string, phase: string, ns = 'ns'): Stored<WorkflowRun> =>
  ({
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { name, namespace: ns, uid: `uid-${name}`, resourceVersion: '1' },
    spec: { workflow: 'w' },
    status: { phase },
  }) as Stored<WorkflowRun>;

function gc(
  policy: PodGcPolicy,
  runs: Stored<WorkflowRun>[],
  podsOf: [string, string, string?][] = [],
  fail = new Set<string>(),
) {
  const deleted: string[] = [];
  const warnings: string[] = [];
  const c = new PodGarbageCollector(policy, {
    deleteRunPods: async (ns, uid, which) => {
      if (fail.has(uid)) throw new Error('apiserver says no');
      deleted.push(`${ns}/${uid}${which === 'succeeded' ? ' (succeeded)' : ''}`);
    },
    getRun: (ns, name) => runs.find((r) => r.metadata.namespace === ns && r.metadata.name === name),
    runsWithPods: () =>
      podsOf.map(([ns, r, phase]) => [ns, r, phase] as [string, string, string | undefined]),
    logger: { info: () => {}, warn: (o) => warnings.push(JSON.stringify(o)) },
  });
  return { c, deleted, warnings };
}

describe('pod GC', () => {
  it('collects by policy and phase', () => {
    for (const phase of ['Pending', 'Running', 'Succeeded', 'Failed', 'Stopped', undefined]) {
      const final = ['Succeeded', 'Failed', 'Stopped'].includes(phase ?? '');
      expect(collects('Never', phase)).toBeUndefined();
      expect(collects('OnRunSuccess', phase)).toBe(phase === 'Succeeded' ? 'all' : undefined);
      expect(collects('OnRunCompletion', phase)).toBe(final ? 'all' : undefined);
      // per-Pod policies delete as attempts end; at the run's end they catch up on what is left
      expect(collects('OnPodCompletion', phase)).toBe(final ? 'all' : undefined);
      expect(collects('OnPodSuccess', phase)).toBe(final ? 'succeeded' : undefined);
    }
  });

  it('deletes a finished run’s Pods by its uid when the run finishes, once while under way', async () => {
    const { c, deleted } = gc('OnRunSuccess', []);
    c.runFinished(run('ok', 'Succeeded'));
    c.runFinished(run('ok', 'Succeeded'));
    c.runFinished(run('bad', 'Failed'));
    await c.settled();
    expect(deleted).toEqual(['ns/uid-ok']);
  });

  it('sweeps the runs that still have Pods: finished ones go, running and unknown ones stay', async () => {
    const runs = [run('done', 'Succeeded'), run('going', 'Running'), run('failed', 'Failed', 'other')];
    const pods: [string, string, string?][] = [
      ['ns', 'done'],
      ['ns', 'done'],
      ['ns', 'going'],
      ['other', 'failed'],
      ['ns', 'deleted-run'],
    ];
    const a = gc('OnRunCompletion', runs, pods);
    a.c.sweep();
    await a.c.settled();
    expect(a.deleted.sort()).toEqual(['ns/uid-done', 'other/uid-failed']);
    const never = gc('Never', runs, pods);
    never.c.sweep();
    never.c.runFinished(runs[0]!);
    await never.c.settled();
    expect(never.deleted).toEqual([]);
  });

  it('a run it cannot read is skipped, not a failed sweep (a namespace it does not serve)', async () => {
    const { c, deleted, warnings } = gc(
      'OnRunCompletion',
      [run('done', 'Succeeded')],
      [
        ['elsewhere', 'x'],
        ['ns', 'done'],
      ],
    );
    const throwing = new PodGarbageCollector('OnRunCompletion', {
      deleteRunPods: async () => {},
      getRun: () => {
        throw new Error('namespace "elsewhere" is not watched by this store');
      },
      runsWithPods: () => [['elsewhere', 'x', 'Succeeded']],
      logger: { info: () => {}, warn: (o) => warnings.push(JSON.stringify(o)) },
    });
    expect(() => throwing.sweep()).not.toThrow();
    expect(warnings.join()).toContain('not watched');
    c.sweep();
    await c.settled();
    expect(deleted).toEqual(['ns/uid-done']);
  });

  it('a failed delete is logged and tried again by the next sweep', async () => {
    const fail = new Set(['uid-done']);
    const { c, deleted, warnings } = gc('OnRunSuccess', [run('done', 'Succeeded')], [['ns', 'done']], fail);
    c.runFinished(run('done', 'Succeeded'));
    await c.settled();
    expect(deleted).toEqual([]);
    expect(warnings.join()).toContain('apiserver says no');
    fail.clear();
    c.sweep();
    await c.settled();
    expect(deleted).toEqual(['ns/uid-done']);
  });

  it('OnPodSuccess catches up on succeeded Pods only, and a kept failed Pod does not bring its run back', async () => {
    const runs = [run('mixed', 'Failed'), run('kept', 'Failed'), run('going', 'Running')];
    const pods: [string, string, string?][] = [
      ['ns', 'mixed', 'Failed'],
      ['ns', 'mixed', 'Succeeded'],
      ['ns', 'kept', 'Failed'],
      ['ns', 'going', 'Succeeded'],
    ];
    const a = gc('OnPodSuccess', runs, pods);
    a.c.sweep();
    await a.c.settled();
    expect(a.deleted).toEqual(['ns/uid-mixed (succeeded)']);
    a.c.runFinished(run('done', 'Succeeded'));
    await a.c.settled();
    expect(a.deleted).toContain('ns/uid-done (succeeded)');
  });
});
