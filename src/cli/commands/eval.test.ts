import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli.ts';
import { caret, parseParamValue } from './eval.ts';

async function mesonctl(...args: string[]) {
  return mesonctlWithStdin('', ...args);
}

async function mesonctlWithStdin(input: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const stdin = new PassThrough();
  stdin.end(input);
  const code = await runCli(['eval', ...args], {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
    stdin,
    cwd: process.cwd(),
    env: {},
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('mesonctl eval', () => {
  it('prints the value as JSON', async () => {
    expect(await mesonctl('tsToDateInt(1510099200000)')).toEqual({
      code: 0,
      stdout: '20171108\n',
      stderr: '',
    });
    expect((await mesonctl('dateIntAdd(20171231, 1)')).stdout).toBe('20180101\n');
    expect((await mesonctl('split("a,b", ",")')).stdout).toBe('["a","b"]\n');
    expect((await mesonctl('"x"')).stdout).toBe('"x"\n');
  });
  it('suggests --param for an unknown name', async () => {
    const r = await mesonctl('dateIntAdd(dateint, 1)');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'EXPR_UNKNOWN_NAME: unknown name "dateint" (give it a value with --param dateint=...) at character 11',
    );
  });
  it('refuses string escapes that would silently lose their backslash', async () => {
    const r = await mesonctl('"C:\\data"');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unsupported escape "\\d" in a string');
    expect((await mesonctl('"a\\\\b\\n"')).stdout).toBe('"a\\\\b\\n"\n');
  });
  it('takes --param values as JSON where they parse, else as strings', async () => {
    expect((await mesonctl('x + 1', '--param', 'x=41')).stdout).toBe('42\n');
    expect((await mesonctl('upper(c)', '--param', 'c=us')).stdout).toBe('"US"\n');
    expect((await mesonctl('len(l)', '--param=l=[1,2,3]')).stdout).toBe('3\n');
    expect((await mesonctl('m.a', '-p', 'm={"a":true}')).stdout).toBe('true\n');
    expect((await mesonctl('tsToDateInt(RUN_TS)', '--param', 'RUN_TS=1510099200000')).stdout).toBe(
      '20171108\n',
    );
    expect(parseParamValue('a=b')).toBe('a=b');
    expect(parseParamValue('null')).toBe(null);
  });
  it('exits 2 with the code, the message and a caret for prototype access', async () => {
    const a = await mesonctl('constructor');
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('EXPR_FORBIDDEN');
    const b = await mesonctl('"".constructor');
    expect(b.code).toBe(2);
    expect(b.stderr).toBe(
      'mesonctl eval: EXPR_FORBIDDEN: property "constructor" is not accessible in expressions at character 3\n' +
        '  "".constructor\n' +
        '     ^\n',
    );
    const c = await mesonctl('x.__proto__', '--param', 'x={}');
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('EXPR_FORBIDDEN');
    expect(c.stdout).toBe('');
  });
  it('exits 2 on parse, type, name and evaluation errors', async () => {
    expect((await mesonctl('1 +')).stderr).toContain('EXPR_PARSE');
    expect((await mesonctl('nope')).stderr).toContain('EXPR_UNKNOWN_NAME');
    expect((await mesonctl('x - 1', '--param', 'x=abc')).stderr).toContain('EXPR_TYPE');
    const d = await mesonctl('10 / x', '--param', 'x=0');
    expect(d.code).toBe(2);
    expect(d.stderr).toContain('EXPR_ARITHMETIC');
  });
  it('reads the expression from stdin with -', async () => {
    expect(await mesonctlWithStdin('dateIntAdd(d, 1)\n', '-', '--param', 'd=20171231')).toEqual({
      code: 0,
      stdout: '20180101\n',
      stderr: '',
    });
  });
  it('exits 2 on bad usage', async () => {
    expect((await mesonctl()).code).toBe(2);
    expect((await mesonctl('1', '2')).code).toBe(2);
    expect((await mesonctl('1', '--param', 'novalue')).code).toBe(2);
    expect((await mesonctl('--help')).code).toBe(0);
  });
  it('draws the caret on the line of a multi-line expression', () => {
    expect(caret('1 +\n  nope', 6)).toBe('    nope\n    ^\n');
    // A 10,000-character line is cut to a window around the position, caret still under it.
    const long = `${'x + '.repeat(2500)}?`;
    const [shown, under] = caret(long, 10_000).split('\n') as [string, string];
    expect(shown.length).toBeLessThan(120);
    expect(shown[under.indexOf('^')]).toBe('?');
  });
  it('works as a process: node src/cli/main.ts eval ...', () => {
    const main = fileURLToPath(new URL('../main.ts', import.meta.url));
    // The project's Node 24 (a devDependency) runs .ts directly; vitest may run on an older node.
    const projectNode = fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url));
    const node = existsSync(projectNode) ? projectNode : process.execPath;
    const run = (...args: string[]) => spawnSync(node, [main, 'eval', ...args], { encoding: 'utf8' });
    const ok = run('tsToDateInt(1510099200000)');
    expect([ok.status, ok.stdout]).toEqual([0, '20171108\n']);
    const bad = run('x.__proto__', '--param', 'x={}');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('EXPR_FORBIDDEN');
  });
});
