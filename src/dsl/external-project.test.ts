// docs/dsl.md "Using the DSL from another project": the package.json, tsconfig.json and
// program given there, assembled in a scratch directory next to an install of this package,
// synthesise and type-check.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

function sectionBlocks(): { lang: string; text: string }[] {
  const doc = readFileSync(join(root, 'docs/dsl.md'), 'utf8');
  const start = doc.indexOf('## Using the DSL from another project');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  return [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, text: m[2]! }));
}

describe('the DSL used from another project, as docs/dsl.md sets it up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meson-dsl-project-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('synthesises and type-checks', async () => {
    const blocks = sectionBlocks();
    const [pkg, tsconfig] = blocks.filter((b) => b.lang === 'json');
    const program = blocks.find((b) => b.lang === 'ts');
    expect(JSON.parse(pkg!.text).devDependencies['meson-k8s']).toMatch(/^file:/);
    writeFileSync(join(dir, 'package.json'), pkg!.text);
    writeFileSync(join(dir, 'tsconfig.json'), tsconfig!.text);
    mkdirSync(join(dir, 'workflows'));
    writeFileSync(join(dir, 'workflows/hello.workflow.ts'), program!.text);
    // what `npm install` makes of the file: dependency (a link) and of the two tools
    mkdirSync(join(dir, 'node_modules/@types'), { recursive: true });
    symlinkSync(root, join(dir, 'node_modules/meson-k8s'));
    symlinkSync(join(root, 'node_modules/typescript'), join(dir, 'node_modules/typescript'));
    symlinkSync(join(root, 'node_modules/@types/node'), join(dir, 'node_modules/@types/node'));

    const synth = await run(
      process.execPath,
      [join(dir, 'node_modules/meson-k8s/bin/mesonctl.js'), 'synth', 'workflows/hello.workflow.ts'],
      { cwd: dir },
    );
    expect(synth.stdout).toContain('name: hello');
    expect(synth.stdout).toContain('suspend: true');
    const tsc = await run(
      process.execPath,
      [join(dir, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      {
        cwd: dir,
      },
    ).catch((e: { stdout: string }) => ({ stdout: e.stdout, failed: true }));
    expect(tsc.stdout).toBe('');
  }, 120_000);
});
