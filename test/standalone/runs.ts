// Starting a run in an in-process standalone server and waiting for its end (tests of steps).
import type { Standalone } from '../../src/controller/standalone.ts';
import type { WorkflowRun } from '../../src/crds/index.ts';

export interface EndedRun {
  phase: 'Succeeded' | 'Failed';
  name: string;
  steps: { id: string; phase: string; message?: string }[];
  /** The message of the first failed step instance, else of the first one ('' when none). */
  message: string;
}

/** Creates a run of `workflow` in `default` with string parameters; resolves when it has ended. */
export async function runToEnd(
  s: Standalone,
  workflow: string,
  params: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<EndedRun> {
  const r = s.store.create<WorkflowRun>('WorkflowRun', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { generateName: `${workflow}-`, namespace: 'default' },
    spec: { workflow, parameters: Object.entries(params).map(([name, value]) => ({ name, value })) },
  } as WorkflowRun);
  const end = Date.now() + timeoutMs;
  for (;;) {
    const cur = s.store.get<WorkflowRun>('WorkflowRun', 'default', r.metadata.name);
    const phase = cur?.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      const steps = s.store
        .getStepInstances('default', r.metadata.name)
        .items.map((i) => i.data as EndedRun['steps'][number]);
      const shown = steps.find((x) => x.phase === 'Failed') ?? steps[0];
      return { phase, name: r.metadata.name, steps, message: shown?.message ?? '' };
    }
    if (Date.now() > end) throw new Error(`run did not end: ${JSON.stringify(cur?.status)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}
