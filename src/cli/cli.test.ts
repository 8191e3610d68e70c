import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: (s: string) => void out.push(s),
      stderr: (s: string) => void err.push(s),
      stdin: new PassThrough(),
      cwd: process.cwd(),
      env: {},
    },
  };
}

describe('mesonctl', () => {
  it('prints usage listing every command of the spec', async () => {
    const t = io();
    expect(await runCli(['--help'], t.io)).toBe(0);
    for (const c of ['validate', 'run', 'eval', 'synth', 'server', 'operator'])
      expect(t.out.join('')).toContain(c);
  });
  it('prints its version (from package.json) for --version', async () => {
    const t = io();
    expect(await runCli(['--version'], t.io)).toBe(0);
    expect(t.out.join('')).toMatch(/^mesonctl \d+\.\d+\.\d+\S* \(API meson\.dev\/v1alpha1\)\n$/);
  });
  it('rejects an unknown command with exit 2', async () => {
    const t = io();
    expect(await runCli(['frobnicate'], t.io)).toBe(2);
    expect(t.err.join('')).toContain('unknown command "frobnicate"');
  });
});
