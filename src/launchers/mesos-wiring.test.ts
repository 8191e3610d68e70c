import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileFrameworkIdStore } from './mesos-wiring.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('FileFrameworkIdStore', () => {
  it('keeps the framework id across processes, and ignores a file that is not one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meson-fwid-'));
    dirs.push(dir);
    const file = join(dir, 'sub', 'framework-id');
    expect(await new FileFrameworkIdStore(file).load()).toBeUndefined();
    await new FileFrameworkIdStore(file).save('5f1c-0001');
    expect(await new FileFrameworkIdStore(file).load()).toBe('5f1c-0001');
    for (const bad of ['', 'two words', 'a\nb', 'x'.repeat(257), 'é', '\u0000']) {
      writeFileSync(file, bad);
      expect(await new FileFrameworkIdStore(file).load(), JSON.stringify(bad)).toBeUndefined();
    }
    // a directory or a dangling link where the file should be: no id, no crash
    const link = join(dir, 'link');
    symlinkSync(join(dir, 'nowhere'), link);
    expect(await new FileFrameworkIdStore(link).load()).toBeUndefined();
    expect(await new FileFrameworkIdStore(dir).load()).toBeUndefined();
  });
});
