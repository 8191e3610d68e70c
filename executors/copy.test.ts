import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { thrownCode } from '../test/support/error-code.ts';
import { confineCopyPath, confinedCopy, realRoots } from './copy.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const top = realpathSync(mkdtempSync(join(tmpdir(), 'meson-copy-')));
  dirs.push(top);
  const root = join(top, 'root');
  const outside = join(top, 'outside');
  mkdirSync(join(root, 'in'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'in', 'a.txt'), 'inside');
  writeFileSync(join(outside, 'secret'), 'secret');
  return { top, root, outside, roots: realRoots([root]) };
}

const code = thrownCode;

describe('copy roots', () => {
  it('takes relative paths from the first root and absolute or file:// paths inside any root', () => {
    const { root, roots } = setup();
    expect(confineCopyPath('in/a.txt', roots, 'from')).toBe(join(root, 'in', 'a.txt'));
    expect(confineCopyPath(join(root, 'in/new'), roots, 'to')).toBe(join(root, 'in', 'new'));
    expect(confineCopyPath(`file://${root}/in/a.txt`, roots, 'from')).toBe(join(root, 'in', 'a.txt'));
    expect(confineCopyPath(`file://localhost${root}/in/a%20b`, roots, 'to')).toBe(join(root, 'in', 'a b'));
    // `..` that stays inside is fine
    expect(confineCopyPath('in/../in/a.txt', roots, 'from')).toBe(join(root, 'in', 'a.txt'));
  });

  it('refuses every way out: .., absolute paths, file:// URIs, percent-encoding, symbolic links, other hosts', () => {
    const { root, outside, roots } = setup();
    symlinkSync(outside, join(root, 'in', 'escape'));
    symlinkSync(join(outside, 'secret'), join(root, 'in', 'secret-link'));
    const attacks: [string, 'from' | 'to', string][] = [
      ['../outside/secret', 'from', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      ['in/../../outside/secret', 'from', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      ['/etc/passwd', 'from', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      ['file:///etc/passwd', 'from', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      [`file://${root}/../outside/secret`, 'from', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      [`file://${root}/%2e%2e/outside/secret`, 'from', 'EXECUTOR_COPY_PATH'],
      [`file://${root}/%2E%2E%2Foutside/secret`, 'from', 'EXECUTOR_COPY_PATH'],
      ['file://evil.example/etc/passwd', 'from', 'EXECUTOR_COPY_PATH'],
      ['in/escape/secret', 'from', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      ['in/secret-link', 'from', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      ['in/escape/new-file', 'to', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      ['/tmp/elsewhere', 'to', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      [`${outside}/x`, 'to', 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      ['s3://bucket/key', 'from', 'EXECUTOR_COPY_SCHEME'],
      ['in/a\0b', 'from', 'EXECUTOR_COPY_PATH'],
    ];
    for (const [uri, field, expected] of attacks) {
      expect(
        code(() => confineCopyPath(uri, roots, field)),
        uri,
      ).toBe(expected);
    }
    // a plain path's "%2e%2e" is a literal name inside the root, not a way up
    expect(confineCopyPath('%2e%2e/outside/secret', roots, 'from')).toBe(
      join(root, '%2e%2e', 'outside', 'secret'),
    );
  });

  it('checks the entries of a copied tree: a symbolic link out of the roots or a redirected destination fails', () => {
    const { root, outside, roots } = setup();
    mkdirSync(join(root, 'tree'));
    writeFileSync(join(root, 'tree', 'ok.txt'), 'ok');
    confinedCopy(join(root, 'tree'), join(root, 'copy1'), roots);
    expect(readFileSync(join(root, 'copy1', 'ok.txt'), 'utf8')).toBe('ok');

    symlinkSync(join(outside, 'secret'), join(root, 'tree', 'leak'));
    expect(code(() => confinedCopy(join(root, 'tree'), join(root, 'copy2'), roots))).toBe(
      'EXECUTOR_COPY_OUTSIDE_ROOTS',
    );

    // a destination tree whose subdirectory is a link out of the roots does not redirect the write
    rmSync(join(root, 'tree', 'leak'));
    mkdirSync(join(root, 'tree', 'sub'));
    writeFileSync(join(root, 'tree', 'sub', 'planted'), 'x');
    mkdirSync(join(root, 'dest'));
    symlinkSync(outside, join(root, 'dest', 'sub'));
    expect(code(() => confinedCopy(join(root, 'tree'), join(root, 'dest'), roots))).toBe(
      'EXECUTOR_COPY_OUTSIDE_ROOTS',
    );
    expect(() => readFileSync(join(outside, 'planted'))).toThrow();
  });
});
