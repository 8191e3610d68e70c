// What a run's parameters can make a step touch in the standalone server: copy steps stay inside
// the namespace's files directory and the --copy-root directories; each step attempt works in
// its own directory.
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyManifests } from '../../src/controller/manifests.ts';
import { createStandalone, namespaceFiles, type StandaloneOptions } from '../../src/controller/standalone.ts';
import type { Workflow } from '../../src/crds/index.ts';
import { runToEnd } from './runs.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(opts: Partial<StandaloneOptions> = {}) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'meson-iso-')));
  const dataDir = join(root, 'data');
  const s = createStandalone({ dataDir, pollMs: 50, ...opts });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  const copy: Workflow = {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name: 'copier', namespace: 'default' },
    spec: {
      parameters: [
        { name: 'src', type: 'string', value: 'in.txt' },
        { name: 'dst', type: 'string', value: 'out.txt' },
      ],
      definition: { step: { name: 'c', copy: { from: '${src}', to: '${dst}' } } },
    },
  } as Workflow;
  const where: Workflow = {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name: 'where', namespace: 'default' },
    spec: { definition: { step: { name: 'w', shell: { script: 'pwd; echo "$HOME"' } } } },
  } as Workflow;
  applyManifests(s.store, { workflows: [copy, where], artifacts: [], runs: [], errors: [] }, Date.now());
  s.start();
  const run = (workflow: string, params: Record<string, string> = {}) => runToEnd(s, workflow, params);
  return { s, root, dataDir, run };
}

describe('step isolation in the standalone server', () => {
  it('copies inside the namespace files directory, and refuses paths a run parameter points out of it', async () => {
    const { root, dataDir, run } = setup();
    const files = namespaceFiles(dataDir, 'default');
    mkdirSync(files, { recursive: true });
    writeFileSync(join(files, 'in.txt'), 'data');
    writeFileSync(join(root, 'outside.txt'), 'secret');
    symlinkSync(join(root, 'outside.txt'), join(files, 'link'));
    expect(await run('copier')).toMatchObject({ phase: 'Succeeded' });
    expect(readFileSync(join(files, 'out.txt'), 'utf8')).toBe('data');
    const attacks: Record<string, string>[] = [
      { src: '/etc/passwd' },
      { src: 'file:///etc/passwd' },
      { src: '../../meson.db' },
      { src: '../../../outside.txt' },
      { src: 'link' },
      { dst: `${root}/stolen.txt` },
      { dst: '../../../stolen.txt' },
    ];
    for (const params of attacks) {
      const r = await run('copier', params);
      expect(r, JSON.stringify(params)).toMatchObject({
        phase: 'Failed',
        message: expect.stringContaining('EXECUTOR_COPY_OUTSIDE_ROOTS'),
      });
    }
    expect(() => readFileSync(join(root, 'stolen.txt'))).toThrow();
  });

  it('lets the operator add copy roots', async () => {
    const extra = realpathSync(mkdtempSync(join(tmpdir(), 'meson-iso-extra-')));
    cleanups.push(() => rmSync(extra, { recursive: true, force: true }));
    writeFileSync(join(extra, 'shared.txt'), 'shared');
    const { dataDir, run } = setup({ copyRoots: [extra] });
    expect(await run('copier', { src: join(extra, 'shared.txt'), dst: 'got.txt' })).toMatchObject({
      phase: 'Succeeded',
    });
    expect(readFileSync(join(namespaceFiles(dataDir, 'default'), 'got.txt'), 'utf8')).toBe('shared');
  });

  it('runs each step attempt in its own working directory, which is also its HOME', async () => {
    const { s, run } = setup();
    const r = await run('where');
    expect(r.phase).toBe('Succeeded');
    const parent = dirname(s.store.attemptDir('default', r.name, 'w', 1, 'x'));
    const [attempt] = readdirSync(parent);
    const [pwd, home] = readFileSync(join(parent, attempt!, 'stdout.log'), 'utf8')
      .trim()
      .split('\n');
    expect(pwd).toMatch(/\/attempts\/default\/.+\/w\/1-[^/]+\/work$/);
    expect(home).toBe(pwd);
  });
});
