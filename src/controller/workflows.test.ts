import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Workflow, WorkflowRun } from '../crds/index.ts';
import { applyManifests } from './manifests.ts';
import { childRunName } from './names.ts';
import { createStandalone } from './standalone.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe('WorkflowServices.admit', () => {
  it('bounds a run that only claims to be a child by maxActiveRuns, and lets a real child through', () => {
    const root = mkdtempSync(join(tmpdir(), 'meson-admit-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const s = createStandalone({ dataDir: join(root, 'data'), cwd: root });
    cleanups.push(() => s.stop());
    const wf = {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'w', namespace: 'default' },
      spec: {
        definition: { step: { name: 'a', noop: {} } },
        concurrency: { maxActiveRuns: 1, policy: 'queue' },
      },
    } as Workflow;
    applyManifests(s.store, { workflows: [wf], artifacts: [], runs: [], errors: [] }, Date.now());
    const run = (name: string, spec: Partial<WorkflowRun['spec']> = {}, labels?: Record<string, string>) =>
      s.store.create<WorkflowRun>('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
        spec: { workflow: 'w', ...spec },
      });
    const active = run('active');
    s.store.updateStatus('WorkflowRun', { ...active, status: { phase: 'Running' } });
    s.store.putStepInstances([
      { namespace: 'default', run: 'active', id: 'sub', phase: 'Running', data: { id: 'sub', attempts: 1 } },
    ]);
    const parent = { run: 'active', step: 'sub' };
    const label = { 'meson.dev/parent-run': 'active' };
    // forged in several ways: any name, the right name without the label, a later attempt
    for (const forged of [
      run('forged', { initiator: { type: 'subworkflow', parent } }),
      run(childRunName('active', 'sub', 1), { initiator: { type: 'subworkflow', parent } }),
      run(childRunName('active', 'sub', 2), { initiator: { type: 'subworkflow', parent } }, label),
      run('forged-a1', { initiator: { type: 'subworkflow', parent } }, label),
    ]) {
      expect(s.services.admit(forged), forged.metadata.name).toBe('wait');
    }
    s.store.delete('WorkflowRun', 'default', childRunName('active', 'sub', 1));
    const child = run(
      childRunName('active', 'sub', 1),
      { initiator: { type: 'subworkflow', parent } },
      label,
    );
    expect(s.services.admit(child)).toBe('start');
  });
});
