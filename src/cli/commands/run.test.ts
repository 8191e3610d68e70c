import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../store/sqlite.ts';
import { parseParam, runCommand } from './run.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function run(yaml: string, args: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'mesonctl-run-test-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'wf.yaml'), yaml);
  let out = '';
  let err = '';
  const code = await runCommand(['wf.yaml', ...args], {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    stdin: Readable.from([]),
    cwd: dir,
    env: {},
  });
  return { code, out, err };
}

const WF = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: greet }
spec:
  parameters:
    - { name: who, type: string, value: world }
  definition:
    sequence:
      - step: { name: hello, shell: { script: 'echo "n=\${who}" >> "$MESON_OUTPUTS"' } }
      - step: { name: check, shell: { script: 'test "\${steps.hello.outputs.n}" = "\${expect}"' }, parameters: [{ name: expect, value: you }] }
`;

describe('mesonctl run', () => {
  it('exits 0 when the run succeeds, and --json prints the final WorkflowRun with steps', async () => {
    const res = await run(WF, ['--param', 'who=you', '--json']);
    expect(res.code, res.err).toBe(0);
    const obj = JSON.parse(res.out);
    expect(obj).toMatchObject({
      kind: 'WorkflowRun',
      status: { phase: 'Succeeded', parameters: { who: 'you' } },
    });
    expect(obj.status.steps.map((s: { id: string }) => s.id)).toEqual(['hello', 'check']);
    expect(obj.status.steps[0].outputs).toEqual({ n: 'you' });
  });

  it('exits 1 when the run fails, printing each step', async () => {
    const res = await run(WF);
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/: Failed/);
    expect(res.out).toMatch(/check\s+Failed/);
  });

  it('exits 2 on an invalid file, naming the file and field path', async () => {
    const res = await run(WF.replace('echo', 'echo ${undefinedName}'));
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/^wf\.yaml: spec\.definition\.sequence\[0\]\.step\.shell\.script: /m);
    expect((await run('kind: Nothing\n')).code).toBe(2);
  });

  it("does not fire the workflow's own triggers while it runs", async () => {
    const yaml = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: ticking }
spec:
  triggers:
    cron: [{ schedule: "* * * * * ?" }]
  definition:
    step: { name: wait, shell: { script: 'sleep 2.2' } }
`;
    const dataDir = mkdtempSync(join(tmpdir(), 'mesonctl-run-data-'));
    dirs.push(dataDir);
    const res = await run(yaml, ['--data-dir', dataDir]);
    expect(res.code, res.err).toBe(0);
    const store = new SqliteStore({ dir: dataDir });
    try {
      expect(store.list('WorkflowRun', undefined).items).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it('refuses names that are not Kubernetes names before anything runs or is written', async () => {
    const cases: [string, RegExp][] = [
      [
        WF.replace('{ name: greet }', '{ name: greet, namespace: ../../../outside }'),
        /metadata\.namespace: /,
      ],
      [WF.replace('{ name: greet }', '{ name: greet, namespace: Team_A }'), /metadata\.namespace: /],
      [WF.replace('{ name: greet }', "{ name: '../evil' }"), /metadata\.name: /],
      [
        `${WF}---\napiVersion: meson.dev/v1alpha1\nkind: DataArtifact\nmetadata: { name: a, namespace: ../x }\nspec: { name: a }\n`,
        /metadata\.namespace: /,
      ],
      [
        `${WF}---\napiVersion: meson.dev/v1alpha1\nkind: WorkflowRun\nmetadata: { generateName: ../r- }\nspec: { workflow: greet }\n`,
        /metadata\.generateName: /,
      ],
    ];
    for (const [yaml, field] of cases) {
      const parent = mkdtempSync(join(tmpdir(), 'mesonctl-run-names-'));
      dirs.push(parent);
      const res = await run(yaml, ['--data-dir', join(parent, 'data')]);
      expect(res.code, res.err).toBe(2);
      expect(res.err).toMatch(field);
      expect(readdirSync(parent)).toEqual([]);
    }
  });

  it('parses --param values as JSON where they parse', () => {
    expect(parseParam('n=3')).toEqual({ name: 'n', value: 3 });
    expect(parseParam('l=[1,"a"]')).toEqual({ name: 'l', value: [1, 'a'] });
    expect(parseParam('s=hello world')).toEqual({ name: 's', value: 'hello world' });
    expect(() => parseParam('novalue')).toThrow(/k=v/);
  });
});

describe('mesonctl run: run limits', () => {
  const WIDE = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: wide }
spec:
  definition:
    foreach: { items: "range(10)", as: i, do: { step: { name: n, noop: {} } } }
`;
  it('takes a limit from its flag and fails the run naming it', async () => {
    const r = await run(WIDE, ['--max-step-instances', '5']);
    expect(r.code).toBe(1);
    expect(r.out + r.err).toContain(
      'RUN_LIMIT_STEP_INSTANCES: the run would have more than 5 step instances (the next was n[5]) (limit 5; raise it with --max-step-instances or MESON_MAX_STEP_INSTANCES)',
    );
    expect((await run(WIDE, ['--max-step-instances', '10'])).code).toBe(0);
  });

  it('rejects a limit that is not a positive integer', async () => {
    const r = await run(WIDE, ['--max-iterations', '0']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--max-iterations: expected a positive integer, got "0"');
  });
});

describe('mesonctl run: parameters checked within the expression budget', () => {
  const COSTLY = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: costly }
spec:
  parameters:
${Array.from({ length: 12 }, (_, i) => `    - { name: p${i}, type: long, expression: "len(str(range(99999)))" }`).join('\n')}
  definition: { step: { name: a, noop: {} } }
`;
  it('refuses a start whose parameters spend the budget together, naming it (exit 2)', async () => {
    const t = performance.now();
    const r = await run(COSTLY, ['--expr-budget', '1000000']);
    expect(performance.now() - t).toBeLessThan(15_000);
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      'the workflow parameters took more than 1000000 evaluation steps together (the shared expression budget; raise it with --expr-budget or MESON_EXPR_BUDGET)',
    );
    expect((await run(COSTLY, ['--expr-budget', '5000000'])).code).toBe(0);
  });

  it('runs a workflow read from stdin (-) and a DSL program (FILE.ts) directly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesonctl-run-test-'));
    dirs.push(dir);
    const io = (stdin: string) => {
      const o = { out: '', err: '' };
      return {
        o,
        io: {
          stdout: (x: string) => {
            o.out += x;
          },
          stderr: (x: string) => {
            o.err += x;
          },
          stdin: Readable.from([stdin]),
          cwd: dir,
          env: {},
        },
      };
    };
    const a = io(WF);
    expect(await runCommand(['-', '--param', 'who=you'], a.io), a.o.err).toBe(0);
    expect(a.o.out).toMatch(/Succeeded/);
    const dsl = JSON.stringify(join(import.meta.dirname, '..', '..', 'dsl', 'index.ts'));
    writeFileSync(
      join(dir, 'p.workflow.ts'),
      `import { Shell, Workflow } from ${dsl};\nexport default Workflow({ id: 'from-ts', definition: Shell('a', ['exit 3']) });\n`,
    );
    const b = io('');
    expect(await runCommand(['p.workflow.ts'], b.io), b.o.err).toBe(1);
    expect(b.o.out).toMatch(/run from-ts-\w+: Failed/);
    const c = io('');
    expect(await runCommand(['missing.workflow.ts'], c.io)).toBe(2);
    expect(c.o.err).toMatch(/missing\.workflow\.ts: cannot read: no such file/);
  });
});
