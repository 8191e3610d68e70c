import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifests, validateDocument, validateManifests } from './validate.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'invalid');

/** Each fixture states what must be reported: `# expect-path:` and `# expect-message:` lines. */
function expectation(text: string): { path: string; message: string } {
  const get = (key: string) => new RegExp(`^# ${key}: ?(.*)$`, 'm').exec(text)?.[1]?.trim();
  const path = get('expect-path');
  if (path === undefined) throw new Error('fixture without # expect-path');
  return { path, message: get('expect-message') ?? '' };
}

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('invalid manifests (test/fixtures/invalid)', () => {
  it('has at least 30 distinct cases', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
    const bodies = new Set(
      fixtures.map((f) => readFileSync(join(FIXTURES, f), 'utf8').replace(/^#.*\n/gm, '')),
    );
    expect(bodies.size).toBe(fixtures.length);
  });

  it.each(fixtures)('%s is rejected naming the path and what was expected', (file) => {
    const text = readFileSync(join(FIXTURES, file), 'utf8');
    const want = expectation(text);
    const { issues } = validateManifests(text, file);
    expect(issues.length).toBeGreaterThan(0);
    const shown = issues.map((i) => `${i.path}: ${i.message}`);
    const match = shown.find((s) => s.startsWith(`${want.path}: `) && s.includes(want.message));
    expect(
      match,
      `no issue at ${want.path} containing "${want.message}" in:\n${shown.join('\n')}`,
    ).toBeDefined();
    for (const i of issues) expect(i.line).toBeGreaterThan(0);
  });
});

const VALID = `
apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata:
  name: my-cool-workflow
  annotations: { meson.dev/scm-commit: 3f2c1e9 }
spec:
  description: Daily view aggregation
  parameters:
    - { name: country, type: string, value: US }
    - { name: dateint, type: long, expression: tsToDateInt(RUN_TS) }
    - { name: countries, type: list, value: [US, CA] }
    - { name: yesterday, expression: "dateIntAdd(dateint, -1)" }
  triggers:
    cron: [{ schedule: "0 0 0 1/1 * ? *", timezone: America/Los_Angeles }, { schedule: "*/5 * * * *" }]
    artifacts: [{ name: views, partition: { country: US } }]
  notifications:
    - on: [start, success, failure]
      webhook: { url: "http://hooks.example/meson" }
  concurrency: { maxActiveRuns: 1, policy: queue }
  activeVersion: 3
  definition:
    sequence:
      - step:
          name: sparkStep
          spark:
            jobClass: netflix.MySparkJob
            args: ["--date", "\${dateint}"]
            conf: { spark.driver.memory: 8g, spark.executor.instances: 4 }
          resources: { cpus: 2, memory: 8Gi, gpus: 0, disk: 1Gi }
          retry: { limit: 3, backoff: { initialSeconds: 10, factor: 2, maxSeconds: 600 } }
          timeoutSeconds: 3600
          priority: 5
          inputs: [{ name: views, partition: { country: "\${country}", dateint: "\${dateint}" } }]
          outputs: [{ name: aggViews, partition: { dateint: "\${dateint}" } }]
      - parallel:
          - step: { name: cpStep, copy: { from: "s3://a/\${dateint}", to: "s3://b/\${yesterday}" } }
          - step:
              name: box
              container: { image: "repo/img:tag", command: [sh], args: ["-c", "echo hi"], env: [{ name: A, value: "\${country}" }] }
              constraints: { nodeSelector: { zone: a }, attributes: { rack: r1 }, uniqueHost: true }
      - xor:
          - when: "steps.sparkStep.outputs.rows < 5"
            then: { step: { name: b, noop: {} } }
          - when: "contains(countries, country)"
            then: { step: { name: c, shell: { script: "echo $\${HOME} \${upper(country)}" } } }
          - otherwise: { step: { name: d, noop: {} } }
      - foreach:
          items: "countries"
          as: ctry
          parallelism: 2
          do:
            loop:
              maxIterations: 3
              while: "LOOP_INDEX < 2"
              do:
                step:
                  name: e
                  parameters: [{ name: tag, expression: "ctry + '-' + LOOP_INDEX" }]
                  shell: { script: "echo \${tag} \${steps.sparkStep.outputs.rows}" }
      - or:
          - when: "len(countries) > 1"
            then: { step: { name: sub, subworkflow: { workflow: other, version: 2, parameters: [{ name: x, expression: "country" }] } } }
---
apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { generateName: my-cool-workflow- }
spec:
  workflow: my-cool-workflow
  version: 3
  parameters: [{ name: country, value: CA }]
  initiator: { type: manual }
  restartOf: { run: my-cool-workflow-x7k2, from: failed }
  stop: false
status:
  phase: Running
  version: 3
  startTime: "2017-11-07T00:00:00Z"
  parameters: { country: CA, dateint: 20171107 }
  steps:
    - id: "aggregate[US]"
      step: aggregate
      phase: Succeeded
      attempts: 1
      placement: { source: kubernetes, node: node-17 }
      outputs: { rows: 1234 }
      links: [{ name: spark_ui_url, url: "http://spark/ui" }]
      message: done
      exitCode: 0
  summary: { total: 10000, phases: { Succeeded: 9000, Running: 1000 }, truncated: true }
  conditions: [{ type: Succeeded, status: "False", reason: Running }]
---
apiVersion: meson.dev/v1alpha1
kind: WorkflowVersion
metadata: { name: my-cool-workflow-v3, annotations: { meson.dev/scm-commit: 3f2c1e9 } }
spec:
  workflow: my-cool-workflow
  version: 3
  specHash: sha256-3f2c1e9
  parameters: [{ name: country, value: US }]
  definition: { step: { name: only, shell: { script: "echo \${country}" } } }
---
apiVersion: meson.dev/v1alpha1
kind: DataArtifact
metadata: { generateName: views- }
spec:
  name: views
  partition: { country: US, dateint: "20171107" }
  location: s3://warehouse/views/20171107/US
  producer: { workflow: a, run: b, step: c }
status:
  announcedAt: "2017-11-07T00:00:00Z"
`;

describe('valid manifests', () => {
  it('accepts the spec example with every block and step type', () => {
    const { documents, issues } = validateManifests(VALID, 'valid.yaml');
    expect(issues).toEqual([]);
    expect(documents).toBe(4);
  });

  it('skips empty documents and reports each document line', () => {
    const { docs, issues } = parseManifests(`---\n${VALID}\n---\n`, 'x.yaml');
    expect(issues).toEqual([]);
    const text = `---\n${VALID}\n---\n`;
    const lines = text.split('\n');
    const apiLines = lines.flatMap((l, i) => (l.startsWith('apiVersion:') ? [i + 1] : []));
    expect(docs.map((d) => d.line)).toEqual(apiLines);
    expect(docs[1]!.lineOf(['spec', 'restartOf', 'from'])).toBe(
      lines.indexOf('  restartOf: { run: my-cool-workflow-x7k2, from: failed }') + 1,
    );
  });
});

describe('validateDocument', () => {
  it('never throws on arbitrary input', () => {
    for (const doc of [null, 1, 'x', [], {}, { apiVersion: 'meson.dev/v1alpha1', kind: 'Workflow', spec: 7 }])
      expect(validateDocument(doc).length).toBeGreaterThan(0);
  });

  it('bounds nesting instead of overflowing the stack', () => {
    let node: unknown = { step: { name: 'a', noop: {} } };
    for (let i = 0; i < 20_000; i++) node = { sequence: [node] };
    const issues = validateDocument({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'deep' },
      spec: { definition: node },
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ code: 'SCHEMA_TOO_DEEP' });
    expect(issues[0]!.path).toMatch(/^spec\.definition\.sequence\[0\]/);
  });

  it('reports one message per problem, not a list of union alternatives', () => {
    const issues = validateDocument({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'w' },
      spec: { definition: { sequence: [{ step: { name: 'a', shell: { script: 'x' }, noop: {} } }] } },
    });
    expect(issues).toEqual([
      {
        path: 'spec.definition.sequence[0].step',
        code: 'SCHEMA_ONE_OF',
        message:
          'expected exactly one step type of shell, container, spark, copy, subworkflow, noop; found shell and noop',
        segments: ['spec', 'definition', 'sequence', 0, 'step'],
      },
    ]);
  });

  it('quotes free-form keys that are not identifiers in paths', () => {
    const issues = validateDocument({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'DataArtifact',
      metadata: { name: 'a' },
      spec: { name: 'v', partition: { 'x.y': [1] } },
    });
    expect(issues.map((i) => i.path)).toEqual(['spec.partition["x.y"]']);
  });
});

describe('step references and scopes', () => {
  const workflow = (spec: string) =>
    `apiVersion: meson.dev/v1alpha1\nkind: Workflow\nmetadata: { name: wf }\nspec:\n${spec}`;

  it('lets a loop condition, a later sequence node and a later iteration body read earlier steps', () => {
    const text = workflow(`  definition:
    sequence:
      - step: { name: first, shell: { script: "echo n=3 >> $MESON_OUTPUTS" } }
      - parallel:
          - loop:
              maxIterations: 5
              while: "steps.poll.outputs.done == false"
              do: { step: { name: poll, shell: { script: "echo \${steps.first.outputs.n}" } } }
          - foreach:
              items: "range(steps.first.outputs.n)"
              as: i
              do:
                sequence:
                  - step: { name: a, noop: {} }
                  - step: { name: b, shell: { script: "echo \${steps.a.outputs} \${i}" } }
      - step: { name: last, shell: { script: "echo \${steps.poll.outputs.done} \${steps.b.outputs}" } }
`);
    expect(validateManifests(text, 'ok.yaml').issues).toEqual([]);
  });

  it('does not report readers of a parameter whose type is misspelt as unknown names', () => {
    const text = workflow(`  parameters: [{ name: country, type: strng, value: US }]
  definition: { step: { name: s, shell: { script: "echo \${country}" } } }
`);
    const { issues } = validateManifests(text, 'typo.yaml');
    expect(issues.map((i) => i.path)).toEqual(['spec.parameters[0].type']);
  });
});

describe('the cost of validating a document', () => {
  const costly = '${len(str(range(99999)))}';
  const workflow = (definition: unknown, parameters: unknown[] = []) => ({
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name: 'costly' },
    spec: { parameters, definition },
  });
  const timed = (doc: unknown, options?: { exprBudget?: number }) => {
    const t = performance.now();
    const issues = validateDocument(doc, options);
    return { issues, ms: performance.now() - t };
  };

  it('is bounded per document, not per ${} (300 costly expressions in one script)', () => {
    const script = Array.from({ length: 300 }, () => `echo ${costly}`).join('\n');
    const { issues, ms } = timed(workflow({ step: { name: 'a', shell: { script } } }));
    expect(issues).toEqual([]);
    expect(ms).toBeLessThan(2000); // was 3-4 s; 1 MiB of them took 7 minutes
  });

  it('is bounded across steps, parameters, conditions and foreach items alike', () => {
    const steps = Array.from({ length: 60 }, (_, i) => ({
      foreach: {
        items: 'range(99999)',
        as: `i${i}`,
        parallelism: 1,
        do: {
          xor: [
            {
              when: `len(str(range(99999))) > ${i}`,
              // biome-ignore lint/suspicious/noThenProperty: `then` is the branch field name of the API.
              then: { step: { name: `s${i}`, shell: { script: `echo ${costly} ${costly}` } } },
            },
          ],
        },
      },
    }));
    const params = Array.from({ length: 60 }, (_, i) => ({
      name: `p${i}`,
      type: 'long',
      expression: 'len(str(range(99999)))',
    }));
    const { issues, ms } = timed(workflow({ sequence: steps }, params));
    expect(issues).toEqual([]);
    expect(ms).toBeLessThan(3000);
  });

  it('still refuses a 1e6-way foreach', () => {
    const doc = workflow({
      foreach: { items: 'range(1e6)', as: 'i', do: { step: { name: 'a', noop: {} } } },
    });
    expect(validateDocument(doc).map((i) => [i.path, i.code])).toEqual([
      ['spec.definition.foreach.items', 'EXPR_LIMIT'],
    ]);
  });

  it('still reports constant errors while the budget lasts, and takes a configured budget', () => {
    const doc = workflow({ step: { name: 'a', shell: { script: 'echo ${range(1e9)}' } } });
    expect(validateDocument(doc).map((i) => i.code)).toEqual(['EXPR_LIMIT']);
    // A spent budget leaves such errors to run time (where the step fails naming them).
    expect(validateDocument(doc, { exprBudget: 0 })).toEqual([]);
    const cheap = timed(workflow({ step: { name: 'a', shell: { script: `${costly}\n`.repeat(2000) } } }), {
      exprBudget: 100_000,
    });
    expect(cheap.issues).toEqual([]);
    expect(cheap.ms).toBeLessThan(2000);
  });
});
