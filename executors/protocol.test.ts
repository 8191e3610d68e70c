import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planStep, StepSetupError } from './executor.ts';
import { claimAttempt, parseLinks, parseOutputs, readClaim } from './protocol.ts';

describe('output and link files', () => {
  it('reads key=value lines, values parsed as JSON where they parse', () => {
    expect(parseOutputs('rows=1234\nname=abc\n# comment\n\nlist=[1,2]\nflag=true\n')).toEqual({
      rows: 1234,
      name: 'abc',
      list: [1, 2],
      flag: true,
    });
  });
  it('reads one JSON object', () => {
    expect(parseOutputs('{"a": {"b": 1}}')).toEqual({ a: { b: 1 } });
    expect(() => parseOutputs('[1]')).toThrow();
  });
  it('names the bad line', () => {
    expect(() => parseOutputs('ok=1\nnot a pair')).toThrow(/line 2/);
  });
  it('reads links as lines, object or array', () => {
    expect(parseLinks('ui=http://x/1\n')).toEqual([{ name: 'ui', url: 'http://x/1' }]);
    expect(parseLinks('{"ui": "http://x"}')).toEqual([{ name: 'ui', url: 'http://x' }]);
    expect(parseLinks('[{"name": "ui", "url": "http://x"}]')).toEqual([{ name: 'ui', url: 'http://x' }]);
  });
});

describe('planStep', () => {
  const ctx = {
    dir: '/tmp/a',
    cwd: '/work',
    env: {},
    which: () => undefined,
    containerRuntime: () => undefined,
  };
  it('runs shell scripts with sh -c', () => {
    expect(planStep({ name: 's', type: 'shell', shell: { script: 'echo hi' } }, ctx)).toEqual({
      kind: 'command',
      command: '/bin/sh',
      args: ['-c', 'echo hi'],
    });
  });
  it('copies local paths and file:// URIs inside the copy roots, refuses other schemes clearly', () => {
    const roots = { ...ctx, copyRoots: ['/work', '/tmp'] };
    expect(planStep({ name: 'c', type: 'copy', copy: { from: 'a/b', to: 'file:///tmp/x' } }, roots)).toEqual({
      kind: 'copy',
      from: '/work/a/b',
      to: '/tmp/x',
    });
    expect(() =>
      planStep({ name: 'c', type: 'copy', copy: { from: 'gs://a/b', to: '/tmp/x' } }, roots),
    ).toThrow(/copy.from: .*not gs:/);
    // s3:// only under an object store root, which none is here
    expect(() =>
      planStep({ name: 'c', type: 'copy', copy: { from: 's3://bucket/b', to: '/tmp/x' } }, roots),
    ).toThrow(/copy.from: .*outside the object store copy roots \(none is configured\)/);
    const s3 = { ...roots, s3CopyRoots: [{ bucket: 'data-bucket', key: 'in/' }] };
    expect(
      planStep({ name: 'c', type: 'copy', copy: { from: 'S3://data-bucket/in/x', to: '/tmp/d/' } }, s3),
    ).toEqual({ kind: 'copy', from: 's3://data-bucket/in/x', to: '/tmp/d', intoDirectory: true });
    expect(
      planStep({ name: 'c', type: 'copy', copy: { from: 'a/b', to: 's3://data-bucket/in/y/' } }, s3),
    ).toEqual({ kind: 'copy', from: '/work/a/b', to: 's3://data-bucket/in/y/' });
    // no roots: nothing is copyable
    expect(() => planStep({ name: 'c', type: 'copy', copy: { from: 'a', to: 'b' } }, ctx)).toThrow(
      /outside the copy roots/,
    );
  });
  it('refuses container steps without a working runtime, and builds a run command with one', () => {
    expect(() => planStep({ name: 'c', type: 'container', container: { image: 'img' } }, ctx)).toThrow(
      StepSetupError,
    );
    const plan = planStep(
      {
        name: 'c',
        type: 'container',
        container: {
          image: 'img:1',
          command: ['python', '-m', 'x'],
          args: ['--a'],
          env: [{ name: 'K', value: 'V' }],
        },
      },
      { ...ctx, containerRuntime: () => 'podman' },
    );
    expect(plan).toMatchObject({ kind: 'command', command: 'podman' });
    const args = (plan as { args: string[] }).args;
    expect(args.slice(-5)).toEqual(['--entrypoint=python', 'img:1', '-m', 'x', '--a']);
    expect(args).toContain('--env=K=V');
  });
  it('refuses spark steps without spark-submit, and builds spark-submit arguments with it', () => {
    const step = {
      name: 's',
      type: 'spark' as const,
      spark: {
        mainApplication: 'app.py',
        args: ['--d', '1'],
        conf: { 'spark.x': 1 },
        driverMemory: '2g',
        executors: 3,
      },
    };
    expect(() => planStep(step, ctx)).toThrow(/spark-submit/);
    expect(planStep(step, { ...ctx, which: () => '/opt/spark/bin/spark-submit' })).toEqual({
      kind: 'command',
      command: '/opt/spark/bin/spark-submit',
      args: ['--conf', 'spark.x=1', '--driver-memory', '2g', '--num-executors', '3', 'app.py', '--d', '1'],
    });
  });
});

describe('claimAttempt', () => {
  it('lets exactly one claimer win, and the claim is never seen without its owner', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meson-claim-'));
    try {
      expect(readClaim(dir)).toBeUndefined();
      expect(claimAttempt(dir, 'executor 1')).toBe(true);
      expect(claimAttempt(dir, 'controller 2')).toBe(false);
      expect(readClaim(dir)).toBe('executor 1');
      // no temp files left behind
      expect(readdirSync(dir)).toEqual(['claim']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
