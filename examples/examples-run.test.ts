// The examples that docs/examples.md says run locally really do: their shell steps run under
// /bin/sh (POSIX tools only) and their copy steps copy, through the engine, with output
// parameters read from $MESON_OUTPUTS as the executor protocol says. Subworkflows are played by
// running the child workflow the same way. Every file goes to a temporary directory.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { ExecutorStep } from '../executors/protocol.ts';
import { stepEnvironment } from '../executors/safety.ts';
import type { Workflow } from '../src/crds/index.ts';
import { Driver, type Outcome } from '../src/engine/test-driver.ts';
import type { ResolvedStep, Value } from '../src/engine/types.ts';

const work = mkdtempSync(join(tmpdir(), 'meson-examples-run-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const workflows = new Map<string, Workflow>();
for (const file of [
  'hello-meson',
  'model-training-hpo',
  'backfill-daily-metrics',
  'wait-for-partition',
  'data-quality-gate',
  'model-release-canary',
  'ab-test-orchestration',
]) {
  for (const doc of parseAllDocuments(readFileSync(join(import.meta.dirname, `${file}.yaml`), 'utf8'))) {
    const wf = doc.toJS() as Workflow;
    workflows.set(wf.metadata.name!, wf);
  }
}

interface Result {
  phase: string;
  phases: Record<string, string>;
  outputs: Record<string, Record<string, Value>>;
  log: string;
  announced: { name: string; partition?: Record<string, unknown> }[];
}

/** The executor protocol's output file: `key=value` lines, values parsed as JSON when they parse. */
function readOutputs(file: string): Record<string, Value> {
  const outputs: Record<string, Value> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([^=#\s][^=]*)=(.*)$/.exec(line);
    if (!m) continue;
    try {
      outputs[m[1]!] = JSON.parse(m[2]!);
    } catch {
      outputs[m[1]!] = m[2]!;
    }
  }
  return outputs;
}

let attempts = 0;
function execute(step: ResolvedStep, out: Result): Outcome | undefined {
  if (step.shell) {
    const outputsFile = join(work, `outputs-${++attempts}`);
    writeFileSync(outputsFile, '');
    const r = spawnSync('/bin/sh', ['-c', step.shell.script], {
      cwd: work,
      // as the executor does: the values of the script's `${}` and MESON_PARAM_<name>
      env: { PATH: process.env.PATH, MESON_OUTPUTS: outputsFile, ...stepEnvironment(step as ExecutorStep) },
      encoding: 'utf8',
      timeout: 30_000,
    });
    out.log += `--- ${step.name}\n${r.stdout}${r.stderr}`;
    if (r.status !== 0) return { fail: `exit ${r.status}: ${r.stderr}`, exitCode: r.status ?? 1 };
    const outputs = readOutputs(outputsFile);
    out.outputs[step.name] = outputs;
    return { succeed: outputs };
  }
  if (step.copy) {
    mkdirSync(dirname(step.copy.to), { recursive: true });
    copyFileSync(step.copy.from, step.copy.to);
    return { succeed: true };
  }
  return undefined;
}

/** Names of the subworkflow steps anywhere in a definition. */
function subworkflowSteps(node: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const n of node) subworkflowSteps(n, found);
  else if (node !== null && typeof node === 'object') {
    const step = (node as { step?: { name: string; subworkflow?: unknown } }).step;
    if (step?.subworkflow) found.add(step.name);
    for (const v of Object.values(node)) subworkflowSteps(v, found);
  }
  return found;
}

/**
 * Runs a workflow to the end: steps for real, child runs by running their workflow (with
 * `childOverrides[workflow]` on top of the parameters the parent passes).
 */
function run(
  name: string,
  overrides: Record<string, Value> = {},
  childOverrides: Record<string, Record<string, Value>> = {},
): Result {
  const wf = workflows.get(name);
  if (!wf) throw new Error(`no example workflow ${name}`);
  const result: Result = { phase: '', phases: {}, outputs: {}, log: '', announced: [] };
  const children = subworkflowSteps(wf.spec.definition);
  const d = new Driver(wf.spec.definition, {
    parameters: wf.spec.parameters,
    overrides,
    runId: `run-${name}`,
    now: Date.parse('2026-03-01T12:00:00Z'),
    // child runs hang until this harness has run them; other steps execute for real
    script: new Proxy(
      {} as Record<string, Outcome | ((ctx: { step: ResolvedStep }) => Outcome | undefined)>,
      {
        get: (_, step: string) =>
          children.has(step) ? 'hang' : (ctx: { step: ResolvedStep }) => execute(ctx.step, result),
      },
    ),
  });
  const handled = new Set<unknown>();
  for (;;) {
    d.settle();
    const start = d.actions.find((a) => a.type === 'StartChildRun' && !handled.has(a));
    if (start?.type !== 'StartChildRun') break;
    handled.add(start);
    const child = run(start.workflow, { ...start.parameters, ...childOverrides[start.workflow] });
    result.log += child.log;
    d.send({
      type: 'ChildRunFinished',
      instanceId: start.instanceId,
      attempt: start.attempt,
      childRun: `child-${start.instanceId}`,
      phase: child.phase === 'Succeeded' ? 'Succeeded' : 'Failed',
    });
  }
  d.finish();
  result.phase = d.phase;
  result.phases = d.phases();
  result.announced = d.announced;
  return result;
}

describe('the examples that run locally, run', () => {
  it('hello-meson greets and reports the greeting length', () => {
    const r = run('hello-meson', { who: 'Meson' });
    expect(r.log).toContain('Hello, Meson! Today is 20260301.');
    expect(r.outputs.greet).toEqual({ length: 'Hello, Meson! Today is 20260301.'.length });
    expect(r.phase).toBe('Succeeded');
  });

  it('model-training-hpo selects the best learning rate and publishes its model', () => {
    const r = run('model-training-hpo', {
      learningRates: [0.01, 0.03, 0.3],
      workdir: join(work, 'training'),
      modelStore: join(work, 'models'),
    });
    expect(r.phase, r.log).toBe('Succeeded');
    expect(r.outputs.selectBest).toEqual({ bestLr: 0.03, bestAuc: 0.86 });
    expect(r.phases).toMatchObject({ publishModel: 'Succeeded', rejectModel: 'Skipped' });
    expect(readFileSync(join(work, 'models', 'ctr-model-20260301.txt'), 'utf8')).toMatch(
      /^model lr=0\.03 trained-on=20260301 base-rate=0\.\d{4}\n$/,
    );
    expect(r.announced).toEqual([{ name: 'ctrModel', partition: { dateint: '20260301' } }]);
  });

  it('model-training-hpo keeps the current model when the best one misses the bar', () => {
    const r = run('model-training-hpo', {
      learningRates: [0.3],
      minAuc: 0.8,
      workdir: join(work, 'training-rejected'),
      modelStore: join(work, 'models-rejected'),
    });
    expect(r.phase, r.log).toBe('Succeeded');
    expect(r.phases).toMatchObject({ publishModel: 'Skipped', rejectModel: 'Succeeded' });
    expect(r.log).toContain('is below 0.8: keeping the current model');
  });

  it('backfill-daily-metrics computes and checks every day of the window, idempotently', () => {
    const overrides = { startDate: 20240227, endDate: 20240302, metricsDir: join(work, 'metrics') };
    const first = run('backfill-daily-metrics', overrides);
    expect(first.phase, first.log).toBe('Succeeded');
    expect(first.announced.map((a) => a.partition?.dateint)).toEqual([
      '20240227',
      '20240228',
      '20240229',
      '20240301',
      '20240302',
    ]);
    const day = readFileSync(join(work, 'metrics', 'dateint=20240229', 'metrics.csv'), 'utf8');
    expect(day.trim().split('\n')).toHaveLength(24);
    expect(run('backfill-daily-metrics', overrides).phase).toBe('Succeeded');
    expect(readFileSync(join(work, 'metrics', 'dateint=20240229', 'metrics.csv'), 'utf8')).toBe(day);
  });

  it('wait-for-partition loads the partition once it lands, and fails when it never does', () => {
    const base = { probeIntervalSeconds: 0, warehouseDir: join(work, 'warehouse') };
    const landed = run('wait-for-partition', { ...base, landingDir: join(work, 'landing-1') });
    expect(landed.phase, landed.log).toBe('Succeeded');
    expect(landed.phases).toMatchObject({ 'probePartition[2]': 'Succeeded', loadPartition: 'Succeeded' });
    expect(landed.phases['probePartition[3]']).toBeUndefined();

    const missing = run('wait-for-partition', {
      ...base,
      arrivesAfterProbes: 99,
      landingDir: join(work, 'landing-2'),
    });
    expect(missing.phase).toBe('Failed');
    expect(missing.phases).toMatchObject({ 'probePartition[5]': 'Succeeded', alertMissingData: 'Failed' });
    expect(missing.log).toContain('still missing after 6 probes');
  });

  it('data-quality-gate runs every remediation whose condition holds', () => {
    const found = run('data-quality-gate', { workdir: join(work, 'dq-1') });
    expect(found.phase, found.log).toBe('Succeeded');
    expect(found.outputs).toMatchObject({
      checkRowCount: { rows: 2004 },
      checkNullRate: { nullPct: 1 },
      checkDuplicates: { duplicates: 4 },
    });
    expect(found.phases).toMatchObject({
      flagLowVolume: 'Skipped',
      quarantineNullRows: 'Succeeded',
      notifyDataOwner: 'Succeeded',
      listDuplicates: 'Succeeded',
      allChecksPassed: 'Skipped',
      publishReport: 'Succeeded',
    });
    expect(found.log).toContain('1% of rows lack minutes (limit 0.5%)');
    const failed = run('data-quality-gate', { workdir: join(work, 'dq-2'), minRows: 5000 });
    expect(failed.phase).toBe('Failed');
    expect(failed.phases.flagLowVolume).toBe('Failed');
  });

  it('model-release-canary scores both models through its child workflow and decides', () => {
    const r = run('model-release-canary', { resultsDir: join(work, 'canary'), maxRegressionPct: 100 });
    expect(r.phase, r.log).toBe('Succeeded');
    expect(r.log).toContain('model production: mean error');
    expect(r.log).toContain('model ctr-20260301: mean error');
    expect(typeof r.outputs.compareMetrics?.regressionPct).toBe('number');
    expect(r.phases).toMatchObject({ promoteCandidate: 'Succeeded', rollBackCandidate: 'Skipped' });
  });

  it('ab-test-orchestration trains both cells through model-training-hpo', () => {
    const r = run(
      'ab-test-orchestration',
      { reportDir: join(work, 'ab') },
      {
        'model-training-hpo': { workdir: join(work, 'ab-training') },
      },
    );
    expect(r.phase, r.log).toBe('Succeeded');
    expect(r.log).toContain('training with learning rate 0.1');
    expect(r.log).toContain('allocating 5% of traffic to the treatment cell of ctr-lr-sweep');
  });
});
