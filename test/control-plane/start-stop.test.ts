import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { COMPONENTS, ensureBinaries } from '../cluster/binaries.ts';
import { startCluster } from '../cluster/index.ts';

const realBin = ensureBinaries();
const scratch = mkdtempSync(join(tmpdir(), 'meson-start-stop-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A bin dir of links to the real binaries, some replaced by shell scripts. */
function binDirWith(name: string, scripts: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  for (const component of COMPONENTS) {
    const script = scripts[component];
    if (script === undefined) symlinkSync(join(realBin, component), join(dir, component));
    else {
      writeFileSync(join(dir, component), `#!/bin/sh\n${script}\n`);
      chmodSync(join(dir, component), 0o755);
    }
  }
  return dir;
}

/** Processes whose command line mentions `text` (a cluster's own directory). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(text)) found.push(`${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe('startCluster / stop', () => {
  it('stops every component and leaves no process behind', async () => {
    const dir = join(scratch, 'clean');
    const cluster = await startCluster({ dir, nodes: 1, scheduler: true });
    expect(processesMentioning(dir).length).toBeGreaterThanOrEqual(5);
    await cluster.stop();
    expect(processesMentioning(dir)).toEqual([]);
  });

  it('fails with the log of a component that exits, and stops the ones already started', async () => {
    const dir = join(scratch, 'broken');
    const binDir = binDirWith('broken-bin', {
      'kube-apiserver': `echo "E0000 unknown flag: --made-up (args: $*)" >&2; sleep 0.2; exit 3`,
    });
    const error = await startCluster({ dir, binDir }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain(dir);
    const cause = String((error?.cause as Error | undefined)?.message);
    expect(cause).toContain('kube-apiserver exited (code 3');
    expect(cause).toContain('unknown flag: --made-up');
    expect(processesMentioning(dir)).toEqual([]); // etcd was stopped
  });

  it('starts again on fresh ports when a port was taken between choosing and binding it', async () => {
    const dir = join(scratch, 'retry');
    const marker = join(scratch, 'etcd-failed-once');
    const binDir = binDirWith('retry-bin', {
      etcd: [
        `if [ ! -e ${marker} ]; then touch ${marker}`,
        '  echo "listen tcp 127.0.0.1:1: bind: address already in use" >&2; exit 1; fi',
        `exec ${join(realBin, 'etcd')} "$@"`,
      ].join('\n'),
    });
    const messages: string[] = [];
    const cluster = await startCluster({
      dir,
      binDir,
      controllerManager: false,
      log: (m) => messages.push(m),
    });
    await cluster.stop();
    expect(messages.some((m) => m.includes('port was taken'))).toBe(true);
    expect(processesMentioning(dir)).toEqual([]);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`kills the cluster when its parent process gets ${signal}`, async () => {
      const dir = join(scratch, `parent-${signal}`);
      const script = join(scratch, 'parent.ts');
      const index = join(dirname(fileURLToPath(import.meta.url)), '../cluster/index.ts');
      writeFileSync(
        script,
        [
          `import { startCluster } from ${JSON.stringify(index)};`,
          'await startCluster({ dir: process.argv[2], binDir: process.argv[3], nodes: 1 });',
          "process.stdout.write('up\\n');",
          'setInterval(() => {}, 1000);',
        ].join('\n'),
      );
      const parent = spawn(process.execPath, [script, dir, realBin], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      parent.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      const deadline = Date.now() + 60_000;
      while (!out.includes('up') && Date.now() < deadline && parent.exitCode === null) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out).toContain('up');
      expect(processesMentioning(dir).length).toBeGreaterThanOrEqual(4);
      const exited = once(parent, 'exit');
      parent.kill(signal);
      const [, exitSignal] = await exited;
      expect(exitSignal).toBe(signal);
      // SIGKILL was sent to every group before the parent exited; a process blocked in the kernel
      // (etcd in an fsync on a loaded machine) is gone a moment later, not at once
      const gone = Date.now() + 10_000;
      while (processesMentioning(dir).length > 0 && Date.now() < gone)
        await new Promise((r) => setTimeout(r, 50));
      expect(processesMentioning(dir)).toEqual([]);
    });
  }
});
