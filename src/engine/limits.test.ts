// biome-ignore-all lint/suspicious/noThenProperty: the workflow API names a branch body `then`
// Run limits: a run that would create too many instances, start too many iterations, nest
// blocks too deep or spend too much on expressions fails quickly with a clear message; the
// process stays within bounded time and memory.
import { describe, expect, it } from 'vitest';
import type { DefinitionNode } from '../crds/index.ts';
import { createRun, DEFAULT_RUN_LIMITS, restoreRun } from './index.ts';
import type { RunLimits } from './limits.ts';
import { Driver, noop, sh } from './test-driver.ts';
import type { StartRunInput } from './types.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');

function start(definition: DefinitionNode, limits?: Partial<RunLimits>, extra: Partial<StartRunInput> = {}) {
  const t = performance.now();
  const { machine, actions } = createRun({
    runId: 'r',
    workflow: 'wf',
    version: 1,
    definition,
    now: NOW,
    ...(limits ? { limits } : {}),
    ...extra,
  });
  return { machine, actions, ms: performance.now() - t, status: machine.snapshot({ steps: 'none' }) };
}

const foreach = (items: string, as: string, body: DefinitionNode, parallelism?: number): DefinitionNode => ({
  foreach: { items, as, do: body, ...(parallelism ? { parallelism } : {}) },
});

describe('step instances', () => {
  it('the default allows a 100,000-way foreach', () => {
    expect(DEFAULT_RUN_LIMITS.maxStepInstances).toBe(100_000);
    const { machine, actions } = start(foreach('range(100000)', 'i', sh('s')));
    expect(machine.phase).toBe('Running');
    expect(actions.filter((a) => a.type === 'LaunchStep')).toHaveLength(100_000);
  });

  it('nested foreach range(100000) x range(100000) fails fast instead of exhausting the heap', () => {
    const { machine, status, ms, actions } = start(
      foreach('range(100000)', 'i', foreach('range(100000)', 'j', sh('s'))),
    );
    // The first inner foreach fits; the run fails at the next instance, and its attempts
    // already launched are killed rather than left to run.
    expect(machine.phase).toBe('Failed');
    expect(status.message).toMatch(
      /^RUN_LIMIT_STEP_INSTANCES: the run would have more than 100000 step instances \(the next was s\[1\]\[0\]\) \(limit 100000; raise it with --max-step-instances or MESON_MAX_STEP_INSTANCES\)$/,
    );
    expect(machine.summary().total).toBe(100_000);
    expect(actions.filter((a) => a.type === 'LaunchStep')).toHaveLength(100_000);
    expect(actions.filter((a) => a.type === 'KillStep')).toHaveLength(100_000);
    expect(machine.summary().phases).toEqual({ Stopped: 100_000 });
    expect(ms).toBeLessThan(10_000);
  });

  it('counts noops, Skipped marks and a configured limit', () => {
    const run = start(foreach('range(50)', 'i', { sequence: [noop('a'), noop('b')] }), {
      maxStepInstances: 60,
    });
    expect(run.machine.phase).toBe('Failed');
    expect(run.status.message).toContain('RUN_LIMIT_STEP_INSTANCES');
    expect(run.status.message).toContain('(limit 60;');
    const xor = start(
      foreach('range(100)', 'i', {
        xor: [{ when: 'false', then: sh('never') }, { otherwise: noop('taken') }],
      }),
      { maxStepInstances: 100 },
    );
    expect(xor.machine.phase).toBe('Failed');
    expect(xor.status.message).toMatch(/^RUN_LIMIT_STEP_INSTANCES: .*the next was (never|taken)\[50\]/);
  });

  it('a run within the limit is unaffected', () => {
    const run = start(foreach('range(50)', 'i', { sequence: [noop('a'), noop('b')] }), {
      maxStepInstances: 100,
    });
    expect(run.machine.phase).toBe('Succeeded');
  });
});

describe('iterations', () => {
  it('a loop with maxIterations 2^53-1 fails at the run-wide limit', () => {
    const { machine, status, ms } = start({
      loop: { while: 'true', maxIterations: Number.MAX_SAFE_INTEGER, do: { sequence: [] } },
    });
    expect(machine.phase).toBe('Failed');
    expect(status.message).toMatch(
      /^RUN_LIMIT_ITERATIONS: the run would start more than 200000 loop and foreach iterations \(the next in spec\.definition\.loop\) \(limit 200000; raise it with --max-iterations or MESON_MAX_ITERATIONS\)$/,
    );
    expect(ms).toBeLessThan(10_000);
  });

  it('a giant loop of noops stops at the instance limit first', () => {
    const { machine, status } = start({
      loop: { while: 'true', maxIterations: 9007199254740991, do: noop('tick') },
    });
    expect(machine.phase).toBe('Failed');
    expect(status.message).toContain('RUN_LIMIT_STEP_INSTANCES');
  });

  it('nested foreach over empty bodies (no instances at all) is bounded too', () => {
    const { machine, status, ms } = start(
      foreach('range(100000)', 'i', foreach('range(100000)', 'j', { sequence: [] })),
    );
    expect(machine.phase).toBe('Failed');
    expect(status.message).toContain('RUN_LIMIT_ITERATIONS');
    expect(ms).toBeLessThan(10_000);
  });

  it('counts loops and foreaches together, with a configured limit', () => {
    const def = foreach('range(10)', 'i', {
      loop: { while: 'LOOP_INDEX < 4', maxIterations: 100, do: noop('n') },
    });
    expect(start(def, { maxIterations: 60 }).machine.phase).toBe('Succeeded'); // 10 + 50
    const over = start(def, { maxIterations: 59 });
    expect(over.machine.phase).toBe('Failed');
    expect(over.status.message).toContain('(limit 59;');
  });

  it("the loop's own maxIterations still applies below the run-wide limit", () => {
    const { status } = start({ loop: { while: 'true', maxIterations: 3, do: noop('n') } });
    expect(status.message).toContain('loop exceeded maxIterations (3)');
  });
});

describe('block depth', () => {
  const nest = (depth: number): DefinitionNode => {
    let node: DefinitionNode = sh('leaf');
    for (let i = 0; i < depth; i++) node = { sequence: [node] };
    return node;
  };

  it('allows the default depth and fails deeper definitions at start, naming the limit', () => {
    expect(start(nest(32)).machine.phase).toBe('Running');
    const deep = start(nest(33));
    expect(deep.machine.phase).toBe('Failed');
    expect(deep.status.message).toMatch(
      /^spec\.definition(\.sequence\[0\])+\.sequence: RUN_LIMIT_BLOCK_DEPTH: blocks are nested more than 32 deep here \(limit 32; raise it with --max-block-depth or MESON_MAX_BLOCK_DEPTH\)$/,
    );
  });

  it('a hostile depth fails without overflowing the stack, at start and at restore', () => {
    const deep = start(nest(20_000));
    expect(deep.machine.phase).toBe('Failed');
    expect(deep.status.message).toContain('RUN_LIMIT_BLOCK_DEPTH');
    const ok = start(nest(40), { maxBlockDepth: 40 });
    expect(ok.machine.phase).toBe('Running');
    // The same definition restored under a lower limit fails (the plan cache does not bypass it).
    const restored = restoreRun({
      runId: 'r',
      workflow: 'wf',
      version: 1,
      definition: nest(40),
      status: ok.machine.snapshot(),
      now: NOW,
    });
    expect(restored.machine.phase).toBe('Failed');
  });
});

describe('expression budgets', () => {
  const COSTLY = 'len(str(range(99999)))';

  it("a step's fields share one budget: 300 costly ${} fail the step, not the process", () => {
    const script = Array.from({ length: 300 }, () => `echo \${${COSTLY}}`).join('\n');
    const t = performance.now();
    const d = new Driver({ step: { name: 's', shell: { script } } });
    expect(performance.now() - t).toBeLessThan(3000);
    expect(d.phase).toBe('Failed');
    expect(d.inst('s')?.message).toMatch(
      /^spec\.definition\.step\.shell\.script: the expressions of step s took more than 2000000 evaluation steps together \(the shared expression budget; raise it with --expr-budget or MESON_EXPR_BUDGET\)/,
    );
  });

  it('the budget covers step parameters, inputs and outputs with the fields', () => {
    const d = new Driver(
      {
        step: {
          name: 's',
          parameters: [{ name: 'p', expression: COSTLY }],
          shell: { script: `echo \${${COSTLY}} \${p}` },
          outputs: [{ name: 'o', partition: { a: `\${${COSTLY}}` } }],
        },
      },
      {},
    );
    d.settle();
    expect(d.phase).toBe('Succeeded'); // ~630,000 steps: within 2,000,000
    const tight = start(
      {
        step: {
          name: 's',
          parameters: [{ name: 'p', expression: COSTLY }],
          shell: { script: `echo \${${COSTLY}} \${p}` },
          outputs: [{ name: 'o', partition: { a: `\${${COSTLY}}` } }],
        },
      },
      { exprBudget: 500_000 },
    );
    expect(tight.machine.phase).toBe('Failed');
    expect(tight.status.message).toContain('the expressions of step s took more than 500000');
  });

  it("the run's parameters share one budget at start", () => {
    const parameters = Array.from({ length: 20 }, (_, i) => ({
      name: `p${i}`,
      type: 'long' as const,
      expression: i === 0 ? COSTLY : `p${i - 1} + ${COSTLY}`,
    }));
    const run = start(sh('s'), undefined, { parameters });
    expect(run.machine.phase).toBe('Failed');
    expect(run.status.message).toMatch(
      /^spec\.parameters: parameter "p\d+": the workflow parameters took more than 2000000 evaluation steps together/,
    );
  });

  it('a 1e6-way foreach is still refused by the list limit, from items or a parameter', () => {
    for (const items of ['range(1000000)', 'range(1e6)']) {
      const run = start(foreach(items, 'i', sh('s')));
      expect(run.machine.phase).toBe('Failed');
      expect(run.status.message).toContain('foreach.items: list longer than 100000 elements');
    }
    const run = start(foreach('n', 'i', sh('s')), undefined, {
      parameters: [{ name: 'n', type: 'list', expression: 'range(1000000)' }],
    });
    expect(run.machine.phase).toBe('Failed');
    expect(run.status.message).toMatch(/^spec\.parameters: parameter "n": list longer than 100000 elements/);
    // A run starter's override is a value, not an expression: within the limits it is taken...
    const ok = start(foreach('n', 'i', noop('s')), undefined, {
      parameters: [{ name: 'n', type: 'list', value: [] }],
      overrides: { n: Array.from({ length: 1000 }, (_, i) => i) },
    });
    expect(ok.machine.phase).toBe('Succeeded');
    // ...and a 1e6-element override is refused by the run's limits, not run.
    const big = start(foreach('n', 'i', noop('s')), undefined, {
      parameters: [{ name: 'n', type: 'list', value: [] }],
      overrides: { n: Array.from({ length: 1_000_000 }, (_, i) => i) },
    });
    expect(big.machine.phase).toBe('Failed');
  });

  it('a foreach whose items are a huge list fails within the list limit, not after building it', () => {
    const run = start(foreach('range(100000) + range(100000)', 'i', sh('s')));
    expect(run.machine.phase).toBe('Failed');
    expect(run.status.message).toContain('list longer than 100000 elements');
  });

  it("the run's whole evaluation is bounded, however it is spread over instances and blocks", () => {
    // 100 iterations x one costly items expression each: no instance, each within its limits.
    const def = foreach('range(100)', 'i', foreach(`${COSTLY} > 0 ? [] : []`, 'j', sh('s')));
    expect(start(def).machine.phase).toBe('Succeeded'); // 21 M steps < 100 M
    const run = start(def, { exprRunBudget: 5_000_000 });
    expect(run.machine.phase).toBe('Failed');
    expect(run.status.message).toContain(
      'the expressions of run r took more than 5000000 evaluation steps together (the shared expression budget; raise it with --expr-run-budget or MESON_EXPR_RUN_BUDGET)',
    );
    // Steps resolved in the same run are charged to it too.
    const steps = start(foreach('range(100)', 'i', sh('s', `echo \${${COSTLY}}`)), {
      exprRunBudget: 5_000_000,
    });
    // (Running, reason Failing: the steps launched before the budget ran out are in flight.)
    expect(steps.status.conditions?.find((c) => c.type === 'Running')?.reason).toBe('Failing');
    expect(steps.status.message).toContain('the expressions of run r took more than 5000000');
    expect(steps.actions.filter((a) => a.type === 'LaunchStep').length).toBeLessThan(30);
  });
});
