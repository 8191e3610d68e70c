import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/mesonctl.js', import.meta.url));

/** The machine's own Node (these machines ship Node 20, which cannot strip types). */
function systemNode(): { path: string; version: string } | undefined {
  for (const path of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      return { path, version: execFileSync(path, ['--version'], { encoding: 'utf8' }).trim() };
    } catch {}
  }
  return undefined;
}

describe('bin/mesonctl.js', () => {
  it('runs the CLI from source on this Node', () => {
    const res = spawnSync(process.execPath, [bin, 'eval', 'dateIntAdd(20171231, 1)'], { encoding: 'utf8' });
    expect(res.stdout).toBe('20180101\n');
    expect(res.status).toBe(0);
  });

  const old = systemNode();
  const tooOld = old !== undefined && Number(old.version.slice(1).split('.')[0]) < 22;
  it.runIf(tooOld)(`says which Node it needs instead of a stack trace on ${old?.version}`, () => {
    const res = spawnSync(old!.path, [bin, 'eval', '1'], { encoding: 'utf8' });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/^mesonctl: needs Node\.js >= 22\.18 .*npx mesonctl/);
  });
});
