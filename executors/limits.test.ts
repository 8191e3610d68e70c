import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkLinks,
  checkOutputs,
  DEFAULT_STEP_LIMITS,
  parseStepLimits,
  readStepFile,
  truncateMessage,
  withLimits,
} from './limits.ts';
import { parseOutputs } from './protocol.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'meson-limits-'));
  dirs.push(d);
  return d;
};
const what = {
  label: 'the outputs file',
  limit: 'outputsBytes',
  tooLarge: 'EXECUTOR_OUTPUTS_TOO_LARGE',
  invalid: 'EXECUTOR_OUTPUTS_INVALID',
} as const;
const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
};

describe('readStepFile', () => {
  it('reads small text, and nothing when the file is missing', () => {
    const d = tmp();
    writeFileSync(join(d, 'o'), 'a=1\n');
    expect(readStepFile(join(d, 'o'), 100, what)).toBe('a=1\n');
    expect(readStepFile(join(d, 'missing'), 100, what)).toBeUndefined();
  });
  it('refuses big files by their size, binary junk, bad UTF-8, symbolic links, FIFOs', () => {
    const d = tmp();
    writeFileSync(join(d, 'big'), Buffer.alloc(101, 'a'));
    expect(codeOf(() => readStepFile(join(d, 'big'), 100, what))).toBe('EXECUTOR_OUTPUTS_TOO_LARGE');
    expect(() => readStepFile(join(d, 'big'), 100, what)).toThrow(
      /101 bytes, over the limit outputsBytes=100/,
    );
    writeFileSync(join(d, 'bin'), Buffer.from([0x61, 0x3d, 0x00, 0xff]));
    expect(codeOf(() => readStepFile(join(d, 'bin'), 100, what))).toBe('EXECUTOR_OUTPUTS_INVALID');
    writeFileSync(join(d, 'latin1'), Buffer.from([0x61, 0x3d, 0xe9, 0x0a]));
    expect(() => readStepFile(join(d, 'latin1'), 100, what)).toThrow(/not UTF-8/);
    // /dev/zero has size 0 and never ends: a symbolic link to it must not be followed
    symlinkSync('/dev/zero', join(d, 'zero'));
    expect(() => readStepFile(join(d, 'zero'), 100, what)).toThrow(/symbolic link/);
    execFileSync('mkfifo', [join(d, 'fifo')]);
    expect(() => readStepFile(join(d, 'fifo'), 100, what)).toThrow(/regular file/);
  });
});

describe('checkOutputs and checkLinks', () => {
  const limits = withLimits({ outputKeys: 3, outputKeyLength: 8, outputValueBytes: 20, outputDepth: 3 });
  it('accepts outputs within the limits', () => {
    expect(() => checkOutputs({ a: 1, b: 'xyz', c: [1, [2]] }, limits)).not.toThrow();
  });
  it('names the limit each kind of excess breaks', () => {
    expect(() => checkOutputs({ a: 1, b: 2, c: 3, d: 4 }, limits)).toThrow(/outputKeys=3/);
    expect(() => checkOutputs({ abcdefghi: 1 }, limits)).toThrow(/outputKeyLength=8/);
    expect(() => checkOutputs({ a: 'x'.repeat(30) }, limits)).toThrow(
      /outputs\.a: 32 bytes.*outputValueBytes=20/,
    );
    expect(() => checkOutputs({ a: [[[[1]]]] }, limits)).toThrow(/outputDepth=3/);
    expect(codeOf(() => checkOutputs({ a: 'x'.repeat(30) }, limits))).toBe('EXECUTOR_OUTPUTS_TOO_LARGE');
  });
  it('walks a deeply nested value without overflowing the stack', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(() => checkOutputs({ a: deep }, DEFAULT_STEP_LIMITS)).toThrow(/outputDepth=32/);
  });
  it('keeps a "__proto__" output a plain name', () => {
    const out = parseOutputs('__proto__={"polluted":1}\n');
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
  it('bounds links and allows only http(s) URLs', () => {
    const many = Array.from({ length: 101 }, (_, i) => ({ name: `l${i}`, url: 'http://x' }));
    expect(codeOf(() => checkLinks(many, DEFAULT_STEP_LIMITS))).toBe('EXECUTOR_LINKS_TOO_LARGE');
    expect(
      codeOf(() => checkLinks([{ name: 'a', url: `http://${'x'.repeat(5000)}` }], DEFAULT_STEP_LIMITS)),
    ).toBe('EXECUTOR_LINKS_TOO_LARGE');
    expect(codeOf(() => checkLinks([{ name: 'a', url: 'javascript:alert(1)' }], DEFAULT_STEP_LIMITS))).toBe(
      'EXECUTOR_LINKS_INVALID',
    );
    expect(() => checkLinks([{ name: 'ui', url: 'https://spark/ui' }], DEFAULT_STEP_LIMITS)).not.toThrow();
  });
});

describe('limit settings and messages', () => {
  it('parses NAME=N items and refuses unknown names and bad numbers', () => {
    expect(parseStepLimits(['outputsBytes=10,links=2', 'outputKeys=5'])).toEqual({
      outputsBytes: 10,
      links: 2,
      outputKeys: 5,
    });
    expect(() => parseStepLimits(['nope=1'])).toThrow(/step limit "nope": expected one of outputsBytes/);
    expect(() => parseStepLimits(['links=-1'])).toThrow(/positive integer/);
    expect(() => parseStepLimits(['links=1e3'])).toThrow(/positive integer/);
    expect(() => parseStepLimits(['links'])).toThrow(/expected links=N/);
  });
  it('cuts long messages on a character boundary and says so', () => {
    expect(truncateMessage('short', 100)).toBe('short');
    const cut = truncateMessage('é'.repeat(100), 50);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(50);
    expect(cut).toMatch(/^é+… \(truncated\)$/);
  });
});
