import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { validateCommand } from './validate.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function run(args: string[], stdin = '', cwd = ROOT) {
  const out: string[] = [];
  const err: string[] = [];
  const input = new PassThrough();
  input.end(stdin);
  const code = validateCommand(args, {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
    stdin: input,
    cwd,
    env: {},
  });
  return code.then((c) => ({ code: c, out: out.join(''), err: err.join('') }));
}

const GOOD = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: hello }
spec:
  definition: { step: { name: hi, shell: { script: "echo hi" } } }
`;
const BAD = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: hello }
spec:
  definition:
    sequence:
      - step: { name: hi, shell: { script: "echo hi" }, noop: {} }
      - step: { name: hi, noop: {} }
`;

function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mesonctl-validate-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('mesonctl validate', () => {
  it('exits 0 for valid files and says how many documents it checked', async () => {
    const dir = tempDir({ 'a.yaml': `${GOOD}---\n${GOOD.replace('hello', 'hello2')}` });
    const r = await run(['a.yaml'], '', dir);
    expect(r).toEqual({ code: 0, out: '2 documents valid in 1 file\n', err: '' });
  });

  it('exits 1 and prints each error as FILE: PATH: message with the line', async () => {
    const dir = tempDir({ 'good.yaml': GOOD, 'bad.yaml': BAD });
    const r = await run(['good.yaml', 'bad.yaml'], '', dir);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toEqual([
      'bad.yaml: spec.definition.sequence[0].step: expected exactly one step type of shell, container, spark, copy, subworkflow, noop; found shell and noop (line 7)',
      'bad.yaml: spec.definition.sequence[1].step.name: duplicate step name "hi" (first defined at spec.definition.sequence[0].step); step names must be unique within the workflow (line 8)',
      '2 errors',
      '',
    ]);
  });

  it('prints a JSON array with --json (for editors and CI annotations)', async () => {
    const r = await run(['--json', '-'], BAD);
    expect(r.code).toBe(1);
    const rows = JSON.parse(r.out) as {
      file: string;
      line: number;
      path: string;
      code: string;
      severity: string;
    }[];
    expect(
      rows.map(({ file, line, path, code, severity }) => ({ file, line, path, code, severity })),
    ).toEqual([
      {
        file: '-',
        line: 7,
        path: 'spec.definition.sequence[0].step',
        code: 'SCHEMA_ONE_OF',
        severity: 'error',
      },
      {
        file: '-',
        line: 8,
        path: 'spec.definition.sequence[1].step.name',
        code: 'STEP_DUPLICATE',
        severity: 'error',
      },
    ]);
    expect(JSON.parse((await run(['--json', '-'], GOOD)).out)).toEqual([]);
  });

  it('reads stdin for -', async () => {
    expect((await run(['-'], GOOD)).code).toBe(0);
    const r = await run(['-'], BAD);
    expect(r.code).toBe(1);
    expect(r.err).toContain('-: spec.definition.sequence[0].step: ');
  });

  it('searches a directory for YAML files', async () => {
    const dir = tempDir({ 'a.yaml': GOOD, 'b.yml': BAD, 'c.txt': 'not yaml' });
    const r = await run(['.'], '', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain('b.yml: spec.definition');
  });

  it('exits 2 for an unreadable file, no arguments or an unknown option', async () => {
    const missing = await run(['no-such-file.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no-such-file.yaml: cannot read: no such file or directory');
    expect((await run([])).code).toBe(2);
    expect((await run(['--frobnicate', 'x.yaml'])).code).toBe(2);
  });

  it('exits 2 for a directory without YAML files (a wrong path must not pass CI)', async () => {
    const dir = tempDir({ 'notes.txt': 'x' });
    const r = await run(['.'], '', dir);
    expect(r.code).toBe(2);
    expect(r.err).toContain('.: no .yaml or .yml files in this directory');
  });

  it('warns about an empty input instead of silently reporting it valid', async () => {
    const r = await run(['-'], '');
    expect(r.code).toBe(0);
    expect(r.err).toContain('-: (file): warning: no documents in this file');
  });

  it('skips objects of other API groups with a note, but not other meson.dev versions', async () => {
    const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cm }\ndata: { a: b }\n';
    const ok = await run(['-'], `${GOOD}---\n${configMap}`);
    expect(ok.code).toBe(0);
    expect(ok.err).toContain('-: (document): skipped: ConfigMap (v1) is not a Meson object (line 7)');
    expect(ok.out).toBe('1 document valid in 1 file\n');
    const wrongVersion = await run(['-'], GOOD.replace('v1alpha1', 'v1'));
    expect(wrongVersion.code).toBe(1);
    expect(wrongVersion.err).toContain('expected apiVersion "meson.dev/v1alpha1"');
  });

  it('checks each item of a v1 List (kubectl get mwf -o yaml), naming items[i] and the line', async () => {
    const item = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .map((l, i) => (i === 0 ? `- ${l}` : `  ${l}`))
        .join('\n');
    const list = `apiVersion: v1\nkind: List\nitems:\n${item(GOOD)}\n${item(BAD.replace('hello', 'bad'))}\n`;
    const r = await run(['-'], list);
    expect(r.code).toBe(1);
    expect(r.err).toContain('-: items[1].spec.definition.sequence[1].step.name: duplicate step name "hi"');
    expect(r.err).toMatch(/duplicate step name "hi" .*\(line 16\)/);
    const ok = await run(['-'], `apiVersion: v1\nkind: List\nitems:\n${item(GOOD)}\n`);
    expect([ok.code, ok.out]).toEqual([0, '1 document valid in 1 file\n']);
  });

  it('reports the invalid fixtures with exit 1', async () => {
    const r = await run(['test/fixtures/invalid']);
    expect(r.code).toBe(1);
    for (const f of readdirSync(join(ROOT, 'test/fixtures/invalid'))) expect(r.err).toContain(`${f}: `);
  });

  it('accepts every example manifest (examples/*.yaml)', async () => {
    const examples = readdirSync(join(ROOT, 'examples'))
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => `examples/${f}`);
    const r = await run(examples.length > 0 ? examples : ['-'], GOOD);
    // No warnings either: the examples must also apply with kubectl (YAML 1.1).
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('warns, without failing, about plain scalars that kubectl reads as booleans', async () => {
    const text = GOOD.replace(
      'spec:\n',
      'spec:\n  notifications: [{ on: [failure], webhook: { url: "http://h/x" } }]\n',
    );
    const r = await run(['-'], text);
    expect(r.code).toBe(0);
    expect(r.err).toBe(
      '-: spec.notifications[0].on: warning: kubectl reads the unquoted key on as a boolean (YAML 1.1); write "on" (line 5)\n',
    );
    const quoted = await run(['-'], text.replace('{ on:', '{ "on":'));
    expect(quoted).toMatchObject({ code: 0, err: '' });
  });

  it('warns, without failing, about values spliced where the shell would not expand them or reads them as code', async () => {
    const text = GOOD.replace(
      'spec:\n  definition: { step: { name: hi, shell: { script: "echo hi" } } }',
      `spec:
  parameters: [{ name: day, value: "1" }]
  definition: { step: { name: hi, shell: { script: "awk 'BEGIN { srand(\${day}) }'; echo $((\${day} + 1))" } } }`,
    );
    const r = await run(['-'], text);
    expect(r.code).toBe(0);
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^-: spec\.definition\.step\.shell\.script: warning: \$\{day\} is inside single quotes.*\(script line 1, column 20\) \(line 6\)$/,
    );
    expect(lines[1]).toMatch(/warning: \$\{day\} is inside \$\(\(\.\.\.\)\).*a\[\$\(cmd\)\] runs cmd/);
    const json = await run(['--json', '-'], text);
    expect(JSON.parse(json.out)).toMatchObject([
      { severity: 'warning', code: 'SCRIPT_VALUE_SPLICE' },
      { severity: 'warning', code: 'SCRIPT_VALUE_SPLICE' },
    ]);
    expect(json.code).toBe(0);
  });

  it('checks a DSL program (FILE.ts) as the manifests it synthesises, and names a program that fails', async () => {
    const dsl = JSON.stringify(join(ROOT, 'src', 'dsl', 'index.ts'));
    const dir = tempDir({
      'ok.workflow.ts': `import { Shell, Workflow } from ${dsl};\nexport default Workflow({ id: 'from-ts', definition: Shell('a', ['echo hi']) });\n`,
      'throws.workflow.ts': `throw new Error('boom');\n`,
    });
    const ok = await run(['ok.workflow.ts'], '', dir);
    expect(ok).toEqual({ code: 0, out: '1 document valid in 1 file\n', err: '' });
    const bad = await run(['throws.workflow.ts'], '', dir);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/throws\.workflow\.ts: the program failed while loading: boom/);
  });
});
