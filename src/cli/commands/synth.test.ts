import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { synthCommand } from './synth.ts';

const dsl = resolve(import.meta.dirname, '../../dsl/index.ts');
const dir = mkdtempSync(join(tmpdir(), 'meson-synth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** Writes a DSL program (a fresh file each time: imported modules are cached). */
function program(body: string): string {
  const file = join(dir, `program${++counter}.ts`);
  writeFileSync(
    file,
    `import { Workflow, Shell, Noop, Trigger, Parameter } from ${JSON.stringify(dsl)};\n${body}\n`,
  );
  return file;
}

async function synth(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await synthCommand(args, {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
    stdin: new PassThrough(),
    cwd: dir,
    env: {},
  });
  return { code, out: out.join(''), err: err.join('') };
}

describe('mesonctl synth', () => {
  it('prints the default export as YAML and exits 0', async () => {
    const file = program(`
      export default Workflow({
        id: 'hello',
        parameters: [Parameter.string('who', 'world')],
        triggers: [Trigger.cron('0 0 * * *', { timezone: 'UTC' })],
        definition: Shell('greet', 'echo hello \${who}').sequence(Noop('done')),
      });`);
    const result = await synth(file);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    const doc = parse(result.out);
    expect(doc.metadata.name).toBe('hello');
    expect(doc.spec.definition.sequence[0].step.shell.script).toBe('echo hello ${who}');
  });

  it('prints every named workflow export (lists included) in export-name order, several files', async () => {
    const one = program(`
      export const zeta = Workflow({ id: 'zeta', definition: Noop('a') });
      export const alpha = [Workflow({ id: 'alpha', definition: Noop('a') })];
      export const notAWorkflow = 42;`);
    const two = program(`export default Workflow({ id: 'omega', definition: Noop('a') });`);
    const result = await synth(one, two);
    expect(result.code).toBe(0);
    const names = result.out.split('---\n').map((d) => parse(d).metadata.name);
    expect(names).toEqual(['alpha', 'zeta', 'omega']);
  });

  it('exits 2 naming a missing file', async () => {
    const result = await synth('nope.workflow.ts');
    expect(result.code).toBe(2);
    expect(result.err).toBe('nope.workflow.ts: cannot read: no such file\n');
  });

  it('exits 2 with the DSL error and its code when the program misuses the DSL', async () => {
    const file = program(`
      const a = Noop('a');
      export default Workflow({ id: 'dup', definition: a.sequence(a) });`);
    const result = await synth(file);
    expect(result.code).toBe(2);
    expect(result.out).toBe('');
    expect(result.err).toContain('Workflow("dup"): step name "a" is used more than once');
    expect(result.err).toContain('[DSL_DUPLICATE_STEP]');
  });

  it('exits 2 with the message and the place in the program when it throws', async () => {
    const file = program(`\nthrow new Error('no config for prod');`);
    const result = await synth(file);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(
      /the program failed while loading: no config for prod \(at program\d+\.ts:3:\d+\)/,
    );
  });

  it('exits 2 naming the line of a syntax error in the program (as a process: Node strips the types)', () => {
    const file = program(`export default Workflow({ id: 'w', definition: Noop('x')\n`);
    const main = fileURLToPath(new URL('../main.ts', import.meta.url));
    const projectNode = fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url));
    const node = existsSync(projectNode) ? projectNode : process.execPath;
    const result = spawnSync(node, [main, 'synth', file], { encoding: 'utf8', cwd: dir });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/\[ERR_INVALID_TYPESCRIPT_SYNTAX\] \(at program\d+\.ts:3\)/);
  });

  it('points a YAML file to mesonctl validate instead of trying to import it', async () => {
    writeFileSync(join(dir, 'wf.yaml'), 'kind: Workflow\n');
    const result = await synth('wf.yaml');
    expect(result.code).toBe(2);
    expect(result.err).toContain(
      'wf.yaml: synth runs TypeScript DSL programs (FILE.ts); to check a manifest, use mesonctl validate wf.yaml',
    );
  });

  it('exits 2 when the program exports no workflow', async () => {
    const result = await synth(program('export const x = 1;'));
    expect(result.code).toBe(2);
    expect(result.err).toContain('exports no workflow');
  });

  it('exits 2 with the validator issues, and prints nothing, when a manifest is invalid', async () => {
    const file = program(`
      export default [
        Workflow({ id: 'ok', definition: Noop('a') }),
        Workflow({
          id: 'bad',
          triggers: [Trigger.cron('every day at noon')],
          definition: Shell('say', 'echo \${unknownName}'),
        }),
      ];`);
    const result = await synth(file);
    expect(result.code).toBe(2);
    expect(result.out).toBe('');
    expect(result.err).toContain(`${file}: workflow "bad": spec.triggers.cron[0].schedule: `);
    expect(result.err).toContain(`${file}: workflow "bad": spec.definition.step.shell.script: `);
    expect(result.err).not.toContain('workflow "ok"');
  });

  it('adds --annotation to every workflow, over the annotations of the program, keys sorted', async () => {
    const file = program(`
      export default [
        Workflow({ id: 'one', annotations: { 'meson.dev/scm-commit': 'old', team: 'recs' }, definition: Noop('a') }),
        Workflow({ id: 'two', definition: Noop('a') }),
      ];`);
    const result = await synth(
      file,
      '--annotation',
      'meson.dev/scm-commit=3f2c1e9',
      '--annotation=a.example/x=y=z',
    );
    expect(result.err).toBe('');
    const [one, two] = result.out.split('---\n').map((d) => parse(d));
    expect(one.metadata.annotations).toEqual({
      'a.example/x': 'y=z',
      'meson.dev/scm-commit': '3f2c1e9',
      team: 'recs',
    });
    expect(Object.keys(one.metadata.annotations)).toEqual(['a.example/x', 'meson.dev/scm-commit', 'team']);
    expect(two.metadata.annotations).toEqual({ 'a.example/x': 'y=z', 'meson.dev/scm-commit': '3f2c1e9' });
    const bad = await synth(file, '--annotation', 'novalue');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--annotation expects KEY=VALUE, got novalue');
  });

  it('names the file when one program defines a workflow twice', async () => {
    const file = program(
      `export default [Workflow({ id: 'twice', definition: Noop('a') }), Workflow({ id: 'twice', definition: Noop('b') })];`,
    );
    const result = await synth(file);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}: two workflows are named "twice" [DSL_DUPLICATE_WORKFLOW]\n`);
  });

  it('exits 2 when two programs define the same workflow', async () => {
    const one = program(`export default Workflow({ id: 'same', definition: Noop('a') });`);
    const two = program(`export default Workflow({ id: 'same', definition: Noop('b') });`);
    const result = await synth(one, two);
    expect(result.code).toBe(2);
    expect(result.out).toBe('');
    expect(result.err).toBe(
      `${two}: workflow "same" is also defined by ${one}; each workflow must be defined once [DSL_DUPLICATE_WORKFLOW]\n`,
    );
  });

  it('exits 2 with usage for no file or an unknown option', async () => {
    expect((await synth()).code).toBe(2);
    const result = await synth('--frobnicate', 'x.ts');
    expect(result.code).toBe(2);
    expect(result.err).toContain('unknown option --frobnicate');
    expect((await synth('--help')).code).toBe(0);
  });
});
