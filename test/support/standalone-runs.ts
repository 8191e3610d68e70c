// Workflows and runs in a standalone controller's store, for the controller's unit tests.
import { expect } from 'vitest';
import type { Standalone } from '../../src/controller/standalone.ts';
import { ensureVersion } from '../../src/controller/workflows.ts';
import type { DefinitionNode, Workflow, WorkflowRun } from '../../src/crds/index.ts';
import type { AttemptKey, AttemptUpdate, LaunchRecord } from '../../src/launchers/types.ts';
import type { Stored } from '../../src/store/types.ts';

/** Creates Workflow `name` in `default` and its first version (which must be Ready). */
export function addWorkflow(s: Standalone, name: string, definition: DefinitionNode): void {
  const wf = s.store.create<Workflow>('Workflow', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace: 'default' },
    spec: { definition } as Workflow['spec'],
  });
  const status = s.store.transaction((w) => ensureVersion(s.store, w, wf, Date.now()));
  expect(status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'True' });
}

export function startRun(s: Standalone, workflow: string): Stored<WorkflowRun> {
  return s.store.create<WorkflowRun>('WorkflowRun', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { generateName: `${workflow}-`, namespace: 'default' },
    spec: { workflow },
  } as WorkflowRun);
}

/** Polls `f` every 10 ms until it gives a value other than undefined or false. */
export async function until<T>(f: () => T | undefined, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The run once its phase is final. */
export function finished(s: Standalone, name: string): Promise<Stored<WorkflowRun>> {
  return until(() => {
    const r = s.store.get<WorkflowRun>('WorkflowRun', 'default', name);
    return r?.status?.phase && ['Succeeded', 'Failed', 'Stopped'].includes(r.status.phase) ? r : undefined;
  }, `run ${name} to finish`);
}

/** What a fake launcher reports when asked to kill an attempt: on the next tick, Failed "killed". */
export function reportKilled(
  onUpdate: (u: AttemptUpdate) => void,
  key: AttemptKey,
  record: LaunchRecord,
): void {
  setImmediate(() =>
    onUpdate({
      type: 'finished',
      key,
      status: { launchId: record.launchId, pid: 0, phase: 'Failed', message: 'killed', milestones: {} },
    }),
  );
}
