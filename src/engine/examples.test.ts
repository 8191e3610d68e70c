// Every Workflow in examples/ runs to completion through the engine, with the test driver
// playing the executors: steps succeed, report the output parameters later steps read, and
// every input a step waits for is announced.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Workflow } from '../crds/index.ts';
import { Driver } from './test-driver.ts';
import type { Value } from './types.ts';

const dir = new URL('../../examples/', import.meta.url);

/** Output parameters the examples' expressions read, with values that let every run finish. */
const OUTPUTS: Record<string, Record<string, Value>> = {
  checkDuplicates: { duplicates: 0 },
  checkNullRate: { nullPct: 0.1 },
  checkRowCount: { rows: 1000 },
  compareMetrics: { regressionPct: 0.5 },
  probePartition: { ready: true },
  resolveCandidate: { candidate: 'model-1' },
  selectBest: { bestAuc: 0.9, bestLr: 0.01 },
};

const workflows: [string, Workflow][] = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(new URL(f, dir), 'utf8'))
      .map((d) => d.toJSON() as Workflow)
      .filter((d) => d?.kind === 'Workflow')
      .map((w): [string, Workflow] => [`${f}: ${w.metadata.name}`, w]),
  );

describe('examples run through the engine', () => {
  it('finds the examples', () => {
    expect(workflows.length).toBeGreaterThan(5);
  });

  it.each(workflows)('%s', (_, wf) => {
    const script = Object.fromEntries(Object.entries(OUTPUTS).map(([k, v]) => [k, { succeed: v }]));
    const d = new Driver(wf.spec.definition, { parameters: wf.spec.parameters, script });
    // the data comes within the hour: inputsTimeoutSeconds (hours in the examples) never expires
    for (let round = 0; round < 100 && d.phase === 'Running'; round++) {
      d.finish(3_600_000);
      for (const [id, wait] of [...d.watching]) {
        if (wait.type !== 'WaitForInputs') continue;
        d.send({
          type: 'ArtifactsAvailable',
          instanceId: id,
          artifacts: wait.inputs.map((i) => ({ name: i.name, partition: i.partition })),
        });
      }
    }
    expect(d.status().message).toBeUndefined();
    expect(d.phase).toBe('Succeeded');
    expect(d.status().summary?.total).toBeGreaterThan(0);
  });
});
